"""DE-Net: Dynamic Text-guided Image Editing Adversarial Networks (Tao et al., AAAI 2023), reproduced."""

__version__ = "0.1.0"
IMPLEMENTED = True

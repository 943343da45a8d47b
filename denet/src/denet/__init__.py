"""DE-Net: Dynamic Text-guided Image Editing Adversarial Networks. Not implemented yet (skeleton)."""

__version__ = "0.0.1"
IMPLEMENTED = False

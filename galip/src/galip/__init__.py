"""GALIP: Generative Adversarial CLIPs for Text-to-Image Synthesis (Tao et al., CVPR 2023), reproduced."""

__version__ = "0.1.0"

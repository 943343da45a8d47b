"""GALIP: Generative Adversarial CLIPs for Text-to-Image Synthesis. Not implemented yet (skeleton)."""

__version__ = "0.0.1"
IMPLEMENTED = False

"""LD4MRec: Light Diffusion model for Multimedia Recommendation. Not implemented yet (skeleton)."""

__version__ = "0.0.1"
IMPLEMENTED = False

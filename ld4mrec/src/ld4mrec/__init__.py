"""LD4MRec: light diffusion for multimedia recommendation (Zhu, Hou, Yu, Tan, Bao; arXiv 2309.15363)."""

__version__ = "0.1.0"

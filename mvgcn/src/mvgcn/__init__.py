"""MGCN: Multi-View Graph Convolutional Network for Multimedia Recommendation. Not implemented yet (skeleton)."""

__version__ = "0.0.1"
IMPLEMENTED = False

"""MGCN: Multi-View Graph Convolutional Network for Multimedia Recommendation (Yu et al., ACM MM 2023)."""

__version__ = "0.1.0"

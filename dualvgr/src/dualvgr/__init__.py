"""DualVGR: A Dual-Visual Graph Reasoning Unit for Video Question Answering. Not implemented yet (skeleton)."""

__version__ = "0.0.1"
IMPLEMENTED = False

"""DualVGR: A Dual-Visual Graph Reasoning Unit for Video Question Answering (Wang, Bao, Xu, IEEE TMM 2021):
model, losses, training, evaluation and the HCRN-style feature and question pipelines."""

__version__ = "0.1.0"
IMPLEMENTED = True

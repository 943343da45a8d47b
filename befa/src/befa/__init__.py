"""BeFA: A General Behavior-driven Feature Adapter for Multimedia Recommendation. Not implemented yet (skeleton)."""

__version__ = "0.0.1"
IMPLEMENTED = False

"""Shared metrics and data loaders of the mmrepro projects (nothing model-specific lives here)."""

__version__ = "0.1.0"

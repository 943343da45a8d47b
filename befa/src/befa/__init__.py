"""BeFA: a general behaviour-driven feature adapter for multimedia recommendation (Fan, Yu et al., AAAI 2025)."""

__version__ = "0.1.0"

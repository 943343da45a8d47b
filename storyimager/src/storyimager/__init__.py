"""StoryImager: coherent story visualization and completion (ECCV 2024). Not implemented yet (skeleton)."""

__version__ = "0.0.1"
IMPLEMENTED = False

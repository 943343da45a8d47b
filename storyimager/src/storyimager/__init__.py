"""StoryImager: A Unified and Efficient Framework for Coherent Story Visualization and Completion. Not implemented yet (skeleton)."""

__version__ = "0.0.1"
IMPLEMENTED = False

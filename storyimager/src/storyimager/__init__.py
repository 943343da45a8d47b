"""StoryImager (ECCV 2024, arXiv 2404.05979): storyboard diffusion for story visualization, continuation and
completion; the first public implementation (the official repository has no code)."""

__version__ = "0.1.0"
IMPLEMENTED = True

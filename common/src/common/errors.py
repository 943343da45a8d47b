"""One-line errors for bad input: each names the file (or config key) and the problem."""

from __future__ import annotations

from pathlib import Path


class DataFormatError(ValueError):
    """A data file is missing, malformed or inconsistent.

    ``str(err)`` is a single line ``"<path>: <problem>"`` that a CLI prints as is.
    """

    def __init__(self, path: str | Path, problem: str) -> None:
        self.path = Path(path)
        self.problem = " ".join(str(problem).split())
        super().__init__(f"{self.path}: {self.problem}")


class NonFiniteLoss(ArithmeticError):
    """A training loss became NaN or infinite; ``str(err)`` is one line naming the epoch, the step and the term."""


class WeightsNotFoundError(FileNotFoundError):
    """A pretrained weights file named in a config does not exist.

    The message names the config key, the path and where the file comes from.
    """

    def __init__(self, key: str, path: str | Path, source: str) -> None:
        self.key, self.path, self.source = key, Path(path), source
        super().__init__(f"config key '{key}': {self.path} does not exist; get it from {source}")

    def __str__(self) -> str:  # FileNotFoundError would otherwise print "[Errno None] ..."
        return self.args[0]


def require_file(path: str | Path, what: str = "file") -> Path:
    """Return ``path`` as a Path, or raise DataFormatError if it is not an existing file."""
    path = Path(path)
    if path.is_dir():
        raise DataFormatError(path, f"{what} expected, found a directory")
    if not path.is_file():
        raise DataFormatError(path, f"{what} not found")
    return path

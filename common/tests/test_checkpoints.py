"""A bad or foreign checkpoint file is one line naming it."""

import pytest
import torch

from common.checkpoints import read_checkpoint
from common.errors import DataFormatError


def test_read_checkpoint_errors_are_one_line(tmp_path):
    with pytest.raises(DataFormatError, match="checkpoint not found"):
        read_checkpoint(tmp_path / "none.pt", "X")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(DataFormatError, match="unreadable checkpoint") as err:
        read_checkpoint(bad, "X")
    assert "bad.pt" in str(err.value) and len(str(err.value).splitlines()) == 1
    torch.save({"model": {}}, tmp_path / "partial.pt")
    with pytest.raises(DataFormatError, match="not a X checkpoint"):
        read_checkpoint(tmp_path / "partial.pt", "X", required=("model", "config"))

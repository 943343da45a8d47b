"""Config loading (typed, one-line errors), atomic checkpoints and seeding."""

from dataclasses import dataclass, field

import pytest
import torch

from common.errors import DataFormatError
from common.runs import atomic_save, load_config, set_seed


@dataclass
class Demo:
    name: str = "x"
    lr: float = 1e-3
    steps: int = 5
    grid: float | list[float] = field(default_factory=lambda: [0.1, 0.2])
    flag: bool = False
    optional: str | None = None


def test_yaml_then_overrides_with_int_accepted_for_float(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("lr: 1\nsteps: 7\ngrid: 0.5\n")
    cfg = load_config(Demo, path, steps=9, name=None)
    assert cfg == Demo(lr=1.0, steps=9, grid=0.5)
    assert isinstance(cfg.lr, float)


@pytest.mark.parametrize("text, fragments", [
    ("stpes: 3\n", ["unknown key 'stpes'", "did you mean 'steps'"]),
    ("steps: 2.5\n", ["key 'steps'"]),
    ("flag: 1\n", ["key 'flag'"]),
    ("grid: [0.1, oops]\n", ["key 'grid'"]),
    ("- a\n- b\n", ["expected a mapping"]),
    ("a: [1\n", ["invalid YAML"]),
])
def test_bad_config_is_one_line_error_naming_file_and_key(tmp_path, text, fragments):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(DataFormatError) as err:
        load_config(Demo, path)
    msg = str(err.value)
    assert "\n" not in msg and "bad.yaml" in msg
    for f in fragments:
        assert f in msg


def test_missing_config_file(tmp_path):
    with pytest.raises(DataFormatError, match="config file not found"):
        load_config(Demo, tmp_path / "none.yaml")


def test_atomic_save_leaves_no_temporary_file(tmp_path):
    atomic_save({"a": torch.ones(2)}, tmp_path / "ck" / "last.pt")
    assert [p.name for p in (tmp_path / "ck").iterdir()] == ["last.pt"]
    assert torch.equal(torch.load(tmp_path / "ck" / "last.pt")["a"], torch.ones(2))


def test_set_seed_makes_torch_draws_repeat():
    set_seed(3)
    a = torch.rand(3)
    set_seed(3)
    assert torch.equal(a, torch.rand(3))

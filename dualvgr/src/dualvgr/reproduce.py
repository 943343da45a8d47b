"""``make reproduce-dualvgr [DATA=dir]``: the embedded default (SYNTHETIC VideoQA features) or a real dataset.

Without ``--data`` it writes a SYNTHETIC ``common.synthetic.videoqa`` dataset into ``.cache/dualvgr/synthetic``
once and trains ``configs/smoke.yaml``; with ``--data DIR`` it trains ``configs/<name>.yaml``, where the folder's
name (msvd_qa or msvd-qa, msrvtt_qa or msrvtt-qa, svqa) picks the config; the config's ``dataset`` is the file
prefix inside the folder.
"""

from __future__ import annotations

from pathlib import Path

from common.cli import reproduce_config
from common.errors import DataFormatError
from common.synthetic import videoqa as synthetic_videoqa
from dualvgr.config import DualVGRConfig, load_config
from dualvgr.train import train

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
SYNTHETIC_DIR = Path(".cache/dualvgr/synthetic/smoke")
SMOKE_DATA = {"n_videos": 240, "num_clips": 4, "feature_dim": 256, "feature_noise": 1.0}


def write_smoke_data(out: Path) -> Path:
    """The embedded default's SYNTHETIC data (the shapes configs/smoke.yaml expects)."""
    return synthetic_videoqa.write(out, seed=0, dataset="msvd-qa", **SMOKE_DATA)


def config_for(data_dir: str | None) -> DualVGRConfig:
    """configs/<folder name>.yaml on ``data_dir`` ('-' read as '_'), or the embedded default without one."""
    if not data_dir:
        return reproduce_config("dualvgr reproduce", None, CONFIGS, SYNTHETIC_DIR, load_config, write_smoke_data)
    path = CONFIGS / f"{Path(data_dir).name.replace('-', '_')}.yaml"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in CONFIGS.glob("*.yaml") if p.stem != "smoke"))
        raise DataFormatError(data_dir, f"no config {path.name} for this folder name (known: {known})")
    return load_config(path, data=data_dir)


def reproduce(data_dir: str | None) -> dict:
    config = config_for(data_dir)
    result = train(config)
    print(result["table"])
    test, base = result["test"]["overall"], result["majority_baseline_test"]["overall"]
    print(f"{config.tag()}test accuracy {100 * test:.2f}% = {test / base:.1f}x the majority answer ({100 * base:.2f}%)")
    return result

"""``make reproduce-galip [DATA=dir]``: the embedded default (synthetic shapes, stand-in weights) or a real dataset.

Without ``--data`` it writes, once, into ``.cache/galip``: SYNTHETIC coloured-shape captions and images (64 px, CUB
layout), a tiny CLIP of the ViT-B/32 architecture trained on those captions (``galip.tiny_clip``), RANDOM
torchvision Inception weights and the FID statistics of the synthetic test images; then it trains
``configs/smoke.yaml`` and reports FID, CLIP score and the colour agreement of the samples with their captions, all
labelled synthetic. With ``--data DIR`` it trains ``configs/<DIR name>.yaml`` (birds, coco) on that folder with
the weights that config names.
"""

from __future__ import annotations

import json
from pathlib import Path

from common.cli import reproduce_config
from common.dfgan_fid import real_statistics
from common.metrics.fid import write_random_torchvision_inception_weights
from common.run_folder import read_metrics
from common.synthetic import text_image as synthetic_text_image

from .config import GALIPConfig, load_config
from .report import write_report
from .tiny_clip import train_tiny_clip
from .train import _label, train

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
SYNTHETIC_DIR = Path(".cache/galip/synthetic/smoke")


def prepare_embedded_default(config: GALIPConfig) -> None:
    """The stand-in weight files and synthetic FID statistics the smoke config names, written when missing."""
    if not Path(config.clip_weights).is_file():
        train_tiny_clip(config.data, config.clip_weights, seed=0)
    if not Path(config.fid_weights).is_file():
        write_random_torchvision_inception_weights(config.fid_weights, seed=0)
    if not Path(config.fid_stats).is_file():
        real_statistics(config, config.fid_stats)


def reproduce(data_dir: str | None) -> Path:
    config = reproduce_config("galip reproduce", data_dir, CONFIGS, SYNTHETIC_DIR, load_config,
                              lambda out: synthetic_text_image.write(out, seed=0, image_size=64, n_train=512,
                                                                     n_test=64))
    if data_dir is None:
        prepare_embedded_default(config)
    run_dir = train(config)
    final = read_metrics(run_dir)[-1]["eval"]
    label = _label(config)
    report = write_report(run_dir / "report", final, label)
    print(json.dumps(final, indent=1))
    print(f"report: {report}; samples: {run_dir / 'previews'}; curves: {run_dir / 'losses.png'}{label}")
    return run_dir

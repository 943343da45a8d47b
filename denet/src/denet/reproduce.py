"""``make reproduce-denet [DATA=dir]``: the embedded default (synthetic shapes, stand-in weights) or a real dataset.

Without ``--data`` it writes, once, into ``.cache/denet``: SYNTHETIC coloured-shape scenes with captions (256 px, CUB
layout), RANDOM torchvision Inception-v3 weights (the FID network), a STAND-IN Inception-v3 trunk trained on the
synthetic classes (``denet.stand_in``; in place of the ImageNet trunk of the DAMSM image encoder), the FID
statistics of the synthetic test images, and a DAMSM trained on the synthetic captions by ``denet train-damsm``
on that trunk; then it trains
``configs/smoke.yaml`` and reports MP, FID and the colour-edit check (requested colour hit rate, background change),
all labelled synthetic. With ``--data DIR`` it trains ``configs/<DIR name>.yaml`` (birds, coco) on that folder with
the DAMSM and Inception files that config names.
"""

from __future__ import annotations

import json
from pathlib import Path

from common.cli import reproduce_config
from common.dfgan_fid import real_statistics
from common.metrics.fid import write_random_torchvision_inception_weights
from common.run_folder import read_metrics
from common.synthetic import text_image as synthetic_text_image

from .config import DENetConfig, load_config
from .report import write_report
from .stand_in import train_stand_in_inception
from .train import train
from .train_damsm import train_damsm

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
SYNTHETIC_DIR = Path(".cache/denet/synthetic/smoke")
STAND_IN_EPOCHS = 4


def write_synthetic(out: Path) -> Path:
    return synthetic_text_image.write(out, seed=0, image_size=256, n_train=512, n_test=64)


def prepare_embedded_default(config: DENetConfig) -> None:
    """The stand-in weight files, the synthetic FID statistics and the DAMSM the smoke config names, when missing."""
    if not Path(config.fid_weights).is_file():
        write_random_torchvision_inception_weights(config.fid_weights, seed=0)
    if not Path(config.inception_weights).is_file():
        train_stand_in_inception(config, config.inception_weights, STAND_IN_EPOCHS)
    if not Path(config.fid_stats).is_file():
        real_statistics(config, config.fid_stats)
    if not (Path(config.text_encoder).is_file() and Path(config.image_encoder).is_file()):
        text, image = train_damsm(config, Path(config.text_encoder).parent)
        if (text, image) != (Path(config.text_encoder), Path(config.image_encoder)):
            raise RuntimeError(f"train-damsm wrote {text}, {image}; the smoke config names other files")


def reproduce(data_dir: str | None) -> Path:
    config = reproduce_config("denet reproduce", data_dir, CONFIGS, SYNTHETIC_DIR, load_config, write_synthetic)
    if data_dir is None:
        prepare_embedded_default(config)
    run_dir = train(config)
    final = read_metrics(run_dir)[-1]["eval"]
    label = config.label()
    report = write_report(run_dir / "report", final, label)
    print(json.dumps(final, indent=1))
    print(f"report: {report}; edits: {run_dir / 'previews'}; curves: {run_dir / 'losses.png'}{label}")
    return run_dir

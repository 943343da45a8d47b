"""GALIP run configuration (one YAML file -> ``GALIPConfig``; unknown or mistyped keys are one-line errors).

Defaults are the official birds values (``tobran/GALIP:code/cfg/birds.yml``, ``scripts/train.sh`` and the
argparse defaults of ``src/train.py`` that override the YAML; spec text_to_image.md 2.1).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

from common.configs import auto_device
from common.configs import load_config as common_load_config
from common.errors import DataFormatError

DATASETS = ("birds", "coco")


@dataclass
class GALIPConfig:
    """Hyper-parameters of GALIP and of its trainer; comments give the official source of each value."""

    # data (DF-GAN layout, common.data.text_image)
    dataset: str = "birds"
    data: str = "data/birds"
    image_dir: str | None = None  # relative to data; None = DF-GAN default; GALIP's COCO: images/{folder}/jpg
    runs_dir: str = "runs/galip"
    run_name: str | None = None
    synthetic: bool = False  # set by the embedded default: every printed number is labelled SYNTHETIC
    random_weights: bool = False  # CLIP / Inception files are stand-ins (random or synthetic-trained): labelled
    clip_weights: str = "weights/ViT-B-32.pt"  # OpenAI CLIP ViT-B/32 (clip4trn = clip4evl, same file)
    # model (cfg: imsize 256, z_dim 100, cond_dim 512, nf 64, ch_size 3)
    imsize: int = 256
    out_size: int = 224  # hard-coded 224 in the official NetG's last block
    z_dim: int = 100
    cond_dim: int = 512
    nf: int = 64
    ch_size: int = 3
    d_out_ch: int = 512  # NetD's output / NetC's input width, hard-coded 512 officially
    # optimisation (train.py / train.sh)
    seed: int = 100
    epochs: int = 1501  # official loop range(1, 1502)
    batch_size: int = 64  # per process (train.sh: 64 per GPU x 8 GPUs); the YAML's 16 is dead in the official code
    lr_g: float = 1e-4
    lr_d: float = 4e-4
    betas: list[float] = field(default_factory=lambda: [0.0, 0.9])
    sim_w: float = 4.0
    gp_k: float = 2.0  # MA-GP weight k (MA_GP_FP32 / MA_GP_MP)
    gp_p: float = 6.0  # MA-GP power p
    mixed_precision: bool = True
    scaler_min: float = 64.0  # a GradScaler scale below this is reset to 16384
    growth_interval: int = 2000
    num_workers: int = 4
    device: str = field(default_factory=auto_device)  # "auto": CUDA when present, else the CPU
    # intervals in epochs (birds: gen 5, test 20, save 20)
    gen_interval: int = 5
    test_interval: int = 20
    save_interval: int = 20
    save_every_steps: int = 0  # also write last.pt every N batches inside an epoch (0: only at epoch ends)
    skip_nonfinite: bool = False  # a NaN/inf loss term: stop in one line (last.pt kept) or skip that update, counted
    # evaluation (spec 1.5, 2.9)
    sample_times: int = 12  # FID passes over the test captions (birds 12, coco 1)
    eval_batch_size: int = 64
    fid_samples: int | None = None  # None: the official count (every pass over the test split, drop_last); e.g. 30000
    fid_weights: str = "weights/inception_v3_google-0cc3c7bd.pth"  # torchvision ImageNet Inception-v3
    fid_stats: str = "data/birds/npz/bird_val256_FIDK0.npz"  # DF-GAN's reference mu/sigma
    n_preview: int = 16  # fixed preview grid: half train, half test captions

    def validate(self, source: str | Path = "config") -> GALIPConfig:
        if self.dataset not in DATASETS:
            raise DataFormatError(source, f"dataset must be one of {', '.join(DATASETS)}, got {self.dataset!r}")
        if len(self.betas) != 2:
            raise DataFormatError(source, "betas must be [beta1, beta2]")
        if self.batch_size < 2:
            raise DataFormatError(source, "batch_size must be >= 2 (the mismatched-text term rolls the batch)")
        if self.fid_samples is not None and self.fid_samples < 2:
            raise DataFormatError(source, f"fid_samples must be >= 2 or null, got {self.fid_samples}")
        for key in ("epochs", "gen_interval", "test_interval", "save_interval", "sample_times", "eval_batch_size"):
            if getattr(self, key) < 1:
                raise DataFormatError(source, f"{key} must be >= 1, got {getattr(self, key)}")
        if self.save_every_steps < 0:
            raise DataFormatError(source, f"save_every_steps must be >= 0, got {self.save_every_steps}")
        return self

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def load_config(path: str | Path | None = None, **overrides) -> GALIPConfig:
    """Defaults, then the YAML file, then ``overrides`` (CLI flags; None values are ignored)."""
    return common_load_config(GALIPConfig, path, **overrides)

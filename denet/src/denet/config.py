"""DE-Net run configuration (one YAML file -> ``DENetConfig``; unknown or mistyped keys are one-line errors).

Defaults are the official COCO values where the official code has them (``tobran/DE-Net:code/cfg/coco.yml``,
``src/train.py``, ``scripts/train.sh``; spec text_to_image.md 3.2). The training objective is not in the official
repository (``lib/modules.py`` was never committed, spec 3.5): the loss weights below marked *our choice* are this
reproduction's, documented in the README and switchable here.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

from common.configs import auto_device
from common.configs import load_config as common_load_config
from common.errors import DataFormatError
from common.labels import run_label

DATASETS = ("birds", "coco")


@dataclass
class DENetConfig:
    """Hyper-parameters of DE-Net, of its trainer and of DAMSM pre-training; comments give the source of each."""

    # data (DF-GAN layout, common.data.text_image)
    dataset: str = "coco"
    data: str = "data/coco"
    image_dir: str | None = None  # relative to data; None = DF-GAN default (CUB_200_2011/images, images/<split>2014)
    captions_per_image: int = 5  # cfg TEXT.CAPTIONS_PER_IMAGE (birds 10)
    words_num: int = 18  # cfg TEXT.WORDS_NUM
    runs_dir: str = "runs/denet"
    run_name: str | None = None
    synthetic: bool = False  # set by the embedded default: every printed number is labelled SYNTHETIC
    random_weights: bool = False  # DAMSM / Inception files are stand-ins (random or synthetic-trained): labelled
    # DAMSM (AttnGAN), the text encoder that conditions G and the image encoder of the DAMSM loss and of MP
    text_encoder: str = "data/coco/DAMSMencoder/text_encoder100.pth"  # cfg TEXT.DAMSM_NAME
    image_encoder: str = "data/coco/DAMSMencoder/image_encoder100.pth"  # DAMSM_NAME with text_ -> image_
    damsm_input_size: int = 299  # AttnGAN resizes to 299; the embedded default uses a smaller input
    # model (cfg: imsize 256, nf 32, cond_dim 256; NetG takes no noise; imsize 32-128 drops U-Net levels)
    imsize: int = 256
    nf: int = 32
    # optimisation (train.py / train.sh)
    seed: int = 100  # train.py: manual_seed None -> 100
    epochs: int = 300  # cfg max_epoch 301: loop range(1, 301)
    batch_size: int = 32  # per process (train.sh: 32 per GPU)
    lr_g: float = 1e-4
    lr_d: float = 4e-4
    betas: list[float] = field(default_factory=lambda: [0.0, 0.9])
    gp_k: float = 2.0  # MA-GP weight (DF-GAN)
    gp_p: float = 6.0  # MA-GP power (DF-GAN)
    damsm_w: float = 5.0  # our choice: AttnGAN's LAMBDA for the DAMSM term of the edited image vs the target text
    l1_w: float = 1.0  # our choice: weight of the L1 content term between the edited image and its source
    rec_w: float = 10.0  # our choice: weight of TAGAN's reconstruction term (source edited with its own caption)
    mixed_precision: bool = False  # official: no AMP; True runs the G/D forwards under CUDA autocast with scalers
    num_workers: int = 4
    device: str = field(default_factory=auto_device)  # "auto": CUDA when present, else the CPU
    # intervals in epochs (cfg: gen 1, test 5, save 5)
    gen_interval: int = 1
    test_interval: int = 5
    save_interval: int = 5
    save_every_steps: int = 0  # also write last.pt every N batches inside an epoch (0: only at epoch ends)
    skip_nonfinite: bool = False  # a NaN/inf loss term: stop in one line (last.pt kept) or skip that update, counted
    # evaluation (spec 3.6, 1.5)
    eval_batch_size: int = 32
    eval_samples: int | None = None  # None: every test image once; else the first n test images
    fid_weights: str = "weights/inception_v3_google-0cc3c7bd.pth"  # torchvision ImageNet Inception-v3
    fid_stats: str = "data/coco/npz/coco_val256_FIDK0.npz"  # cfg npz_path
    n_preview: int = 8  # fixed preview grid: source images of the test split, each with a rolled caption
    # DAMSM pre-training (`denet train-damsm`; AttnGAN code/cfg/DAMSM/{bird,coco}.yml, pretrain_DAMSM.py)
    damsm_epochs: int = 600  # TRAIN.MAX_EPOCH (bird and coco)
    damsm_batch_size: int = 48  # TRAIN.BATCH_SIZE
    damsm_lr: float = 0.002  # TRAIN.ENCODER_LR, x0.98 per epoch while above lr/10, Adam(0.5, 0.999) made anew
    rnn_grad_clip: float = 0.25  # TRAIN.RNN_GRAD_CLIP
    inception_weights: str = "weights/inception_v3_google-0cc3c7bd.pth"  # ImageNet trunk of a new image encoder

    def validate(self, source: str | Path = "config") -> DENetConfig:
        if self.dataset not in DATASETS:
            raise DataFormatError(source, f"dataset must be one of {', '.join(DATASETS)}, got {self.dataset!r}")
        if self.imsize not in (32, 64, 128, 256):
            raise DataFormatError(source, f"imsize must be 32, 64, 128 or 256 (the U-Net ends at CWP's 4x4 "
                                          f"convolution), got {self.imsize}")
        if len(self.betas) != 2:
            raise DataFormatError(source, "betas must be [beta1, beta2]")
        if self.batch_size < 2:
            raise DataFormatError(source, "batch_size must be >= 2 (mismatched and target texts roll the batch)")
        if self.damsm_input_size < 75:
            raise DataFormatError(source, f"damsm_input_size must be >= 75 (Inception-v3), got {self.damsm_input_size}")
        for key in ("epochs", "gen_interval", "test_interval", "save_interval", "eval_batch_size", "damsm_epochs",
                    "damsm_batch_size", "nf", "words_num", "captions_per_image"):
            if getattr(self, key) < 1:
                raise DataFormatError(source, f"{key} must be >= 1, got {getattr(self, key)}")
        if self.save_every_steps < 0:
            raise DataFormatError(source, f"save_every_steps must be >= 0, got {self.save_every_steps}")
        return self

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def label(self) -> str:
        """`` [SYNTHETIC data, STAND-IN weights ...]`` for every printed number of such a run, else ''."""
        return run_label(self.synthetic, "AttnGAN's DAMSM / ImageNet Inception" if self.random_weights else "")


def load_config(path: str | Path | None = None, **overrides) -> DENetConfig:
    """Defaults, then the YAML file, then ``overrides`` (CLI flags; None values are ignored)."""
    return common_load_config(DENetConfig, path, **overrides)

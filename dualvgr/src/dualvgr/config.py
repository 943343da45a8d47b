"""DualVGR run configuration: one YAML file -> ``DualVGRConfig`` (unknown or mistyped keys are one-line errors).

Defaults are the official code's (``train.py`` argparse, ``configs/*_DualVGR*.yml``): Adam lr 1e-4, batch 256,
25 epochs, lr x0.5 after epochs 10 and 20, gradient-norm clip 12, seed 666, alpha 1, beta 1e-8, d = 768,
GloVe 300-d words, 2 units (what the official training always built, whatever ``--unit_layers`` said).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import torch

from common.configs import auto_device
from common.configs import load_config as common_load_config
from common.errors import DataFormatError


@dataclass
class DualVGRConfig:
    # data (common.data.videoqa file layout: {dataset}_appearance_feat.h5, ..., in `data`)
    dataset: str = "msvd-qa"
    data: str = "data/msvd-qa"
    num_clips: int = 8  # num_of_nodes: MSVD-QA 8, MSRVTT-QA 16, SVQA 20
    in_memory: bool = False  # load the feature HDF5s into RAM once (small datasets only)
    num_workers: int = 4
    synthetic: bool = False
    runs_dir: str = "runs/dualvgr"
    run_name: str | None = None
    # model
    unit_layers: int = 2
    vision_dim: int = 2048
    module_dim: int = 768
    word_dim: int = 300
    glove: bool = True  # initialise the word embedding from the train pickle's GloVe matrix
    # objective
    alpha: float = 1.0  # consistency weight
    beta: float = 1e-8  # HSIC weight
    # optimisation
    lr: float = 1e-4
    batch_size: int = 256
    eval_batch_size: int = 256
    epochs: int = 25
    save_every_steps: int = 0  # also write last.pt every N batches inside an epoch (0: only at epoch ends)
    lr_milestones: list[int] = field(default_factory=lambda: [10, 20])  # halve after these many epochs
    lr_decay: float = 0.5
    grad_clip: float = 12.0
    stopping_step: int = 1000  # the official code trains every epoch; early stopping is off by default
    skip_nonfinite: bool = False  # a NaN/inf loss: stop (one line, last.pt kept) or skip that update, counted
    seed: int = 666
    device: str = field(default_factory=auto_device)  # "auto": CUDA when present, else the CPU

    def validate(self, source: str | Path = "config") -> DualVGRConfig:
        checks = ((self.unit_layers >= 1, "unit_layers must be >= 1"), (self.num_clips >= 1, "num_clips must be >= 1"),
                  (self.module_dim % 4 == 0, "module_dim must be divisible by the 4 GAT heads"),
                  (self.batch_size >= 2, "batch_size must be >= 2 (the classifier has a BatchNorm)"),
                  (self.epochs >= 1, "epochs must be >= 1"),
                  (self.save_every_steps >= 0, "save_every_steps must be >= 0"))
        if self.device.startswith("cuda") and not torch.cuda.is_available():
            checks += ((False, f"device '{self.device}' but no CUDA device is visible (use --device cpu)"),)
        for ok, problem in checks:
            if not ok:
                raise DataFormatError(source, problem)
        return self

    def lr_at(self, epoch: int) -> float:
        """Learning rate of 0-indexed ``epoch`` (official ``step_decay`` after every 10th epoch)."""
        return self.lr * self.lr_decay ** sum(epoch >= m for m in self.lr_milestones)

    def tag(self) -> str:
        """'SYNTHETIC ' when the data is synthetic: the prefix of every printed number."""
        return "SYNTHETIC " if self.synthetic else ""

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def load_config(path: str | Path | None = None, **overrides) -> DualVGRConfig:
    return common_load_config(DualVGRConfig, path, **overrides)

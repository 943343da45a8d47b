"""MGCN run configuration (one YAML file -> ``MGCNConfig``; unknown or mistyped keys are one-line errors)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

from common.configs import auto_device, check_valid_metric
from common.configs import load_config as common_load_config
from common.errors import DataFormatError

FUSIONS = ("official", "paper")


@dataclass
class MGCNConfig:
    """Hyper-parameters of MGCN and of the MMRec trainer (official ``MGCN.yaml`` + ``overall.yaml``)."""

    # data
    dataset: str = "baby"
    data: str = "data/baby"  # folder with <dataset>.inter, image_feat.npy, text_feat.npy
    cache_dir: str = ".cache/mvgcn/graphs"  # kNN graphs, keyed by a hash of the features and k
    runs_dir: str = "runs/mvgcn"
    run_name: str | None = None
    synthetic: bool = False  # set by the embedded default: every printed number is labelled SYNTHETIC
    # model (paper Sec. 3; official src/configs/model/MGCN.yaml)
    embedding_size: int = 64
    n_ui_layers: int = 2
    n_layers: int = 1  # item-item propagation layers
    knn_k: int = 10
    cl_loss: float | list[float] = field(default_factory=lambda: [0.001, 0.01, 0.1])  # lambda_C; a list = grid
    temperature: float = 0.2
    reg_weight: float = 1e-4
    fusion: str = "official"  # official: (E_s + sum_m P_m * E~_m) / 3; paper: Eq. (15)
    # ablations (paper Sec. 4.4)
    use_purifier: bool = True
    use_item_item_view: bool = True
    use_fuser_attention: bool = True
    use_self_supervision: bool = True
    # training (MMRec overall.yaml, MGCN repo values)
    seed: int = 999
    epochs: int = 1000
    train_batch_size: int = 2048
    eval_batch_size: int = 2048
    learning_rate: float = 1e-3
    learning_rate_scheduler: list[float] = field(default_factory=lambda: [0.96, 50.0])  # factor a^(epoch/b)
    stopping_step: int = 10
    skip_nonfinite: bool = False  # a NaN/inf loss: stop (one line, last.pt kept) or skip that update, counted
    valid_metric: str = "recall@20"
    topk: list[int] = field(default_factory=lambda: [5, 10, 20, 50])
    device: str = field(default_factory=auto_device)  # "auto": CUDA when present, else the CPU

    def validate(self, source: str | Path = "config") -> MGCNConfig:
        if self.fusion not in FUSIONS:
            raise DataFormatError(source, f"fusion must be one of {', '.join(FUSIONS)}, got {self.fusion!r}")
        check_valid_metric(self.valid_metric, self.topk, source)
        if len(self.learning_rate_scheduler) != 2:
            raise DataFormatError(source, "learning_rate_scheduler must be [factor, period]")
        return self

    def grid(self) -> list[float]:
        """The lambda_C values to train (one run each, selected on validation)."""
        return list(self.cl_loss) if isinstance(self.cl_loss, list) else [self.cl_loss]

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def load_config(path: str | Path | None = None, **overrides) -> MGCNConfig:
    """Defaults, then the YAML file, then ``overrides`` (CLI flags; None values are ignored)."""
    return common_load_config(MGCNConfig, path, **overrides)

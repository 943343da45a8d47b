"""BeFA run configuration: the base model, the adapter switch and every base model's hyper-parameters."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

from common.configs import auto_device, check_valid_metric
from common.configs import load_config as common_load_config
from common.errors import DataFormatError
from common.grid import check_grid

BASE_MODELS = ("vbpr", "lattice", "freedom", "mgcn", "lattice_befa", "lgmrec", "bm3")


@dataclass
class BeFAConfig:
    # data and run
    dataset: str = "tmall"
    data: str = "data/tmall"
    cache_dir: str = ".cache/befa/graphs"
    runs_dir: str = "runs/befa"
    run_name: str | None = None
    synthetic: bool = False
    # which model, and the adapter (official src/configs/model/LATTICE_BeFA.yaml grid)
    model: str = "mgcn"
    models: list[str] = field(default_factory=lambda: ["vbpr", "lattice", "freedom", "mgcn"])  # ``befa compare``
    adapter: bool = True
    # hyper-parameter grid searched on VALID for every (model, adapter) run, e.g. {learning_rate: [1e-4, 1e-3]}
    grid: dict = field(default_factory=dict)
    layer_times: int = 1  # t in {1, 2, 4, 8}
    dropout_rate: float = 0.1  # r in {0.1, 0.3, 0.5, 0.7}
    # shared model sizes (MMRec)
    embedding_size: int = 64
    knn_k: int = 10
    n_layers: int = 1  # item-item graph layers (LATTICE, FREEDOM, MGCN)
    n_ui_layers: int = 2  # user-item LightGCN layers (FREEDOM, MGCN)
    reg_weight: float = 1e-4
    # LATTICE (MMRec lattice.yaml)
    lambda_coeff: float = 0.9
    # FREEDOM (MMRec freedom.yaml)
    mm_image_weight: float = 0.1
    edge_dropout: float = 0.8
    # MGCN (mvgcn)
    cl_loss: float = 0.01
    # LGMRec (MMRec LGMRec.yaml; n_ui_layers 2 and embedding_size = feat_embed_dim 64 are the shared fields above;
    # MMRec's reg_weight is 1e-6, here the shared reg_weight). Per dataset (n_hyper_layer, hyper_num, keep_rate,
    # alpha): baby (1, 4, 0.5, 0.3) = these defaults, sports (1, 4, 0.4, 0.6), clothing (2, 64, 0.2, 0.2).
    n_mm_layers: int = 2
    n_hyper_layer: int = 1
    hyper_num: int = 4
    keep_rate: float = 0.5
    lgmrec_alpha: float = 0.3
    lgmrec_cl_weight: float = 1e-4
    # BM3 (MMRec BM3.yaml; its n_layers {1, 2} is the shared n_ui_layers, its reg_weight {0.1, 0.01} the shared
    # reg_weight; dropout grid {0.3, 0.5}, the first value here)
    bm3_dropout: float = 0.3
    bm3_cl_weight: float = 2.0
    # training (MMRec overall.yaml; MGCN/BeFA repos: stopping_step 10, eval batch 2048)
    seed: int = 999
    epochs: int = 1000
    train_batch_size: int = 2048
    eval_batch_size: int = 2048
    learning_rate: float = 1e-3
    learning_rate_scheduler: list[float] = field(default_factory=lambda: [0.96, 50.0])
    stopping_step: int = 10
    skip_nonfinite: bool = False  # a NaN/inf loss: stop (one line, last.pt kept) or skip that update, counted
    valid_metric: str = "recall@20"
    topk: list[int] = field(default_factory=lambda: [5, 10, 20, 50])
    device: str = field(default_factory=auto_device)  # "auto": CUDA when present, else the CPU

    def validate(self, source: str | Path = "config") -> BeFAConfig:
        for model in [self.model, *self.models]:
            if model not in BASE_MODELS:
                raise DataFormatError(source, f"model must be one of {', '.join(BASE_MODELS)}, got {model!r}")
        if self.layer_times < 1 or not 0 <= self.dropout_rate < 1:
            raise DataFormatError(source, "layer_times must be >= 1 and dropout_rate in [0, 1)")
        check_valid_metric(self.valid_metric, self.topk, source)
        check_grid(self.grid, {f.name for f in dataclasses.fields(self)} - {"grid", "models", "model", "adapter"},
                   source)
        return self

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def load_config(path: str | Path | None = None, **overrides) -> BeFAConfig:
    return common_load_config(BeFAConfig, path, **overrides)

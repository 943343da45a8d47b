"""LD4MRec run configuration (one YAML file -> ``LD4MRecConfig``; unknown or mistyped keys are one-line errors).

Values the paper does not state (see README, "paper vs our choices") default to DiffRec's settings.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

from common.configs import auto_device, check_valid_metric
from common.configs import load_config as common_load_config
from common.errors import DataFormatError
from common.grid import check_grid

SOFT_TARGETS = ("label_smoothing", "self", "none")
OBJECTIVES = ("diffusion", "one_step")


@dataclass
class LD4MRecConfig:
    # data
    dataset: str = "baby"
    data: str = "data/baby"
    runs_dir: str = "runs/ld4mrec"
    run_name: str | None = None
    synthetic: bool = False
    # hyper-parameter grid searched on VALID by ``ld4mrec grid`` / ``train`` (common.grid), e.g. {soft_prob: [0.1, 0.2]}
    grid: dict = field(default_factory=dict)
    # diffusion (DiffRec linear-var schedule, x_0 prediction, SNR reweighting, importance-sampled t)
    steps: int = 5
    noise_scale: float = 1e-4
    noise_min: float = 5e-4
    noise_max: float = 5e-3
    # C-Net
    hidden: int = 1000
    time_emb: int = 10
    cond_dim: int = 64  # width of each condition after its projection
    svd_rank: int = 64  # collaborative condition: truncated SVD of the training matrix
    dropout: float = 0.5  # on the input behaviour vector (DiffRec)
    use_collaborative: bool = True
    use_modality: bool = True
    # training objective: DiffRec's (t sampled, x_t noised) or, as an ablation, one step: x_u at t_in, no noise
    objective: str = "diffusion"
    # soft behavioural reconstruction constraint
    soft_target: str = "label_smoothing"
    soft_prob: float = 0.2  # p
    soft_gamma: float = 0.1  # gamma
    # inference
    t_in: int = 0  # the observed vector is taken as the state at step t_in
    reverse_steps: int = 0  # 0: one-step forward-free inference; k > 0: k classical reverse steps from x_u
    # training (MMRec evaluation semantics)
    seed: int = 999
    epochs: int = 1000
    batch_size: int = 400  # users
    eval_batch_size: int = 2048
    learning_rate: float = 1e-4
    weight_decay: float = 0.0
    stopping_step: int = 20
    skip_nonfinite: bool = False  # a NaN/inf loss: stop (one line, last.pt kept) or skip that update, counted
    valid_metric: str = "recall@20"
    topk: list[int] = field(default_factory=lambda: [5, 10, 20, 50])
    device: str = field(default_factory=auto_device)  # "auto": CUDA when present, else the CPU

    def validate(self, source: str | Path = "config") -> LD4MRecConfig:
        if self.soft_target not in SOFT_TARGETS:
            raise DataFormatError(source, f"soft_target must be one of {', '.join(SOFT_TARGETS)}")
        if not 0 <= self.t_in < self.steps:
            raise DataFormatError(source, f"t_in must lie in [0, steps) = [0, {self.steps})")
        if not 0 <= self.reverse_steps <= self.steps:
            raise DataFormatError(source, f"reverse_steps must lie in [0, steps] = [0, {self.steps}]")
        if not (0 <= self.soft_prob <= 1 and 0 <= self.soft_gamma <= 1):
            raise DataFormatError(source, "soft_prob and soft_gamma must lie in [0, 1]")
        if self.objective not in OBJECTIVES:
            raise DataFormatError(source, f"objective must be one of {', '.join(OBJECTIVES)}")
        check_valid_metric(self.valid_metric, self.topk, source)
        check_grid(self.grid, {f.name for f in dataclasses.fields(self)} - {"grid"}, source)
        return self

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def load_config(path: str | Path | None = None, **overrides) -> LD4MRecConfig:
    return common_load_config(LD4MRecConfig, path, **overrides)

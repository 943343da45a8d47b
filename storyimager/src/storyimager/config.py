"""StoryImager run configuration (one YAML file -> ``StoryImagerConfig``; unknown or mistyped keys are one-line
errors).

The paper's implementation details are not readable here (spec A0/A9); defaults follow AR-LDM (the model the
paper compares with and whose data it uses: ``xichenpan/ARLDM:config.yaml``) where that is meaningful and are
marked *ours* otherwise. The README's table lists the source of every value.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from common.configs import auto_device
from common.configs import load_config as common_load_config
from common.data.story import PORORO_CHARACTERS
from common.errors import DataFormatError
from common.labels import run_label

FORMATS = ("arldm", "pororo", "flintstones")


@dataclass
class StoryImagerConfig:
    """Every knob of model, training, sampling and evaluation; comments give the source of each default."""

    # data (common.data.story)
    dataset: str = "pororo"
    data: str = "data/pororo"  # the AR-LDM .h5 (or a folder holding one), or the raw StoryDALL-E folder
    data_format: str = "arldm"  # arldm | pororo | flintstones
    characters: list[str] = field(default_factory=lambda: list(PORORO_CHARACTERS))  # ARLDM new_tokens
    resolution: int = 512  # ARLDM: frames resized to 512
    frames: int = 5
    max_length: int = 85  # ARLDM: 85 Pororo, 91 Flintstones (CLIP positions extended past 77)
    runs_dir: str = "runs/storyimager"
    run_name: str | None = None
    synthetic: bool = False  # set by the embedded default: printed numbers are labelled SYNTHETIC
    random_weights: bool = False  # the backbone folder holds random weights: printed numbers are labelled
    # backbone: a diffusers Stable Diffusion 1.5 folder (unet/, vae/, text_encoder/, tokenizer/, scheduler/)
    pretrained: str = "weights/stable-diffusion-v1-5"
    # StoryImager modules (ours where the paper is unreadable)
    mask_input: str = "masked_noise"  # masked_noise (paper figure) | inpainting (9-channel SD-inpainting layout)
    mask_probs: list[float] = field(default_factory=lambda: [1 / 3, 1 / 3, 1 / 3])  # visualize/continue/complete
    loss_region: str = "target"  # target | all
    fsca: bool = True  # ablation false: stock cross-attention per frame (frame branch only, no story branch)
    cfe: bool = True  # ablation false: no Contextual Feature Extractor (no context tokens, no prior)
    cfe_layers: int = 2
    cfe_heads: int = 8
    cfe_queries: int = 4
    context_prior: bool = True
    finetune: str = "lora"  # lora (PEFT) | full (every UNet weight)
    lora_rank: int = 16
    cond_dropout: float = 0.1  # ARLDM: captions replaced by "" with p = 0.1
    # optimisation (ARLDM: AdamW, wd 1e-4, bs 1 story per GPU; lr 1e-5 for its full fine-tune; ours 1e-4 for LoRA)
    seed: int = 0
    epochs: int = 50  # ARLDM max_epochs
    batch_size: int = 1
    lr: float = 1e-4
    weight_decay: float = 1e-4
    warmup_steps: int = 0  # linear warmup: warmup_steps + warmup_epochs x steps per epoch (ARLDM: 1 epoch)
    warmup_epochs: int = 0
    lr_schedule: str = "constant"  # constant after warmup | cosine (ARLDM: from 0 up, then cosine to 0, per step)
    grad_clip: float = 1.0
    skip_nonfinite: bool = False  # a NaN/inf loss: stop (one line, last.pt kept) or skip that update, counted
    mixed_precision: bool = False
    num_workers: int = 4
    device: str = field(default_factory=auto_device)  # "auto": CUDA when present, else the CPU
    save_every: int = 500  # steps between atomic checkpoints (and one at every epoch end)
    log_every: int = 50
    # sampling (ARLDM: DDIM 250 steps, guidance 6)
    sample_steps: int = 250
    guidance: float = 6.0
    eta: float = 0.0
    # evaluation (spec A4)
    eval_batch_size: int = 8
    eval_stories: int | None = None  # None: the whole test split
    eval_mode: str = "visualize"
    fid_weights: str = "weights/pt_inception-2015-12-05-6726825d.pth"  # pytorch-fid Inception (arldm64 protocol)
    fid_protocols: list[str] = field(default_factory=lambda: ["arldm64", "pytorch-fid"])  # 64 px, full size
    classifier: str | None = None  # a checkpoint of `storyimager train-classifier`; None: no Char-F1 / Frm-Acc
    classifier_weights: str = "weights/inception_v3_google-0cc3c7bd.pth"  # ImageNet init of the classifier
    classifier_size: int = 299  # StoryViz: Resize(299) + CenterCrop(299)
    classifier_aux: float = 0.4  # StoryViz: loss = main + 0.4 aux
    classifier_epochs: int = 50
    classifier_lr: float = 1e-4
    classifier_batch_size: int = 32
    fsd_weights: str | None = None  # torchvision r2plus1d_18 Kinetics weights; None: no FSD

    def tag(self) -> str:
        """' [SYNTHETIC data, STAND-IN weights, ...]' (the parts that apply) for every number printed from it."""
        return run_label(self.synthetic, "Stable Diffusion 1.5 / the metrics' Inception" if self.random_weights else "")

    def validate(self, source: str | Path = "config") -> StoryImagerConfig:
        def bad(msg: str):
            raise DataFormatError(source, msg)

        if self.data_format not in FORMATS:
            bad(f"data_format must be one of {', '.join(FORMATS)}, got {self.data_format!r}")
        if self.mask_input not in ("masked_noise", "inpainting"):
            bad(f"mask_input must be masked_noise or inpainting, got {self.mask_input!r}")
        if self.loss_region not in ("target", "all"):
            bad(f"loss_region must be target or all, got {self.loss_region!r}")
        if self.finetune not in ("lora", "full"):
            bad(f"finetune must be lora or full, got {self.finetune!r}")
        if len(self.mask_probs) != 3 or min(self.mask_probs) < 0 or sum(self.mask_probs) <= 0:
            bad(f"mask_probs needs 3 non-negative weights (visualize, continue, complete), got {self.mask_probs}")
        if self.lr_schedule not in ("constant", "cosine"):
            bad(f"lr_schedule must be constant or cosine, got {self.lr_schedule!r}")
        if self.eval_mode not in ("visualize", "continue"):
            bad(f"eval_mode must be visualize or continue, got {self.eval_mode!r}")
        if not self.fid_protocols or set(self.fid_protocols) - {"arldm64", "pytorch-fid"}:
            bad(f"fid_protocols must list arldm64 and/or pytorch-fid, got {self.fid_protocols}")
        if self.frames < 2 or self.resolution < 8:
            bad(f"need frames >= 2 and resolution >= 8, got {self.frames} and {self.resolution}")
        return self


def load_config(path: str | Path | None = None, **overrides) -> StoryImagerConfig:
    return common_load_config(StoryImagerConfig, path, **overrides)

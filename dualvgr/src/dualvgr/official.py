"""Checkpoints of the official DualVGR code (``NJUPT-MCC/DualVGR-VideoQA``) onto our modules, strictly.

The official ``train.py`` saves ``{'epoch', 'state_dict', 'optimizer', 'model_kwargs'}``; ``model_kwargs`` holds
vision_dim, module_dim, word_dim, num_of_nodes, graph_module and graph_layers, not the vocabulary (its
``validate.py`` reads that from the dataset, and so do we). Under ``nn.DataParallel`` every key starts with
``module.``. A bare state dict is accepted too. The architecture is read off the weights: the unit count from
``queryAttn.<i>``, the sizes from the word embedding and the motion projection.

Key map, official -> ours (every other name is a plain rename of the same tensor):
- each ``punishGAT`` holds four heads ``attention_<h>``: the head's ``W`` (Linear 768 -> 192) is row block h of our
  one ``proj``; the head's ``a`` (Linear 384 -> 1) scores [g_i; g_j], so ``a.weight[0, :192]`` is our
  ``attn_src[h]`` (node i), ``a.weight[0, 192:]`` our ``attn_dst[h]`` (neighbour j) and ``a.bias`` our
  ``attn_bias[h]``;
- ``visual_input_unit.{queryAttn, queryPunish_appear, queryPunish_motion, attention_appearance, attention_motion,
  appearance_GCN, acGCN, motion_GCN, mcGCN}.<i>`` -> ``units.<i>.{word_attention, punish_app, punish_mot,
  view_app, view_mot, gat_app, gat_common_app, gat_mot, gat_common_mot}``;
- the ``linguistic_input_unit``'s ``concatRNN.rnn`` (per-token states) and ``encoder`` (sentence vector) are our
  ``token_lstm`` and ``sentence_lstm``; see ``RENAMES`` and ``UNIT_RENAMES`` for the rest.
Every official key must be used, every parameter of ours filled, every shape equal; otherwise a one-line
``DataFormatError`` names the file and the key.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import torch

from common.errors import DataFormatError
from dualvgr.config import DualVGRConfig, load_config
from dualvgr.graph import PunishedGAT
from dualvgr.model import DualVGR

DDP_PREFIX = "module."
RENAMES = {  # our module -> the official one
    "question_encoder.embed": "linguistic_input_unit.encoder_embed",
    "question_encoder.token_lstm": "linguistic_input_unit.concatRNN.rnn",
    "question_encoder.sentence_lstm": "linguistic_input_unit.encoder",
    "appearance_encoder.lstm": "visual_appearance_input_unit.encoder",
    "motion_proj": "visual_motion_input_unit",
    "fusion": "visual_input_unit.visualfusion",
    "readout.v_proj": "feature_aggregation.v_proj",
    "readout.score": "feature_aggregation.attn",
    "head": "output_unit",
}
UNIT_RENAMES = {  # our module inside unit i -> the official one under visual_input_unit
    "word_attention.enhance": "queryAttn.{i}.feat_enhance",
    "word_attention.score": "queryAttn.{i}.fc",
    "punish_app.query": "queryPunish_appear.{i}.query_weight",
    "punish_mot.query": "queryPunish_motion.{i}.query_weight",
    "view_app": "attention_appearance.{i}",
    "view_mot": "attention_motion.{i}",
    "gat_app": "appearance_GCN.{i}",
    "gat_common_app": "acGCN.{i}",
    "gat_mot": "motion_GCN.{i}",
    "gat_common_mot": "mcGCN.{i}",
}
OFFICIAL_TOP = {name.split(".")[0] for name in RENAMES.values()}
EMBED, MOTION = "linguistic_input_unit.encoder_embed.weight", "visual_motion_input_unit.weight"


@dataclass(frozen=True)
class Piece:
    """Our tensor ``ours`` at ``index`` takes the official tensor's ``part`` (``()``: all of it)."""

    ours: str
    index: tuple = ()
    part: tuple = ()


def official_name(ours: str) -> str:
    """The official name of one of our modules or state-dict keys (``units.1.gat_app`` ->
    ``visual_input_unit.appearance_GCN.1``, ``head.classifier.1.weight`` -> ``output_unit.classifier.1.weight``)."""
    table, prefix, rest, i = RENAMES, "", ours, None
    if ours.startswith("units."):
        _, i, rest = ours.split(".", 2)
        table, prefix = UNIT_RENAMES, "visual_input_unit."
    module = next(m for m in table if rest == m or rest.startswith(m + "."))
    return prefix + table[module].format(i=i) + rest[len(module):]


def _gat_layout(ours: str, gat: PunishedGAT) -> dict[str, tuple[tuple[int, ...], tuple[Piece, ...]]]:
    d, official = gat.head_dim, official_name(ours)
    layout = {}
    for h in range(gat.heads):
        rows, head = (slice(h * d, (h + 1) * d),), f"{official}.attention_{h}"
        layout[f"{head}.W.weight"] = (d, gat.proj.in_features), (Piece(f"{ours}.proj.weight", rows),)
        layout[f"{head}.W.bias"] = (d,), (Piece(f"{ours}.proj.bias", rows),)
        layout[f"{head}.a.weight"] = (1, 2 * d), (Piece(f"{ours}.attn_src", (h,), (0, slice(None, d))),
                                                  Piece(f"{ours}.attn_dst", (h,), (0, slice(d, None))))
        layout[f"{head}.a.bias"] = (1,), (Piece(f"{ours}.attn_bias", (h,), (0,)),)
    return layout


def official_layout(model: DualVGR) -> dict[str, tuple[tuple[int, ...], tuple[Piece, ...]]]:
    """Every official key this model takes: its shape and where its values go in our state dict."""
    layout, fused = {}, set()
    for name, module in model.named_modules():
        if isinstance(module, PunishedGAT):
            layout.update(_gat_layout(name, module))
            fused.update(f"{name}.{key}" for key in module.state_dict())
    for key, value in model.state_dict().items():
        if key not in fused:
            layout[official_name(key)] = tuple(value.shape), (Piece(key),)
    return layout


def official_state(checkpoint: object) -> dict[str, object] | None:
    """The official state dict in a loaded checkpoint (the trainer's layout or a bare state dict), ``module.``
    stripped when every key has it; None when no key is an official module's (one of our checkpoints)."""
    state = checkpoint.get("state_dict", checkpoint) if isinstance(checkpoint, Mapping) else None
    if not isinstance(state, Mapping) or not any(isinstance(k, str) and k.removeprefix(DDP_PREFIX).split(".")[0]
                                                 in OFFICIAL_TOP for k in state):
        return None
    if all(k.startswith(DDP_PREFIX) for k in state):
        return {k[len(DDP_PREFIX):]: v for k, v in state.items()}
    return dict(state)


def official_architecture(state: Mapping[str, object], path: Path) -> dict[str, int]:
    """``unit_layers``, ``vision_dim``, ``module_dim`` and ``word_dim`` read off an official state dict."""
    for key in (EMBED, MOTION):
        if not isinstance(state.get(key), torch.Tensor) or state[key].dim() != 2:
            raise DataFormatError(path, f"official checkpoint: key '{key}' is missing or not a matrix")
    units = 0
    while f"visual_input_unit.queryAttn.{units}.fc.weight" in state:
        units += 1
    if not units:
        raise DataFormatError(path, "official checkpoint: missing key 'visual_input_unit.queryAttn.0.fc.weight'")
    (module_dim, vision_dim), word_dim = state[MOTION].shape, state[EMBED].shape[1]
    return {"unit_layers": units, "vision_dim": vision_dim, "module_dim": module_dim, "word_dim": word_dim}


def official_config(state: Mapping[str, object], path: Path, config: str | Path | None,
                    **overrides) -> DualVGRConfig:
    """The config to run an official checkpoint with: the YAML ``config`` (dataset, data, clips; the official file
    names none) with the architecture read off the weights, and the ``overrides`` that are not None."""
    if config is None:
        raise DataFormatError(path, "an official checkpoint names no dataset; give --config, e.g. configs/msvd_qa.yaml")
    given = {k: v for k, v in overrides.items() if v is not None}
    return load_config(config, **given, **official_architecture(state, path))


def to_ours(state: Mapping[str, object], model: DualVGR, path: Path) -> dict[str, torch.Tensor]:
    """``model``'s state dict filled from the official ``state``: every official key used, every one of ours
    filled, every shape equal, or a one-line ``DataFormatError`` naming the first offending key."""
    layout = official_layout(model)
    for key, value in state.items():
        if key not in layout:
            raise DataFormatError(path, f"official checkpoint: unused key '{key}' (no parameter of this DualVGR "
                                        "takes it)")
        if not isinstance(value, torch.Tensor):
            raise DataFormatError(path, f"official checkpoint: key '{key}' holds {type(value).__name__}, not a tensor")
        if tuple(value.shape) != layout[key][0]:
            raise DataFormatError(path, f"official checkpoint: key '{key}' has the wrong shape {list(value.shape)}; "
                                        f"this DualVGR needs {list(layout[key][0])}")
    missing = next((key for key in layout if key not in state), None)
    if missing is not None:
        raise DataFormatError(path, f"official checkpoint: missing key '{missing}'")
    ours = {key: torch.zeros_like(value) for key, value in model.state_dict().items()}
    with torch.no_grad():
        for key, (_, pieces) in layout.items():
            for piece in pieces:
                ours[piece.ours][piece.index] = state[key][piece.part]
    return ours

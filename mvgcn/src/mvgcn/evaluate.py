"""Evaluate a saved MGCN checkpoint (``best.pt`` or ``last.pt``) on valid and test."""

from __future__ import annotations

from pathlib import Path

from common.checkpoints import load_weights, read_checkpoint
from common.data.mmrec import MMRecData
from common.errors import DataFormatError
from mvgcn.config import MGCNConfig
from mvgcn.train import MODALITIES, build_model, evaluate, load_data


def check_matches(weights: dict, data: MMRecData, path: Path) -> None:
    """One line when the checkpoint was trained on other data: user / item counts, modalities, feature widths."""
    expected = {"user_embedding.weight": (data.n_users,), "item_id_embedding.weight": (data.n_items,),
                **{f"features.{MODALITIES[k]}": (data.n_items, f.shape[1]) for k, f in data.features.items()}}
    for key, shape in expected.items():
        got = tuple(weights[key].shape[: len(shape)]) if key in weights else None
        if got != shape:
            raise DataFormatError(path, f"does not match the data in {data.path}: {key} is "
                                        f"{'missing' if got is None else list(got)}, the data needs {list(shape)}")


def evaluate_checkpoint(path: str | Path, data: str | None = None, splits=("valid", "test")) -> dict:
    """Rebuild the model from the checkpoint's config (data folder overridable) and evaluate it."""
    path = Path(path)
    state = read_checkpoint(path, "MGCN")
    config, weights = MGCNConfig(**state["config"]), state["model"]
    if data:
        config.data = data
    dataset = load_data(config)
    check_matches(weights, dataset, path)  # before the kNN graphs are built and cached
    model = build_model(config, dataset)
    load_weights(model, weights, path, config.data)
    result = {split: evaluate(model, dataset, split, config) for split in splits}
    return {"checkpoint": str(path), "synthetic": config.synthetic, "cl_loss": state.get("cl_weight"),
            "epoch": state.get("epoch"), **result}

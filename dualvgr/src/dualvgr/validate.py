"""``dualvgr eval``: accuracy of a saved checkpoint on one split (official ``validate.py``).

The model is rebuilt from the checkpoint's own config, so its unit count is always the trained one (the
official ``validate.py`` rebuilt it from ``--unit_layers``, default 1, and failed to load 2-unit weights). An
official checkpoint (told apart by its keys) is read through ``official``: its architecture from its weights, the
dataset from ``--config``, the vocabulary from the data.
"""

from __future__ import annotations

from pathlib import Path

import torch

from common.checkpoints import load_weights, read_checkpoint
from common.errors import DataFormatError
from common.metrics.videoqa import videoqa_accuracy
from dualvgr.config import DualVGRConfig, load_config
from dualvgr.official import official_config, official_state, to_ours
from dualvgr.report import majority_baseline, results_table
from dualvgr.train import INPUTS, build_model, load_split, to_device


def checkpoint_config(checkpoint: dict, path: Path, **overrides) -> DualVGRConfig:
    try:
        return load_config(None, **{**checkpoint["config"], **{k: v for k, v in overrides.items() if v is not None}})
    except (TypeError, DataFormatError) as err:
        raise DataFormatError(path, f"config stored in the checkpoint is not a DualVGR config ({err})") from None


@torch.inference_mode()
def validate(checkpoint_path: str | Path, split: str = "test", data: str | None = None,
             device: str | None = None, config_file: str | Path | None = None) -> dict:
    """Overall and per-type accuracy of ``checkpoint_path`` (a ``best.pt``, or an official checkpoint read with the
    YAML ``config_file``) on ``split``, and the table."""
    path = Path(checkpoint_path)
    state = read_checkpoint(path, "DualVGR")
    official = official_state(state)
    if official is None:
        missing = [k for k in ("model", "config", "vocab") if not isinstance(state, dict) or k not in state]
        if missing:
            raise DataFormatError(path, f"neither a DualVGR checkpoint (no {', '.join(missing)} entry) nor an "
                                        "official one")
        config = checkpoint_config(state, path, data=data, device=device)
    else:
        config = official_config(official, path, config_file, data=data, device=device)
    dataset = load_split(config, split)
    vocab = state["vocab"] if official is None else dataset.vocab
    if dataset.vocab != vocab:
        raise DataFormatError(dataset.files.vocab, f"vocabulary differs from the one {path.name} was trained with")
    model = build_model(config, vocab).to(config.device)
    load_weights(model, state["model"] if official is None else to_ours(official, model, path), path, config.data)
    model.eval()
    loader = torch.utils.data.DataLoader(dataset, batch_size=config.eval_batch_size, num_workers=config.num_workers)
    preds = torch.cat([model(*(b[k] for k in INPUTS))[0].argmax(1).cpu()
                       for b in (to_device(b, torch.device(config.device)) for b in loader)])
    acc = videoqa_accuracy(preds, torch.from_numpy(dataset.answers), torch.from_numpy(dataset.question_types),
                           dataset.type_names)
    rows = [(split, acc), ("majority answer", majority_baseline(load_split(config, "train").answers, dataset))]
    where = f"epoch {state.get('epoch', '?')}" if official is None else "official checkpoint"
    table = results_table(config, f"{path} ({where})", rows, dataset.type_names)
    return {"synthetic": config.synthetic, "split": split, "accuracy": acc, "table": table}

"""The character classifier of Char-F1 / Frm-Acc (spec A4; ``adymaharana/StoryViz:train_classifier.py``,
``adymaharana/storydalle:story-dalle/eval_char_clf.py``).

torchvision Inception-v3 initialised from ImageNet weights (read from a local file), ``fc`` and ``AuxLogits.fc``
replaced by Linear(., C); multi-label BCE-with-logits, loss = main + 0.4 aux; Adam; the checkpoint with the
best validation frame exact-match is kept. Input: Resize(S) + CenterCrop(S) (S = 299) and ImageNet normalisation;
prediction = round(sigmoid(logit)). ``classifier_size`` < 299 (embedded default only) drops the aux head, which
needs 299-px input.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader
from tqdm import tqdm

from common.checkpoints import read_checkpoint
from common.errors import DataFormatError, WeightsNotFoundError
from common.io import atomic_save, read_state_dict
from common.metrics.fid import TORCHVISION_INCEPTION_SOURCE
from common.metrics.story import character_f1, frame_accuracy, predictions_from_logits
from common.rng import set_seed

from .config import StoryImagerConfig
from .data import collate, story_dataset

log = logging.getLogger("storyimager")
_MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
_STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)


def build_classifier(n_classes: int, size: int, weights: str | Path | None) -> nn.Module:
    """Inception-v3 with C-way heads; ``weights`` = torchvision's ImageNet state dict (None: untrained, tests)."""
    from torchvision.models import inception_v3

    net = inception_v3(weights=None, aux_logits=True, init_weights=weights is None, transform_input=True)
    if weights is not None:
        weights = Path(weights)
        if not weights.is_file():
            raise WeightsNotFoundError("classifier_weights", weights, TORCHVISION_INCEPTION_SOURCE)
        try:
            net.load_state_dict(read_state_dict(weights))
        except RuntimeError as err:
            raise DataFormatError(weights, f"not torchvision's Inception v3 ({str(err).splitlines()[0]})") from None
    net.fc = nn.Linear(net.fc.in_features, n_classes)
    net.AuxLogits.fc = nn.Linear(net.AuxLogits.fc.in_features, n_classes)
    if size < 299:
        net.aux_logits, net.AuxLogits = False, None
    return net


def classifier_input(frames: torch.Tensor, size: int) -> torch.Tensor:
    """[N, 3, H, W] in [-1, 1] -> resized (shorter side), centre-cropped, ImageNet-normalised [N, 3, S, S]."""
    from torchvision.transforms import functional as tvf

    x = (frames.float().clamp(-1, 1) + 1) / 2
    x = tvf.center_crop(tvf.resize(x, [size], antialias=True), [size, size])
    return (x - _MEAN.to(x.device)) / _STD.to(x.device)


def _frames(batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
    if "labels" not in batch:
        raise DataFormatError("data", "the stories have no character labels (needed by the classifier)")
    return batch["images"].flatten(0, 1), batch["labels"].flatten(0, 1)


@torch.inference_mode()
def predict(net: nn.Module, frames: torch.Tensor, size: int, batch: int = 64) -> torch.Tensor:
    """Binary predictions [N, C] for frames [N, 3, H, W] in [-1, 1]."""
    net.eval()
    device = next(net.parameters()).device
    out = [predictions_from_logits(net(classifier_input(frames[i:i + batch].to(device), size))).cpu()
           for i in range(0, len(frames), batch)]
    return torch.cat(out)


def evaluate_classifier(net: nn.Module, config: StoryImagerConfig, split: str) -> dict[str, float]:
    loader = DataLoader(story_dataset(config, split, crop="first"), batch_size=config.classifier_batch_size,
                        collate_fn=collate)
    preds, labels = [], []
    for batch in loader:
        frames, lab = _frames(batch)
        preds.append(predict(net, frames, config.classifier_size))
        labels.append(lab)
    p, t = torch.cat(preds), torch.cat(labels)
    return {"char_f1": character_f1(p, t), "frame_acc": frame_accuracy(p, t)}


def train_classifier(config: StoryImagerConfig, out: str | Path) -> Path:
    """Train on the train split's frames, keep the best validation Frm-Acc; returns the checkpoint path."""
    set_seed(config.seed)
    device = torch.device(config.device)
    train_set = story_dataset(config, "train")
    n_classes = len(train_set.stories.characters or config.characters)
    net = build_classifier(n_classes, config.classifier_size, config.classifier_weights).to(device)
    optimizer = torch.optim.Adam(net.parameters(), lr=config.classifier_lr)
    out = Path(out)
    best = -1.0
    for epoch in range(config.classifier_epochs):
        train_set.set_epoch(epoch)
        net.train()
        loader = DataLoader(train_set, batch_size=max(1, config.classifier_batch_size // config.frames),
                            shuffle=True, collate_fn=collate, generator=torch.Generator().manual_seed(epoch))
        for batch in tqdm(loader, desc=f"classifier epoch {epoch + 1}/{config.classifier_epochs}", unit="batch"):
            frames, labels = _frames(batch)
            outputs = net(classifier_input(frames.to(device), config.classifier_size))
            logits, aux = (outputs.logits, outputs.aux_logits) if hasattr(outputs, "logits") else (outputs, None)
            loss = F.binary_cross_entropy_with_logits(logits, labels.to(device))
            if aux is not None and config.classifier_aux:
                loss = loss + config.classifier_aux * F.binary_cross_entropy_with_logits(aux, labels.to(device))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        scores = evaluate_classifier(net, config, "val")
        log.info("classifier epoch %d: val Char-F1 %.3f, Frm-Acc %.3f%s", epoch + 1, scores["char_f1"],
                 scores["frame_acc"], config.tag())
        if scores["frame_acc"] > best:
            best = scores["frame_acc"]
            atomic_save({"model": net.state_dict(), "n_classes": n_classes, "size": config.classifier_size,
                         "config": dataclasses.asdict(config), "val": scores}, out)
    return out


def load_classifier(path: str | Path, device: str | torch.device = "cpu") -> tuple[nn.Module, int]:
    """(network, input size) from a ``train-classifier`` checkpoint."""
    state = read_checkpoint(path, "character classifier", ("model", "n_classes", "size"))
    net = build_classifier(state["n_classes"], state["size"], None)
    net.load_state_dict(state["model"])
    return net.to(device).eval(), state["size"]

"""``storyimager eval``: FID under AR-LDM's 64-px protocol and at full size, Char-F1 / Frm-Acc (spec A4).

For each test story (crops drawn with the config's seed, so the reference frames are reproducible) the model
generates the story in ``eval_mode`` (visualize: 5 target frames; continue: frame 1 given, frames 2-5 scored,
as AR-LDM). FID ``arldm64``: real crops and generated frames resized to 64x64 (PIL bilinear), pytorch-fid
Inception pool3; FID ``full``: the same network on the frames as they are (it resizes to 299). Char-F1 (micro)
and Frm-Acc: the ``train-classifier`` checkpoint on the generated frames against the stories' labels (also
reported for the real frames, the classifier's ceiling). FSD (``fsd_weights`` given): ``common.metrics.fsd`` on
the scored frames of each story as one clip. In both modes, the agreement of the frames 2..K with the real frame
1 (``agreement``: character sets with the classifier, colour histograms), also for the real frames 2..K.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

from common.metrics.fid import FIDFeatureExtractor, fid_from_features, frechet_distance, statistics
from common.metrics.fsd import load_r2plus1d, story_features
from common.metrics.story import character_f1, frame_accuracy

from .agreement import character_agreement, colour_agreement, colour_histograms
from .classifier import load_classifier, predict
from .data import collate, story_dataset
from .masking import frame_mask
from .preflight import require_eval_files
from .sample import storyboard
from .sampling import sample_story

log = logging.getLogger("storyimager")


def _uint8(frames: torch.Tensor) -> torch.Tensor:
    return ((frames.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)


def evaluate(model, out_dir: str | Path, mode: str | None = None, stories: int | None = None, fid: bool = True,
             caption_shift: int = 0) -> dict:
    """Generate the test stories and score them; writes ``eval.json`` and ``eval_samples.png`` into ``out_dir``.
    ``fid=False`` skips FID (the embedded default's baseline and ablation rows: its Inception is random there).
    ``caption_shift`` k > 0 is a control: story i is drawn from the captions of story (i + k) mod n and still
    scored against its own frames and labels, so a model that draws what its captions say scores lower."""
    config = model.config
    data = story_dataset(config, "test")
    require_eval_files(config, scored=bool(config.classifier) and data.stories.labels is not None)
    mode = mode or config.eval_mode
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    raw = story_dataset(config, "test", raw=True)
    n = min(len(data), stories or config.eval_stories or len(data))
    scored = slice(1, None) if mode == "continue" else slice(None)
    mask = frame_mask(mode, config.frames)
    gen = torch.Generator().manual_seed(config.seed)
    real, real_signed, fake, labels, rows = [], [], [], [], []
    hists: dict[str, list] = {"first": [], "later": [], "real_later": []}  # for the agreement with frame 1
    first_labels = []
    batches = [list(range(i, min(i + config.eval_batch_size, n))) for i in range(0, n, config.eval_batch_size)]
    for idx in tqdm(batches, desc=f"eval ({mode})", unit="batch"):
        batch = collate([data[i] for i in idx])
        if caption_shift:
            batch["captions"] = [list(data[(i + caption_shift) % n]["captions"]) for i in idx]
        frames = sample_story(model, batch["captions"], mask.expand(len(idx), -1),
                              batch["images"] if mode == "continue" else None,
                              steps=config.sample_steps, guidance=config.guidance, eta=config.eta, generator=gen)
        fake.append(frames[:, scored].flatten(0, 1).cpu())
        real.append(torch.stack([raw[i]["images"] for i in idx])[:, scored].flatten(0, 1))
        real_signed.append(batch["images"][:, scored].flatten(0, 1))
        hists["first"].append(colour_histograms(batch["images"][:, 0]))
        hists["later"].append(colour_histograms(frames[:, 1:].cpu()))
        hists["real_later"].append(colour_histograms(batch["images"][:, 1:]))
        if "labels" in batch:
            labels.append(batch["labels"][:, scored].flatten(0, 1))
            first_labels.append(batch["labels"][:, 0])
        if len(rows) < 4:
            rows += [torch.cat([batch["images"][j], frames[j].cpu()], dim=-2) for j in range(min(4 - len(rows),
                                                                                                len(idx)))]
    fake_frames, real_frames = torch.cat(fake), torch.cat(real)
    results: dict = {"mode": mode, "stories": n, "frames": len(fake_frames), "caption_shift": caption_shift}
    first, later, real_later = (torch.cat(hists[key]) for key in ("first", "later", "real_later"))
    results.update(colour_agree=colour_agreement(later, first), real_colour_agree=colour_agreement(real_later, first))
    for protocol in config.fid_protocols if fid else ():
        name = {"arldm64": "fid_64", "pytorch-fid": "fid_full"}[protocol]
        net = FIDFeatureExtractor(config.fid_weights, protocol, model.device, key="fid_weights")
        ref = statistics(net(real_frames))
        results[name] = fid_from_features(net(_uint8(fake_frames)), ref)
    if config.classifier and labels:
        clf, size = load_classifier(config.classifier, model.device)
        pred, target = predict(clf, fake_frames, size), torch.cat(labels)
        results.update(char_f1=character_f1(pred, target), frame_acc=frame_accuracy(pred, target))
        real_pred = predict(clf, torch.cat(real_signed), size)
        results.update(real_char_f1=character_f1(real_pred, target), real_frame_acc=frame_accuracy(real_pred, target))
        first_true, k = torch.cat(first_labels), config.frames - 1  # frames 2..K: the last K - 1 scored frames
        results.update(char_agree=character_agreement(pred.view(n, -1, pred.shape[-1])[:, -k:], first_true),
                       real_char_agree=character_agreement(real_pred.view(n, -1, pred.shape[-1])[:, -k:], first_true))
    if config.fsd_weights:
        net = load_r2plus1d(config.fsd_weights).to(model.device)
        per_story = fake_frames.shape[0] // n
        real_st = real_frames.view(n, per_story, *real_frames.shape[1:])
        fake_st = _uint8(fake_frames).view(n, per_story, *fake_frames.shape[1:])
        results["fsd"] = frechet_distance(*statistics(story_features(net, real_st)),
                                          *statistics(story_features(net, fake_st)))
    results["labels"] = label(config)
    storyboard_rows = [np.asarray(storyboard(r)) for r in rows]
    Image.fromarray(np.concatenate(storyboard_rows)).save(out_dir / "eval_samples.png")
    (out_dir / "eval.json").write_text(json.dumps(results, indent=2))
    return results


def label(config) -> str:
    return config.tag().strip(" []") or "real data and weights"


def report_line(results: dict) -> str:
    parts = [f"{name} {results[key]:.4g}" for key, name in (("fid_64", "FID@64"), ("fid_full", "FID full"))
             if key in results]
    if "fsd" in results:
        parts.append(f"FSD {results['fsd']:.4g}")
    if "char_f1" in results:
        parts += [f"Char-F1 {results['char_f1']:.3f} (real frames {results['real_char_f1']:.3f})",
                  f"Frm-Acc {results['frame_acc']:.3f} (real frames {results['real_frame_acc']:.3f})",
                  f"character agreement with frame 1 {results['char_agree']:.3f} "
                  f"(real frames {results['real_char_agree']:.3f})"]
    parts.append(f"colour agreement with frame 1 {results['colour_agree']:.3f} "
                 f"(real frames {results['real_colour_agree']:.3f})")
    return f"{results['mode']} on {results['stories']} test stories: " + ", ".join(parts) + f" [{results['labels']}]"

"""Preflight: every file a run will read, checked before its first step and reported in one line.

``train`` (and ``reproduce`` on real data) check the backbone folder (``pretrained``; its VAE and UNet must tile
``resolution``), the data splits the run reads, and every file evaluation will load: the FID Inception
(``fid_weights``), the FSD R(2+1)D (``fsd_weights``) and, when the test stories carry character labels (Char-F1 /
Frm-Acc are computed only then), the character classifier (``classifier``, made by ``storyimager
train-classifier``, which starts from ``classifier_weights``). ``evaluate`` checks its files with the same function,
so both say the same words.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

from common.errors import DataFormatError, WeightsNotFoundError
from common.metrics.fid import FID_WEIGHTS_SOURCE, TORCHVISION_INCEPTION_SOURCE
from common.metrics.fsd import R2PLUS1D_SOURCE

from .backbone import check_folder, frame_latent_size
from .config import StoryImagerConfig
from .data import open_stories

log = logging.getLogger("storyimager")


def classifier_command(config: StoryImagerConfig, config_file: str | Path | None = None) -> str:
    """The command that makes ``config.classifier``."""
    return (f"`storyimager train-classifier --config {config_file or '<your config>'} --data {config.data} "
            f"--out {config.classifier}`")


def missing_eval_files(config: StoryImagerConfig, scored: bool, config_file: str | Path | None = None,
                       build_classifier: bool = False) -> list[str]:
    """One message (key, path, where it comes from) per file evaluation will load that does not exist. ``scored``:
    the test stories have labels, so Char-F1 / Frm-Acc need the classifier; with ``build_classifier`` a missing
    classifier is not a problem, but what training it needs is."""
    need = [("fid_weights", config.fid_weights, FID_WEIGHTS_SOURCE)]
    if scored and config.classifier and not Path(config.classifier).is_file():
        if not build_classifier:
            need.append(("classifier", config.classifier, classifier_command(config, config_file)))
        need.append(("classifier_weights", config.classifier_weights,
                     f"{TORCHVISION_INCEPTION_SOURCE}, the classifier's initialisation"))
    if config.fsd_weights:
        need.append(("fsd_weights", config.fsd_weights, R2PLUS1D_SOURCE))
    return [str(WeightsNotFoundError(key, path, source)) for key, path, source in need if not Path(path).is_file()]


def _backbone_problems(config: StoryImagerConfig) -> list[str]:
    try:
        check_folder(config.pretrained)
        levels = [len(json.loads((Path(config.pretrained) / part / "config.json").read_text())["block_out_channels"])
                  for part in ("vae", "unet")]
        frame_latent_size(config.resolution, *levels)
    except (DataFormatError, WeightsNotFoundError) as err:
        return [str(err)]
    except (ValueError, KeyError, TypeError) as err:  # a bad resolution, or an unreadable config.json
        return [str(DataFormatError(config.pretrained, str(err)))]
    return []


def _refuse(problems: list[str], before: str, source: str | Path | None, note: str = "") -> None:
    """One ``DataFormatError`` line listing ``problems`` (none: return)."""
    if problems:
        listed = " ".join(f"({i}) {p}" for i, p in enumerate(problems, 1))
        raise DataFormatError(source or "config", f"{len(problems)} problem{'s' * (len(problems) > 1)} found "
                                                  f"before {before}, nothing was run: {listed}{note}")


def check_stories(config: StoryImagerConfig, splits: tuple[str, ...] = ("train", "test")) -> None:
    """Decode every frame and read every caption of ``splits`` before training: a corrupt frame or an empty caption
    is one line naming the file and the story, before the run folder exists (``--skip-data-check`` skips it)."""
    start, count = time.perf_counter(), 0
    for split in splits:
        stories = open_stories(config, split)
        for i in range(len(stories)):
            empty = [k for k, text in enumerate(stories[i].captions) if not text.strip()]
            if empty:
                raise DataFormatError(config.data, f"{split} story {i}: caption of frame {empty[0] + 1} is empty")
            count += 1
    log.info("data check: %d stories (%s) decoded in %.1f s; --skip-data-check skips it", count, ", ".join(splits),
             time.perf_counter() - start)


def require_eval_files(config: StoryImagerConfig, scored: bool) -> None:
    """What ``evaluate`` loads, checked before it generates anything."""
    _refuse(missing_eval_files(config, scored), "evaluation", None)


def preflight(config: StoryImagerConfig, config_file: str | Path | None = None,
              build_classifier: bool = False) -> bool:
    """Check everything a training run and its evaluation will read; returns whether Char-F1 / Frm-Acc will be
    scored (a classifier is configured and the test stories have labels). ``build_classifier``: the caller trains
    a missing classifier first (``reproduce``), so its initialisation and splits are checked instead of the file."""
    problems = _backbone_problems(config)
    labelled = False
    for split in ("train", "val", "test") if build_classifier else ("train", "test"):
        try:
            labelled = open_stories(config, split).labels is not None
        except DataFormatError as err:
            problems.append(str(err))
            labelled = False
            break
    scored = bool(config.classifier) and labelled
    if config.classifier and not labelled and not problems:
        log.info("the test stories of %s have no character labels: Char-F1 / Frm-Acc will be skipped", config.data)
    note = (" (the embedded default's RANDOM stand-ins are written by `storyimager reproduce`)"
            if config.random_weights else "")
    _refuse(problems + missing_eval_files(config, scored, config_file, build_classifier), "training", config_file,
            note)
    return scored

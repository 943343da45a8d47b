"""``make reproduce-storyimager [DATA=dir]``: the embedded default (synthetic stories, tiny stand-in backbone) or a
real dataset.

Without ``--data`` it writes, once, into ``.cache/storyimager``: SYNTHETIC stories (``common.synthetic.story``,
32-px frames in AR-LDM's HDF5, used at 16 px), a RANDOMLY INITIALISED tiny backbone of the SD classes whose VAE is
then trained on the synthetic frames (``stand_in``), RANDOM weights for the FID Inception, the classifier's
initialisation and the FSD R(2+1)D, and a character classifier trained on the synthetic frames; then it fine-tunes
``configs/smoke.yaml``, samples one test story in all three modes (PNG storyboards) and reports FID, FSD and
Char-F1 / Frm-Acc, all labelled synthetic, then the evidence tables of ``ablation.report``: the fine-tuned model
beside the untrained one and the real frames, and the ablations (every variant fine-tuned with each of
``ABLATION_SEEDS``). With ``--data`` it runs ``configs/<name>.yaml`` (pororo, flintstones)
on that folder with the weights the config names: first the preflight (every file training and evaluation will
read, one line naming what is missing), then, when the test stories have character labels and the config's
classifier does not exist yet, its training (as ``storyimager train-classifier``), then the fine-tuning.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from common.cli import reproduce_config
from common.metrics.fid import write_random_fid_weights, write_random_torchvision_inception_weights
from common.metrics.fsd import write_random_r2plus1d_weights
from common.synthetic import story as synthetic_story

from .ablation import report
from .backbone import synthetic_words, write_tiny_backbone
from .classifier import train_classifier
from .config import StoryImagerConfig, load_config
from .data import collate, story_dataset
from .evaluate import evaluate, report_line
from .masking import frame_mask
from .preflight import classifier_command, preflight
from .sample import storyboard
from .sampling import sample_story
from .stand_in import train_stand_in_vae
from .train import load_trained, train

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
SYNTHETIC_DIR = Path(".cache/storyimager/synthetic/smoke")
EPISODES = 96
ABLATION_SEEDS = [0, 1, 2]  # the embedded default's ablation table: every variant fine-tuned with each seed
ABLATION_EPOCHS = 48  # = configs/smoke.yaml's epochs, so the full model's seed-0 row is the main run


def write_synthetic(out: Path) -> Path:
    return synthetic_story.write(out, seed=0, layout="arldm", n_episodes=EPISODES, size=32)


def prepare_embedded_default(config: StoryImagerConfig) -> None:
    """The random backbone, the random Inception files and the synthetic-trained classifier, when missing."""
    if not Path(config.pretrained).is_dir():
        scratch = Path(f"{config.pretrained}.partial")
        write_tiny_backbone(scratch, synthetic_words(), seed=config.seed)
        train_stand_in_vae(dataclasses.replace(config, pretrained=str(scratch)))
        scratch.rename(config.pretrained)
    if not Path(config.fid_weights).is_file():
        write_random_fid_weights(config.fid_weights, seed=0)
    if config.fsd_weights and not Path(config.fsd_weights).is_file():
        write_random_r2plus1d_weights(config.fsd_weights, seed=0)
    if not Path(config.classifier_weights).is_file():
        write_random_torchvision_inception_weights(config.classifier_weights, seed=0)
    if config.classifier and not Path(config.classifier).is_file():
        train_classifier(config, config.classifier)


def sample_modes(model, out_dir: Path) -> Path:
    """The first test story in visualize / continue / complete (frames 1, 3, 5 given) mode, one PNG each, and
    ``modes.png`` with the ground truth on top."""
    config = model.config
    story = collate([story_dataset(config, "test")[0]])
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = [np.asarray(storyboard(story["images"][0]))]
    for mode, given in (("visualize", None), ("continue", None), ("complete", [0, 2, 4])):
        mask = frame_mask(mode, config.frames, given)
        frames = sample_story(model, story["captions"], mask[None], story["images"], steps=config.sample_steps,
                              guidance=config.guidance, generator=torch.Generator().manual_seed(config.seed))[0]
        board = storyboard(frames, mask)
        board.save(out_dir / f"{mode}.png")
        rows.append(np.asarray(board))
    Image.fromarray(np.concatenate(rows)).save(out_dir / "modes.png")
    return out_dir / "modes.png"


def reproduce(data: str | None) -> dict:
    config = reproduce_config("storyimager reproduce", data, CONFIGS, SYNTHETIC_DIR,
                              lambda path, **kw: load_config(path, **kw), write_synthetic)
    config_file = CONFIGS / f"{Path(data).name if data else 'smoke'}.yaml"
    if data:  # every file the run reads, before anything is trained; a missing classifier is trained first
        scored = preflight(config, config_file, build_classifier=True)
        if scored and not Path(config.classifier).is_file():
            print(f"storyimager reproduce: training the character classifier first, as "
                  f"{classifier_command(config, config_file)}")
            train_classifier(config, config.classifier)
    else:
        prepare_embedded_default(config)
    run_dir = train(config, config_file=config_file)
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    model = load_trained(run_dir / "model.pt")
    figure = sample_modes(model, run_dir / "samples")
    results = {m: evaluate(model, run_dir / "eval" / m, m) for m in ("visualize", "continue")}
    tag = "SYNTHETIC / RANDOM weights: " if config.synthetic else ""
    print(f"{tag}loss {rows[0]['loss']:.4f} (first {config.log_every} steps) -> {rows[-1]['loss']:.4f} (last)")
    for r in results.values():
        print(report_line(r))
    print(f"storyboards (ground truth, visualize, continue, complete): {figure}")
    out = {"run_dir": str(run_dir), "loss_first": rows[0]["loss"], "loss_last": rows[-1]["loss"], **results}
    if not data:  # the embedded default's evidence: baselines and ablations (too costly for a real dataset)
        out.update(report(model.config, run_dir, results, ABLATION_SEEDS, ABLATION_EPOCHS))
    return out

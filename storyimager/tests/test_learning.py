"""Learning check: fine-tuning teaches the tiny model to draw the characters its captions name (SYNTHETIC stories,
STAND-IN / RANDOM weights).

A shortened embedded default, built here: its stories (``reproduce.write_synthetic``), a tiny backbone with
``HEADS`` attention heads (8 in ``smoke.yaml``'s backbone; 2 make a step ~1.8x faster), its stand-in VAE trained
``VAE_EPOCHS`` epochs of 8-story batches (``stand_in``), the character classifier trained ``CLASSIFIER_EPOCHS``
epochs, ``EPOCHS`` epochs of fine-tuning (28 steps of 8 stories each) and visualization of the first 32 test stories
at guidance 6. Fine-tuning must raise Char-F1 by ``OVER_UNTRAINED`` over the same model before fine-tuning, and
the fine-tuned model must score ``OVER_OTHER_CAPTIONS`` lower when each story is drawn from another story's
captions (``caption_shift``), so what it learnt is to draw what the captions say.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from common.metrics.fid import write_random_fid_weights, write_random_torchvision_inception_weights
from storyimager.backbone import synthetic_words, write_tiny_backbone
from storyimager.classifier import train_classifier
from storyimager.config import load_config
from storyimager.evaluate import evaluate
from storyimager.reproduce import write_synthetic
from storyimager.stand_in import train_stand_in_vae
from storyimager.train import build_model, load_trained, train

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
SEED, HEADS, VAE_EPOCHS, CLASSIFIER_EPOCHS, EPOCHS = 0, 2, 14, 3, 24
OVER_UNTRAINED, OVER_OTHER_CAPTIONS = 0.05, 0.1  # README "Learning test": measured over four seeds


@pytest.fixture(scope="module")
def learnt(tmp_path_factory) -> tuple[dict[str, float], Path]:
    root = tmp_path_factory.mktemp("learning")
    config = load_config(CONFIGS / "smoke.yaml", data=str(write_synthetic(root / "stories")), seed=SEED,
                         pretrained=str(write_tiny_backbone(root / "sd", synthetic_words(), seed=SEED, heads=HEADS)),
                         runs_dir=str(root / "runs"), run_name="learn", epochs=EPOCHS, guidance=6.0,
                         classifier=str(root / "classifier.pt"), classifier_epochs=CLASSIFIER_EPOCHS,
                         classifier_weights=str(write_random_torchvision_inception_weights(root / "init.pth")),
                         fid_weights=str(write_random_fid_weights(root / "fid.pth")))
    config.fsd_weights = None
    train_stand_in_vae(config, epochs=VAE_EPOCHS, stories_per_batch=8)
    train_classifier(config, config.classifier)
    scores = {"untrained": evaluate(build_model(config).eval(), root / "untrained", "visualize", fid=False)}
    run = train(config)
    model = load_trained(run / "model.pt")
    scores["fine-tuned"] = evaluate(model, root / "trained", "visualize", fid=False)
    scores["other captions"] = evaluate(model, root / "other", "visualize", fid=False, caption_shift=16)
    f1 = {name: r["char_f1"] for name, r in scores.items()}
    print({name: round(v, 3) for name, v in f1.items()}, "[SYNTHETIC, STAND-IN weights]")
    return f1, run


def test_fine_tuning_lowers_the_loss_and_plots_it(learnt):
    run = learnt[1]
    losses = [json.loads(line)["loss"] for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert len(losses) >= 10 and losses[-1] < 0.6 * losses[0], losses
    assert (run / "loss.png").is_file()


def test_fine_tuning_beats_the_untrained_model_on_char_f1(learnt):
    f1 = learnt[0]
    assert f1["fine-tuned"] >= f1["untrained"] + OVER_UNTRAINED, f1


def test_fine_tuned_frames_show_the_characters_their_own_captions_name(learnt):
    f1 = learnt[0]
    assert f1["fine-tuned"] >= f1["other captions"] + OVER_OTHER_CAPTIONS, f1

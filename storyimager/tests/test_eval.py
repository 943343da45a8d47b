"""``storyimager eval`` end to end on the tiny model: FID (64 px and full), FSD, Char-F1 / Frm-Acc, labelled."""

import json
import math

import torch

from common.metrics.fid import write_random_fid_weights, write_random_torchvision_inception_weights
from common.metrics.fsd import write_random_r2plus1d_weights
from storyimager.ablation import markdown_table, mean_sd
from storyimager.agreement import character_agreement, colour_agreement, colour_histograms
from storyimager.classifier import evaluate_classifier, load_classifier, train_classifier
from storyimager.cli import main
from storyimager.train import train


def test_eval_reports_every_metric_with_labels(config, tmp_path):
    cfg = config(fid_weights=str(write_random_fid_weights(tmp_path / "fid.pth")),
                 classifier_weights=str(write_random_torchvision_inception_weights(tmp_path / "tv.pth")),
                 fsd_weights=str(write_random_r2plus1d_weights(tmp_path / "r21d.pth")),
                 classifier=str(tmp_path / "clf.pt"), classifier_epochs=1, eval_stories=4, eval_batch_size=4,
                 fid_protocols=["arldm64"])  # each FID's 2048-d matrix root costs ~35 s on 2 cores
    train_classifier(cfg, cfg.classifier)
    net, size = load_classifier(cfg.classifier)
    assert size == 75 and set(evaluate_classifier(net, cfg, "test")) == {"char_f1", "frame_acc"}
    run = train(cfg)
    out = tmp_path / "eval"
    assert main(["eval", "--checkpoint", str(run / "model.pt"), "--mode", "continue", "--out", str(out)]) == 0
    results = json.loads((out / "eval.json").read_text())
    assert results["frames"] == 16 and results["stories"] == 4  # continuation scores frames 2-5
    for key in ("fid_64", "fsd", "char_f1", "frame_acc", "real_char_f1", "real_frame_acc", "char_agree",
                "real_char_agree", "colour_agree", "real_colour_agree"):
        assert math.isfinite(results[key]), key
    assert "SYNTHETIC" in results["labels"] and "STAND-IN" in results["labels"]
    assert (out / "eval_samples.png").is_file()


def test_caption_shift_draws_each_story_from_the_captions_k_stories_on(config, tmp_path, monkeypatch):
    """The control of the baseline table: story i is sampled from story (i + k) mod n's captions, scored as story i."""
    from storyimager.data import story_dataset
    from storyimager.evaluate import evaluate
    from storyimager.train import build_model

    cfg = config(eval_stories=5, eval_batch_size=2)
    seen = []

    def fake_sample(model, captions, masks, given=None, **kw):
        seen.extend(captions)
        return torch.zeros(len(captions), cfg.frames, 3, cfg.resolution, cfg.resolution)

    monkeypatch.setattr("storyimager.evaluate.sample_story", fake_sample)
    results = evaluate(build_model(cfg).eval(), tmp_path, "visualize", fid=False, caption_shift=2)
    data = story_dataset(cfg, "test")
    assert seen == [list(data[(i + 2) % 5]["captions"]) for i in range(5)] and results["caption_shift"] == 2
    assert len({tuple(c) for c in seen}) == 5  # five different stories


def test_agreement_with_frame_1_scores_shared_characters_and_colours():
    """Character agreement is the mean Jaccard index of each later frame's predicted set with frame 1's true set;
    colour agreement is 1 for frames with frame 1's colours and falls with the share of pixels that differ."""
    first = torch.tensor([[1, 1, 0, 0]])
    pred = torch.tensor([[[1, 1, 0, 0], [1, 0, 0, 0], [0, 0, 1, 1], [1, 1, 1, 1]]])
    assert abs(character_agreement(pred, first) - (1 + 1 / 2 + 0 + 2 / 4) / 4) < 1e-6
    sky = torch.full((1, 3, 8, 8), 0.8)
    sprite = sky.clone()
    sprite[:, :, :2, :2] = torch.tensor([1.0, -1.0, -1.0])[None, :, None, None]  # a red sprite on 4 of 64 pixels
    blue = sky.clone()
    blue[:, :, :2, :2] = torch.tensor([-1.0, -1.0, 1.0])[None, :, None, None]  # the same place, another hue
    night = torch.full((1, 3, 8, 8), -0.6)
    later = colour_histograms(torch.stack([sky, sprite, night, blue], dim=1))
    first_hist = colour_histograms(sky)
    assert later.shape == (1, 4, 64) and torch.allclose(later.sum(-1), torch.ones(1, 4))
    assert colour_agreement(later[:, :1], first_hist) == 1.0
    assert abs(colour_agreement(later[:, 1:2], first_hist) - 60 / 64) < 1e-6
    assert colour_agreement(later[:, 2:3], first_hist) == 0.0
    assert abs(colour_agreement(later[:, 3:], later[:, 1]) - 60 / 64) < 1e-6


def test_report_table_gives_mean_and_sd_over_seeds():
    runs = [{"visualize": {"char_f1": v, "frame_acc": 0.5}, "continue": {"char_f1": 0.1}} for v in (0.2, 0.4)]
    assert mean_sd([0.2, 0.4]) == "0.300 +- 0.141" and mean_sd([0.25]) == "0.250"
    table = markdown_table({"full model": runs}, "variant").splitlines()
    assert table[0].startswith("| variant | vis Char-F1 | vis Frm-Acc | cont Char-F1 |")
    assert table[2].startswith("| full model | 0.300 +- 0.141 | 0.500 +- 0.000 | 0.100 +- 0.000 | - |")

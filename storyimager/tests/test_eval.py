"""``storyimager eval`` end to end on the tiny model: FID (64 px and full), FSD, Char-F1 / Frm-Acc, labelled."""

import json
import math

from common.metrics.fid import write_random_fid_weights, write_random_torchvision_inception_weights
from common.metrics.fsd import write_random_r2plus1d_weights
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
    for key in ("fid_64", "fsd", "char_f1", "frame_acc", "real_char_f1", "real_frame_acc"):
        assert math.isfinite(results[key]), key
    assert "SYNTHETIC" in results["labels"] and "STAND-IN" in results["labels"]
    assert (out / "eval_samples.png").is_file()

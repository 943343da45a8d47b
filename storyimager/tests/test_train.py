"""Training: the learning-rate schedule, exact resume, determinism; the CLI's outputs and one-line errors."""

import dataclasses
import json
import shutil

import h5py
import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from common.errors import DataFormatError
from storyimager.cli import main
from storyimager.train import load_trained, lr_scale, train


def trained_backbone(run_dir):
    return yaml.safe_load((run_dir / "config.yaml").read_text())["pretrained"]


def _weights(run_dir):
    return torch.load(run_dir / "model.pt", weights_only=False)["model"]


def test_cosine_schedule_warms_up_from_zero_then_decays_to_zero_per_step():
    """ARLDM's LinearWarmupCosineAnnealingLR (pl_bolts, start and end 0), worked by hand for 3 warmup of 7 steps."""
    assert [round(lr_scale(s, 7, 3, "cosine"), 3) for s in range(7)] == [0, 0.5, 1, 1, 0.854, 0.5, 0.146]
    assert [round(lr_scale(s, 7, 3, "constant"), 3) for s in range(5)] == [0.333, 0.667, 1, 1, 1]
    assert lr_scale(6, 7, 0, "constant") == 1


def test_training_sets_the_scheduled_learning_rate_every_step(config):
    cfg = config(epochs=2, lr_schedule="cosine", warmup_epochs=1, run_name="cosine")
    last = torch.load(train(cfg) / "checkpoints" / "last.pt", weights_only=False)
    steps = last["step"]  # 2 epochs: the first one warms up
    expected = cfg.lr * lr_scale(steps - 1, steps, steps // 2, "cosine")
    assert last["optimizer"]["param_groups"][0]["lr"] == pytest.approx(expected)
    assert 0 < expected < 0.2 * cfg.lr  # the last step of the cosine, not the base rate


def test_resume_continues_exactly_and_runs_are_deterministic(config, monkeypatch):
    straight = train(config(epochs=2, run_name="straight", save_every=5))
    again = train(config(epochs=2, run_name="again", save_every=5))
    # a run killed at step 8 of the first epoch (12 steps per epoch) resumes from its step-5 checkpoint
    import storyimager.train as trainer

    calls = {"n": 0}
    real = trainer.sample_masks

    def dies_at_step_8(*args):
        calls["n"] += 1
        if calls["n"] == 8:
            raise KeyboardInterrupt("killed")
        return real(*args)

    monkeypatch.setattr(trainer, "sample_masks", dies_at_step_8)
    with pytest.raises(KeyboardInterrupt):
        train(config(epochs=2, run_name="resumed", save_every=5))
    monkeypatch.setattr(trainer, "sample_masks", real)
    assert torch.load(straight.parent / "resumed" / "checkpoints" / "last.pt", weights_only=False)["step"] == 5
    with pytest.raises(DataFormatError, match="--resume"):  # the same name without --resume is refused
        train(config(epochs=2, run_name="resumed", save_every=5))
    with (straight.parent / "resumed" / "metrics.jsonl").open("a") as f:
        f.write('{"step": 8, "lo')  # the kill tore the last line
    resumed = train(config(epochs=2, run_name="resumed", save_every=5), resume=True)
    a, b, c = _weights(straight), _weights(again), _weights(resumed)
    assert a.keys() == c.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert all(torch.equal(a[k], c[k]) for k in a)
    rows = [json.loads(line) for line in (resumed / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == list(range(2, 25, 2))  # nothing logged twice


def test_lora_run_saves_only_the_fine_tuned_weights_and_reloads(config):
    run = train(config(finetune="lora", lora_rank=4, run_name="lora"))
    state = _weights(run)
    assert any("lora_A" in k for k in state) and not any(k.startswith("vae.") for k in state)
    assert not any(k.endswith("to_k.base_layer.weight") for k in state)
    model = load_trained(run / "model.pt", "cpu")
    assert all(torch.equal(dict(model.named_parameters())[k], v) for k, v in state.items())


def test_sample_cli_writes_storyboards_in_all_modes(trained_run, tmp_path):
    run = trained_run
    story = tmp_path / "story.txt"
    story.write_text("\n".join(["pororo is jumping in the park."] * 5))
    frames = tmp_path / "given"
    frames.mkdir()
    for k in (1, 3):
        Image.new("RGB", (20, 20), (200, 30, 30)).save(frames / f"{k}.png")
    for mode, extra in (("visualize", []), ("continue", ["--frames", str(frames)]),
                        ("complete", ["--frames", str(frames), "--given", "1", "3"])):
        out = tmp_path / f"{mode}.png"
        assert main(["sample", "--checkpoint", str(run / "model.pt"), "--mode", mode, "--captions", str(story),
                     "--out", str(out), "--steps", "2", *extra]) == 0
        assert Image.open(out).size[0] > 5 * 16


@pytest.mark.parametrize("problem", ["no_backbone", "short_story", "corrupt_frame", "missing_frame", "bad_key",
                                     "bad_resolution", "bad_schedule"])
def test_bad_input_is_one_line(trained_run, tmp_path, problem, capsys):
    run = trained_run
    story = tmp_path / "story.txt"
    story.write_text("\n".join(["a caption"] * (3 if problem == "short_story" else 5)))
    frames = tmp_path / "given"
    frames.mkdir()
    (frames / "1.png").write_bytes(b"not a png" if problem == "corrupt_frame" else b"")
    if problem != "corrupt_frame":
        Image.new("RGB", (16, 16)).save(frames / "1.png")
    if problem == "bad_key":
        cfg = tmp_path / "bad.yaml"
        cfg.write_text("dataset: smoke\nlearning_rate: 0.1\n")
        args = ["train", "--config", str(cfg)]
    elif problem == "bad_resolution":
        cfg = tmp_path / "res.yaml"
        cfg.write_text(f"pretrained: {trained_backbone(run)}\nresolution: 18\ndevice: cpu\n")
        args = ["train", "--config", str(cfg)]
    elif problem == "bad_schedule":
        cfg = tmp_path / "schedule.yaml"
        cfg.write_text(f"pretrained: {trained_backbone(run)}\nlr_schedule: linear\ndevice: cpu\n")
        args = ["train", "--config", str(cfg)]
    elif problem == "no_backbone":
        cfg = tmp_path / "nobackbone.yaml"
        cfg.write_text(f"pretrained: {tmp_path / 'nowhere'}\ndevice: cpu\n")
        args = ["train", "--config", str(cfg)]
    else:
        args = ["sample", "--checkpoint", str(run / "model.pt"), "--captions", str(story), "--steps", "1",
                "--mode", "complete" if problem == "missing_frame" else "continue", "--frames", str(frames),
                "--out", str(tmp_path / "x.png")]
        if problem == "missing_frame":
            args += ["--given", "2"]
    capsys.readouterr()
    assert main(args) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines and lines[-1].startswith("storyimager: error:"), lines
    expected = {"no_backbone": "nowhere", "short_story": "story.txt", "corrupt_frame": "1.png",
                "missing_frame": "2.png", "bad_key": "learning_rate", "bad_resolution": "resolution 18",
                "bad_schedule": "lr_schedule must be constant or cosine"}[problem]
    assert expected in lines[-1]


def test_a_loss_turning_nan_mid_run_stops_in_one_line_keeping_the_last_finite_checkpoint(config, tmp_path, capsys,
                                                                                          monkeypatch):
    """NaN injected into the first loss of epoch 2: one line naming epoch, step and term, no update, last.pt byte
    for byte the one written at the end of epoch 1; with skip_nonfinite the run ends and logs only finite losses."""
    from storyimager import train as train_module
    from storyimager.model import StoryImager

    seen = {"epochs": 0}
    real_order, real_forward = train_module.epoch_order, StoryImager.forward

    def order(n, seed, epoch):
        seen["epochs"] += 1
        if seen["epochs"] == 2:
            seen["last"] = (tmp_path / "runs" / "smoke" / seen["run"] / "checkpoints" / "last.pt").read_bytes()
        return real_order(n, seed, epoch)

    def forward(self, *args):
        out = real_forward(self, *args)
        return out * float("nan") if seen["epochs"] == 2 else out

    monkeypatch.setattr(train_module, "epoch_order", order)
    monkeypatch.setattr(StoryImager, "forward", forward)
    for run, skip in (("stop", False), ("skip", True)):
        seen.update(epochs=0, run=run)
        path = tmp_path / f"{run}.yaml"
        path.write_text(yaml.safe_dump(dataclasses.asdict(config(epochs=3, run_name=run, skip_nonfinite=skip,
                                                                 save_every=1000)), sort_keys=False))
        code = main(["train", "--config", str(path)])
        rows = [json.loads(line) for line in (tmp_path / "runs" / "smoke" / run / "metrics.jsonl").read_text()
                .splitlines()]
        assert all(np.isfinite(r["loss"]) for r in rows) and rows
        if skip:
            assert code == 0
            continue
        assert code == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert err[-1].startswith("storyimager: error:") and "is nan at epoch 1, step 0" in err[-1], err[-3:]
        assert (tmp_path / "runs" / "smoke" / run / "checkpoints" / "last.pt").read_bytes() == seen["last"]


@pytest.mark.parametrize("problem", ["corrupt frame", "empty caption"])
def test_a_bad_story_is_one_line_before_the_run_folder_and_skip_data_check_skips_the_check(config, stories, tmp_path,
                                                                                         capsys, problem):

    data = tmp_path / "data"
    shutil.copytree(stories, data)
    with h5py.File(data / "story.h5", "r+") as h5:
        test = h5["test"]
        if problem == "corrupt frame":
            test["image2"][1] = np.frombuffer(b"not a png", dtype=np.uint8)
        else:
            captions = test["text"][1].decode().split("|")
            test["text"][1] = "|".join([captions[0], " ", *captions[2:]]).encode()
    cfg = dataclasses.asdict(config(data=str(data), run_name="bad"))
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    capsys.readouterr()
    assert main(["train", "--config", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    expected = "test/image2[1]: corrupt PNG" if problem == "corrupt frame" else "test story 1: caption of frame 2"
    assert len(err) == 1 and expected in err[0], err
    assert not (tmp_path / "runs").exists()
    if problem == "empty caption":  # the check alone finds it: training itself runs on
        assert main(["train", "--config", str(path), "--skip-data-check", "--epochs", "1"]) == 0

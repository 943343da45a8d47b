"""``denet`` commands: help, edit next to the source, eval report, train-damsm, and one-line errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from conftest import fid_without_sqrtm_value, tiny_config
from PIL import Image

from common.checkpoints import read_checkpoint
from common.data.text_image import load_filenames
from common.resume_check import kill_then_resume, records
from denet.cli import main
from denet.config import load_config
from denet.train import train


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "denet.cli", *args], capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def run_dir(assets, tmp_path_factory) -> Path:
    with pytest.MonkeyPatch.context() as patch:  # the FID value is not checked here (see conftest)
        patch.setattr("denet.evaluate.frechet_distance", fid_without_sqrtm_value)
        return train(tiny_config(assets, tmp_path_factory.mktemp("cli"), run_name="cli", test_interval=100))


@pytest.mark.parametrize("command", ["train", "train-damsm", "edit", "eval", "fid-stats", "bench"])
def test_every_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as exit_:
        main([command, "--help"])
    assert exit_.value.code == 0
    assert "usage: denet" in capsys.readouterr().out


def test_edit_writes_the_edited_image_next_to_the_source(run_dir, assets, tmp_path):
    source = tmp_path / "bird.jpg"
    Image.fromarray(np.full((300, 400, 3), 120, dtype=np.uint8)).save(source)
    run = _cli("edit", "--checkpoint", str(run_dir / "checkpoints" / "last.pt"), "--image", str(source),
               "--text", "a blue circle on the left")
    assert run.returncode == 0, run.stderr
    out = tmp_path / "bird_edited.png"
    size = load_config(run_dir / "config.yaml").imsize
    assert Image.open(out).size == (size, size)
    assert "SYNTHETIC" in run.stdout


@pytest.mark.parametrize(("make_input", "text", "message"), [
    (lambda p: p.write_bytes(b"not an image"), "a blue circle", "cannot read as an image"),
    (lambda p: Image.new("RGB", (64, 64)).save(p, format="PNG"), "zebra xylophone", "DAMSM vocabulary"),
])
def test_edit_bad_input_is_one_line(run_dir, tmp_path, make_input, text, message):
    source = tmp_path / "in.png"
    make_input(source)
    run = _cli("edit", "--checkpoint", str(run_dir / "checkpoints" / "last.pt"), "--image", str(source),
               "--text", text)
    assert run.returncode == 2
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], run.stderr


def test_missing_checkpoint_and_missing_config_are_one_line(tmp_path):
    run = _cli("edit", "--checkpoint", str(tmp_path / "none.pt"), "--image", "x.png", "--text", "a")
    assert run.returncode == 2 and len(run.stderr.strip().splitlines()) == 1 and "checkpoint not found" in run.stderr
    run = _cli("train", "--config", str(tmp_path / "none.yaml"))
    assert run.returncode == 2 and "config file not found" in run.stderr


def test_eval_writes_a_labelled_report(run_dir, tmp_path, fid_without_sqrtm):
    out = tmp_path / "report"
    assert main(["eval", "--checkpoint", str(run_dir / "checkpoints" / "last.pt"), "--out", str(out),
                 "--eval-samples", "4"]) == 0
    text = out.with_suffix(".md").read_text()
    assert "| mp |" in text and "| fid |" in text and "SYNTHETIC" in text


def test_wrong_split_file_is_one_line(assets, tmp_path):
    import shutil

    data = tmp_path / "data"
    shutil.copytree(assets["data"], data)
    (data / "test" / "filenames.pickle").write_bytes(b"garbage")
    config = tiny_config(assets, tmp_path)
    run = _cli("fid-stats", "--config", str(Path(__file__).resolve().parents[1] / "configs" / "smoke.yaml"),
               "--data", str(data), "--fid-weights", config.fid_weights, "--out", str(tmp_path / "s.npz"))
    assert run.returncode == 2 and len(run.stderr.strip().splitlines()) == 1 and "filenames.pickle" in run.stderr


def test_train_damsm_writes_strictly_loadable_encoders(assets, tmp_path):
    from denet.damsm import load_damsm
    from denet.data import n_words
    from denet.train_damsm import train_damsm

    config = tiny_config(assets, tmp_path)
    text, image = train_damsm(config, tmp_path / "damsm", epochs=1)
    assert (text.name, image.name) == ("text_encoder1.pth", "image_encoder1.pth")
    text_encoder, image_encoder = load_damsm(text, image, n_words(config), input_size=config.damsm_input_size)
    assert not text_encoder.training and load_filenames(config.data, "train")


def test_cli_has_the_shared_verbs_and_flags():
    from common.cli import contract_violations
    from denet.cli import parser

    assert contract_violations(parser()) == []


def test_train_killed_mid_run_and_resumed_ends_as_an_uninterrupted_run(assets, tmp_path):
    """SIGKILL after the first epoch's record, then --resume: the same records (losses, MP, FID) and weights as a
    straight run."""
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump(tiny_config(assets, tmp_path, epochs=3, test_interval=2).to_dict()))
    runs = tmp_path / "runs" / "birds"

    def command(name):
        return [sys.executable, str(Path(__file__).with_name("cli_child.py")), "train", "--config", str(config),
                "--run-name", name]

    done = subprocess.run(command("straight"), capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    kill_then_resume(command("killed"), runs / "killed", after=1)
    assert records(runs / "straight") == records(runs / "killed")
    assert [r["epoch"] for r in records(runs / "killed")["metrics.jsonl"]] == [1, 2, 3]
    a, b = (read_checkpoint(runs / name / "checkpoints" / "last.pt")["model"] for name in ("straight", "killed"))
    assert a.keys() == b.keys()
    for net in a:
        assert all(torch.equal(a[net][k], b[net][k]) for k in a[net]), net


@pytest.mark.parametrize(("problem", "message"), [
    ("corrupt image", "unreadable or corrupt image header"),
    ("empty caption", "holds no caption"),
    ("caption without a vocabulary word", "is in the DAMSM vocabulary"),
])
def test_train_on_a_corrupt_image_or_an_empty_caption_fails_in_one_line_before_the_run_folder(
        assets, tmp_path, capsys, monkeypatch, problem, message):
    """The data check runs before anything is written, over both splits (the broken file is the test split's last):
    exit 2, one stderr line naming the file and the problem, and no run folder (not even runs/). With
    ``--skip-data-check`` the run gets past it (stopped where it would open the run folder)."""
    import shutil

    from common.data.text_image import TextImageDataset

    data = shutil.copytree(assets["data"], tmp_path / "data")
    key = load_filenames(data, "test")[-1]
    if problem == "corrupt image":
        broken = TextImageDataset(data, "test", "birds").image_path(key)
        broken.write_bytes(b"not a JPEG at all" * 4)
    else:
        broken = data / "text" / f"{key}.txt"
        broken.write_text("\n  \n" if problem == "empty caption" else "zzqx qqzx\n" * 10)
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump(tiny_config(assets, tmp_path, data=str(data)).to_dict()))
    assert main(["train", "--config", str(config), "--run-name", "bad"]) == 2
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith("denet train: error: ") and str(broken) in lines[0] and message in lines[0], lines
    assert not (tmp_path / "runs").exists()

    class Opened(Exception):
        pass

    def opened(*args, **kwargs):
        raise Opened

    monkeypatch.setattr("denet.train.open_run", opened)
    with pytest.raises(Opened):
        main(["train", "--config", str(config), "--run-name", "bad", "--skip-data-check"])


def test_a_loss_turning_nan_mid_run_stops_in_one_line_keeping_the_last_finite_checkpoint(assets, tmp_path, capsys,
                                                                                         monkeypatch):
    """D's MA-GP made NaN at batch 2 of epoch 1 (last.pt written after batch 1): one line naming epoch, step and
    term, no D update, last.pt byte for byte the one written before."""
    import denet.train

    run = tmp_path / "runs" / "birds" / "run"
    last, calls, seen = run / "checkpoints" / "last.pt", [], {}
    real = denet.train.discriminator_loss

    def discriminator_loss(*args, **kwargs):
        d = real(*args, **kwargs)
        calls.append(1)
        if len(calls) == 2:
            seen["last"] = last.read_bytes()
            d.gp, d.total = d.gp * float("nan"), d.total * float("nan")
        return d

    monkeypatch.setattr(denet.train, "discriminator_loss", discriminator_loss)
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump(tiny_config(assets, tmp_path, save_every_steps=1).to_dict()))
    assert main(["train", "--config", str(config), "--run-name", "run"]) == 2
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert "Traceback" not in err and lines[-1].startswith(
        "denet train: error: loss term 'D MA-GP' is nan at epoch 1, step 1:"), err
    assert last.read_bytes() == seen["last"] and read_checkpoint(last)["step_in_epoch"] == 1

"""The command line: help on every command, sample grid, eval report, official checkpoints need a config."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from conftest import tiny_config
from PIL import Image

from common.checkpoints import read_checkpoint
from common.resume_check import kill_then_resume, records
from galip.cli import main, parser
from galip.train import train


@pytest.fixture(scope="module")
def run_dir(assets, fid_stats, tmp_path_factory):
    return train(tiny_config(assets, tmp_path_factory.mktemp("cli"), run_name="cli", epochs=1, test_interval=5))


@pytest.mark.parametrize("command", ["train", "sample", "eval", "fid-stats", "bench"])
def test_every_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as exit_:
        parser().parse_args([command, "--help"])
    assert exit_.value.code == 0 and "usage: galip " + command in capsys.readouterr().out


def test_sample_writes_a_grid_of_n_tiles(run_dir, tmp_path, capsys):
    out = tmp_path / "grid.png"
    assert main(["sample", "--checkpoint", str(run_dir / "checkpoints" / "last.pt"), "--text",
                 "a red circle in the middle", "--n", "4", "--out", str(out)]) == 0
    image = Image.open(out)
    assert image.size == (4 * 32 + 5 * 2, 32 + 2 * 2)  # save_image: 4 tiles of 32 px with 2 px padding
    msg = capsys.readouterr().out
    assert "SYNTHETIC" in msg and "STAND-IN" in msg


def test_eval_writes_a_labelled_report(run_dir, tmp_path, capsys):
    out = tmp_path / "report"
    assert main(["eval", "--checkpoint", str(run_dir / "checkpoints" / "last.pt"), "--out", str(out)]) == 0
    results = json.loads(out.with_suffix(".json").read_text())
    assert results["n_samples"] == 16 and results["fid"] > 0 and -1 <= results["clip_score"] <= 1
    assert "SYNTHETIC" in out.with_suffix(".md").read_text()
    # the same numbers as the evaluation at the end of training (same seed, same weights)
    last = json.loads((run_dir / "metrics.jsonl").read_text().splitlines()[-1])["eval"]
    assert results["fid"] == pytest.approx(last["fid"], rel=1e-6)
    assert results["clip_score"] == pytest.approx(last["clip_score"], rel=1e-6)


def test_eval_can_stop_at_a_sample_count(run_dir, tmp_path, fid_without_sqrtm):
    out = tmp_path / "r10"
    assert main(["eval", "--checkpoint", str(run_dir / "checkpoints" / "last.pt"), "--fid-samples", "10",
                 "--out", str(out)]) == 0
    assert json.loads(out.with_suffix(".json").read_text())["n_samples"] == 10


def test_official_checkpoint_needs_a_config_and_then_loads(run_dir, tmp_path, capsys, assets):
    ckpt = torch.load(run_dir / "checkpoints" / "last.pt", weights_only=False)
    official = tmp_path / "state_epoch_001.pth"
    torch.save({"model": {k: {f"module.{n}": t for n, t in v.items()} for k, v in ckpt["model"].items()},
                "optimizers": ckpt["optimizers"], "epoch": 1}, official)
    args = ["sample", "--checkpoint", str(official), "--text", "a blue square", "--n", "2",
            "--out", str(tmp_path / "o.png")]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--config" in err
    config = tmp_path / "tiny.yaml"
    import yaml

    config.write_text(yaml.safe_dump(ckpt["config"]))
    assert main([*args, "--config", str(config)]) == 0
    assert (tmp_path / "o.png").is_file()


def test_missing_checkpoint_is_one_line(tmp_path, capsys):
    assert main(["sample", "--checkpoint", str(tmp_path / "none.pt"), "--text", "x"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "none.pt" in err


def test_cli_has_the_shared_verbs_and_flags():
    from common.cli import contract_violations
    from galip.cli import parser

    assert contract_violations(parser()) == []


def test_train_killed_mid_run_and_resumed_ends_as_an_uninterrupted_run(assets, tmp_path, fid_stats):
    """SIGKILL after the first epoch's record, then --resume: the same records (losses, FID, CLIP score) and
    weights as a straight run."""
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
    for net in ("netG", "netD", "netC"):
        assert all(torch.equal(a[net][k], b[net][k]) for k in a[net]), net


def test_fp32_switch_turns_mixed_precision_off_in_train_sample_and_eval(run_dir, tmp_path, monkeypatch):
    """A config with ``mixed_precision: true`` (as birds.yaml / coco.yaml): each command builds its nets with it, and
    with ``--fp32`` without it (the nets and the trainer are stopped as they would start)."""
    import galip.nets
    import galip.train

    class Built(Exception):
        pass

    seen = []

    def record(config, *args, **kwargs):
        seen.append(config.mixed_precision)
        raise Built

    monkeypatch.setattr(galip.nets, "build_nets", record)
    monkeypatch.setattr(galip.train, "train", record)
    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    amp = tmp_path / "amp.yaml"
    amp.write_text(yaml.safe_dump({**config, "mixed_precision": True}))
    ckpt = str(run_dir / "checkpoints" / "last.pt")
    commands = (["train", "--config", str(amp)],
                ["sample", "--checkpoint", ckpt, "--config", str(amp), "--text", "a red circle"],
                ["eval", "--checkpoint", ckpt, "--config", str(amp), "--out", str(tmp_path / "report")])
    for command in commands:
        for flag in ([], ["--fp32"]):
            with pytest.raises(Built):
                main(command + flag)
    assert seen == [True, False] * 3


def test_compile_flag_compiles_the_generator_in_sample_and_eval_and_only_with_it(run_dir, tmp_path, monkeypatch):
    """``--compile`` hands the loaded NetG to ``compile_generator`` before anything is generated; without it the
    command goes straight to sampling / evaluation (each stopped there)."""
    import galip.evaluate
    import galip.sample

    class Stopped(Exception):
        pass

    seen = []

    def stop(what):
        def record(*args, **kwargs):
            seen.append(what)
            raise Stopped
        return record

    monkeypatch.setattr(galip.sample, "compile_generator", stop("compile"))
    monkeypatch.setattr(galip.sample, "sample_caption", stop("run"))
    monkeypatch.setattr(galip.evaluate, "evaluate", stop("run"))
    ckpt = str(run_dir / "checkpoints" / "last.pt")
    for command in (["sample", "--checkpoint", ckpt, "--text", "a red circle"],
                    ["eval", "--checkpoint", ckpt, "--out", str(tmp_path / "report")]):
        for flag in ([], ["--compile"]):
            with pytest.raises(Stopped):
                main(command + flag)
    assert seen == ["run", "compile"] * 2


def test_train_continues_an_official_state_epoch_checkpoint_in_a_new_run(run_dir, tmp_path, capsys):
    """An official ``state_epoch_001.pth`` ({model: netG/netD/netC, optimizers: G/D, epoch}, nothing else) continued
    with ``--init-from``: the new run starts at epoch 2, with the official optimiser states (Adam's step count goes
    on from the file's), and G, D, C from the file (a wrong tensor is refused in one line)."""
    state = read_checkpoint(run_dir / "checkpoints" / "last.pt")
    official = tmp_path / "state_epoch_001.pth"
    torch.save({"model": state["model"], "optimizers": state["optimizers"], "epoch": 1}, official)
    steps = next(iter(state["optimizers"]["optimizer_G"]["state"].values()))["step"]
    args = ["train", "--config", str(run_dir / "config.yaml"), "--runs-dir", str(tmp_path / "runs"), "--epochs", "2"]
    assert main(args + ["--init-from", str(official), "--run-name", "continued"]) == 0
    run = next((tmp_path / "runs").glob("*/continued"))
    assert [r["epoch"] for r in records(run)["metrics.jsonl"]] == [2]
    after = read_checkpoint(run / "checkpoints" / "last.pt")
    assert after["epoch"] == 2
    assert next(iter(after["optimizers"]["optimizer_G"]["state"].values()))["step"] == 2 * steps
    broken = {**state["model"], "netC": {k: v[:1] for k, v in state["model"]["netC"].items()}}
    torch.save({"model": broken, "optimizers": state["optimizers"], "epoch": 1}, official)
    capsys.readouterr()
    assert main(args + ["--init-from", str(official), "--run-name", "broken"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(official) in err[0], err
    assert main(args + ["--init-from", str(official), "--resume", "--run-name", "continued"]) == 2


def _broken_copy(assets, tmp_path: Path, problem: str) -> tuple[Path, Path]:
    """A copy of the synthetic data with one file of the *test* split broken (the check reads both splits);
    returns the data folder and the broken file."""
    import shutil

    from common.data.text_image import TextImageDataset, load_filenames

    data = shutil.copytree(assets["data"], tmp_path / "data")
    key = load_filenames(data, "test")[-1]
    if problem == "corrupt image":
        broken = TextImageDataset(data, "test", "birds").image_path(key)
        broken.write_bytes(b"not a JPEG at all" * 4)
    else:
        broken = data / "text" / f"{key}.txt"
        broken.write_text("\n  \n")
    return data, broken


@pytest.mark.parametrize(("problem", "message"), [("corrupt image", "unreadable or corrupt image header"),
                                                  ("empty caption", "holds no caption")])
def test_train_on_a_corrupt_image_or_an_empty_caption_fails_in_one_line_before_the_run_folder(
        assets, fid_stats, tmp_path, capsys, problem, message):
    """The data check runs before anything is written: exit 2, one stderr line naming the file and the problem, and
    no run folder (not even runs/)."""
    data, broken = _broken_copy(assets, tmp_path, problem)
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump(tiny_config(assets, tmp_path, data=str(data)).to_dict()))
    assert main(["train", "--config", str(config), "--run-name", "bad"]) == 2
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith("galip train: error: ") and str(broken) in lines[0] and message in lines[0], lines
    assert not (tmp_path / "runs").exists()


def test_skip_data_check_flag_skips_the_check(assets, fid_stats, tmp_path, monkeypatch):
    """With ``--skip-data-check`` the corrupt image is not looked at before the run opens (stopped there)."""
    import galip.train

    class Opened(Exception):
        pass

    def opened(*args, **kwargs):
        raise Opened

    data, _ = _broken_copy(assets, tmp_path, "corrupt image")
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump(tiny_config(assets, tmp_path, data=str(data)).to_dict()))
    monkeypatch.setattr(galip.train, "open_run", opened)
    with pytest.raises(Opened):
        main(["train", "--config", str(config), "--skip-data-check"])
    assert main(["train", "--config", str(config)]) == 2


def test_a_loss_turning_nan_mid_run_stops_in_one_line_keeping_the_last_finite_checkpoint(assets, fid_stats, tmp_path,
                                                                                         capsys, monkeypatch):
    """G's adversarial term made NaN at batch 2 of epoch 1 (last.pt written after batch 1): one line naming epoch,
    step and term, no G update, last.pt byte for byte the one written before, no metrics record."""
    import galip.train

    run = tmp_path / "runs" / "birds" / "run"
    last, calls, seen = run / "checkpoints" / "last.pt", [], {}
    real = galip.train.generator_loss

    def generator_loss(*args, **kwargs):
        g = real(*args, **kwargs)
        calls.append(1)
        if len(calls) == 2:
            seen["last"] = last.read_bytes()
            return g._replace(adv=g.adv * float("nan"), total=g.total * float("nan"))
        return g

    monkeypatch.setattr(galip.train, "generator_loss", generator_loss)
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump(tiny_config(assets, tmp_path, save_every_steps=1).to_dict()))
    assert main(["train", "--config", str(config), "--run-name", "run"]) == 2
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert "Traceback" not in err and lines[-1].startswith(
        "galip train: error: loss term 'G adversarial' is nan at epoch 1, step 1:"), err
    assert last.read_bytes() == seen["last"]
    assert read_checkpoint(last)["step_in_epoch"] == 1 and not (run / "metrics.jsonl").exists()


def test_skip_nonfinite_skips_the_step_and_counts_it(assets, fid_stats, fid_without_sqrtm, tmp_path, capsys,
                                                     monkeypatch):
    """``skip_nonfinite: true``: the NaN step is skipped (not averaged into the epoch's losses), the run ends, and the
    epoch's record counts it."""
    import galip.train

    real, calls = galip.train.generator_loss, []

    def generator_loss(*args, **kwargs):
        g = real(*args, **kwargs)
        calls.append(1)
        return g._replace(adv=g.adv * float("nan"), total=g.total * float("nan")) if len(calls) == 1 else g

    monkeypatch.setattr(galip.train, "generator_loss", generator_loss)
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump(tiny_config(assets, tmp_path, batch_size=32, skip_nonfinite=True).to_dict()))
    assert main(["train", "--config", str(config), "--run-name", "run"]) == 0
    (record,) = records(tmp_path / "runs" / "birds" / "run")["metrics.jsonl"]
    assert record["skipped_nonfinite"] == 1 and len(calls) == 2
    assert all(math.isfinite(v) for v in record["loss"].values()), record

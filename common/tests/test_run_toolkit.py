"""Config loading (typed, one-line errors), atomic checkpoints and seeding."""

from dataclasses import dataclass, field

import pytest
import torch

from common.cli import reproduce_config, run_cli
from common.configs import load_config
from common.errors import DataFormatError, require_file
from common.fit import Progress
from common.io import atomic_save, truncate_metrics


@dataclass
class Demo:
    name: str = "x"
    lr: float = 1e-3
    steps: int = 5
    grid: float | list[float] = field(default_factory=lambda: [0.1, 0.2])
    flag: bool = False
    optional: str | None = None


def test_yaml_then_overrides_with_int_accepted_for_float(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("lr: 1\nsteps: 7\ngrid: 0.5\n")
    cfg = load_config(Demo, path, steps=9, name=None)
    assert cfg == Demo(lr=1.0, steps=9, grid=0.5)
    assert isinstance(cfg.lr, float)


@pytest.mark.parametrize("text, fragments", [
    ("stpes: 3\n", ["unknown key 'stpes'", "did you mean 'steps'"]),
    ("steps: 2.5\n", ["key 'steps'"]),
    ("flag: 1\n", ["key 'flag'"]),
    ("grid: [0.1, oops]\n", ["key 'grid'"]),
    ("- a\n- b\n", ["expected a mapping"]),
    ("a: [1\n", ["invalid YAML"]),
])
def test_bad_config_is_one_line_error_naming_file_and_key(tmp_path, text, fragments):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(DataFormatError) as err:
        load_config(Demo, path)
    msg = str(err.value)
    assert "\n" not in msg and "bad.yaml" in msg
    for f in fragments:
        assert f in msg


def test_missing_config_file(tmp_path):
    with pytest.raises(DataFormatError, match="config file not found"):
        load_config(Demo, tmp_path / "none.yaml")


def test_atomic_save_leaves_no_temporary_file(tmp_path):
    atomic_save({"a": torch.ones(2)}, tmp_path / "ck" / "last.pt")
    assert [p.name for p in (tmp_path / "ck").iterdir()] == ["last.pt"]
    assert torch.equal(torch.load(tmp_path / "ck" / "last.pt")["a"], torch.ones(2))


def test_progress_follows_mmrec_early_stopping_with_rounded_scores():
    p = Progress()
    assert p.record({"r": 0.10001}, {"r": 0.2}, "r", stopping_step=1)
    p.epoch += 1
    assert not p.record({"r": 0.10004}, {"r": 0.3}, "r", stopping_step=1)  # equal after rounding: no gain
    assert not p.stopped
    p.epoch += 1
    assert not p.record({"r": 0.05}, {"r": 0.3}, "r", stopping_step=1)
    assert p.stopped and p.bad_epochs == 2  # stops once the count exceeds stopping_step
    assert p.best_epoch == 0 and p.best_test == {"r": 0.2}


def test_truncate_metrics_drops_later_and_cut_lines(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"epoch": 0}\n{"epoch": 1}\n{"epoch": 2}\n{"epo')
    truncate_metrics(path, 2)
    assert path.read_text() == '{"epoch": 0}\n{"epoch": 1}\n'


def test_run_cli_turns_bad_input_into_one_line_and_status_2(capsys):
    def bad():
        raise DataFormatError("f.yaml", "broken")

    assert run_cli("prog cmd", bad) == 2
    assert capsys.readouterr().err == "prog cmd: error: f.yaml: broken\n"
    assert run_cli("prog cmd", lambda: None) == 0


def test_run_cli_turns_a_file_the_system_cannot_open_into_one_line_naming_it(tmp_path, capsys):
    for path, reason in ((tmp_path, "Is a directory"), (tmp_path / "none.inter", "No such file or directory")):
        assert run_cli("prog cmd", lambda p=path: open(p).close()) == 2
        assert capsys.readouterr().err == f"prog cmd: error: {path}: {reason}\n"


def test_require_file_says_when_a_directory_stands_where_a_file_should(tmp_path):
    with pytest.raises(DataFormatError, match="interaction file expected, found a directory"):
        require_file(tmp_path, "interaction file")


def test_reproduce_config_writes_synthetic_data_once_and_picks_real_configs(tmp_path, capsys):
    configs = tmp_path / "configs"
    configs.mkdir()
    calls = []

    def load(path, **kw):
        return path.name, kw

    def write(out):
        calls.append(out)
        out.mkdir(parents=True)
        (out / "x.inter").write_text("data")

    target = tmp_path / "cache" / "smoke"
    first = reproduce_config("p", None, configs, target, load, write)
    assert first == ("smoke.yaml", {"data": str(target)}) and (target / "x.inter").is_file()
    assert capsys.readouterr().out.startswith("p: SYNTHETIC embedded default")
    reproduce_config("p", None, configs, target, load, write)
    assert len(calls) == 1 and calls[0].name.startswith(".smoke.partial")  # written aside, then renamed
    assert reproduce_config("p", "/data/baby", configs, target, load, write) == (
        "baby.yaml", {"data": "/data/baby", "dataset": "baby"})


def test_device_flag_defaults_to_auto_which_is_cuda_only_when_present():
    import argparse

    from common.cli import add_device_argument
    from common.configs import device_name

    parser = argparse.ArgumentParser()
    add_device_argument(parser)
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert parser.parse_args([]).device == expected == device_name("auto")
    assert parser.parse_args(["--device", "cuda:1"]).device == "cuda:1"
    train = argparse.ArgumentParser()
    add_device_argument(train, default=None)  # train: the config's device unless given
    assert train.parse_args([]).device is None and train.parse_args(["--device", "auto"]).device == expected


def test_cli_contract_accepts_the_shared_shape_and_names_each_break():
    from common.cli import (
        add_device_argument,
        add_reproduce_command,
        add_run_arguments,
        command_parser,
        contract_violations,
    )

    def build(order=("train", "eval", "bench"), eval_device="auto", run_flags=True):
        p, sub = command_parser("demo", "a demo CLI")
        for verb in order:
            c = sub.add_parser(verb)
            if verb == "train" and run_flags:
                add_run_arguments(c, "configs/x.yaml")
            if verb == "eval":
                add_device_argument(c, default=eval_device)
        add_reproduce_command(sub, "demo", "data")
        sub.add_parser("extra")
        return p

    assert contract_violations(build()) == []
    assert contract_violations(build(order=("eval", "train", "bench")))[0].startswith("commands start")
    assert contract_violations(build(eval_device="cpu")) == ["eval --device defaults to 'cpu'"]
    assert contract_violations(build(run_flags=False))[0].startswith("train flags start")
    with pytest.raises(SystemExit):
        build().parse_args(["--version"])


def test_config_device_auto_resolves_to_cuda_only_when_present(tmp_path):
    @dataclass
    class WithDevice:
        device: str = "auto"

    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert load_config(WithDevice).device == expected
    assert load_config(WithDevice, device="cpu").device == "cpu"


def test_run_folder_rule_refuses_reuse_without_resume_and_resume_without_checkpoint(tmp_path):
    from types import SimpleNamespace

    from common.run_folder import check_run_directory, run_directory

    config = SimpleNamespace(runs_dir=str(tmp_path / "runs"), dataset="d", run_name="a")
    run = run_directory(config)
    assert run == tmp_path / "runs" / "d" / "a"
    check_run_directory(run, resume=False)  # a new name: fine
    with pytest.raises(DataFormatError, match="nothing to resume"):
        check_run_directory(run, resume=True)
    (run / "grid_point" / "checkpoints").mkdir(parents=True)  # a grid's run counts
    (run / "grid_point" / "checkpoints" / "last.pt").write_bytes(b"")
    with pytest.raises(DataFormatError, match="--resume or a new --run-name"):
        check_run_directory(run, resume=False)
    check_run_directory(run, resume=True)
    config.run_name = None  # unnamed: with --resume the newest run of the dataset, else a new timestamp
    assert run_directory(config, resume=True) == run and run_directory(config).name[:2] == "20"


CHILD = """
import json, pathlib, sys, time
import torch
from common.io import truncate_metrics
run = pathlib.Path(sys.argv[1]); last = run / "last.pt"; run.mkdir(exist_ok=True)
start = torch.load(last)["epoch"] + 1 if "--resume" in sys.argv else 0
truncate_metrics(run / "metrics.jsonl", start)  # a record written after the checkpoint the kill left
for epoch in range(start, 4):
    time.sleep(0.3)
    with open(run / "metrics.jsonl", "a") as f:
        f.write(json.dumps({"epoch": epoch, "value": epoch * 2, "train_s": time.time()}) + "\\n")
    torch.save({"epoch": epoch}, last)
"""


def test_kill_then_resume_kills_a_child_mid_run_and_records_ignore_timings(tmp_path):
    import sys

    from common.resume_check import kill_then_resume, records

    script = tmp_path / "child.py"
    script.write_text(CHILD)
    kill_then_resume([sys.executable, str(script), str(tmp_path / "run")], tmp_path / "run", after=2)
    got = records(tmp_path / "run")["metrics.jsonl"]
    assert [r["epoch"] for r in got] == [0, 1, 2, 3] and got[0] == {"epoch": 0, "value": 0}
    with pytest.raises(AssertionError, match="ended .* before it could be killed"):
        kill_then_resume([sys.executable, "-c", "pass"], tmp_path / "never", after=1)


def test_labels_name_every_part_that_is_not_the_papers():
    from common.labels import data_banner, run_label

    assert data_banner(False) == "real data" and data_banner(True).startswith("SYNTHETIC data")
    assert run_label(False) == ""
    assert run_label(True) == " [SYNTHETIC data]"
    assert run_label(True, "OpenAI CLIP") == " [SYNTHETIC data, STAND-IN weights, not OpenAI CLIP]"
    assert run_label(False, "OpenAI CLIP") == " [STAND-IN weights, not OpenAI CLIP]"

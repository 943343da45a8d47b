"""The command line follows the contract every project shares: verbs, flags, --device auto, kill and resume."""

import dataclasses
import subprocess
import sys

import pytest
import torch
import yaml

import storyimager.train as trainer
from common.cli import contract_violations
from common.metrics.fid import FID_WEIGHTS_SOURCE, TORCHVISION_INCEPTION_SOURCE
from common.metrics.fsd import R2PLUS1D_SOURCE
from common.resume_check import kill_then_resume, records
from storyimager.cli import main, parser


def test_cli_has_the_shared_verbs_and_flags():
    assert contract_violations(parser()) == []


def test_train_killed_mid_epoch_and_resumed_ends_as_an_uninterrupted_run(config, tmp_path):
    """A checkpoint every 3 steps, records every 2: SIGKILL after the second record (inside the epoch's 12
    steps), then --resume from the step-3 checkpoint or later; the same records and the same weights."""
    path = tmp_path / "c.yaml"
    values = dataclasses.asdict(config(epochs=1, save_every=3, log_every=2))
    path.write_text(yaml.safe_dump({k: v for k, v in values.items() if k != "run_name"}))
    runs = tmp_path / "runs" / "smoke"

    def command(name):
        return [sys.executable, "-m", "storyimager.cli", "train", "--config", str(path), "--run-name", name]

    assert subprocess.run(command("straight"), capture_output=True).returncode == 0
    kill_then_resume(command("killed"), runs / "killed", after=2)
    assert records(runs / "straight") == records(runs / "killed")
    a, b = (torch.load(runs / name / "model.pt", weights_only=False)["model"] for name in ("straight", "killed"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


class _RunStarted(Exception):
    pass


def _start_run(*args, **kwargs):
    raise _RunStarted


SOURCES = {"fid_weights": FID_WEIGHTS_SOURCE, "classifier": "`storyimager train-classifier --config",
           "classifier_weights": TORCHVISION_INCEPTION_SOURCE, "fsd_weights": R2PLUS1D_SOURCE}


@pytest.mark.parametrize("missing", [*SOURCES, None])
def test_train_refuses_in_one_line_naming_each_missing_evaluation_file_before_the_run(missing, config, tmp_path,
                                                                                       capsys, monkeypatch):
    """Before any model is built or run folder made, one stderr line names the missing file's key, path and where
    it comes from (the classifier: the train-classifier command; its init is needed only to make it). With every
    file present the run starts."""
    files = {key: tmp_path / f"{key}.pth" for key in SOURCES}
    gone = {missing, "classifier"} if missing == "classifier_weights" else {missing}
    for key, path in files.items():
        if key not in gone:
            path.touch()  # the preflight reads nothing, so an empty file stands in
    values = dataclasses.asdict(config(**{key: str(path) for key, path in files.items()}))
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump({k: v for k, v in values.items() if k != "run_name"}))
    monkeypatch.setattr(trainer, "build_model", _start_run)
    capsys.readouterr()
    if missing is None:
        with pytest.raises(_RunStarted):
            main(["train", "--config", str(cfg)])
        return
    assert main(["train", "--config", str(cfg)]) == 2
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith(f"storyimager: error: {cfg}: {len(gone)} problem"), lines[0]
    assert f"config key '{missing}': {files[missing]} does not exist" in lines[0]
    assert SOURCES[missing] in lines[0]
    if "classifier" in gone:
        assert f"`storyimager train-classifier --config {cfg} --data" in lines[0]
    assert not (tmp_path / "runs").exists()


def test_paper_setting_shapes_are_stable_diffusion_1_5():
    """The bench's UNet, VAE and CLIP text encoder have SD 1.5's parameter counts (built on the meta device)."""
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    from storyimager.paper_bench import SD15

    with torch.device("meta"):
        unet = UNet2DConditionModel(in_channels=4, out_channels=4, **SD15.unet)
        vae = AutoencoderKL(in_channels=3, out_channels=3, latent_channels=4, **SD15.vae)
        text = CLIPTextModel(CLIPTextConfig(vocab_size=49408, **SD15.text))
    counts = [sum(p.numel() for p in m.parameters()) for m in (unet, vae, text)]
    assert counts == [859_520_964, 83_653_863, 123_060_480]


def _tiny_shapes(width=32):
    from storyimager.paper_bench import Shapes

    blocks = dict(hidden_size=width, intermediate_size=4 * width, num_hidden_layers=2, num_attention_heads=4)
    return Shapes(
        unet=dict(sample_size=8, layers_per_block=1, block_out_channels=(width, 2 * width), norm_num_groups=8,
                  down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
                  up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"), cross_attention_dim=width, attention_head_dim=8),
        vae=dict(block_out_channels=(width, 2 * width), down_block_types=("DownEncoderBlock2D",) * 2,
                 up_block_types=("UpDecoderBlock2D",) * 2, norm_num_groups=8, sample_size=16),
        text=dict(blocks, max_position_embeddings=77),
        blip_vision=dict(blocks, image_size=32, patch_size=16),
        blip_text=dict(blocks, encoder_hidden_size=width, vocab_size=100))


def test_paper_setting_bench_prints_both_rows_at_a_tiny_size(config):
    """``bench --paper-setting``'s code path on tiny shapes: the storyboard is one sampling and AR-LDM's frame by
    frame K samplings of timed + 1 UNet steps each; seconds per story follow the extrapolation rule; both rows print."""
    from storyimager.paper_bench import paper_bench, report

    cfg = config(sample_steps=250, guidance=6.0)
    results = paper_bench(cfg, _tiny_shapes(), timed=1, threads=1)
    for row, samplings in (("storyboard", 1), ("frame_by_frame", cfg.frames)):
        r = results[row]
        assert r["samplings"] == samplings and len(r["calls"]) == 2 * samplings and r["timed"] == 2 * samplings - 1
        assert r["per_step"] > 0 and r["one_off"] > 0 and r["peak_mib"] >= r["built_mib"] > 0
        assert r["seconds"] == pytest.approx(r["one_off"] + 250 * samplings * r["per_step"])
    lines = report(cfg, results, 1).splitlines()
    assert [line.split()[0] for line in lines[2:4]] == ["storyboard", "frame_by_frame"], lines
    assert "RANDOM weights" in lines[0] and "extrapolated" in lines[4]


@pytest.mark.parametrize("dataset", ["pororo", "flintstones"])
def test_reproduce_on_data_refuses_in_one_line_before_training(dataset, stories, tmp_path, monkeypatch, capsys):
    """``reproduce --data <dir>/<dataset>`` with the paper config's weights absent: one line names them all, FSD's
    included; the missing classifier is not refused (reproduce trains it) but its initialisation is."""
    monkeypatch.chdir(tmp_path)  # the config's relative weights/ and runs/ resolve here
    (tmp_path / dataset).symlink_to(stories, target_is_directory=True)
    capsys.readouterr()
    assert main(["reproduce", "--data", str(tmp_path / dataset)]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and f"{dataset}.yaml: 4 problems found before training" in lines[0], lines
    for key in ("pretrained", "fid_weights", "classifier_weights", "fsd_weights"):
        assert f"config key '{key}'" in lines[0]
    assert not (tmp_path / "runs").exists()


def test_train_on_unlabelled_data_does_not_ask_for_the_classifier(config, stories, tmp_path, monkeypatch):
    """AR-LDM's own .h5 holds no character labels, so Char-F1 is skipped and a missing classifier (and its
    initialisation) does not stop the run."""
    import shutil

    import h5py

    data = tmp_path / "unlabelled.h5"
    shutil.copy(next(stories.glob("*.h5")), data)
    with h5py.File(data, "a") as f:
        for split in f:
            del f[split]["labels"]
    values = dataclasses.asdict(config(data=str(data), classifier=str(tmp_path / "no.pt"),
                                       classifier_weights=str(tmp_path / "no.pth")))
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump({k: v for k, v in values.items() if k != "run_name"}))
    monkeypatch.setattr(trainer, "build_model", _start_run)
    with pytest.raises(_RunStarted):
        main(["train", "--config", str(cfg)])

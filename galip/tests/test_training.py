"""The training step, AMP scaler floor, determinism, exact resume, checkpoints and one-line errors."""

from __future__ import annotations

import pytest
import torch
from conftest import tiny_config

from common import distributed
from common.checkpoints import read_checkpoint
from common.errors import DataFormatError, WeightsNotFoundError
from common.resume_check import records
from common.rng import set_seed
from galip.cli import main
from galip.nets import load_clip_model
from galip.train import SCALE_RESET, Trainer, train

CPU = distributed.Dist(0, 1, torch.device("cpu"))


def _trainer(config) -> Trainer:
    set_seed(config.seed)
    trainer = Trainer(config, load_clip_model(config, CPU.device), CPU)
    trainer.train_mode()
    return trainer


def _batch(n: int = 8):
    from common.data.text_image import ClipTokenizer

    tok = ClipTokenizer()
    gen = torch.Generator().manual_seed(0)
    captions = [f"a {c} circle in the middle" for c in ("red", "blue", "green", "yellow")] * (n // 4)
    return torch.rand(n, 3, 32, 32, generator=gen) * 2 - 1, torch.stack([tok(c)[0] for c in captions])


def test_step_trains_d_c_and_g_and_never_the_frozen_clip(assets, tmp_path):
    trainer = _trainer(tiny_config(assets, tmp_path))
    nets = trainer.nets
    before = {name: {k: v.clone() for k, v in net.state_dict().items()}
              for name, net in (("G", nets.netG), ("D", nets.netD), ("C", nets.netC))}
    clip_text = {k: v.clone() for k, v in nets.text_encoder.state_dict().items()}
    losses = trainer.step(*_batch())
    trainer.step(*_batch())  # step 1 leaves the weights before zero-initialised gates (gamma, linear2) in place
    assert set(losses) == {"d_total", "d_real", "d_mis", "d_fake", "d_gp", "g_total", "g_adv", "g_sim"}
    assert all(torch.isfinite(torch.tensor(v)) for v in losses.values())
    total = losses["d_real"] + (losses["d_fake"] + losses["d_mis"]) / 2 + losses["d_gp"]
    assert abs(losses["d_total"] - total) < 1e-5
    assert abs(losses["g_total"] - (-losses["g_adv"] - 4.0 * losses["g_sim"])) < 1e-5
    for name, net in (("G", nets.netG), ("D", nets.netD), ("C", nets.netC)):
        for k, p in net.named_parameters():
            moved = not torch.equal(p.detach(), before[name][k])
            block = k.split(".conv_s.")[0] if ".conv_s." in k else None  # 1x1 shortcut unused when fin == fout
            unused = name == "D" and block is not None and not net.get_submodule(block).learned_shortcut
            assert moved == (p.requires_grad and not unused), f"{name}.{k}: requires_grad={p.requires_grad}"
    assert all(torch.equal(v, clip_text[k]) for k, v in nets.text_encoder.state_dict().items())
    # Adam with beta1 = 0 moves a weight by at most about lr per step (lr_d 4e-4, official betas (0, 0.9))
    w = nets.netC.joint_conv[0].weight
    step = (w.detach() - before["C"]["joint_conv.0.weight"]).abs().max()
    assert 4e-4 < step < 2 * 4e-4 / (1 - 0.9**2) ** 0.5 + 1e-6


def test_scaler_below_floor_is_reset_to_16384(assets, tmp_path):
    trainer = _trainer(tiny_config(assets, tmp_path))
    scaler = torch.amp.GradScaler("cpu", init_scale=40.0, growth_interval=2000)
    w = torch.nn.Parameter(torch.ones(3))
    opt = torch.optim.Adam([w], lr=1e-3)
    trainer._scaled_step((w * 2).sum(), opt, scaler)
    assert scaler.get_scale() == SCALE_RESET
    scaler = torch.amp.GradScaler("cpu", init_scale=128.0, growth_interval=2000)
    trainer._scaled_step((w * 2).sum(), opt, scaler)
    assert scaler.get_scale() == 128.0  # above the official scaler_min (64): untouched


def test_same_seed_same_weights(assets, tmp_path, fid_stats, fid_without_sqrtm):
    runs = [train(tiny_config(assets, tmp_path, run_name=f"r{i}", epochs=1, test_interval=5)) for i in range(2)]
    a, b = (read_checkpoint(r / "checkpoints" / "last.pt")["model"] for r in runs)
    for net in ("netG", "netD", "netC"):
        assert all(torch.equal(a[net][k], b[net][k]) for k in a[net]), net


def test_resume_inside_an_epoch_equals_the_uninterrupted_run(assets, tmp_path, fid_stats, fid_without_sqrtm,
                                                             monkeypatch):
    """last.pt every 3 batches (save_every_steps): a run that dies at epoch 2's 5th batch (8 per epoch) resumes
    from its 3rd and ends with the weights and records of the uninterrupted run."""
    def config(name):
        return tiny_config(assets, tmp_path, run_name=name, epochs=2, test_interval=5, save_every_steps=3)

    whole = train(config("whole"))
    real, calls = Trainer.step, []

    def dies_at_batch_13(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 13:
            raise KeyboardInterrupt("killed")
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Trainer, "step", dies_at_batch_13)
    with pytest.raises(KeyboardInterrupt):
        train(config("part"))
    monkeypatch.setattr(Trainer, "step", real)
    part = whole.parent / "part"
    state = read_checkpoint(part / "checkpoints" / "last.pt")
    assert (state["epoch"], state["step_in_epoch"]) == (1, 3)
    with (part / "metrics.jsonl").open("a") as f:  # a kill in the middle of writing a record
        f.write('{"epoch": 2, "lo')
    train(config("part"), resume=True)
    a, b = (read_checkpoint(r / "checkpoints" / "last.pt") for r in (whole, part))
    for net in ("netG", "netD", "netC"):
        assert all(torch.equal(a["model"][net][k], b["model"][net][k]) for k in a["model"][net]), net
    opt_a, opt_b = a["optimizers"]["optimizer_D"]["state"], b["optimizers"]["optimizer_D"]["state"]
    assert all(torch.equal(opt_a[i]["exp_avg_sq"], opt_b[i]["exp_avg_sq"]) for i in opt_a)
    assert records(whole) == records(part) and b["step_in_epoch"] == 0
    assert [r["epoch"] for r in records(part)["metrics.jsonl"]] == [1, 2]  # the torn record is gone
    assert "eval" in records(part)["metrics.jsonl"][-1]  # the last epoch always evaluates
    # the checkpoint has the official state_epoch layout plus our extras
    assert set(a) >= {"model", "optimizers", "epoch", "scalers", "rng", "config"}


def test_fresh_run_refuses_to_overwrite_and_resume_needs_a_checkpoint(assets, tmp_path, fid_stats, fid_without_sqrtm):
    config = tiny_config(assets, tmp_path, run_name="x", epochs=1, test_interval=5)
    try:
        train(config, resume=True)
    except DataFormatError as err:
        assert "nothing to resume" in str(err)
    else:
        raise AssertionError("resume without a checkpoint must fail")
    train(config)
    try:
        train(config)
    except DataFormatError as err:
        assert "--resume" in str(err)
    else:
        raise AssertionError("a second fresh run into the same folder must fail")


def test_bad_inputs_fail_with_one_line(assets, tmp_path, fid_stats, capsys):
    base = ["train", "--config", str(tmp_path / "c.yaml"), "--runs-dir", str(tmp_path / "runs")]
    config = tiny_config(assets, tmp_path)
    cases = {
        "clip_weights": (tmp_path / "absent.pt", "ViT-B-32.pt"),
        "fid_weights": (tmp_path / "absent.pth", "inception_v3_google-0cc3c7bd.pth"),
        "data": (tmp_path / "nodata", "filenames.pickle"),
    }
    import yaml

    for key, (value, expected) in cases.items():
        values = {**config.to_dict(), key: str(value)}
        (tmp_path / "c.yaml").write_text(yaml.safe_dump(values))
        assert main(base) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and str(value) in err and expected in err, err
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(b"not a checkpoint")
    (tmp_path / "c.yaml").write_text(yaml.safe_dump({**config.to_dict(), "clip_weights": str(corrupt)}))
    assert main(base) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "corrupt.pt" in err
    (tmp_path / "c.yaml").write_text(yaml.safe_dump({**config.to_dict(), "batch_size": 1}))
    assert main(base) == 2
    assert "batch_size" in capsys.readouterr().err


def test_missing_weights_error_names_the_key_and_the_source(assets, tmp_path):
    config = tiny_config(assets, tmp_path, clip_weights=str(tmp_path / "nope.pt"))
    try:
        load_clip_model(config, CPU.device)
    except WeightsNotFoundError as err:
        assert "clip_weights" in str(err) and "openaipublic" in str(err)
    else:
        raise AssertionError("missing CLIP weights must raise")


def test_mixed_precision_step_runs_with_scalers(assets, tmp_path):
    """The AMP branch (official MA_GP_MP and GradScalers) on CPU autocast: finite losses, scalers in use."""
    trainer = _trainer(tiny_config(assets, tmp_path, mixed_precision=True))
    assert trainer.scaler_D.is_enabled() and trainer.scaler_G.is_enabled()
    losses = trainer.step(*_batch())
    assert all(torch.isfinite(torch.tensor(v)) for v in losses.values()), losses
    assert trainer.scaler_D.get_scale() >= 64 and trainer.scaler_G.get_scale() >= 64
    state = trainer.state_dict()["scalers"]
    assert state["scaler_D"]["scale"] == trainer.scaler_D.get_scale()


def test_an_amp_ma_gp_overflow_is_left_to_the_scaler_and_stops_an_fp32_run(assets, tmp_path, monkeypatch):
    """Under AMP the MA-GP is computed from GradScaler-scaled gradients (official MA_GP_MP), so its overflow (fp16 at
    a large scale) is the scaler's: the step goes on, the scaler skips D's update and halves its scale. In float32
    the same inf MA-GP stops training before D's update, naming the term."""
    import galip.train
    from common.errors import NonFiniteLoss

    real = galip.train.discriminator_loss

    def overflowing(*args, **kwargs):
        d = real(*args, **kwargs)
        return d._replace(gp=d.gp * float("inf"), total=d.total * float("inf"))

    monkeypatch.setattr(galip.train, "discriminator_loss", overflowing)
    amp = _trainer(tiny_config(assets, tmp_path, mixed_precision=True))
    scale, d_before = amp.scaler_D.get_scale(), {k: v.clone() for k, v in amp.nets.netD.state_dict().items()}
    assert amp.step(*_batch()) is not None
    assert amp.scaler_D.get_scale() == scale / 2
    assert all(torch.equal(v, d_before[k]) for k, v in amp.nets.netD.state_dict().items())
    fp32 = _trainer(tiny_config(assets, tmp_path, mixed_precision=False))
    d_before = {k: v.clone() for k, v in fp32.nets.netD.state_dict().items()}
    with pytest.raises(NonFiniteLoss, match="loss term 'D MA-GP' is inf at epoch 1, step 0"):
        fp32.step(*_batch())
    assert all(torch.equal(v, d_before[k]) for k, v in fp32.nets.netD.state_dict().items())
    assert _trainer(tiny_config(assets, tmp_path, mixed_precision=False, skip_nonfinite=True)).step(*_batch()) is None

"""Training: loss parts, exact resume, determinism, the checkpoint layout, and one-line errors of the trainer."""

from __future__ import annotations

import json
import math

import pytest
import torch
from conftest import tiny_config

from common.checkpoints import read_checkpoint
from common.distributed import Dist
from common.errors import DataFormatError, WeightsNotFoundError
from denet.train import Trainer, train


def _weights(run_dir):
    return read_checkpoint(run_dir / "checkpoints" / "last.pt")["model"]


def test_step_returns_finite_loss_parts_and_moves_the_generator(assets, tmp_path):
    config = tiny_config(assets, tmp_path, device="cpu", imsize=256, damsm_w=5.0, l1_w=1.0, rec_w=10.0)  # paper cfg
    trainer = Trainer(config, Dist(0, 1, torch.device("cpu")))
    trainer.train_mode()
    before = {k: v.clone() for k, v in trainer.nets.netG.state_dict().items()}
    images = torch.rand(4, 3, 256, 256) * 2 - 1
    tokens = torch.randint(1, 20, (4, 18))
    lengths = torch.tensor([18, 12, 7, 3])
    losses = trainer.step(images, tokens, lengths, torch.tensor([1, 1, 2, 3]))
    assert set(losses) == {"d_total", "d_real", "d_mis", "d_fake", "d_gp", "g_total", "g_adv", "g_damsm", "g_l1",
                            "g_rec"}
    assert all(math.isfinite(v) for v in losses.values())
    assert losses["g_damsm"] > 0 and losses["g_l1"] > 0 and losses["g_rec"] > 0
    after = trainer.nets.netG.state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before if after[k].is_floating_point())
    # the frozen DAMSM encoders do not move
    assert all(not p.requires_grad for p in trainer.nets.text_encoder.parameters())


def test_resume_continues_exactly_and_runs_are_deterministic(assets, tmp_path, fid_without_sqrtm, monkeypatch):
    """last.pt every 2 batches (save_every_steps): a run that dies at epoch 2's 3rd batch (4 per epoch), after
    writing a torn record, resumes from its 2nd batch and ends as the uninterrupted run."""
    common = dict(save_interval=1, test_interval=100, gen_interval=100, save_every_steps=2)
    straight = train(tiny_config(assets, tmp_path, run_name="straight", epochs=2, **common))
    real, calls = Trainer.step, []

    def dies_at_batch_7(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 7:
            raise KeyboardInterrupt("killed")
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Trainer, "step", dies_at_batch_7)
    with pytest.raises(KeyboardInterrupt):
        train(tiny_config(assets, tmp_path, run_name="resumed", epochs=2, **common))
    monkeypatch.setattr(Trainer, "step", real)
    cut = straight.parent / "resumed"
    state = read_checkpoint(cut / "checkpoints" / "last.pt")
    assert (state["epoch"], state["step_in_epoch"]) == (1, 2)
    with (cut / "metrics.jsonl").open("a") as f:  # a kill in the middle of writing a record
        f.write('{"epoch": 2, "lo')
    resumed = train(tiny_config(assets, tmp_path, run_name="resumed", epochs=2, **common), resume=True)
    a, c = _weights(straight), _weights(resumed)
    for net in ("netG", "netD", "netC"):
        for key in a[net]:
            assert torch.equal(a[net][key], c[net][key]), (net, key)  # exact resume
    assert [json.loads(line)["epoch"] for line in (resumed / "metrics.jsonl").read_text().splitlines()] == [1, 2]
    first = [json.loads((run / "metrics.jsonl").read_text().splitlines()[0])["loss"] for run in (straight, resumed)]
    assert first[0] == first[1]  # determinism: two runs of the same seed log identical epoch-1 losses
    records = [json.loads(line) for line in (straight / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records] == [1, 2]
    final = records[-1]["eval"]  # the last epoch always evaluates
    assert set(final) >= {"mp", "sim", "diff", "mse", "fid", "n_samples", "colour_hit", "background_l1"}
    assert final["n_samples"] == 8 and 0 <= final["diff"] <= 1
    state = read_checkpoint(straight / "checkpoints" / "last.pt")
    assert set(state) >= {"model", "optimizers", "epoch", "scalers", "rng", "config"}  # official layout + extras
    assert set(state["optimizers"]) == {"optimizer_G", "optimizer_D"} and state["epoch"] == 2
    assert (straight / "losses.png").is_file() and (straight / "previews" / "epoch_0002.png").is_file()


def test_trainer_refuses_to_overwrite_or_resume_nothing(assets, tmp_path, fid_without_sqrtm):
    config = tiny_config(assets, tmp_path, run_name="r", test_interval=100)
    with pytest.raises(DataFormatError, match="nothing to resume"):
        train(config, resume=True)
    train(config)
    with pytest.raises(DataFormatError, match="already holds a checkpoint"):
        train(config)


def test_missing_damsm_file_names_the_key_and_the_source(assets, tmp_path):
    with pytest.raises(WeightsNotFoundError, match="text_encoder.*DF-GAN"):
        train(tiny_config(assets, tmp_path, text_encoder=str(tmp_path / "absent.pth")))


def test_damsm_file_of_another_vocabulary_is_one_line(assets, tmp_path):
    from denet.damsm import RNN_ENCODER

    torch.save(RNN_ENCODER(7).state_dict(), tmp_path / "text.pth")
    with pytest.raises(DataFormatError, match="encoder.weight has shape"):
        train(tiny_config(assets, tmp_path, text_encoder=str(tmp_path / "text.pth")))

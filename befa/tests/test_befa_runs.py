"""BeFA end to end: adapter size, exact base when off, base vs BeFA comparison, resume, CLI, attribution."""

import csv
import json
import sys

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from befa.adapter import BeFA, adapter_parameters
from befa.attribute import model_transform
from befa.cli import main
from befa.config import BeFAConfig, load_config
from befa.experiment import compare
from befa.train import build_model, load_data, trainer
from common.bad_input_check import one_line_error, run_unprivileged
from common.checkpoints import read_checkpoint
from common.data.clip_weights import write_random_clip
from common.metrics.ranking import popularity_baseline
from common.synthetic import mmrec as synthetic_mmrec


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return synthetic_mmrec.write(tmp_path_factory.mktemp("d") / "tiny", seed=1, n_users=150, n_items=90,
                                 image_dim=48, text_dim=24)


@pytest.mark.parametrize("t, approx", [(1, 12_500), (2, 33_000), (8, 329_000)])
def test_adapter_parameter_count_formula(t, approx):
    n = sum(p.numel() for p in BeFA(64, t, 0.1).parameters())
    assert n == adapter_parameters(64, t) == (64 * 64 * t + 64 * t) + ((64 * t) ** 2 + 64 * t) + (64 * t * 64 + 64)
    assert n == pytest.approx(approx, rel=0.02)


def test_adapter_output_shape_and_range():
    out = BeFA(8, 2, 0.5).eval()(torch.randn(5, 8))
    assert out.shape == (5, 8) and ((out > 0) & (out < 1)).all()


def test_mgcn_adapter_off_is_exact_mgcn(tiny, tmp_path):
    base = dict(data=str(tiny), dataset="tiny", cache_dir=str(tmp_path), model="mgcn")
    data = load_data(load_config(None, **base))
    torch.manual_seed(0)
    off = build_model(load_config(None, **base, adapter=False), data)
    torch.manual_seed(0)
    from mvgcn.config import MGCNConfig
    from mvgcn.train import build_model as build_mgcn

    plain = build_mgcn(MGCNConfig(data=str(tiny), dataset="tiny", cache_dir=str(tmp_path)), data, 0.01)
    assert all(torch.equal(a, b) for a, b in zip(off.model.state_dict().values(), plain.state_dict().values()))
    users, pos, neg = torch.arange(10), torch.arange(10), torch.arange(10, 20)
    assert torch.equal(off.loss(users, pos, neg)["total"], plain.loss(users, pos, neg)["total"])
    torch.manual_seed(0)
    on = build_model(load_config(None, **base, adapter=True), data)
    extra = sum(p.numel() for p in on.parameters()) - sum(p.numel() for p in off.parameters())
    # BeFA replaces the purifier gates (Linear 64 -> 64 each) with the adapters
    assert extra == 2 * adapter_parameters(64, 1) - 2 * (64 * 64 + 64)


def test_compare_every_base_model_with_and_without_befa_beats_popularity_and_writes_csv_png(tmp_path):
    data_dir = synthetic_mmrec.write(tmp_path / "smoke", seed=0)
    config = load_config(None, data=str(data_dir), dataset="smoke", cache_dir=str(tmp_path / "c"), synthetic=True,
                         runs_dir=str(tmp_path / "runs"), run_name="cmp", train_batch_size=256, epochs=8,
                         learning_rate=5e-3)  # from the official grid: VBPR + BeFA learns too slowly at 1e-3
    result = compare(config)
    data = load_data(config)
    pop = popularity_baseline(data.item_popularity(), data.eval_batches("valid"), (20,))["recall@20"]
    for r in result["results"]:  # every base model, with and without the adapter
        assert r["valid"]["recall@20"] >= 1.5 * pop, (r["model"], r["adapter"], r["valid"]["recall@20"], pop)
    root = tmp_path / "runs" / "smoke" / "cmp"
    rows = list(csv.DictReader((root / "comparison.csv").open()))
    assert [(r["model"], r["variant"]) for r in rows[:8]] == [(m, v) for m in ("vbpr", "lattice", "freedom", "mgcn")
                                                               for v in ("base", "BeFA")]
    assert Image.open(root / "comparison.png").size[0] > 0
    assert result["table"].startswith("Base vs base + BeFA on smoke") and "SYNTHETIC" in result["table"]


def lines(run_dir):
    return [json.loads(ln) for ln in (run_dir / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("model", ["freedom", "lattice"])
def test_resume_after_kill_matches_uninterrupted_run(tiny, tmp_path, model):
    config = load_config(None, data=str(tiny), dataset="tiny", cache_dir=str(tmp_path / "c"), model=model,
                         train_batch_size=256, epochs=4)
    data = load_data(config)
    trainer(config, data, tmp_path / "straight").fit()
    trainer(config, data, tmp_path / "killed", max_epochs=2).fit()
    trainer(config, data, tmp_path / "killed").fit(resume=True)
    for a, b in zip(lines(tmp_path / "straight"), lines(tmp_path / "killed"), strict=True):
        assert a["loss"] == b["loss"] and a["valid"] == b["valid"] and a["test"] == b["test"]


def test_grid_selects_on_valid_and_skips_adapter_keys_without_adapter(tiny, tmp_path):
    config = load_config(None, data=str(tiny), dataset="tiny", cache_dir=str(tmp_path / "c"), synthetic=True,
                         runs_dir=str(tmp_path / "runs"), run_name="g", models=["mgcn"], train_batch_size=256,
                         epochs=2, grid={"learning_rate": [1e-3, 5e-3], "layer_times": [1, 2]})
    compare(config)
    base = json.loads((tmp_path / "runs" / "tiny" / "g" / "mgcn" / "grid.json").read_text())
    befa = json.loads((tmp_path / "runs" / "tiny" / "g" / "mgcn+befa" / "grid.json").read_text())
    assert len(base["runs"]) == 2 and len(befa["runs"]) == 4
    best = max(befa["runs"], key=lambda r: round(r["valid"]["recall@20"], 4))
    assert befa["selected"] == best["point"]


def test_two_grid_shards_and_the_merge_select_what_one_unsharded_grid_selects(tiny, tmp_path, capsys):
    grid = {"learning_rate": [1e-3, 5e-3], "layer_times": [1, 2]}
    base = dict(data=str(tiny), dataset="tiny", cache_dir=str(tmp_path / "c"), models=["mgcn"], train_batch_size=256,
                epochs=2, grid=grid, synthetic=True)
    compare(load_config(None, **base, runs_dir=str(tmp_path / "one"), run_name="g"))
    whole = json.loads((tmp_path / "one" / "tiny" / "g" / "mgcn+befa" / "grid.json").read_text())
    config_file = tmp_path / "grid.yaml"
    config_file.write_text(yaml.safe_dump(base, sort_keys=False))
    cli = ["grid", "--config", str(config_file), "--runs-dir", str(tmp_path / "shards"), "--run-name", "g",
           "--model", "mgcn", "--adapter", "on"]
    assert main([*cli, "--shard", "1/2"]) == 0
    assert main([*cli, "--merge"]) == 2  # shard 0 has not run yet
    one_line(capsys, "has not finished")
    assert main([*cli, "--shard", "0/2"]) == 0
    assert main([*cli, "--shard", "0/2", "--resume"]) == 0  # a finished shard's results are read back
    capsys.readouterr()
    assert main([*cli, "--merge"]) == 0
    assert "selected on valid" in capsys.readouterr().out
    merged = json.loads((tmp_path / "shards" / "tiny" / "g" / "mgcn+befa" / "grid.json").read_text())
    assert merged["selected"] == whole["selected"] and merged["runs"] == whole["runs"]


def one_line(capsys, *fragments):
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    for f in fragments:
        assert f in err, err


def test_every_command_has_help(capsys):
    for cmd in ([], ["train"], ["eval"], ["compare"], ["grid"], ["prepare"], ["extract-features"], ["attribute"],
                ["bench"]):
        with pytest.raises(SystemExit) as exit_:
            main([*cmd, "--help"])
        assert exit_.value.code == 0


def test_an_unreadable_interaction_file_and_a_resume_without_checkpoint_are_one_line_and_leave_nothing(tiny,
                                                                                                     tmp_path):
    """Mode 000 (read without root's capabilities): one line naming the file; --resume of a run that does not exist:
    one line naming the folder; neither writes a run folder or a cache."""
    data = tmp_path / "locked"
    data.mkdir()
    for f in tiny.iterdir():
        (data / f.name.replace("tiny", "locked")).write_bytes(f.read_bytes())
    (data / "locked.inter").chmod(0)
    config = tmp_path / "c.yaml"
    config.write_text(f"data: {data}\ndataset: locked\ncache_dir: {tmp_path / 'cache'}\n"
                      f"runs_dir: {tmp_path / 'runs'}\n")
    train = [sys.executable, "-m", "befa.cli", "train", "--config", str(config)]
    one_line_error(run_unprivileged(train), "locked.inter", "Permission denied")
    (data / "locked.inter").chmod(0o644)
    one_line_error(run_unprivileged([*train, "--resume", "--run-name", "typo"]), "typo", "nothing to resume")
    assert not (tmp_path / "runs").exists() and not (tmp_path / "cache").exists()


def test_bad_config_values_are_one_line_errors(tiny, tmp_path, capsys):
    path = tmp_path / "c.yaml"
    path.write_text(f"data: {tiny}\ndataset: tiny\nmodels: [vbpr, bm4]\n")
    assert main(["compare", "--config", str(path)]) == 2
    one_line(capsys, "c.yaml", "bm4")
    path.write_text(f"data: {tiny}\ndataset: tiny\ngrid: {{lr: [1, 2]}}\n")
    assert main(["compare", "--config", str(path)]) == 2
    one_line(capsys, "c.yaml", "grid key 'lr'")
    (tmp_path / "nofeat").mkdir()
    for f in tiny.iterdir():
        if f.name != "image_feat.npy":
            (tmp_path / "nofeat" / f.name.replace("tiny", "nofeat")).write_bytes(f.read_bytes())
    path.write_text(f"data: {tmp_path / 'nofeat'}\ndataset: nofeat\n")
    assert main(["train", "--config", str(path)]) == 2
    one_line(capsys, "image_feat.npy", "not found")


def test_extract_train_attribute_end_to_end_with_random_clip(tmp_path, capsys):
    """Real loading path of CLIP weights; features -> MGCN + BeFA -> attribution PNG of one item."""
    weights = write_random_clip(tmp_path / "ViT-B-32.pt", seed=0, tiny=True)
    items = tmp_path / "items"
    items.mkdir()
    rng = np.random.default_rng(0)
    rows = ["itemID\timage\ttext"]
    for i in range(30):
        img = np.full((64, 64, 3), rng.integers(0, 255, 3), np.uint8)
        img[16:48, 16:48] = rng.integers(0, 255, 3)
        Image.fromarray(img).save(items / f"{i}.png")
        rows.append(f"{i}\t{i}.png\ta {['red', 'blue', 'green'][i % 3]} square on a plain background")
    (items / "items.tsv").write_text("\n".join(rows) + "\n")
    data = synthetic_mmrec.write(tmp_path / "shop", seed=2, n_users=40, n_items=30, image_dim=8, text_dim=8)
    assert main(["extract-features", "--items", str(items), "--clip-weights", str(weights), "--out", str(data),
                 "--batch-size", "8"]) == 0
    assert np.load(data / "image_feat.npy").shape == (30, 512)
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"data: {data}\ndataset: shop\nsynthetic: true\ncache_dir: {tmp_path / 'g'}\n"
                   f"runs_dir: {tmp_path / 'runs'}\nepochs: 1\ntopk: [5, 10]\nvalid_metric: recall@10\n")
    assert main(["train", "--config", str(cfg), "--model", "mgcn", "--adapter", "on", "--run-name", "r"]) == 0
    out = capsys.readouterr().out
    trained = json.loads(out[out.index("{"):out.rindex("}") + 1])
    best = tmp_path / "runs" / "shop" / "r" / "checkpoints" / "best.pt"
    assert main(["eval", "--checkpoint", str(best)]) == 0  # the same numbers as training's best-valid epoch
    out = capsys.readouterr().out
    evaluated = json.loads(out[out.index("{"):out.rindex("}") + 1])
    assert evaluated["adapter"] is True and "SYNTHETIC" in out
    for split in ("valid", "test"):
        assert evaluated[split] == pytest.approx(trained[split], rel=1e-6), split
    # the attribution's "after" map goes through the model's own purifier, gate E_id[item] included
    state = read_checkpoint(best, "BeFA")
    config = BeFAConfig(**state["config"])
    model = build_model(config, load_data(config))
    model.load_state_dict(state["model"])
    model.eval()
    features = torch.randn(3, 512, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        direct = model.model.purifiers["image"](features, model.model.item_id_embedding.weight[7])
    torch.testing.assert_close(model_transform(model, "image", 7, best)(features), direct)
    out = tmp_path / "attr" / "item3.png"
    assert main(["attribute", "--checkpoint", str(best), "--items", str(items), "--clip-weights", str(weights),
                 "--item", "3", "--out", str(out), "--grid", "2"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert Image.open(out).size[0] > 0 and out.with_suffix(".md").read_text().strip()
    assert np.array(result["image_before"]).shape == (2, 2) and result["image_before"] != result["image_after"]
    assert main(["attribute", "--checkpoint", str(best), "--items", str(items), "--clip-weights",
                 str(tmp_path / "none.pt"), "--item", "3", "--out", str(out)]) == 2
    one_line(capsys, "clip_weights", "none.pt")

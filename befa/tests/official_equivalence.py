"""Recipe: our ``lattice_befa`` against the official ``LATTICE_BeFA`` (fqldom/BeFA), trained side by side.

Not collected by pytest (it needs a local copy of the official repository). Two processes, because both codes have a
top-level package called ``common``:

1. ``ours``: writes SYNTHETIC MMRec data, trains our model with ``befa``'s own trainer for ``--epochs`` epochs (seed
   999), and saves the initial weights, every BPR batch it drew, and each epoch's loss and valid/test metrics.
2. ``official``: seeds torch the same way, builds the official model from its source folder (no file of it is
   changed; ``Tensor.cuda`` is made a no-op so it runs on the CPU and ``save_best`` is never called), checks that its
   initial weights equal ours (``torch_scatter.scatter_add``, which its graph normalisation imports, is given by
   ``index_add``), replays the same batches under Adam + LambdaLR 0.96^(epoch/50), and saves each
   epoch's loss and final embeddings.
3. ``compare``: ranks the official embeddings with our evaluator (equal to MMRec's) and prints both runs epoch by
   epoch.

    python tests/official_equivalence.py --official /path/to/BeFA --work /tmp/befa_official
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import torch

# our module name -> the official one (the state dicts have the same tensors in the same order)
NAMES = {"features.image": "image_embedding.weight", "features.text": "text_embedding.weight",
         "trs.image.": "image_trs.", "trs.text.": "text_trs.", "adapters.image.": "BeFA_v.",
         "adapters.text.": "BeFA_t."}


def official_name(name: str) -> str:
    for ours, theirs in NAMES.items():
        if name.startswith(ours):
            return theirs + name[len(ours):] if ours.endswith(".") else theirs
    return name


def ours(work: Path, epochs: int, config_overrides: dict) -> None:
    from befa.config import load_config
    from befa.train import load_data, trainer
    from common.synthetic import mmrec as synthetic_mmrec

    data_dir = synthetic_mmrec.write(work / "data" / "equiv", seed=0, n_users=300, n_items=200, name="equiv")
    config = load_config(None, data=str(data_dir), dataset="equiv", cache_dir="", model="lattice_befa",
                         train_batch_size=256, epochs=epochs, stopping_step=epochs, **config_overrides)
    data = load_data(config)
    run = trainer(config, data, work / "ours")
    torch.save({official_name(k): v for k, v in run.model.state_dict().items()}, work / "init.pt")
    batches, epoch = [], run.sampler.epoch
    run.sampler.epoch = lambda: (batches.append(b) or b for b in epoch())
    run.fit()
    torch.save(batches, work / "batches.pt")
    coo = data.splits["train"].tocoo()
    np.savez(work / "train.npz", row=coo.row, col=coo.col, n_users=data.n_users, n_items=data.n_items)
    np.save(data_dir / "image_feat.npy", data.features["image_feat"])
    np.save(data_dir / "text_feat.npy", data.features["text_feat"])
    (work / "config.json").write_text(json.dumps(config.to_dict()))


class _Config(dict):
    def __getitem__(self, key):
        return self.get(key)


def official(work: Path, source: Path) -> None:
    import scipy.sparse as sp

    repo = Path(__file__).resolve().parents[2]  # our editable packages (``common`` above all) leave the path
    sys.path[:] = [str(source / "src")] + [p for p in sys.path if Path(p).resolve().parent.parent != repo]
    torch.Tensor.cuda = lambda self, *args, **kwargs: self  # the official code moves the item graphs with .cuda()
    scatter = types.ModuleType("torch_scatter")  # torch_scatter.scatter_add (a compiled extension) by index_add
    scatter.scatter_add = lambda src, index, dim=0, dim_size=None: torch.zeros(
        dim_size, dtype=src.dtype, device=src.device).index_add(dim, index, src)
    sys.modules["torch_scatter"] = scatter
    from models.LATTICE_BeFA import LATTICE_BeFA

    cfg = json.loads((work / "config.json").read_text())
    train = np.load(work / "train.npz")
    inter = sp.coo_matrix((np.ones(train["row"].size, dtype=np.float32), (train["row"], train["col"])),
                          shape=(int(train["n_users"]), int(train["n_items"])))

    class Dataset:
        def get_user_num(self):
            return int(train["n_users"])

        def get_item_num(self):
            return int(train["n_items"])

    class Loader:
        dataset = Dataset()

        def inter_matrix(self, form="coo"):
            return inter

    config = _Config(
        cl_loss=cfg["cl_loss"], n_ui_layers=cfg["n_ui_layers"], embedding_size=cfg["embedding_size"],
        knn_k=cfg["knn_k"], n_layers=cfg["n_layers"], reg_weight=cfg["reg_weight"], dropout_rate=cfg["dropout_rate"],
        layer_times=cfg["layer_times"], save_path=str(work), model="LATTICE_BeFA", dataset="equiv",
        data_path=str(work / "data") + "/", USER_ID_FIELD="userID", ITEM_ID_FIELD="itemID", NEG_PREFIX="neg__",
        train_batch_size=cfg["train_batch_size"], device=torch.device("cpu"), end2end=False, is_multimodal_model=True,
        vision_feature_file="image_feat.npy", text_feature_file="text_feat.npy")
    torch.manual_seed(cfg["seed"])
    model = LATTICE_BeFA(config, Loader())
    init = torch.load(work / "init.pt")
    theirs = model.state_dict()
    assert list(theirs) == list(init), (list(theirs), list(init))
    same_init = all(torch.equal(theirs[k], init[k]) for k in init)
    print(f"official initialisation equals ours for the same seed: {same_init}")
    model.load_state_dict(init)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg["learning_rate"])
    factor, period = cfg["learning_rate_scheduler"]
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda e: factor ** (e / period))
    batches = torch.load(work / "batches.pt")
    per_epoch = len(batches) // cfg["epochs"]
    out = []
    for epoch in range(cfg["epochs"]):
        model.train()
        losses = []
        for users, pos, neg in batches[epoch * per_epoch:(epoch + 1) * per_epoch]:
            loss = model.calculate_loss((users, pos, neg))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(float(loss))
        scheduler.step()
        model.eval()
        with torch.no_grad():
            users, items = model.forward(model.norm_adj)
        out.append({"loss": float(np.mean(losses)), "users": users.clone(), "items": items.clone()})
    torch.save(out, work / "official.pt")


def compare(work: Path) -> None:
    from befa.config import BeFAConfig
    from befa.train import load_data
    from common.labels import data_banner
    from common.metrics.ranking import evaluate_full_ranking

    config = BeFAConfig(**json.loads((work / "config.json").read_text()))
    data = load_data(config)
    ours_lines = [json.loads(line) for line in (work / "ours" / "metrics.jsonl").read_text().splitlines()]
    print(f"lattice_befa vs the official LATTICE_BeFA — {data_banner(True)}")
    print("epoch | loss ours / official | valid R@20 ours / official | test R@20 ours / official")
    for line, theirs in zip(ours_lines, torch.load(work / "official.pt"), strict=True):
        def score(u, users=theirs["users"], items=theirs["items"]):
            return users[u] @ items.T

        r20 = {split: evaluate_full_ranking(score, data.eval_batches(split, config.eval_batch_size),
                                            config.topk)["recall@20"] for split in ("valid", "test")}
        ours_loss = line["loss"]["bpr"] + line["loss"]["reg"]
        print(f"{line['epoch']:5d} | {ours_loss:.6f} / {theirs['loss']:.6f} | {line['valid']['recall@20']:.4f} / "
              f"{r20['valid']:.4f} | {line['test']['recall@20']:.4f} / {r20['test']:.4f}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--official", required=True, type=Path, help="a local copy of fqldom/BeFA")
    p.add_argument("--work", required=True, type=Path)
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--dropout-rate", type=float, default=0.1)
    p.add_argument("--layer-times", type=int, default=1)
    p.add_argument("--side", choices=("all", "official"), default="all")
    args = p.parse_args()
    if args.side == "official":
        return official(args.work, args.official)
    args.work.mkdir(parents=True, exist_ok=True)
    ours(args.work, args.epochs, {"dropout_rate": args.dropout_rate, "layer_times": args.layer_times})
    subprocess.run([sys.executable, __file__, "--official", str(args.official), "--work", str(args.work),
                    "--side", "official"], check=True, cwd=args.work)
    compare(args.work)


if __name__ == "__main__":
    main()

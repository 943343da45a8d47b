"""``befa prepare`` on a tiny file set in the BeFA authors' layout (comma-separated inter.csv / item.csv, a folder of
``<itemID>.jpg``): the folder it writes loads and trains, and bad input is one stderr line with exit status 2."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from befa.cli import main
from befa.config import load_config
from befa.features import read_items
from befa.train import load_data
from common.data.clip_weights import write_random_clip
from common.data.mmrec import random_split_labels, read_inter

USERS = [10, 20, 30, 40, 50, 60]  # not 0-based: prepare re-indexes
ITEMS = [100, 101, 103, 105, 107, 110, 111, 112]


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    return write_random_clip(tmp_path_factory.mktemp("clip") / "ViT-B-32.pt", seed=0, tiny=True)


def write_raw(folder, split=True, user="userID", item="itemID", text="prod_info"):
    """inter.csv (every user 5 items, x_label 3 train / 1 valid / 1 test), item.csv and images/<itemID>.jpg."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = [f"{user},{item},timestamp" + (",x_label" if split else "")]
    for u, uid in enumerate(USERS):
        for k in range(5):
            rows.append(f"{uid},{ITEMS[(u + k) % len(ITEMS)]},{1000 + 10 * u + k}" + (f",{(0, 0, 0, 1, 2)[k]}"
                                                                                          if split else ""))
    (folder / "inter.csv").write_text("\n".join(rows) + "\n")
    items = [f"{item},{text}"] + [f'{i},"item {i}, a red, soft thing"' for i in ITEMS]
    (folder / "item.csv").write_text("\n".join(items) + "\n")
    (folder / "images").mkdir(exist_ok=True)
    for k, i in enumerate(ITEMS):
        image = Image.new("RGB", (12, 9), (20 * k, 255 - 20 * k, 90))
        image.save(folder / "images" / (f"{i}.png" if k == 3 else f"{i}.jpg"))
    return folder


def prepare_args(raw, out, *extra):
    return ["prepare", "--inter", str(raw / "inter.csv"), "--items", str(raw / "item.csv"),
            "--images", str(raw / "images"), "--out", str(out), *extra]


def test_prepared_official_layout_loads_and_trains(tmp_path, weights, capsys):
    raw = write_raw(tmp_path / "raw")
    out = tmp_path / "data" / "tmall"
    assert main(prepare_args(raw, out, "--clip-weights", str(weights), "--device", "cpu")) == 0
    assert "split: the file's x_label" in capsys.readouterr().out
    assert sorted(p.name for p in out.iterdir()) == ["i_id_mapping.csv", "image_feat.npy", "items.tsv",
                                                      "text_feat.npy", "tmall.inter", "u_id_mapping.csv"]
    assert [p.name for p in out.parent.iterdir()] == ["tmall"]  # no scratch folder left
    assert (out / "tmall.inter").read_text().splitlines()[0] == "userID\titemID\trating\ttimestamp\tx_label"
    users, items, labels = read_inter(out / "tmall.inter")
    assert sorted(set(users)) == list(range(len(USERS))) and sorted(set(items)) == list(range(len(ITEMS)))
    assert np.bincount(labels).tolist() == [18, 6, 6]  # the file's split, kept
    # ids in increasing order of the original ids: user 30 -> 2 rated items 103, 105, 107, 110, 111 -> 2..6
    assert sorted(items[users == 2].tolist()) == [2, 3, 4, 5, 6]
    table = read_items(out)
    assert [p.name for p in table.image_paths] == [f"{i}.{'png' if k == 3 else 'jpg'}" for k, i in enumerate(ITEMS)]
    assert table.texts[0] == "item 100, a red, soft thing"

    config = tmp_path / "tmall.yaml"
    config.write_text(f"dataset: tmall\ndata: {out}\ncache_dir: {tmp_path / 'graphs'}\nruns_dir: {tmp_path / 'runs'}\n"
                      "train_batch_size: 16\ntopk: [1, 5]\nvalid_metric: recall@5\n")
    data = load_data(load_config(config))
    assert (data.n_users, data.n_items) == (len(USERS), len(ITEMS))
    assert data.features["image_feat"].shape == data.features["text_feat"].shape == (len(ITEMS), 512)
    assert main(["train", "--config", str(config), "--epochs", "1", "--device", "cpu", "--run-name", "t",
                 "--model", "vbpr", "--adapter", "on"]) == 0
    assert (tmp_path / "runs" / "tmall" / "t" / "checkpoints" / "last.pt").is_file()


def test_files_without_x_label_get_mmrec_random_split_and_the_extract_command(tmp_path, capsys):
    raw = write_raw(tmp_path / "raw", split=False, user="user_id", item="item_id", text="title")
    out = tmp_path / "microlens"
    assert main(prepare_args(raw, out, "--seed", "7")) == 0
    printed = capsys.readouterr().out
    assert "MMRec random per-user split, seed 7" in printed
    assert f"befa extract-features --items {out} --clip-weights ViT-B-32.pt --out {out}" in printed
    assert not (out / "image_feat.npy").exists() and len(read_items(out)) == len(ITEMS)
    users, items, labels = read_inter(out / "microlens.inter")
    assert all(np.bincount(labels[users == u]).tolist() == [3, 1, 1] for u in range(len(USERS)))  # n < 10: n-2/1/1
    raw_rows = [line.split(",") for line in (raw / "inter.csv").read_text().splitlines()[1:]]
    raw_users = np.array([USERS.index(int(r[0])) for r in raw_rows])
    expected = random_split_labels(raw_users, np.random.default_rng(7))  # on the rows in file order
    assert set(zip(users.tolist(), items.tolist(), labels.tolist())) == {
        (u, ITEMS.index(int(r[1])), int(x)) for u, r, x in zip(raw_users, raw_rows, expected)}


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1, err
    return err


@pytest.mark.parametrize("edit, file, expected", [
    (lambda raw: raw.joinpath("inter.csv").write_text("userID,itemID,x_label\n1,2,0\nabc,3,0\n"), "inter.csv",
     "line 3: userID 'abc' is not a non-negative integer"),
    (lambda raw: raw.joinpath("inter.csv").write_text("userID,itemID,x_label\n1,2,0\n4,,0\n"), "inter.csv",
     "line 3: itemID is missing"),
    (lambda raw: raw.joinpath("inter.csv").write_text("userID,itemID,x_label\n1,2,0\n1,3,5\n"), "inter.csv",
     "line 3: x_label 5 is not 0, 1 or 2"),
    (lambda raw: raw.joinpath("inter.csv").write_text("uid,iid\n1,2\n"), "inter.csv", "no user id column"),
    (lambda raw: raw.joinpath("inter.csv").write_text("userID,itemID\n1,2\n1,3,4\n"), "inter.csv",
     "Expected 2 fields in line 3, saw 3"),
    (lambda raw: raw.joinpath("inter.csv").write_text(""), "inter.csv", "empty file"),
    (lambda raw: raw.joinpath("item.csv").write_text("itemID,prod_info\n100,a\n101,b\n"), "item.csv",
     "no row for itemID 103"),
    (lambda raw: raw.joinpath("item.csv").write_text("itemID,name\n100,a\n"), "item.csv", "no text column"),
    (lambda raw: raw.joinpath("images", "105.png").unlink(), "images", "no image for itemID 105"),
    (lambda raw: raw.joinpath("images", "107.jpg").write_bytes(b"\xff\xd8 not a jpeg"), "107.jpg",
     "image of itemID 107 (line 6 of"),
])
def test_bad_input_is_one_stderr_line_and_no_output_folder(tmp_path, capsys, edit, file, expected):
    raw = write_raw(tmp_path / "raw")
    edit(raw)
    out = tmp_path / "data" / "tmall"
    assert main(prepare_args(raw, out)) == 2
    err = one_error_line(capsys)
    assert err.startswith("befa prepare: error: ") and file in err and expected in err, err
    assert not out.parent.exists() or list(out.parent.iterdir()) == []

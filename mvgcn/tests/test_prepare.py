"""``mvgcn prepare`` on small hand-made raw Amazon files, with the real all-MiniLM-L6-v2 encoder."""

import gzip

import numpy as np
import pytest

from common.data.mmrec import load_mmrec
from common.errors import DataFormatError
from mvgcn.prepare import IMAGE_RECORD, first_appearance_ids, item_sentences, prepare


def write_raw(tmp_path, n_users=12, n_items=8, drop_image="B000000007"):
    tmp_path.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    rows = [f"U{u},B{i:09d},{rng.integers(1, 6)}.0,{1000 + u * 10 + i}" for u in range(n_users) for i in range(n_items)
            if (u + i) % 4 != 0]  # 6 of 8 items per user: a 5-core
    # a duplicate (user, item, timestamp) row and a user with one rating
    rows += ["U0,B000000001,5.0,1001", "U99,B000000001,3.0,5"]
    (tmp_path / "ratings.csv").write_text("\n".join(rows) + "\n")
    with gzip.open(tmp_path / "meta.json.gz", "wt") as f:
        for i in range(n_items):
            record = {"asin": f"B{i:09d}", "title": f"thing {i}", "categories": [["Baby", "Toys"], ["Other"]],
                      "description": "line one\nline two"}
            if i == 3:
                del record["title"]
            f.write(repr(record) + "\n")
    records = np.zeros(n_items, dtype=IMAGE_RECORD)
    for i in range(n_items):
        records[i] = (f"B{i:09d}".encode(), np.full(4096, float(i), np.float32))
    records[[i for i in range(n_items) if f"B{i:09d}" != drop_image]].tofile(tmp_path / "images.b")
    return tmp_path


def test_sentences_follow_mmrec_template(tmp_path):
    raw = write_raw(tmp_path)
    s = item_sentences(raw / "meta.json.gz", np.array(["B000000002", "B000000003"]))
    assert s[0] == "thing 2   Baby Toys line one line two"
    assert s[1].startswith("    Baby Toys")  # missing title -> blank


def test_first_appearance_ids():
    ids, names = first_appearance_ids(np.array(["b", "a", "b", "c", "a"]))
    assert ids.tolist() == [0, 1, 0, 2, 1] and names.tolist() == ["b", "a", "c"]


def test_prepare_writes_a_loadable_mmrec_dataset(tmp_path):
    raw = write_raw(tmp_path / "raw")
    out = prepare(raw / "ratings.csv", raw / "meta.json.gz", raw / "images.b", tmp_path / "toy")
    d = load_mmrec(out)
    assert (d.n_users, d.n_items) == (12, 8)  # U99 removed by the 5-core filter
    assert sum(m.nnz for m in d.splits.values()) == 12 * 6  # the duplicate row is gone
    per_user = [(d.splits["valid"][u].nnz, d.splits["test"][u].nnz) for u in range(12)]
    assert all(p == (1, 1) for p in per_user)  # 6 < 10 interactions: n-2 / 1 / 1
    asins = [ln.split("\t")[0] for ln in (out / "i_id_mapping.csv").read_text().splitlines()[1:]]
    img = d.features["image_feat"]
    for row, asin in enumerate(asins):
        want = np.mean([i for i in range(8) if i != 7]) if asin == "B000000007" else float(asin[1:])
        assert img[row] == pytest.approx(np.full(4096, want))
    text = d.features["text_feat"]
    assert text.shape == (8, 384)
    assert np.allclose(np.linalg.norm(text, axis=1), 1.0, atol=1e-5)  # MiniLM's normalised embeddings
    assert not np.allclose(text[0], text[1])


def test_prepare_rejects_a_bad_image_file(tmp_path):
    raw = write_raw(tmp_path / "raw")
    (raw / "images.b").write_bytes(b"x" * 100)
    with pytest.raises(DataFormatError, match="images.b"):
        prepare(raw / "ratings.csv", raw / "meta.json.gz", raw / "images.b", tmp_path / "toy")


def test_prepare_rejects_malformed_ratings(tmp_path):
    (tmp_path / "r.csv").write_text("U1,I1,5.0\n")
    with pytest.raises(DataFormatError, match="line 1 has 3 fields"):
        prepare(tmp_path / "r.csv", tmp_path / "m.gz", tmp_path / "i.b", tmp_path / "out")

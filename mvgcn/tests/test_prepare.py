"""``mvgcn prepare`` on small hand-made raw Amazon files, with the real all-MiniLM-L6-v2 encoder."""

import gzip
import hashlib

import numpy as np
import pytest

from common.data.mmrec import load_mmrec
from common.errors import DataFormatError
from mvgcn.prepare import IMAGE_RECORD, first_appearance_ids, item_sentences, prepare, write_interactions


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


def skewed_ratings_lines() -> list[str]:
    """705 rows of ratings-only CSV: skewed counts (the 5-core takes 3 rounds), users with fewer and more than 10
    ratings, duplicate (user, item, timestamp) rows with another rating or a zero-padded timestamp, repeated
    (user, item) pairs at other times, zero-padded asins, blank fields, mixed number spellings."""
    rng = np.random.default_rng(7)
    popularity = 1.0 / np.arange(1, 61) ** 1.2
    rows = []
    for u in range(90):
        n = int(rng.choice([2, 3, 4, 5, 6, 8, 12, 25]))
        items = rng.choice(60, size=n, replace=False, p=popularity / popularity.sum())
        for i in items:
            rating = ("5.0", "4", "3.5", "2.50", "1.0")[int(rng.integers(5))]
            rows.append([f"A{u * 7919 % 1000:03d}X", f"{i * 37 % 100:010d}", rating, str(int(rng.integers(1e9, 2e9)))])
    order = rng.permutation(len(rows))
    rows = [rows[r] for r in order]
    for r in range(0, len(rows), 50):
        dup = list(rows[r])
        dup[2] = "1.0"
        dup[3] = "0" + dup[3] if r % 100 == 0 else dup[3]
        rows.insert(r + 7, dup)
    for r in range(3, len(rows), 60):
        rows.insert(r + 2, [rows[r][0], rows[r][1], "3.0", str(int(rows[r][3]) + 1)])
    rows += [["", "0000000037", "5.0", "1"], ["A001X", " ", "5.0", "1"], ["A001X", "0000000037", "", ""],
             ["A001X", "0000000037", "4.0", ""]]
    return [",".join(r) for r in rows]


# sha256 of the files written by mvgcn prepare before its tables moved to pandas (HEAD d72ff98, a Python loop over
# the CSV rows and np.unique): that code was run on skewed_ratings_lines() with the default seed 999 and k = 5.
PRE_PANDAS_SHA256 = {
    "ratings.csv": "026cbc9fdcec6c5d04c9c1075a5a7e5dd494f3ab753d1294c1fdf9d24658d9fc",
    "small.inter": "bc8c28c240f8079407ee17fcbc675a4789359baf4b885a84de7092731f363b7e",
    "u_id_mapping.csv": "746c98dab5186a30093c367d43b92f4a4aa408157d818e2e8bf360f1c59997c0",
    "i_id_mapping.csv": "e1400d37f45cbc73d309d106ab0f698d5306d7f01c6803cba36001b6c4174ed0",
}


def test_prepare_tables_match_the_pre_pandas_implementation_byte_for_byte(tmp_path):
    (tmp_path / "ratings.csv").write_text("\n".join(skewed_ratings_lines()) + "\n")
    asins = write_interactions(tmp_path / "ratings.csv", tmp_path / "small")
    got = {"ratings.csv": tmp_path / "ratings.csv", **{f: tmp_path / "small" / f for f in list(PRE_PANDAS_SHA256)[1:]}}
    assert {f: hashlib.sha256(p.read_bytes()).hexdigest() for f, p in got.items()} == PRE_PANDAS_SHA256
    mapping = (tmp_path / "small" / "i_id_mapping.csv").read_text().splitlines()[1:]
    assert asins.tolist() == [ln.split("\t")[0] for ln in mapping]  # the item order the feature files follow


@pytest.mark.parametrize("text, message", [
    ("U1,I1,5.0,1\n\nU1,I2,5.0,2\n", "line 2 has 0 fields"),
    ("U1,I1,5.0,1\nU1,I2,5.0,2,9\n", "line 2 has 5 fields"),
    ("U1,I1,5.0,\nU2,I2,4.0, \n", "no ratings"),
    ("", "no ratings"),
    ("U1,I1,5.0,1\nU1,I2,x,2\n", "non-numeric rating or timestamp (could not convert string to float: 'x')"),
    ("U1,I1,5.0,1\nU1,I2,5.0,1.5\n", "non-numeric rating or timestamp (invalid literal for int() with base 10: '1.5')"),
    ("U1,I1,5.0,1\n", "nothing is left after the 5-core filter"),
])
def test_prepare_refuses_bad_ratings_in_one_line_as_before(tmp_path, text, message):
    (tmp_path / "r.csv").write_text(text)
    with pytest.raises(DataFormatError) as err:
        write_interactions(tmp_path / "r.csv", tmp_path / "out")
    assert message in str(err.value) and "\n" not in str(err.value)

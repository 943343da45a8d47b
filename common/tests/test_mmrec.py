"""MMRec loader, BPR sampler and the synthetic MMRec writer."""

import numpy as np
import pytest
import torch

from common.data.bpr import BPRSampler
from common.data.mmrec import k_core_mask, load_mmrec, random_split_labels
from common.errors import DataFormatError
from common.metrics.ranking import evaluate_full_ranking, popularity_baseline
from common.synthetic import mmrec as writer
from common.synthetic.__main__ import main as synthetic_cli

HEADER = "userID\titemID\trating\ttimestamp\tx_label\n"


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    return writer.write(tmp_path_factory.mktemp("d") / "toy", seed=3, image_dim=64, text_dim=32)


def write_inter(folder, rows, header=HEADER):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{folder.name}.inter").write_text(header + "".join("\t".join(map(str, r)) + "\n" for r in rows))
    return folder


def write_feats(folder, n_items, dim=4):
    for f in ("image_feat.npy", "text_feat.npy"):
        np.save(folder / f, np.ones((n_items, dim), np.float32))


def test_writer_output_loads_with_contiguous_ids_and_matching_features(toy):
    d = load_mmrec(toy)
    assert d.features["image_feat"].shape == (d.n_items, 64)
    assert d.features["text_feat"].shape == (d.n_items, 32)
    inter = np.loadtxt(toy / "toy.inter", skiprows=1, dtype=np.int64)
    assert set(np.unique(inter[:, 1])) == set(range(d.n_items))
    assert d.train_users.size == d.splits["train"].nnz


def test_writer_split_follows_mmrec_per_user_rule(toy):
    d = load_mmrec(toy)
    n_tr, n_va, n_te = (np.diff(d.splits[s].indptr) for s in ("train", "valid", "test"))
    n = n_tr + n_va + n_te
    small = n < 10
    assert (n_va[small] == 1).all() and (n_te[small] == 1).all()
    held = np.floor(0.2 * n[~small]).astype(int)
    assert (n_va[~small] == held // 2).all() and (n_te[~small] == held - held // 2).all()


def test_writer_is_deterministic_in_seed(tmp_path):
    a = writer.write(tmp_path / "a" / "x", seed=5, image_dim=8, text_dim=8)
    b = writer.write(tmp_path / "b" / "x", seed=5, image_dim=8, text_dim=8)
    c = writer.write(tmp_path / "c" / "x", seed=6, image_dim=8, text_dim=8)
    for f in ("x.inter", "image_feat.npy", "text_feat.npy"):
        assert (a / f).read_bytes() == (b / f).read_bytes()
    assert (a / "x.inter").read_bytes() != (c / "x.inter").read_bytes()


def test_planted_structure_content_beats_popularity(toy):
    """A content-only scorer (user profile = mean train-item image feature) beats popularity 1.5x."""
    d = load_mmrec(toy)
    pop = torch.from_numpy(d.item_popularity())
    assert pop.sum() == d.splits["train"].nnz
    feats = d.features["image_feat"] - d.features["image_feat"].mean(0)
    train = d.splits["train"]
    profile = torch.from_numpy(np.asarray(train @ feats) / np.asarray(train.sum(1)))
    item = torch.from_numpy(feats)
    r_pop = popularity_baseline(pop, d.eval_batches("valid"), (20,))
    assert r_pop == evaluate_full_ranking(lambda u: pop.expand(len(u), -1).clone(), d.eval_batches("valid"), (20,))
    r_content = evaluate_full_ranking(lambda u: profile[u] @ item.T, d.eval_batches("valid"), (20,))
    assert r_content["recall@20"] > 1.5 * r_pop["recall@20"]


def test_cold_start_users_are_filtered_from_valid_and_test(tmp_path):
    rows = [(0, 0, 5, 1, 0), (0, 1, 5, 2, 1), (1, 2, 5, 3, 2), (0, 2, 5, 4, 2), (1, 1, 5, 5, 1)]
    folder = write_inter(tmp_path / "cs", rows)
    write_feats(folder, 3)
    d = load_mmrec(folder)
    assert d.eval_users("test").tolist() == [0]
    assert d.eval_users("valid").tolist() == [0]
    kept = load_mmrec(folder, filter_cold_start_users=False)
    assert kept.eval_users("test").tolist() == [0, 1]


def test_eval_batches_mask_train_items_and_hold_split_truth(toy):
    d = load_mmrec(toy)
    batch = next(d.eval_batches("test", batch_size=7))
    u0 = int(batch.users[0])
    assert set(batch.train_cols[batch.train_rows == 0].tolist()) == set(d.splits["train"][u0].indices)
    assert set(batch.truth_cols[batch.truth_rows == 0].tolist()) == set(d.splits["test"][u0].indices)
    assert len(batch.users) == 7


def test_bpr_negatives_come_from_train_pool_and_avoid_user_history(toy):
    d = load_mmrec(toy)
    sampler = BPRSampler(d.train_users, d.train_items, d.n_items, batch_size=512, seed=0)
    train = d.splits["train"]
    seen = 0
    for users, pos, neg in sampler.epoch():
        u, p, n = users.numpy().copy(), pos.numpy().copy(), neg.numpy().copy()
        assert not np.asarray(train[u, n]).any()
        assert np.asarray(train[u, p]).all()
        assert np.isin(neg.numpy(), d.train_items).all()
        seen += len(users)
    assert seen == d.train_users.size


def test_bpr_negatives_are_uniform_over_allowed_items():
    users = np.array([0, 0, 0, 1, 1, 1])
    sampler = BPRSampler(users, np.arange(6), n_items=6, seed=1)  # user 0's history is items 0-2
    draws = sampler.sample_negatives(np.zeros(30000, dtype=np.int64))
    counts = np.bincount(draws, minlength=6)
    assert counts[:3].sum() == 0
    assert np.allclose(counts[3:] / 30000, 1 / 3, atol=0.02)


def test_bpr_resume_from_state_reproduces_the_next_epoch(toy):
    d = load_mmrec(toy)
    a = BPRSampler(d.train_users, d.train_items, d.n_items, seed=7)
    list(a.epoch())
    state = a.state_dict()
    want = [torch.cat(x) for x in zip(*a.epoch())]
    b = BPRSampler(d.train_users, d.train_items, d.n_items, seed=123)
    b.load_state_dict(state)
    got = [torch.cat(x) for x in zip(*b.epoch())]
    assert all(torch.equal(x, y) for x, y in zip(want, got))


def test_synthetic_cli_writes_loadable_dataset(tmp_path, capsys):
    assert synthetic_cli(["mmrec", "--out", str(tmp_path / "cli"), "--seed", "2", "--n-users", "50",
                          "--n-items", "40", "--image-dim", "8", "--text-dim", "8"]) == 0
    assert "SYNTHETIC" in capsys.readouterr().out
    assert load_mmrec(tmp_path / "cli").n_users == 50


# ---- bad input: one line naming the file and the problem -------------------------------------------------


def assert_one_line(err, *fragments):
    msg = str(err.value)
    assert "\n" not in msg
    for f in fragments:
        assert f in msg, msg


def test_missing_inter_file(tmp_path):
    (tmp_path / "ds").mkdir()
    with pytest.raises(DataFormatError) as err:
        load_mmrec(tmp_path / "ds")
    assert_one_line(err, "ds.inter", "not found")


def test_missing_dataset_folder(tmp_path):
    with pytest.raises(DataFormatError) as err:
        load_mmrec(tmp_path / "nope")
    assert_one_line(err, "nope", "not found")


def test_missing_column(tmp_path):
    folder = write_inter(tmp_path / "mc", [(0, 0, 0)], header="userID\titemID\trating\n")
    with pytest.raises(DataFormatError) as err:
        load_mmrec(folder)
    assert_one_line(err, "mc.inter", "x_label")


def test_item_id_gaps_are_accepted_as_mmrec_does_and_ranked(tmp_path):
    """MMRec takes n_items = max id + 1: items 1 and 2 below have features but no interaction; they are ranked."""
    folder = write_inter(tmp_path / "gap", [(0, 0, 5, 1, 0), (0, 3, 5, 1, 0), (1, 3, 5, 1, 0), (1, 0, 5, 1, 1),
                                            (0, 4, 5, 1, 2)])
    write_feats(folder, 5)
    d = load_mmrec(folder)
    assert (d.n_users, d.n_items) == (2, 5)
    assert d.splits["train"].shape == (2, 5) and d.item_popularity().tolist() == [1, 0, 0, 2, 0]
    with pytest.raises(DataFormatError) as err:  # fewer feature rows than items: still refused
        write_feats(folder, 4)
        load_mmrec(folder)
    assert_one_line(err, "has 4 rows", "5 items")


def test_unknown_split_label(tmp_path):
    folder = write_inter(tmp_path / "sl", [(0, 0, 5, 1, 0), (0, 1, 5, 1, 7)])
    with pytest.raises(DataFormatError) as err:
        load_mmrec(folder)
    assert_one_line(err, "sl.inter", "x_label=7", "line 3")


def test_non_numeric_row(tmp_path):
    folder = write_inter(tmp_path / "nn", [(0, 0, 5, 1, 0), ("a", 1, 5, 1, 0)])
    with pytest.raises(DataFormatError) as err:
        load_mmrec(folder)
    assert_one_line(err, "nn.inter", "unreadable row")


@pytest.mark.filterwarnings("error")
@pytest.mark.parametrize("text, message", [
    (HEADER, "no interactions"),
    (HEADER + "\n\n", "no interactions"),
    ("", "header lacks column(s) userID, itemID, x_label"),
])
def test_header_only_or_empty_inter_is_refused_in_one_line_without_warnings(tmp_path, text, message):
    (tmp_path / "e").mkdir()
    (tmp_path / "e" / "e.inter").write_text(text)
    with pytest.raises(DataFormatError) as err:
        load_mmrec(tmp_path / "e")
    assert_one_line(err, "e.inter", message)


@pytest.mark.filterwarnings("error")
@pytest.mark.parametrize("bad_row, message", [
    ((1, 2, 5), "line 3 has 3 columns, x_label is column 5"),
    ((1, "", 5, 1, 0), "line 3 has itemID '', not a number"),
    ((1, "nan", 5, 1, 0), "line 3 has itemID 'nan', not a number"),
])
def test_short_row_or_missing_value_is_an_unreadable_row_naming_its_line(tmp_path, bad_row, message):
    folder = write_inter(tmp_path / "ur", [(0, 0, 5, 1, 0), bad_row])
    with pytest.raises(DataFormatError) as err:
        load_mmrec(folder)
    assert_one_line(err, "ur.inter", "unreadable row", message)


def test_ids_must_be_integers_but_may_be_spelled_as_floats(tmp_path):
    folder = write_inter(tmp_path / "fl", [(0, 0, 5, 1, 0), (1.5, 1, 5, 1, 0)])
    with pytest.raises(DataFormatError) as err:
        load_mmrec(folder)
    assert_one_line(err, "fl.inter", "must be integers")
    folder = write_inter(tmp_path / "ok", [("0.0", " 1", 5, 1, "0"), ("1", "0", 5, 1, "0"), ("1", "1", 5, 1, "2e0")])
    write_feats(folder, 2)
    d = load_mmrec(folder)
    assert (d.splits["train"].nnz, d.splits["test"].nnz) == (2, 1)


def test_feature_rows_differ_from_item_count(tmp_path):
    folder = write_inter(tmp_path / "fr", [(0, 0, 5, 1, 0), (0, 1, 5, 1, 0)])
    write_feats(folder, 3)
    with pytest.raises(DataFormatError) as err:
        load_mmrec(folder)
    assert_one_line(err, "image_feat.npy", "3 rows", "2 items")


def test_nan_features(tmp_path):
    folder = write_inter(tmp_path / "nan", [(0, 0, 5, 1, 0), (0, 1, 5, 1, 0)])
    write_feats(folder, 2)
    feats = np.ones((2, 4), np.float32)
    feats[1, 2] = np.nan
    np.save(folder / "text_feat.npy", feats)
    with pytest.raises(DataFormatError) as err:
        load_mmrec(folder)
    assert_one_line(err, "text_feat.npy", "NaN", "item 1")


def test_missing_feature_file(tmp_path):
    folder = write_inter(tmp_path / "mf", [(0, 0, 5, 1, 0)])
    with pytest.raises(DataFormatError) as err:
        load_mmrec(folder)
    assert_one_line(err, "image_feat.npy", "not found")


def test_corrupt_feature_file(tmp_path):
    folder = write_inter(tmp_path / "cf", [(0, 0, 5, 1, 0)])
    write_feats(folder, 1)
    (folder / "image_feat.npy").write_bytes(b"not an npy file")
    with pytest.raises(DataFormatError) as err:
        load_mmrec(folder)
    assert_one_line(err, "image_feat.npy", "not a readable .npy")


def test_k_core_filter_is_iterative():
    # user 1 has 4 rows and goes first; item 9 then has 4 rows and goes; then users 0, 7, 8, 9 have 4 rows
    users = np.repeat(np.arange(10), [5, 4, 5, 5, 5, 5, 5, 5, 5, 5])
    items = np.array([9, 1, 2, 3, 4] + [9, 1, 2, 3] + [1, 2, 3, 4, 5] * 5 + [9, 1, 2, 3, 4] * 3)
    keep = k_core_mask(users, items, k=5)
    assert set(users[keep]) == {2, 3, 4, 5, 6}
    assert set(items[keep]) == {1, 2, 3, 4, 5}


def test_random_split_follows_mmrec_rule_and_is_seeded():
    users = np.repeat(np.array([7, 3, 11]), [5, 10, 23])
    labels = random_split_labels(users, np.random.default_rng(0))
    for u, (tr, va, te) in {7: (3, 1, 1), 3: (8, 1, 1), 11: (19, 2, 2)}.items():
        got = labels[users == u]
        assert ((got == 0).sum(), (got == 1).sum(), (got == 2).sum()) == (tr, va, te)
    assert np.array_equal(labels, random_split_labels(users, np.random.default_rng(0)))
    assert not np.array_equal(labels, random_split_labels(users, np.random.default_rng(1)))

"""HCRN/DualVGR VideoQA loader and the synthetic VideoQA writer."""

import json
import pickle
import shutil

import h5py
import numpy as np
import pytest
import torch

from common.data.videoqa import (
    QUESTION_WORDS,
    SVQA_CATEGORIES,
    VideoQAFiles,
    check_features,
    load_videoqa,
    videoqa_files,
)
from common.errors import DataFormatError
from common.synthetic import __main__ as cli
from common.synthetic import videoqa as writer

DIM = 32
SPLITS = ("train", "val", "test")


@pytest.fixture(scope="module")
def msvd(tmp_path_factory):
    return writer.write(tmp_path_factory.mktemp("msvd"), seed=3, n_videos=80, feature_dim=DIM)


@pytest.fixture(scope="module")
def svqa(tmp_path_factory):
    return writer.write(tmp_path_factory.mktemp("svqa"), seed=4, dataset="svqa", n_videos=12, feature_dim=16)


def load(folder, split="train", **kw):
    return load_videoqa(folder, "msvd-qa", split, feature_dim=kw.pop("feature_dim", DIM), **kw)


def assert_one_line_error(excinfo, path):
    message = str(excinfo.value)
    assert "\n" not in message
    assert str(path) in message


def test_items_have_hcrn_shapes_and_dtypes(msvd):
    data = load(msvd)
    item = data[0]
    assert item["appearance"].dtype == torch.float32 and item["appearance"].shape == (8, 16, DIM)
    assert item["motion"].dtype == torch.float32 and item["motion"].shape == (8, DIM)
    assert item["question"].dtype == torch.int64 and item["question"].shape == (data.questions.shape[1],)
    for key in ("question_len", "answer", "question_type", "video_id", "question_id"):
        assert item[key].dtype == torch.int64 and item[key].ndim == 0
    batch = next(iter(torch.utils.data.DataLoader(data, batch_size=4)))
    assert batch["appearance"].shape == (4, 8, 16, DIM)


def test_pickles_and_vocab_have_hcrn_keys_and_types(msvd):
    vocab = json.loads((msvd / "msvd-qa_vocab.json").read_text())
    assert list(vocab["question_token_to_idx"])[:2] == ["<NULL>", "<UNK>"]
    assert list(vocab["answer_token_to_idx"])[:2] == ["<UNK0>", "<UNK1>"]
    for split in SPLITS:
        with (msvd / f"msvd-qa_{split}_questions.pt").open("rb") as f:
            obj = pickle.load(f)
        assert obj["questions"].dtype == np.int32 and obj["questions_len"].dtype == np.int32
        assert isinstance(obj["answers"], list) and isinstance(obj["question_id"], list)
        assert obj["question_id"] == list(range(len(obj["answers"])))
        assert isinstance(obj["video_ids"], np.ndarray) and "question_category" not in obj
        lengths = obj["questions_len"]
        assert (obj["questions"][np.arange(obj["questions"].shape[1]) >= lengths[:, None]] == 0).all()
        if split == "train":
            assert obj["glove"].dtype == np.float32 and obj["glove"].shape == (len(vocab["question_token_to_idx"]), 300)
        else:
            assert obj["glove"] is None


def test_feature_row_of_a_question_is_its_videos_row(msvd):
    data = load(msvd, "val")
    with h5py.File(msvd / "msvd-qa_appearance_feat.h5") as fa, h5py.File(msvd / "msvd-qa_motion_feat.h5") as fm:
        app_ids, mot_ids = fa["ids"][()], fm["ids"][()]
        assert not np.array_equal(app_ids, mot_ids)  # independently shuffled, so the join must use ids
        for i in range(len(data)):
            item = data[i]
            vid = int(item["video_id"])
            assert torch.equal(item["appearance"], torch.from_numpy(fa["resnet_features"][list(app_ids).index(vid)]))
            assert torch.equal(item["motion"], torch.from_numpy(fm["resnext_features"][list(mot_ids).index(vid)]))


def test_answers_follow_from_the_planted_attributes_for_every_question_type(msvd):
    record = json.loads((msvd / "synthetic_attributes.json").read_text())
    for split in SPLITS:
        data = load(msvd, split)
        idx_to_token = {i: t for t, i in data.vocab["question_token_to_idx"].items()}
        answer_idx = data.vocab["answer_token_to_idx"]
        seen_types = set()
        for i, template in enumerate(record["question_templates"][split]):
            video = record["videos"][str(data.video_ids[i])]
            tokens = [idx_to_token[t] for t in data.questions[i, : data.questions_len[i]]]
            assert tokens == writer.tokenize(writer.question_text(template, video))
            truth = video[writer.TEMPLATES[template][0]]
            assert data.answers[i] == answer_idx.get(truth, 0 if split == "train" else 1)
            assert QUESTION_WORDS[data.question_types[i]] == tokens[0]
            seen_types.add(tokens[0])
        assert seen_types == set(QUESTION_WORDS[:-1])


def test_attributes_are_linearly_recoverable_from_features(msvd):
    record = json.loads((msvd / "synthetic_attributes.json").read_text())
    feats = {}
    for split in SPLITS:
        data = load(msvd, split, in_memory=True)
        _, first = np.unique(data.video_ids, return_index=True)
        for i in first:
            item = data[int(i)]
            feats[int(item["video_id"])] = (item["appearance"].mean((0, 1)).numpy(), item["motion"].mean(0).numpy())
    train = [int(v) for v in np.unique(load(msvd, "train").video_ids)]
    held = [v for v in feats if v not in train]
    for attr in ("actor", "object", "count", "location", "time", "action"):
        stream = 1 if attr == "action" else 0
        values = writer.ATTRIBUTES[attr]

        def design(vids):
            return np.stack([np.append(feats[v][stream], 1.0) for v in vids])  # noqa: B023

        def onehot(vids):
            return np.eye(len(values))[[values.index(record["videos"][str(v)][attr]) for v in vids]]  # noqa: B023
        w = np.linalg.lstsq(design(train), onehot(train), rcond=None)[0]
        accuracy = (design(held) @ w).argmax(1) == onehot(held).argmax(1)
        assert accuracy.mean() >= 0.9, attr


def test_svqa_question_type_is_the_category(svqa):
    data = load_videoqa(svqa, "svqa", "test", feature_dim=16)
    assert data.type_names == SVQA_CATEGORIES and data[0]["appearance"].shape == (20, 16, 16)
    record = json.loads((svqa / "synthetic_attributes.json").read_text())
    expected = [SVQA_CATEGORIES.index(writer.TEMPLATES[t][2]) for t in record["question_templates"]["test"]]
    assert data.question_types.tolist() == expected


def test_in_memory_and_per_item_reads_agree_and_dataset_pickles(msvd):
    lazy, eager = load(msvd, "test"), load(msvd, "test", in_memory=True)
    for i in (0, len(lazy) - 1):
        assert all(torch.equal(lazy[i][k], eager[i][k]) for k in lazy[i])
    clone = pickle.loads(pickle.dumps(lazy))  # open h5 handles are dropped for worker processes
    assert torch.equal(clone[1]["appearance"], lazy[1]["appearance"])


def test_writer_is_deterministic_in_seed(tmp_path):
    def contents(seed, name):
        out = writer.write(tmp_path / name, seed=seed, n_videos=6, feature_dim=8, num_clips=2)
        found = {p.name: p.read_bytes() for p in out.iterdir() if p.suffix != ".h5"}
        for p in out.glob("*.h5"):
            with h5py.File(p) as f:
                found.update({f"{p.name}/{k}": f[k][()].tobytes() for k in f})
        return found
    assert contents(1, "a") == contents(1, "b")
    assert contents(1, "a")["msvd-qa_train_questions.pt"] != contents(2, "c")["msvd-qa_train_questions.pt"]


def test_cli_writes_float16_files_the_loader_reads_as_float32(tmp_path, monkeypatch):
    monkeypatch.setattr(cli, "FORMATS", {"videoqa": cli.FORMATS["videoqa"]})  # independent of the other formats
    args = ["videoqa", "--out", str(tmp_path), "--seed", "1", "--n-videos", "6", "--feature-dim", "8",
            "--num-clips", "4", "--float16"]
    assert cli.main(args) == 0
    with h5py.File(tmp_path / "msvd-qa_motion_feat.h5") as f:
        assert f["resnext_features"].dtype == np.float16
    item = load(tmp_path, "val", num_clips=4, feature_dim=8)[0]
    assert item["motion"].shape == (4, 8) and item["motion"].dtype == torch.float32


# ---- bad input: one-line DataFormatError naming the file ----

@pytest.fixture
def copy(msvd, tmp_path):
    return shutil.copytree(msvd, tmp_path / "copy")


def files_of(folder, split="train") -> VideoQAFiles:
    return videoqa_files(folder, "msvd-qa", split)


def test_missing_vocabulary_file_is_reported(copy):
    files_of(copy).vocab.unlink()
    with pytest.raises(DataFormatError, match="not found") as err:
        load(copy)
    assert_one_line_error(err, files_of(copy).vocab)


def test_missing_ids_dataset_is_reported(copy):
    with h5py.File(files_of(copy).motion, "a") as f:
        del f["ids"]
    with pytest.raises(DataFormatError, match="'ids' missing") as err:
        load(copy)
    assert_one_line_error(err, files_of(copy).motion)


def test_truncated_feature_file_is_reported(copy):
    path = files_of(copy).appearance
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])
    with pytest.raises(DataFormatError, match="truncated") as err:
        load(copy)
    assert_one_line_error(err, path)


@pytest.mark.parametrize(("kind", "name", "row", "value"), [("appearance", "resnet_features", 0, np.nan),
                                                           ("motion", "resnext_features", 37, np.inf)])
def test_feature_check_reads_every_row_and_names_the_first_non_finite_one(copy, kind, name, row, value):
    path = getattr(files_of(copy), kind)
    assert check_features(files_of(copy), rows_per_read=8, progress=False) >= 0  # clean data passes
    with h5py.File(path, "r+") as f:
        block = f[name][row]
        block.flat[-1] = value
        f[name][row] = block
    with pytest.raises(DataFormatError, match=f"{name} row {row} holds NaN or infinite values") as err:
        check_features(files_of(copy), rows_per_read=8, progress=False)  # row 37 lies in the 5th block read
    assert_one_line_error(err, path)


def test_wrong_clip_count_names_the_file_and_num_of_nodes(msvd):
    with pytest.raises(DataFormatError, match="num_of_nodes") as err:
        load(msvd, num_clips=16)
    assert_one_line_error(err, files_of(msvd).appearance)
    with pytest.raises(DataFormatError, match="per-video shape") as err:
        load(msvd, feature_dim=2048)
    assert_one_line_error(err, files_of(msvd).appearance)


def test_unknown_split_is_reported(msvd):
    with pytest.raises(DataFormatError, match="unknown split 'dev'") as err:
        load(msvd, "dev")
    assert_one_line_error(err, msvd / "msvd-qa_dev_questions.pt")


def test_question_video_missing_from_ids_is_reported(copy):
    path = files_of(copy).motion
    with h5py.File(path, "a") as f:
        ids = f["ids"][()]
        ids[0] = ids.max() + 1000
        f["ids"][...] = ids
    with pytest.raises(DataFormatError, match="not in ids") as err:
        for split in SPLITS:
            load(copy, split)
    assert_one_line_error(err, path)


def test_duplicate_ids_are_reported(copy):
    path = files_of(copy).appearance
    with h5py.File(path, "a") as f:
        ids = f["ids"][()]
        ids[1] = ids[0]
        f["ids"][...] = ids
    with pytest.raises(DataFormatError, match="duplicate") as err:
        load(copy)
    assert_one_line_error(err, path)


def test_corrupt_or_incomplete_question_pickle_is_reported(copy):
    path = files_of(copy, "val").questions
    path.write_bytes(path.read_bytes()[:50])
    with pytest.raises(DataFormatError, match="not a readable pickle") as err:
        load(copy, "val")
    assert_one_line_error(err, path)
    path = files_of(copy, "test").questions
    with path.open("rb") as f:
        obj = pickle.load(f)
    del obj["answers"]
    with path.open("wb") as f:
        pickle.dump(obj, f)
    with pytest.raises(DataFormatError, match="missing key") as err:
        load(copy, "test")
    assert_one_line_error(err, path)


def test_svqa_without_question_category_is_reported(svqa, tmp_path):
    folder = shutil.copytree(svqa, tmp_path / "s")
    path = videoqa_files(folder, "svqa", "val").questions
    with path.open("rb") as f:
        obj = pickle.load(f)
    del obj["question_category"]
    with path.open("wb") as f:
        pickle.dump(obj, f)
    with pytest.raises(DataFormatError, match="question_category") as err:
        load_videoqa(folder, "svqa", "val", feature_dim=16)
    assert_one_line_error(err, path)

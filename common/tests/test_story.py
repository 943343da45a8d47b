"""Story loaders (AR-LDM HDF5, raw PororoSV / FlintstonesSV) and the synthetic story writer."""

import io
import json
import pickle
import shutil

import h5py
import numpy as np
import pytest
import torch
from PIL import Image

from common.data.story import (
    FLINTSTONES_CHARACTERS,
    PORORO_CHARACTERS,
    ARLDMStories,
    FlintstonesSVStories,
    PororoSVStories,
    StoryDataset,
    decode_png,
    encode_png,
    write_arldm_hdf5,
)
from common.errors import DataFormatError
from common.synthetic import __main__ as cli
from common.synthetic import story as writer

SIZE = 32


@pytest.fixture(scope="module")
def arldm(tmp_path_factory):
    return writer.write(tmp_path_factory.mktemp("arldm"), seed=1, size=SIZE, n_episodes=12) / "story.h5"


@pytest.fixture(scope="module")
def pororo(tmp_path_factory):
    return writer.write(tmp_path_factory.mktemp("pororo"), seed=1, layout="pororo", size=SIZE, n_episodes=12)


@pytest.fixture(scope="module")
def flintstones(tmp_path_factory):
    return writer.write(tmp_path_factory.mktemp("flint"), seed=1, layout="flintstones", size=SIZE, n_episodes=8)


def all_stories(source):
    return [source[i] for i in range(len(source))]


def named_characters(caption, names):
    words = set(caption.replace(",", " ").replace(".", " ").split())
    return {n for n in names if n in words}


def assert_one_line_error(excinfo, path):
    message = str(excinfo.value)
    assert "\n" not in message
    assert str(path) in message


def test_arldm_items_have_five_rgb_frames_captions_and_labels(arldm):
    for split in ("train", "val", "test"):
        stories = ARLDMStories(arldm, split)
        assert len(stories) > 0 and stories.characters == PORORO_CHARACTERS
        item = StoryDataset(stories)[0]
        assert item["images"].dtype == torch.uint8 and item["images"].shape == (5, 3, SIZE, SIZE)
        assert len(item["captions"]) == 5 and all(isinstance(c, str) and c for c in item["captions"])
        assert item["labels"].dtype == torch.float32 and item["labels"].shape == (5, len(PORORO_CHARACTERS))
    strips = ARLDMStories(arldm, "train")[0].strips
    assert all(s.dtype == np.uint8 and s.shape[1:] == (SIZE, 3) and s.shape[0] % SIZE == 0 for s in strips)


def test_stored_pngs_have_red_and_blue_swapped_like_cv2_and_decode_back_to_rgb(arldm):
    rgb = np.random.default_rng(0).integers(0, 256, (2 * SIZE, SIZE, 3), dtype=np.uint8)
    png = encode_png(rgb, bgr=True)
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(png))), rgb[..., ::-1])
    assert np.array_equal(decode_png(png, arldm, "x", bgr=True), rgb)
    with h5py.File(arldm) as f:
        as_stored = np.asarray(Image.open(io.BytesIO(f["train/image0"][0].tobytes())).convert("RGB"))
    assert np.array_equal(ARLDMStories(arldm, "train")[0].strips[0], as_stored[..., ::-1])


def test_labels_name_exactly_the_characters_in_each_caption(arldm, pororo, flintstones):
    sources = [ARLDMStories(arldm, s) for s in ("train", "val", "test")]
    sources += [PororoSVStories(pororo, "train"), FlintstonesSVStories(flintstones, "train")]
    for source in sources:
        names = source.characters
        for story in all_stories(source):
            for caption, label in zip(story.captions, story.labels):
                assert named_characters(caption, names) == {names[j] for j in np.flatnonzero(label)}


def detect_characters(frame, tol=40, min_pixels=4):
    """Multi-hot guess from pixels alone: character j is present if enough pixels have its colour."""
    dist = np.abs(frame[None].astype(np.int16) - writer.PALETTE[:, None, None, :]).max(-1)
    return ((dist <= tol).sum((1, 2)) >= min_pixels).astype(np.uint8)


def test_characters_are_recoverable_from_pixel_colours(arldm):
    data = StoryDataset(ARLDMStories(arldm, "train"), crop="random", seed=3)
    hits = total = 0
    for i in range(len(data)):
        item = data[i]
        frames = item["images"].permute(0, 2, 3, 1).numpy()
        for frame, label in zip(frames, item["labels"].numpy()):
            hits += np.array_equal(detect_characters(frame), label.astype(np.uint8))
            total += 1
    assert hits / total >= 0.98


def test_caption_determines_background_and_character_heights(arldm):
    backgrounds = np.array(list(writer.BACKGROUNDS.values()))
    heights = {a: [] for a in writer.ACTIONS}
    for story in all_stories(ARLDMStories(arldm, "train")):
        for strip, caption in zip(story.strips, story.captions):
            frame = strip[:SIZE]
            place = next(b for b in writer.BACKGROUNDS if caption.endswith(b + "."))
            median = np.median(frame.reshape(-1, 3), axis=0)
            assert list(writer.BACKGROUNDS)[np.abs(backgrounds - median).sum(1).argmin()] == place
            if caption.count(" is ") == 1:  # one character: its colour's mean row follows the action
                name, action = caption.split(" ")[0], " ".join(caption.split(" ")[1:3])
                j = PORORO_CHARACTERS.index(name)
                rows = np.nonzero(np.abs(frame.astype(np.int16) - writer.PALETTE[j]).max(-1) <= 40)[0]
                heights[action].append(rows.mean() / SIZE)
    means = {a: np.mean(h) for a, h in heights.items()}
    assert means["is jumping"] < means["is standing"] < means["is sitting"]


def test_random_crops_are_seeded_reproducible_and_change_with_epoch(arldm):
    stories = ARLDMStories(arldm, "train")
    a, b = StoryDataset(stories, seed=7), StoryDataset(stories, seed=7)
    n = [4] * 5
    assert np.array_equal(a.crop_indices(3, n), b.crop_indices(3, n))
    picks = np.stack([a.crop_indices(i, n) for i in range(50)])
    assert len(np.unique(picks)) == 4
    b.set_epoch(1)
    assert any(not np.array_equal(a.crop_indices(i, n), b.crop_indices(i, n)) for i in range(10))
    assert np.array_equal(StoryDataset(stories, crop="first").crop_indices(0, n), np.zeros(5))
    first = StoryDataset(stories, crop="first")[0]["images"]
    assert torch.equal(first[0], torch.from_numpy(stories[0].strips[0][:SIZE]).permute(2, 0, 1))


def test_raw_pororo_folder_and_arldm_hdf5_hold_the_same_stories(arldm, pororo):
    for split in ("train", "val", "test"):
        raw, h5 = PororoSVStories(pororo, split), ARLDMStories(arldm, split)
        assert len(raw) == len(h5)
        for r, h in zip(all_stories(raw), all_stories(h5)):
            assert r.captions == h.captions
            assert np.array_equal(r.labels, h.labels)
            assert all(np.array_equal(x, y) for x, y in zip(r.strips, h.strips))


def test_flintstones_reader_stacks_five_frames_and_converts_to_arldm(flintstones, tmp_path):
    raw = FlintstonesSVStories(flintstones, "train")
    story = raw[0]
    assert all(s.shape == (5 * SIZE, SIZE, 3) for s in story.strips) and story.labels.shape == (5, 7)
    first = np.load(flintstones / "video_frames_sampled" / f"{story.ids[0]}.npy")
    assert np.array_equal(story.strips[0][SIZE:2 * SIZE], first[1])
    path = write_arldm_hdf5(tmp_path / "f.h5", {"train": raw}, FLINTSTONES_CHARACTERS)
    h5 = ARLDMStories(path, "train")
    assert h5.characters == FLINTSTONES_CHARACTERS
    for r, h in zip(all_stories(raw), all_stories(h5)):
        assert r.captions == h.captions and np.array_equal(r.labels, h.labels)
        assert all(np.array_equal(x, y) for x, y in zip(r.strips, h.strips))


def test_writer_is_deterministic_in_seed(tmp_path):
    def contents(seed, name):
        path = writer.write(tmp_path / name, seed=seed, size=16, n_episodes=4) / "story.h5"
        with h5py.File(path) as f:
            return [bytes(f[f"{s}/image{k}"][i]) for s in ("train", "val", "test") for k in range(5)
                    for i in range(f[s]["text"].shape[0])] + [f[f"{s}/text"].asstr()[()].tolist() for s in f]
    assert contents(5, "a") == contents(5, "b")
    assert contents(5, "a") != contents(6, "c")


def test_cli_writes_an_arldm_file_the_loader_reads(tmp_path, monkeypatch):
    monkeypatch.setattr(cli, "FORMATS", {"story": cli.FORMATS["story"]})  # independent of the other formats
    out = tmp_path / "cli"
    assert cli.main(["story", "--out", str(out), "--seed", "2", "--size", "16", "--n-episodes", "4"]) == 0
    assert StoryDataset(ARLDMStories(out / "story.h5", "test"))[0]["images"].shape == (5, 3, 16, 16)


# ---- bad input: one-line DataFormatError naming the file ----

@pytest.fixture
def h5_copy(arldm, tmp_path):
    path = tmp_path / "copy.h5"
    shutil.copy(arldm, path)
    return path


def test_missing_hdf5_file_is_reported(tmp_path):
    with pytest.raises(DataFormatError) as err:
        ARLDMStories(tmp_path / "absent.h5", "train")
    assert_one_line_error(err, tmp_path / "absent.h5")


def test_missing_text_dataset_is_reported(h5_copy):
    with h5py.File(h5_copy, "a") as f:
        del f["val/text"]
    with pytest.raises(DataFormatError, match="val/text missing") as err:
        ARLDMStories(h5_copy, "val")
    assert_one_line_error(err, h5_copy)


def test_truncated_hdf5_is_reported(h5_copy):
    data = h5_copy.read_bytes()
    h5_copy.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataFormatError, match="truncated") as err:
        ARLDMStories(h5_copy, "train")
    assert_one_line_error(err, h5_copy)


def test_unknown_split_is_reported(arldm, pororo):
    with pytest.raises(DataFormatError, match="unknown split 'dev'") as err:
        ARLDMStories(arldm, "dev")
    assert_one_line_error(err, arldm)
    with pytest.raises(DataFormatError, match="unknown split") as err:
        PororoSVStories(pororo, "validation")
    assert_one_line_error(err, pororo / "train_seen_unseen_ids.npy")


def test_corrupt_png_in_hdf5_is_reported(h5_copy):
    with h5py.File(h5_copy, "a") as f:
        f["train/image2"][0] = np.frombuffer(b"\x89PNG\r\n\x1a\nnot really a png", np.uint8)
    stories = ARLDMStories(h5_copy, "train")
    with pytest.raises(DataFormatError, match=r"train/image2\[0\]: corrupt PNG") as err:
        stories[0]
    assert_one_line_error(err, h5_copy)


def test_wrong_caption_count_and_label_shape_are_reported(h5_copy):
    with h5py.File(h5_copy, "a") as f:
        f["train/text"][0] = "one|two"
        labels = f["test/labels"][()]
        del f["test/labels"]
        f["test/labels"] = labels[:, :, :4]
    with pytest.raises(DataFormatError, match="holds 2") as err:
        ARLDMStories(h5_copy, "train")[0]
    assert_one_line_error(err, h5_copy)
    with pytest.raises(DataFormatError, match="test/labels has shape") as err:
        ARLDMStories(h5_copy, "test")
    assert_one_line_error(err, h5_copy)


@pytest.fixture
def pororo_copy(pororo, tmp_path):
    return shutil.copytree(pororo, tmp_path / "pororo")


def test_missing_pororo_file_is_reported(pororo_copy):
    (pororo_copy / "descriptions.npy").unlink()
    with pytest.raises(DataFormatError, match="not found") as err:
        PororoSVStories(pororo_copy, "train")
    assert_one_line_error(err, pororo_copy / "descriptions.npy")


def test_pororo_frame_id_missing_from_labels_is_reported(pororo_copy):
    labels = np.load(pororo_copy / "labels.npy", allow_pickle=True).item()
    first = np.load(pororo_copy / "img_cache4.npy")[0].decode().removesuffix(".png")
    del labels[first]
    np.save(pororo_copy / "labels.npy", labels, allow_pickle=True)
    with pytest.raises(DataFormatError, match="not found") as err:
        PororoSVStories(pororo_copy, "train")
    assert_one_line_error(err, pororo_copy / "labels.npy")


def test_corrupt_pororo_png_is_reported(pororo_copy):
    stories = PororoSVStories(pororo_copy, "train")
    png = pororo_copy / stories.paths[0][0]
    png.write_bytes(png.read_bytes()[:40])
    with pytest.raises(DataFormatError, match="corrupt PNG") as err:
        stories[0]
    assert_one_line_error(err, png)


@pytest.fixture
def flint_copy(flintstones, tmp_path):
    return shutil.copytree(flintstones, tmp_path / "flint")


def test_flintstones_bad_frame_shape_and_missing_label_are_reported(flint_copy):
    stories = FlintstonesSVStories(flint_copy, "train")
    npy = flint_copy / "video_frames_sampled" / f"{stories.stories[0][2]}.npy"
    np.save(npy, np.zeros((5, SIZE, SIZE), np.uint8))
    with pytest.raises(DataFormatError, match="expected") as err:
        stories[0]
    assert_one_line_error(err, npy)
    with (flint_copy / "labels.pkl").open("rb") as f:
        labels = pickle.load(f)
    del labels[json.loads((flint_copy / "train-val-test_split.json").read_text())["train"][0]]
    with (flint_copy / "labels.pkl").open("wb") as f:
        pickle.dump(labels, f)
    with pytest.raises(DataFormatError, match="not found") as err:
        FlintstonesSVStories(flint_copy, "train")
    assert_one_line_error(err, flint_copy / "labels.pkl")

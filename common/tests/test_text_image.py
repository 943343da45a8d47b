"""DF-GAN/AttnGAN text-image loader, tokenizers, DAMSM vocabulary and the synthetic CUB-layout writer."""

import json
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from common.data.text_image import (
    CLIP_EOT,
    CLIP_SOT,
    GALIP_COCO_IMAGE_DIR,
    ClipTokenizer,
    DamsmTokenizer,
    TextImageDataset,
    build_damsm_captions,
    check_images_and_captions,
    cub_crop_box,
    damsm_words,
    image_transform,
    load_cub_bboxes,
    load_damsm_captions,
    load_image,
    prepare_damsm_captions,
    read_captions,
)
from common.errors import DataFormatError
from common.synthetic import __main__ as synthetic_cli
from common.synthetic import text_image as writer

POSITION_WORDS = {"left": {"left"}, "right": {"right"}, "top": {"top", "upper"}, "bottom": {"bottom", "lower"},
                  "center": {"center", "middle"}}


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return writer.write(tmp_path_factory.mktemp("ti") / "birds", seed=3)


@pytest.fixture(scope="module")
def meta(data):
    return json.loads((data / "metadata.json").read_text())


@pytest.fixture(scope="module")
def clip_tokenizer():
    return ClipTokenizer()


@pytest.fixture
def small(tmp_path):
    return writer.write(tmp_path / "birds", seed=0, n_train=4, n_test=2)


def image_file(root: Path, key: str) -> Path:
    return root / "CUB_200_2011" / "images" / f"{key}.jpg"


def first_key(root: Path, split: str = "train") -> str:
    return pickle.loads((root / split / "filenames.pickle").read_bytes())[0]


def assert_one_line_naming(excinfo, path: Path) -> None:
    msg = str(excinfo.value)
    assert "\n" not in msg and str(path) in msg, msg


def test_writer_output_loads_as_birds_batches_in_unit_range(data, clip_tokenizer):
    ds = TextImageDataset(data, "train", image_size=64, tokenizer=clip_tokenizer)
    assert len(ds) == 256 and len(TextImageDataset(data, "test", image_size=64)) == 64
    batch = next(iter(torch.utils.data.DataLoader(ds, batch_size=8, shuffle=True)))
    assert batch["image"].shape == (8, 3, 64, 64) and batch["image"].dtype == torch.float32
    assert batch["image"].min() >= -1 and batch["image"].max() <= 1
    assert batch["image"].min() < -0.5 and batch["image"].max() > 0.5
    assert batch["tokens"].shape == (8, 77) and batch["tokens"].dtype == torch.int32
    assert len(batch["caption"]) == 8 and len(batch["key"]) == 8


def test_cub_crop_box_matches_dfgan_formula_on_hand_cases():
    # r = int(0.75*40) = 30, centre (int(60/2), int(70/2)) = (30, 35)
    assert cub_crop_box((10, 20, 40, 30), 100, 80) == (0, 5, 60, 65)
    # r = int(18.75) = 18, centre (int(82.5), int(60.5)) = (82, 60): truncated, then clipped to 100 x 60
    assert cub_crop_box((70, 50, 25, 21), 100, 60) == (64, 42, 100, 60)


def test_bounding_boxes_are_matched_by_id_and_truncated_to_int(tmp_path):
    (tmp_path / "images.txt").write_text("1 001.a/a_1.jpg\n2 002.b/b_2.jpg\n")
    (tmp_path / "bounding_boxes.txt").write_text("2 1.0 2.0 3.0 4.0\n1 10.7 20.2 40.9 30.0\n")
    assert load_cub_bboxes(tmp_path) == {"001.a/a_1": (10, 20, 40, 30), "002.b/b_2": (1, 2, 3, 4)}


def test_cub_crop_of_the_written_box_is_exactly_the_scene(data, meta):
    boxes = load_cub_bboxes(data / "CUB_200_2011")
    for key in list(meta["items"])[:20]:
        item = meta["items"][key]
        assert list(boxes[key]) == item["cub_bbox"]
        x0, y0, x1, y1 = item["scene_box"]
        whole = np.asarray(load_image(image_file(data, key)))
        cropped = np.asarray(load_image(image_file(data, key), boxes[key]))
        assert cropped.shape == (64, 64, 3) and whole.shape[:2] != (64, 64)
        np.testing.assert_array_equal(cropped, whole[y0:y1, x0:x1])


def test_transform_resizes_shorter_side_to_76_64ths_then_crops(tmp_path):
    half = np.zeros((100, 200, 3), np.uint8)
    half[:, :100] = (255, 0, 0)
    half[:, 100:] = (0, 0, 255)
    img = Image.fromarray(half)
    # resize to 152 x 76; centre crop x in [44, 108): columns 0..31 from the red half, 32..63 from the blue one
    out = image_transform(64, augment=False)(img)
    assert out.shape == (3, 64, 64)
    assert torch.allclose(out[:, :, :31].mean((1, 2)), torch.tensor([1.0, -1.0, -1.0]), atol=0.02)
    assert torch.allclose(out[:, :, 33:].mean((1, 2)), torch.tensor([-1.0, -1.0, 1.0]), atol=0.02)
    torch.manual_seed(0)
    random_crops = {image_transform(64)(img)[0].sum().item() for _ in range(10)}
    assert len(random_crops) > 1


def test_test_time_variant_is_the_transformed_scene_and_train_variant_is_random(data, meta):
    fixed = TextImageDataset(data, "test", image_size=64, augment=False)
    x0, y0, x1, y1 = meta["items"][fixed.keys[0]]["scene_box"]
    scene = Image.fromarray(np.asarray(load_image(image_file(data, fixed.keys[0])))[y0:y1, x0:x1])
    assert torch.equal(fixed[0]["image"], image_transform(64, augment=False)(scene))
    assert torch.equal(fixed[0]["image"], fixed[0]["image"])
    augmented = TextImageDataset(data, "test", image_size=64)
    assert not all(torch.equal(augmented[0]["image"], augmented[0]["image"]) for _ in range(5))


def test_random_caption_is_a_line_of_the_text_file_and_varies(data, clip_tokenizer):
    ds = TextImageDataset(data, "train", image_size=64, tokenizer=clip_tokenizer)
    lines = read_captions(data / "text" / f"{ds.keys[0]}.txt")
    torch.manual_seed(0)
    drawn = [ds[0]["caption"] for _ in range(20)]
    assert set(drawn) <= set(lines) and len(set(drawn)) > 2


def test_clip_tokens_are_sot_bpe_eot_zero_padded_and_decode_to_caption(data, clip_tokenizer):
    from clip.simple_tokenizer import SimpleTokenizer

    caption = read_captions(data / "text" / f"{first_key(data)}.txt")[3]  # "A <colour> <shape>, <position>."
    tokens, length = clip_tokenizer(caption)
    assert tokens.shape == (77,) and tokens.dtype == torch.int32
    assert tokens[0] == CLIP_SOT and tokens[length - 1] == CLIP_EOT and (tokens[length:] == 0).all()
    decoded = SimpleTokenizer().decode(tokens[1 : length - 1].tolist())
    assert decoded.replace(" ", "") == caption.lower().replace(" ", "")
    long_tokens, long_length = clip_tokenizer("red " * 100)
    assert long_length == 77 and long_tokens[-1] == CLIP_EOT


def test_damsm_tokens_map_back_to_caption_words(data):
    tokenizer = DamsmTokenizer.from_pickle(data / "captions_DAMSM.pickle")
    ixtoword = load_damsm_captions(data / "captions_DAMSM.pickle").ixtoword
    for caption in read_captions(data / "text" / f"{first_key(data)}.txt"):
        words = damsm_words(caption)
        if len(words) <= 18:
            ids, n = tokenizer(caption)
            assert ids.shape == (18,) and ids.dtype == torch.int64 and n == len(words)
            assert [ixtoword[i] for i in ids[:n].tolist()] == words and (ids[n:] == 0).all()


def test_damsm_cut_keeps_a_random_18_word_subset_in_original_order(data):
    tokenizer = DamsmTokenizer.from_pickle(data / "captions_DAMSM.pickle")
    ixtoword = load_damsm_captions(data / "captions_DAMSM.pickle").ixtoword
    caption = next(c for c in read_captions(data / "text" / f"{first_key(data)}.txt") if len(damsm_words(c)) > 18)
    words = damsm_words(caption)
    torch.manual_seed(0)
    subsets = set()
    for _ in range(5):
        ids, n = tokenizer(caption)
        kept = [ixtoword[i] for i in ids.tolist()]
        assert n == 18 and 0 not in ids.tolist()
        remaining = iter(words)  # kept must be a subsequence of words
        assert all(any(w == v for v in remaining) for w in kept)
        subsets.add(tuple(kept))
    assert len(subsets) > 1


def test_damsm_words_and_vocabulary_follow_attngan_rules():
    assert damsm_words("A Red-circle, café!") == ["a", "red", "circle", "caf"]
    assert damsm_words("日本 bird") == ["bird"]
    train, test, ixtoword, wordtoix = build_damsm_captions(["B a", "a"], ["c b"])
    assert ixtoword == {0: "<end>", 1: "b", 2: "a", 3: "c"} and wordtoix == {w: i for i, w in ixtoword.items()}
    assert train == [[1, 2], [2]] and test == [[3, 1]]


def test_damsm_pickle_holds_first_ten_captions_per_key_in_split_order(data, meta):
    content = load_damsm_captions(data / "captions_DAMSM.pickle")
    assert len(content.train) == 256 * 10 and len(content.test) == 64 * 10
    assert sorted(content.ixtoword) == list(range(len(content.ixtoword)))
    keys = pickle.loads((data / "test" / "filenames.pickle").read_bytes())
    for i in (0, 17, 63):
        for j, caption in enumerate(read_captions(data / "text" / f"{keys[i]}.txt", 10)):
            assert [content.ixtoword[t] for t in content.test[i * 10 + j]] == damsm_words(caption)


def test_captions_name_the_planted_colour_shape_and_position(data, meta):
    for key, item in meta["items"].items():
        captions = read_captions(data / "text" / f"{key}.txt")
        assert len(captions) == 10 and any(len(damsm_words(c)) > 18 for c in captions)
        for caption in captions:
            words = set(damsm_words(caption))
            assert {item["colour"], item["shape"]} <= words and words & POSITION_WORDS[item["position"]], caption


def test_planted_metadata_agrees_with_pixels(data, meta):
    palette = np.array(list(writer.COLOURS.values()), dtype=np.float32)
    boxes = load_cub_bboxes(data / "CUB_200_2011")
    for key, item in meta["items"].items():
        scene = np.asarray(load_image(image_file(data, key), boxes[key]), dtype=np.float32)
        x0, y0, x1, y1 = item["shape_bbox"]
        cx, cy, q = (x0 + x1) // 2, (y0 + y1) // 2, max(1, (x1 - x0) // 8)
        mean = scene[cy - q : cy + q + 1, cx - q : cx + q + 1].reshape(-1, 3).mean(0)
        assert list(writer.COLOURS)[np.argmin(((palette - mean) ** 2).sum(1))] == item["colour"], key
        ys, xs = np.nonzero(np.abs(scene - np.array(item["rgb"])).max(-1) < 40)
        ex, ey = writer.POSITIONS[item["position"]]
        assert abs(xs.mean() / 64 - ex) < 0.1 and abs(ys.mean() / 64 - ey) < 0.1, key


def test_colour_classifier_reads_the_planted_colour_and_rejects_gray(data, meta):
    boxes = load_cub_bboxes(data / "CUB_200_2011")
    keys = list(meta["items"])[:60]
    scenes = np.stack([np.asarray(load_image(image_file(data, k), boxes[k]).resize((64, 64)), np.float32) / 255
                       for k in keys])
    assert writer.dominant_colour(scenes) == [meta["items"][k]["colour"] for k in keys]
    gray = np.clip(0.5 + 0.07 * np.random.default_rng(0).standard_normal((2, 64, 64, 3)), 0, 1)
    assert writer.dominant_colour(gray) == [None, None]
    assert writer.caption_colour("A purple square, on the left.") == "purple"
    assert writer.caption_colour("a plain gray picture") is None
    with pytest.raises(ValueError):
        writer.dominant_colour(scenes[0])


def test_writer_is_deterministic_in_seed(tmp_path):
    def files(root):
        return {p.relative_to(root): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}

    a = files(writer.write(tmp_path / "a", seed=5, n_train=12, n_test=4))
    b = files(writer.write(tmp_path / "b", seed=5, n_train=12, n_test=4))
    c = files(writer.write(tmp_path / "c", seed=6, n_train=12, n_test=4))
    assert a == b
    assert a[Path("metadata.json")] != c[Path("metadata.json")]


def test_cli_writes_a_dataset_the_loader_reads(tmp_path, monkeypatch):
    monkeypatch.setattr(synthetic_cli, "FORMATS", {"text_image": synthetic_cli.FORMATS["text_image"]})
    out = tmp_path / "cli"
    assert synthetic_cli.main(["text_image", "--out", str(out), "--seed", "1", "--n-train", "8", "--n-test", "4"]) == 0
    assert len(TextImageDataset(out, "train", image_size=64)) == 8
    assert TextImageDataset(out, "test", image_size=64)[0]["image"].shape == (3, 64, 64)
    big = tmp_path / "big"
    synthetic_cli.main(["text_image", "--out", str(big), "--seed", "1", "--n-train", "2", "--n-test", "1",
                        "--image-size", "256"])
    assert TextImageDataset(big, "train", image_size=256, augment=False)[0]["image"].shape == (3, 256, 256)
    assert json.loads((big / "metadata.json").read_text())["synthetic"] is True


def _write_coco(root: Path, n_lines: int = 6) -> None:
    for split, folder, keys in (("train", "train2014", ["COCO_train2014_000000000001", "COCO_train2014_000000000002"]),
                                ("test", "val2014", ["COCO_val2014_000000000003"])):
        (root / split).mkdir(parents=True)
        (root / split / "filenames.pickle").write_bytes(pickle.dumps(keys))
        (root / "images" / folder / "jpg").mkdir(parents=True)
        (root / "text").mkdir(exist_ok=True)
        for k in keys:
            Image.new("RGB", (80, 60), (0, 128, 255)).save(root / "images" / folder / "jpg" / f"{k}.jpg")
            (root / "text" / f"{k}.txt").write_text("".join(f"a blue photo number {j}\n" for j in range(n_lines)))


def test_coco_reads_galip_jpg_subfolder_without_bbox(tmp_path):
    _write_coco(tmp_path)
    ds = TextImageDataset(tmp_path, "test", dataset="coco", image_size=64, image_dir=GALIP_COCO_IMAGE_DIR,
                          captions="all", captions_per_image=5, augment=False)
    item = ds[0]
    assert item["key"] == "COCO_val2014_000000000003" and item["image"].shape == (3, 64, 64)
    assert item["caption"] == [f"a blue photo number {j}" for j in range(5)]
    assert torch.allclose(item["image"].mean((1, 2)), torch.tensor([-1.0, 0.0, 1.0]), atol=0.03)
    with pytest.raises(DataFormatError) as err:  # DF-GAN's layout has no jpg/ sub-folder
        TextImageDataset(tmp_path, "train", dataset="coco", image_size=64)
    assert_one_line_naming(err, tmp_path / "images" / "train2014" / "COCO_train2014_000000000001.jpg")


def test_coco_with_four_captions_fails_where_five_are_required(tmp_path):
    _write_coco(tmp_path, n_lines=4)
    ds = TextImageDataset(tmp_path, "train", dataset="coco", image_dir=GALIP_COCO_IMAGE_DIR, captions_per_image=5)
    with pytest.raises(DataFormatError) as err:
        ds[0]
    assert_one_line_naming(err, tmp_path / "text" / "COCO_train2014_000000000001.txt")


def test_missing_split_pickle_names_it(small):
    (small / "test" / "filenames.pickle").unlink()
    with pytest.raises(DataFormatError) as err:
        TextImageDataset(small, "test")
    assert_one_line_naming(err, small / "test" / "filenames.pickle")


def test_unknown_split_names_the_split_file(small):
    with pytest.raises(DataFormatError) as err:
        TextImageDataset(small, "val")
    assert_one_line_naming(err, small / "val" / "filenames.pickle")
    assert "unknown split" in str(err.value)
    with pytest.raises(DataFormatError) as err:
        TextImageDataset(small, "train", dataset="flowers")
    assert_one_line_naming(err, small)


def test_listed_key_without_image_names_the_image(small):
    path = image_file(small, first_key(small))
    path.unlink()
    with pytest.raises(DataFormatError) as err:
        TextImageDataset(small, "train")
    assert_one_line_naming(err, path)


def test_listed_key_without_text_names_the_text_file(small):
    path = small / "text" / f"{first_key(small)}.txt"
    path.unlink()
    with pytest.raises(DataFormatError) as err:
        TextImageDataset(small, "train")
    assert_one_line_naming(err, path)


def test_empty_caption_file_names_it(small):
    path = small / "text" / f"{first_key(small)}.txt"
    path.write_text("\n  \n")
    with pytest.raises(DataFormatError) as err:
        TextImageDataset(small, "train")[0]
    assert_one_line_naming(err, path)


def test_fewer_than_ten_captions_fail_the_damsm_path(small):
    path = small / "text" / f"{first_key(small)}.txt"
    path.write_text("\n".join(read_captions(path)[:9]))
    assert TextImageDataset(small, "train")[0]["key"] == first_key(small)  # GALIP takes any number
    with pytest.raises(DataFormatError) as err:
        TextImageDataset(small, "train", captions_per_image=10)[0]
    assert_one_line_naming(err, path)
    with pytest.raises(DataFormatError) as err:
        prepare_damsm_captions(small, 10)
    assert_one_line_naming(err, path)


@pytest.mark.parametrize("damage", ["truncate", "garbage"])
def test_corrupt_image_names_it(small, damage):
    path = image_file(small, first_key(small))
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2] if damage == "truncate" else b"not a jpeg" * 10)
    with pytest.raises(DataFormatError) as err:
        TextImageDataset(small, "train")[0]
    assert_one_line_naming(err, path)


def test_missing_bbox_row_names_bounding_boxes_txt(small):
    path = small / "CUB_200_2011" / "bounding_boxes.txt"
    path.write_text("".join(path.read_text().splitlines(keepends=True)[1:]))
    with pytest.raises(DataFormatError) as err:
        TextImageDataset(small, "train")
    assert_one_line_naming(err, path)


def test_key_absent_from_images_txt_names_it(small):
    path = small / "CUB_200_2011" / "images.txt"
    key = first_key(small)
    path.write_text("".join(line for line in path.read_text().splitlines(keepends=True) if key not in line))
    with pytest.raises(DataFormatError) as err:
        TextImageDataset(small, "train")
    assert_one_line_naming(err, path)


def test_malformed_damsm_pickle_names_it(small):
    path = small / "captions_DAMSM.pickle"
    path.write_bytes(pickle.dumps([[], [], {0: "<end>"}]))
    with pytest.raises(DataFormatError) as err:
        DamsmTokenizer.from_pickle(path)
    assert_one_line_naming(err, path)
    path.write_bytes(b"\x80\x04truncated")
    with pytest.raises(DataFormatError) as err:
        load_damsm_captions(path)
    assert_one_line_naming(err, path)


def test_caption_without_vocabulary_word_names_the_text_file(small):
    path = small / "text" / f"{first_key(small)}.txt"
    path.write_text("zzz qqq\n")
    ds = TextImageDataset(small, "train", tokenizer=DamsmTokenizer.from_pickle(small / "captions_DAMSM.pickle"))
    with pytest.raises(DataFormatError) as err:
        ds[0]
    assert_one_line_naming(err, path)


@pytest.mark.parametrize("damage", ["garbage header", "empty caption", "nine captions", "no vocabulary word",
                                    "box outside the image"])
def test_data_check_names_the_bad_file_without_reading_pixels(small, damage):
    """``check_images_and_captions`` (what train runs before its run folder) passes the written data, then names the
    one broken file of the test split; a JPEG cut in half keeps its header, so only the full read finds it."""
    ds = lambda split: TextImageDataset(small, split, captions_per_image=10,  # noqa: E731
                                        tokenizer=DamsmTokenizer.from_pickle(small / "captions_DAMSM.pickle"))
    assert check_images_and_captions(ds("train"), ds("test"), progress=False) == 6
    key = first_key(small, "test")
    image, text = image_file(small, key), small / "text" / f"{key}.txt"
    raw = image.read_bytes()
    image.write_bytes(raw[: len(raw) // 2])
    assert check_images_and_captions(ds("test"), progress=False) == 2  # header-only: not decoded
    image.write_bytes(raw)
    path = image if damage in ("garbage header", "box outside the image") else text
    if damage == "garbage header":
        image.write_bytes(b"not a jpeg" * 10)
    elif damage == "box outside the image":
        Image.new("RGB", (4, 4)).save(image)
    else:
        lines = {"empty caption": ["", " "], "nine captions": read_captions(text)[:9],
                 "no vocabulary word": ["zzqx qqzx"] * 10}[damage]
        text.write_text("\n".join(lines))
    with pytest.raises(DataFormatError) as err:
        check_images_and_captions(ds("train"), ds("test"), progress=False)
    assert_one_line_naming(err, path)

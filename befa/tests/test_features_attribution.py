"""CLIP feature extraction and the attribution analysis, on a tiny random CLIP loaded through ``load_clip``."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw

from befa.adapter import BeFA
from befa.attribution import (
    adapter_transform,
    grid_boxes,
    highlight_text,
    highlight_text_attribution,
    image_attribution,
    plot_image_attribution,
    text_attribution,
)
from befa.features import encode_texts, extract_features, official_transform, open_image, read_items
from common.data.clip_weights import CLIP_URL, VIT_B32, import_clip, load_clip, write_random_clip
from common.errors import DataFormatError, WeightsNotFoundError

clip = import_clip()
LONG_TEXT = " ".join(["soft cotton shirt with long sleeves"] * 30)  # > 77 tokens: needs truncate=True
TEXTS = ["red round ball", "blue square box", LONG_TEXT, "green triangle", "yellow ring"]


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    return write_random_clip(tmp_path_factory.mktemp("clip") / "ViT-B-32.pt", seed=0, tiny=True)


@pytest.fixture(scope="module")
def clip_model(weights):
    return load_clip(weights, "cpu")


def shape_image(kind: int, size=(96, 64)) -> Image.Image:
    """A coloured shape on a contrasting background."""
    colours = [(220, 30, 30), (30, 30, 220), (240, 240, 240), (30, 200, 30), (230, 220, 20)]
    image = Image.new("RGB", size, tuple(255 - c for c in colours[kind]))
    draw = ImageDraw.Draw(image)
    box = (10 + 3 * kind, 8, 60 + 4 * kind, 56)
    [draw.ellipse, draw.rectangle, draw.rectangle, draw.polygon, draw.ellipse][kind](
        box if kind != 3 else [(10, 56), (40, 8), (70, 56)], fill=colours[kind])
    return image


def make_items(folder, order=(3, 0, 4, 1, 2)):
    (folder / "img").mkdir(parents=True)
    lines = ["itemID\timage\ttext"]
    for item in order:  # rows need not be sorted
        name = f"img/{item}.{'png' if item % 2 else 'jpg'}"
        shape_image(item).save(folder / name)
        lines.append(f"{item}\t{name}\t{TEXTS[item]}")
    (folder / "items.tsv").write_text("\n".join(lines) + "\n")
    return folder


def test_random_clip_has_vit_b32_shape():
    with torch.device("meta"):
        model = clip.model.CLIP(**VIT_B32)
    assert sum(p.numel() for p in model.parameters()) == 151_277_313  # OpenAI's ViT-B/32
    assert model.visual.conv1.kernel_size == (32, 32) and model.visual.input_resolution == 224
    assert model.text_projection.shape == (512, 512) and model.visual.proj.shape == (768, 512)


def test_load_state_dict_and_torchscript_agree(weights, clip_model, tmp_path):
    model, preprocess = clip_model
    assert model.visual.input_resolution == 224 and next(model.parameters()).dtype == torch.float32
    image, tokens = preprocess(shape_image(0)).unsqueeze(0), clip.tokenize(["a red ball"])
    with warnings.catch_warnings():  # the official ViT-B-32.pt is a traced TorchScript archive like this one
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(clip.model.build_model(torch.load(weights)).float().eval(), (image, tokens))
        torch.jit.save(traced, tmp_path / "jit.pt")
    jit_model, _ = load_clip(tmp_path / "jit.pt")
    with torch.inference_mode():
        assert torch.equal(jit_model.encode_image(image), model.encode_image(image))
        assert torch.equal(jit_model.encode_text(tokens), model.encode_text(tokens))


def test_missing_weights_one_line(tmp_path):
    with pytest.raises(WeightsNotFoundError) as err:
        load_clip(tmp_path / "nope" / "ViT-B-32.pt")
    message = str(err.value)
    assert "\n" not in message and "'clip_weights'" in message and str(tmp_path / "nope") in message
    assert CLIP_URL in message and CLIP_URL == clip.clip._MODELS["ViT-B/32"]


def test_corrupt_or_wrong_weights(weights, tmp_path):
    bad = tmp_path / "ViT-B-32.pt"
    bad.write_bytes(b"not a checkpoint" * 100)
    with pytest.raises(DataFormatError) as err:
        load_clip(bad)
    assert "\n" not in str(err.value) and str(bad) in str(err.value)
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(weights.read_bytes()[:5000])
    with pytest.raises(DataFormatError) as err:
        load_clip(truncated)
    assert "\n" not in str(err.value) and str(truncated) in str(err.value)
    torch.save({"visual.proj": torch.zeros(2, 2)}, bad)
    with pytest.raises(DataFormatError, match="not a CLIP state dict"):
        load_clip(bad)


def test_extract_features_matches_direct_encoding(weights, clip_model, tmp_path):
    model, preprocess = clip_model
    folder = make_items(tmp_path / "items")
    image_path, text_path = extract_features(folder, weights, tmp_path / "out", batch_size=2, progress=False)
    image_feat, text_feat = np.load(image_path), np.load(text_path)
    assert image_feat.shape == text_feat.shape == (5, 512)
    assert image_feat.dtype == text_feat.dtype == np.float32
    table = read_items(folder)
    batch = torch.stack([preprocess(Image.open(p)) for p in table.image_paths])
    with torch.inference_mode():
        direct_image = model.encode_image(batch).numpy()
        direct_text = model.encode_text(clip.tokenize(TEXTS, truncate=True)).numpy()
    np.testing.assert_allclose(image_feat, direct_image, rtol=1e-5, atol=1e-5)  # raw, not L2-normalised
    np.testing.assert_allclose(text_feat, direct_text, rtol=1e-5, atol=1e-5)
    assert not np.allclose(np.linalg.norm(image_feat, axis=1), 1.0)

    extract_features(folder, weights, tmp_path / "official", official_resize=True, progress=False)
    with torch.inference_mode():
        direct = model.encode_image(torch.stack([official_transform()(open_image(table.image_paths[1]))]))
    np.testing.assert_allclose(np.load(tmp_path / "official" / "image_feat.npy")[1], direct[0], rtol=1e-5, atol=1e-5)


def test_item_table_errors(weights, tmp_path):
    folder = make_items(tmp_path / "a")
    rows = (folder / "items.tsv").read_text().splitlines()
    (folder / "items.tsv").write_text("\n".join(rows[:2] + ["7\timg/0.jpg\tx"] + rows[3:]))
    with pytest.raises(DataFormatError, match="not contiguous"):
        read_items(folder)
    (folder / "items.tsv").write_text("\n".join(rows[:2] + ["0\t\tno picture"] + rows[3:]))
    with pytest.raises(DataFormatError, match="item 0 .* has no image"):
        read_items(folder)
    (folder / "items.tsv").write_text("\n".join(rows[:2] + ["0\timg/missing.jpg\tx"] + rows[3:]))
    with pytest.raises(DataFormatError, match="missing.jpg: image of item 0"):
        read_items(folder)


def test_corrupt_image_names_file(weights, tmp_path):
    folder = make_items(tmp_path / "items")
    (folder / "img" / "4.jpg").write_bytes(b"\xff\xd8\xff garbage")
    with pytest.raises(DataFormatError) as err:
        extract_features(folder, weights, tmp_path / "out", progress=False)
    assert "\n" not in str(err.value) and str(folder / "img" / "4.jpg") in str(err.value)
    assert not (tmp_path / "out" / "image_feat.npy").exists()


def test_image_attribution_is_direct_cosine_and_plots(clip_model, tmp_path):
    model, preprocess = clip_model
    image = shape_image(3, size=(130, 90))
    attribution = image_attribution(model, preprocess, image, grid=(3, 4))
    assert attribution.before.shape == attribution.after.shape == (3, 4)
    np.testing.assert_allclose(attribution.after, attribution.before)  # identity transform
    boxes = grid_boxes(130, 90, (3, 4))
    assert boxes[0] == (0, 0, 32, 30) and boxes[-1] == (98, 60, 130, 90)
    with torch.inference_mode():
        whole = model.encode_image(preprocess(image).unsqueeze(0))
        for k, box in enumerate(boxes):  # one patch at a time, by hand
            patch = model.encode_image(preprocess(image.crop(box)).unsqueeze(0))
            expected = F.cosine_similarity(patch, whole).item()
            assert attribution.before.flat[k] == pytest.approx(expected, abs=1e-5)

    torch.manual_seed(0)
    project, adapter = torch.nn.Linear(512, 64), BeFA(64, layer_times=2, dropout_rate=0.5)
    transform = adapter_transform(project, adapter)
    adapted = image_attribution(model, preprocess, image, grid=(3, 4), transform=transform)
    np.testing.assert_allclose(adapted.before, attribution.before, atol=1e-6)
    assert not np.allclose(adapted.after, adapted.before, atol=1e-3)
    assert adapter.training  # the transform evaluates in eval mode (no dropout), then restores the module's mode
    adapter.eval()
    with torch.inference_mode():
        mapped_whole, mapped_patch = adapter(project(whole)), adapter(project(patch))
    assert adapted.after.flat[-1] == pytest.approx(F.cosine_similarity(mapped_patch, mapped_whole).item(), abs=1e-5)

    png = plot_image_attribution(image, adapted, tmp_path / "maps" / "item.png", figsize=(9, 3), dpi=50)
    with Image.open(png) as written:
        assert written.format == "PNG" and written.size == (450, 150)


def test_text_attribution_and_highlighting(clip_model):
    model, _ = clip_model
    text = "red cotton shirt <b>"
    attribution = text_attribution(model, text)
    assert attribution.words == ["red", "cotton", "shirt", "<b>"]
    whole, words = encode_texts(model, [text]), encode_texts(model, attribution.words)
    np.testing.assert_allclose(attribution.before, F.cosine_similarity(words, whole).numpy(), atol=1e-5)

    gate = torch.randn(64, generator=torch.Generator().manual_seed(1))
    transform = adapter_transform(torch.nn.Linear(512, 64), BeFA(64), item_embedding=gate)
    gated = text_attribution(model, text, transform=transform)
    assert not np.allclose(gated.after, gated.before, atol=1e-3)

    page = highlight_text_attribution(gated)
    assert "&lt;b&gt;" in page and f"{gated.after[0]:.2f}" in page and page.count("<span") == 8
    table = highlight_text(attribution.words, attribution.before, fmt="markdown")
    assert table.splitlines()[2] == f"| red | {attribution.before[0]:.4f} |"
    assert highlight_text_attribution(gated, fmt="markdown").count("\n") == 5

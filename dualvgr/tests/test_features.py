"""Feature extraction end to end on tiny synthetic videos with random backbones, clip sampling, bad videos."""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import h5py
import numpy as np
import pytest
import torch

from common.data.videoqa import read_feature_index
from common.errors import DataFormatError, WeightsNotFoundError
from dualvgr import features
from dualvgr.resnext3d import load_resnext101, load_state, random_resnext101


def write_video(path: Path, num_frames: int, seed: int) -> None:
    """MJPG .avi of random 32x48 colour frames."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (48, 32))
    rng = np.random.default_rng(seed)
    for _ in range(num_frames):
        writer.write(rng.integers(0, 256, (32, 48, 3), dtype=np.uint8))
    writer.release()


def test_clip_frame_indices_match_the_official_sampling_by_hand():
    # T=40, C=2: centres linspace(0, 40, 4) -> [13, 26]; windows [c-8, c+8) inside the video
    np.testing.assert_array_equal(features.clip_frame_indices(40, 2), [np.arange(5, 21), np.arange(18, 34)])
    # T=20, C=2: centres [6, 13]; clip 1 starts at 0 with 2 copies of frame 0 in front; clip 2 stops at T-1=19
    # (excluded) and gets 2 copies of frame 19 behind
    np.testing.assert_array_equal(features.clip_frame_indices(20, 2),
                                  [[0, 0, 0, *range(1, 14)], [*range(5, 19), 19, 19]])
    # T=10, C=2: centres [3, 6]; both clips overflow both ends: 7 copies of frame 0 + frames 0..8, frame 9 unused
    np.testing.assert_array_equal(features.clip_frame_indices(10, 2), [[0] * 8 + list(range(1, 9))] * 2)
    # a one-frame video repeats its frame
    np.testing.assert_array_equal(features.clip_frame_indices(1, 3), np.zeros((3, 16)))


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    features.add_arguments(parser)
    return parser.parse_args(argv)


def test_extract_features_end_to_end_with_random_weights(tmp_path, capsys):
    videos = tmp_path / "videos"
    videos.mkdir()
    write_video(videos / "video7.avi", 6, seed=0)  # frames kept few: ResNet-101 at 224 px costs ~0.5 s a frame
    write_video(videos / "clip3.avi", 12, seed=1)
    (videos / "notes.txt").write_text("not a video: no trailing integer id")
    torch.manual_seed(0)
    out = tmp_path / "data"
    paths = features.run(_parse(["--dataset", "tiny", "--video-dir", str(videos), "--out", str(out),
                                 "--num-clips", "2", "--random-weights", "--device", "cpu"]))
    assert paths == [out / "tiny_appearance_feat.h5", out / "tiny_motion_feat.h5"]
    assert sorted(p.name for p in out.iterdir()) == ["tiny_appearance_feat.h5", "tiny_motion_feat.h5"]
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines and all("RANDOM WEIGHTS" in line for line in lines)

    ids = read_feature_index(paths[0], "resnet_features", (2, 16, 2048), "clips, frames, dim")
    np.testing.assert_array_equal(ids, [3, 7])
    np.testing.assert_array_equal(read_feature_index(paths[1], "resnext_features", (2, 2048), "clips, dim"), [3, 7])
    with h5py.File(paths[0]) as f:
        app = f["resnet_features"][()]
    with h5py.File(paths[1]) as f:
        mot = f["resnext_features"][()]
    assert app.dtype == mot.dtype == np.float32 and np.isfinite(app).all() and np.isfinite(mot).all()
    assert not np.allclose(app[0], app[1]) and not np.allclose(mot[0], mot[1])
    # video 3 (T=12): centres [4, 8]; clip 1 = 5 copies of frame 0 then 1..11, clip 2 = 6 copies then 1..10
    np.testing.assert_array_equal(app[0, 0, :5], np.broadcast_to(app[0, 1, 0], (5, 2048)))
    np.testing.assert_array_equal(app[0, 0, 5:15], app[0, 1, 6:16])
    assert not np.allclose(app[0, 0, 4], app[0, 0, 5])


@pytest.mark.parametrize("case", ["missing", "garbage", "no frames"])
def test_missing_corrupt_or_empty_video_is_a_one_line_error(tmp_path, case):
    path = tmp_path / "video5.avi"
    if case == "garbage":
        path.write_bytes(b"this is not a video" * 100)
    elif case == "no frames":
        write_video(path, 0, seed=0)
    extractor = features.Extractor(None, None, torch.device("cpu"))
    with pytest.raises(DataFormatError) as err:
        features.extract([(5, path)], extractor, tmp_path / "out", "tiny", 2)
    assert str(err.value).startswith(str(path)) and "\n" not in str(err.value)
    assert not any((tmp_path / "out").iterdir())


def test_resnext101_checkpoint_loading(tmp_path):
    with pytest.raises(WeightsNotFoundError, match="resnext-101-kinetics.pth"):
        load_resnext101(tmp_path / "absent.pth")
    with pytest.raises(WeightsNotFoundError, match="resnet101-63fe2227.pth"):
        features.load_resnet101(tmp_path / "absent.pth")
    source = random_resnext101()
    state = {f"module.{k}": v for k, v in source.state_dict().items() if not k.endswith("num_batches_tracked")}
    state |= {"module.fc.weight": torch.zeros(400, 2048), "module.fc.bias": torch.zeros(400)}
    torch.save({"epoch": 1, "arch": "resnext-101", "state_dict": state}, tmp_path / "kinetics.pth")
    loaded = load_resnext101(tmp_path / "kinetics.pth")
    assert all(torch.equal(v, loaded.state_dict()[k]) for k, v in source.state_dict().items())
    torch.save({"state_dict": {"module.conv1.weight": state["module.conv1.weight"]}}, tmp_path / "other.pth")
    with pytest.raises(DataFormatError, match="missing key"):
        load_resnext101(tmp_path / "other.pth")
    small = torch.nn.Sequential(torch.nn.Conv3d(3, 4, 3), torch.nn.BatchNorm3d(4))
    bad = {**small.state_dict(), "0.weight": torch.zeros(4, 3, 1, 3, 3)}
    with pytest.raises(DataFormatError, match=r"0.weight has shape \(4, 3, 1, 3, 3\), expected \(4, 3, 3, 3, 3\)"):
        load_state(small, bad, tmp_path / "bad.pth", "small")

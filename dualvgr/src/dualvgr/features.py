"""``dualvgr extract-features``: videos -> ResNet-101 appearance and 3D ResNeXt-101 motion clip features.

Follows ``NJUPT-MCC/DualVGR-VideoQA:preprocess/preprocess_features.py`` (itself HCRN's): every frame is decoded
with OpenCV and turned BGR -> RGB; C clips of 16 consecutive frames are centred at
``linspace(0, T, C + 2, dtype=int32)[1:C + 1]`` (see ``clip_frame_indices``); each frame is resized as a whole
(no crop, aspect ratio not kept) with PIL bicubic to 224x224 for appearance and 112x112 for motion (the README's
``--image_height 112 --image_width 112``). Appearance: torchvision ResNet-101 (``pretrained=True``, i.e. the
IMAGENET1K_V1 weights) up to the global average pool, 2048-d per frame. Motion: ``resnext3d.ResNeXt3d`` on the
[C, 3, 16, 112, 112] clips, 2048-d per clip. Output: ``common.data.videoqa`` HDF5 files.

Deviation: the official script shuffles the video list (unseeded ``random.shuffle``) before writing; rows here
are in increasing video id (readers look videos up by ``ids`` either way).
"""

from __future__ import annotations

import argparse
import os
import re
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import cv2
import h5py
import numpy as np
import torch
import torchvision
from PIL import Image
from tqdm import tqdm

from common.cli import add_device_argument
from common.data.videoqa import FRAMES_PER_CLIP, NUM_CLIPS, SPLITS
from common.errors import DataFormatError, WeightsNotFoundError
from dualvgr.questions import read_annotations
from dualvgr.resnext3d import (
    CLIP_SIZE,
    WEIGHTS_SOURCE,
    load_resnext101,
    load_state,
    random_resnext101,
    read_checkpoint,
)

APPEARANCE_SIZE = 224
IMAGENET_MEAN = (0.485, 0.456, 0.406)
HCRN_STD = (0.229, 0.224, 0.224)  # run_batch in preprocess_features.py: the blue std typo of HCRN (parity default)
IMAGENET_STD = (0.229, 0.224, 0.225)
# kenshohara/video-classification-3d-cnn-pytorch mean.py (the default "activitynet" mean of 3D-ResNets-PyTorch's
# opts.py, which trained resnext-101-kinetics.pth): subtracted from 0-255 RGB, std 1.
KENSHOHARA_MEAN = (114.7748, 107.7354, 99.4750)
LAYOUTS = ("msvd-qa", "msrvtt-qa", "svqa", "folder")
KINDS = {"appearance": "resnet_features", "motion": "resnext_features"}
RESNET101_SOURCE = ("https://download.pytorch.org/models/resnet101-63fe2227.pth (torchvision "
                    "ResNet101_Weights.IMAGENET1K_V1, the weights of the official pretrained=True)")
RANDOM_TAG = "RANDOM WEIGHTS: "


def clip_frame_indices(num_frames: int, num_clips: int, clip_len: int = FRAMES_PER_CLIP) -> np.ndarray:
    """Frame index of every clip position, int64 [num_clips, clip_len], as ``extract_clips_with_consecutive_frames``.

    A clip centred at c covers frames [c - 8, c + 8). Past the start, the first frame is repeated in front; past
    the end the window stops at T - 1 (excluded) and the last frame is repeated behind. When a clip overflows both
    ends, only the front padding applies and frame T - 1 itself is never used (official behaviour, kept).
    """
    centres = np.linspace(0, num_frames, num_clips + 2, dtype=np.int32)[1:num_clips + 1].astype(np.int64)
    start = np.maximum(centres - clip_len // 2, 0)
    end = np.where(centres + clip_len // 2 > num_frames, num_frames - 1, centres + clip_len // 2)
    shortage = clip_len - (end - start)
    k = np.arange(clip_len)
    front = np.maximum(k - shortage[:, None], 0)  # start == 0: shortage copies of frame 0, then 0..end-1
    back = np.minimum(start[:, None] + k, num_frames - 1)  # start..end-1, then copies of frame T - 1
    return np.where((start == 0)[:, None], front, back)


def read_video(path: Path) -> list[np.ndarray]:
    """All frames of a video as RGB uint8 [H, W, 3] arrays (OpenCV decoding, as the official script)."""
    if not path.is_file():
        raise DataFormatError(path, "video not found")
    cap = cv2.VideoCapture(str(path))
    try:
        if not cap.isOpened():
            raise DataFormatError(path, "OpenCV cannot open this video")
        frames = []
        ok, frame = cap.read()
        while ok:
            frames.append(np.ascontiguousarray(frame[:, :, ::-1]))
            ok, frame = cap.read()
    finally:
        cap.release()
    if not frames:
        raise DataFormatError(path, "no decodable frames")
    return frames


def resize_frames(frames: list[np.ndarray], size: int) -> np.ndarray:
    """PIL bicubic resize of whole frames to size x size: uint8 [N, size, size, 3]."""
    return np.stack([np.asarray(Image.fromarray(f).resize((size, size), Image.Resampling.BICUBIC)) for f in frames])


@dataclass
class Extractor:
    """The backbones (None when that feature is not wanted) and how inputs are normalised."""

    resnet: torch.nn.Module | None
    resnext: torch.nn.Module | None
    device: torch.device
    fix_quirks: bool = False
    batch_frames: int = 256

    def appearance(self, frames: np.ndarray) -> np.ndarray:
        """ResNet-101 pool features of uint8 RGB frames [N, 224, 224, 3] -> float32 [N, 2048].

        Parity: (x / 255 - ImageNet mean) / (0.229, 0.224, 0.224); ``fix_quirks``: the true std 0.225 for blue.
        """
        mean = torch.tensor(IMAGENET_MEAN, device=self.device).view(1, 3, 1, 1)
        std = torch.tensor(IMAGENET_STD if self.fix_quirks else HCRN_STD, device=self.device).view(1, 3, 1, 1)
        out = []
        for chunk in np.array_split(frames, -(-len(frames) // self.batch_frames)):
            x = torch.from_numpy(chunk).to(self.device).permute(0, 3, 1, 2).float()
            out.append(self.resnet((x / 255 - mean) / std).float().cpu())
        return torch.cat(out).numpy()

    def motion(self, clips: np.ndarray) -> np.ndarray:
        """ResNeXt-101 features of uint8 RGB clips [C, 16, 112, 112, 3] -> float32 [C, 2048].

        Parity: raw 0-255 RGB, as the official script feeds it. ``fix_quirks``: minus the mean kenshohara's code
        subtracts for this checkpoint, ``KENSHOHARA_MEAN`` (3D-ResNets-PyTorch labels it "activitynet"; its
        "kinetics" mean 110.64/103.16/96.29 is not the training default); std 1 in both.
        """
        mean = torch.tensor(KENSHOHARA_MEAN if self.fix_quirks else (0.0, 0.0, 0.0), device=self.device)
        per_batch = max(1, self.batch_frames // FRAMES_PER_CLIP)
        out = []
        for chunk in np.array_split(clips, -(-len(clips) // per_batch)):
            x = torch.from_numpy(chunk).to(self.device).float() - mean
            out.append(self.resnext(x.permute(0, 4, 1, 2, 3)).float().cpu())
        return torch.cat(out).numpy()

    def video(self, path: Path, num_clips: int) -> dict[str, np.ndarray]:
        """Features of one video: ``appearance`` [C, 16, 2048] and/or ``motion`` [C, 2048]."""
        frames = read_video(path)
        index = clip_frame_indices(len(frames), num_clips)
        unique, inverse = np.unique(index, return_inverse=True)
        inverse, picked = inverse.reshape(index.shape), [frames[i] for i in unique]
        feats = {}
        if self.resnet is not None:
            feats["appearance"] = self.appearance(resize_frames(picked, APPEARANCE_SIZE))[inverse]
        if self.resnext is not None:
            feats["motion"] = self.motion(resize_frames(picked, CLIP_SIZE)[inverse])
        return feats


def load_resnet101(path: str | Path) -> torch.nn.Module:
    """torchvision ResNet-101 with the ImageNet state_dict at ``path``, classifier removed, in eval mode."""
    path = Path(path)
    if not path.is_file():
        raise WeightsNotFoundError("resnet101-weights", path, RESNET101_SOURCE)
    model = load_state(torchvision.models.resnet101(weights=None), read_checkpoint(path), path, "ResNet-101")
    model.fc = torch.nn.Identity()
    return model


def random_resnet101() -> torch.nn.Module:
    """torchvision ResNet-101 with its default random init, classifier removed, in eval mode."""
    model = torchvision.models.resnet101(weights=None)
    model.fc = torch.nn.Identity()
    return model.eval()


def _video_id(path: Path, name: str) -> int:
    match = re.search(r"(\d+)$", name)
    if match is None:
        raise DataFormatError(path, f"video id {name!r} does not end in an integer")
    return int(match.group(1))


def msvd_videos(video_dir: Path, ann_dir: Path) -> dict[int, Path]:
    """MSVD-QA (``datautils/msvd_qa.py``): ``video_id`` N of ``{split}_qa.json``; ``youtube_mapping.txt`` lines
    "<youtube name> vid<N>"; video ``YouTubeClips/<youtube name>.avi``."""
    mapping_path = ann_dir / "youtube_mapping.txt"
    if not mapping_path.is_file():
        raise DataFormatError(mapping_path, "MSVD-QA video name mapping not found")
    mapping = {}
    for n, line in enumerate(mapping_path.read_text().splitlines(), 1):
        parts = line.split()
        if len(parts) == 2:
            mapping[parts[1]] = parts[0]
        elif parts:
            raise DataFormatError(mapping_path, f"line {n}: expected '<name> vid<N>', got {line!r}")
    ids = {_video_id(ann_dir / f"{s}_qa.json", str(q["video_id"])) for s in SPLITS
           for q in read_annotations(ann_dir / f"{s}_qa.json", ("video_id",))}
    missing = sorted(i for i in ids if f"vid{i}" not in mapping)
    if missing:
        raise DataFormatError(mapping_path, f"no line for vid{missing[0]} ({len(missing)} video id(s) unmapped)")
    return {i: video_dir / "YouTubeClips" / f"{mapping[f'vid{i}']}.avi" for i in ids}


def msrvtt_videos(video_dir: Path, ann_dir: Path) -> dict[int, Path]:
    """MSRVTT-QA (``datautils/msrvtt_qa.py``): ``video_id`` of ``{split}_qa.json``; train/val videos are
    ``TrainValVideo/video<id>.mp4``, test videos ``TestVideo/video<id>.mp4``."""
    videos = {}
    for split in SPLITS:
        folder = "TestVideo" if split == "test" else "TrainValVideo"
        path = ann_dir / f"{split}_qa.json"
        for q in read_annotations(path, ("video_id",)):
            vid = _video_id(path, str(q["video_id"]))
            videos[vid] = video_dir / folder / f"video{vid}.mp4"
    return videos


def svqa_videos(video_dir: Path, ann_dir: Path) -> dict[int, Path]:
    """SVQA (``datautils/svqa.py`` + ``preprocess_features.py``): ``id`` of every question in ``questions.json``
    is the video id; video ``<video_dir>/<id>.mp4`` (the official video_dir is ``SVQA/useVideo/``)."""
    path = ann_dir / "questions.json"
    return {vid: video_dir / f"{vid}.mp4" for vid in {_video_id(path, str(q["id"]))
                                                      for q in read_annotations(path, ("id",))}}


def folder_videos(video_dir: Path) -> dict[int, Path]:
    """Every file of ``video_dir`` whose name (without extension) ends in an integer, which is its id."""
    if not video_dir.is_dir():
        raise DataFormatError(video_dir, "video folder not found")
    videos: dict[int, Path] = {}
    for path in sorted(p for p in video_dir.iterdir() if p.is_file() and re.search(r"\d+$", p.stem)):
        vid = _video_id(path, path.stem)
        if vid in videos:
            raise DataFormatError(path, f"video id {vid} also used by {videos[vid].name}")
        videos[vid] = path
    if not videos:
        raise DataFormatError(video_dir, "no video file whose name ends in an integer id")
    return videos


def list_videos(layout: str, video_dir: str | Path, ann_dir: str | Path | None = None) -> list[tuple[int, Path]]:
    """(id, path) of every video of a dataset layout (see ``LAYOUTS``), in increasing id."""
    video_dir = Path(video_dir)
    ann_dir = video_dir if ann_dir is None else Path(ann_dir)
    readers = {"msvd-qa": msvd_videos, "msrvtt-qa": msrvtt_videos, "svqa": svqa_videos}
    videos = folder_videos(video_dir) if layout == "folder" else readers[layout](video_dir, ann_dir)
    return sorted(videos.items())


@contextmanager
def _atomic_h5(path: Path) -> Iterator[h5py.File]:
    """An HDF5 file written under a temporary name and renamed to ``path`` only when complete."""
    tmp = path.with_name(path.name + ".partial")
    try:
        with h5py.File(tmp, "w") as f:
            yield f
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def extract(videos: list[tuple[int, Path]], extractor: Extractor, out_dir: str | Path, dataset: str,
            num_clips: int, tag: str = "") -> list[Path]:
    """Write ``{dataset}_appearance_feat.h5`` and/or ``{dataset}_motion_feat.h5`` of ``videos`` to ``out_dir``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    missing = [p for _, p in videos if not p.is_file()]
    if missing:
        raise DataFormatError(missing[0], f"video not found ({len(missing)} of {len(videos)} missing)")
    kinds = [k for k, net in (("appearance", extractor.resnet), ("motion", extractor.resnext)) if net is not None]
    paths = [out_dir / f"{dataset}_{kind}_feat.h5" for kind in kinds]
    shapes = {"appearance": (num_clips, FRAMES_PER_CLIP, 2048), "motion": (num_clips, 2048)}
    ids = np.array([vid for vid, _ in videos], dtype=np.int64)
    with ExitStack() as stack, torch.inference_mode():
        files = {kind: stack.enter_context(_atomic_h5(path)) for kind, path in zip(kinds, paths)}
        for kind, f in files.items():
            f.create_dataset(KINDS[kind], (len(videos), *shapes[kind]), dtype=np.float32)
            f.create_dataset("ids", data=ids)
        for row, (_, path) in enumerate(tqdm(videos, desc=f"{tag}{dataset} features", unit="video")):
            for kind, feats in extractor.video(path, num_clips).items():
                files[kind][KINDS[kind]][row] = feats
    return paths


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``dualvgr extract-features``."""
    parser.add_argument("--dataset", required=True, help="msvd-qa, msrvtt-qa, svqa or any name (output file prefix)")
    parser.add_argument("--video-dir", required=True, type=Path, help="video root (official layout per dataset)")
    parser.add_argument("--annotation-dir", type=Path, help="folder of {split}_qa.json / questions.json / "
                                                            "youtube_mapping.txt (default: --video-dir)")
    parser.add_argument("--layout", choices=LAYOUTS, help="video list layout (default: the dataset's, else folder: "
                                                          "files whose names end in an integer id)")
    parser.add_argument("--out", required=True, type=Path, help="output data folder")
    parser.add_argument("--num-clips", type=int, help=f"clips per video (default: num_of_nodes, {NUM_CLIPS})")
    parser.add_argument("--features", choices=("appearance", "motion", "both"), default="both")
    parser.add_argument("--resnet101-weights", type=Path, help="torchvision resnet101-63fe2227.pth")
    parser.add_argument("--resnext101-weights", type=Path, help="kenshohara resnext-101-kinetics.pth")
    parser.add_argument("--random-weights", action="store_true", help="random backbones (tiny tests only)")
    parser.add_argument("--fix-quirks", action="store_true",
                        help="ImageNet std 0.225 for blue and kenshohara mean subtraction for motion")
    add_device_argument(parser)
    parser.add_argument("--batch-frames", type=int, default=256, help="frames per CNN forward (motion: /16 clips)")
    parser.add_argument("--limit", type=int, help="only the first N videos (by id)")


def _backbones(args: argparse.Namespace) -> list[torch.nn.Module | None]:
    """[ResNet-101 or None, ResNeXt-101 or None] as ``--features`` and the weight options ask."""
    table = (("appearance", "resnet101-weights", load_resnet101, random_resnet101, RESNET101_SOURCE),
             ("motion", "resnext101-weights", load_resnext101, random_resnext101, WEIGHTS_SOURCE))
    nets = []
    for kind, option, load, rand, source in table:
        weights = getattr(args, option.replace("-", "_"))
        if args.features not in (kind, "both"):
            nets.append(None)
        elif args.random_weights:
            nets.append(rand())
        elif weights is None:
            raise WeightsNotFoundError(option, "(--" + option + " not given)", source)
        else:
            nets.append(load(weights))
    return nets


def run(args: argparse.Namespace) -> list[Path]:
    """``dualvgr extract-features``: list the videos, load the backbones, write the HDF5 files."""
    tag = RANDOM_TAG if args.random_weights else ""
    num_clips = args.num_clips or NUM_CLIPS.get(args.dataset)
    if num_clips is None:
        raise SystemExit(f"{tag}--num-clips is needed for dataset {args.dataset!r}")
    layout = args.layout or (args.dataset if args.dataset in LAYOUTS else "folder")
    videos = list_videos(layout, args.video_dir, args.annotation_dir)[:args.limit]
    device = torch.device(args.device)
    resnet, resnext = (None if net is None else net.to(device) for net in _backbones(args))
    extractor = Extractor(resnet, resnext, device, args.fix_quirks, args.batch_frames)
    print(f"{tag}{len(videos)} {layout} videos, {num_clips} clips of {FRAMES_PER_CLIP} frames, {args.features} "
          f"features on {device}{' (fix-quirks)' if args.fix_quirks else ''}")
    paths = extract(videos, extractor, args.out, args.dataset, num_clips, tag)
    for path in paths:
        print(f"{tag}wrote {path}")
    return paths

"""SYNTHETIC five-frame stories of recurring characters, as AR-LDM HDF5 or raw StoryDALL-E folders.

Planted structure: character j is a sprite of a fixed saturated colour (PALETTE[j]) and shape
(SHAPES[j]), the same in every frame and story. An episode has a cast of 1-3 characters and a
background (a pale or dark tint with a vertical gradient, named in the captions); each frame shows
1-3 cast members left to right in caption order, each with an action drawn as its height
("is jumping" high, "is standing" middle, "is sitting" low and squashed). A frame is a strip of n
slightly jittered squares (n = 1-4; 5 in the Flintstones layout). Captions name exactly the
characters present, so the multi-hot labels agree with them and the colours recover them from pixels.
Labels span all 9 Pororo (7 Flintstones) names, as the real label vectors do; only the first
``n_characters`` ever appear.
Stories are the 5-frame windows of each episode, as in PororoSV; episodes are split 70/15/15.

Layouts: ``arldm`` writes ``story.h5`` (``common.data.story.write_arldm_hdf5``: PNGs R/B-swapped
as AR-LDM's scripts leave them, plus ``<split>/labels`` and the ``characters`` attribute);
``pororo`` and ``flintstones`` write StoryDALL-E's raw folders (read by ``PororoSVStories`` and
``FlintstonesSVStories``). Character names are Pororo's (Flintstones' in that layout).
"""

from __future__ import annotations

import argparse
import json
import pickle
from pathlib import Path

import numpy as np

from common.data.story import (
    FLINTSTONES_CHARACTERS,
    FRAMES,
    PORORO_CHARACTERS,
    SPLITS,
    Story,
    encode_png,
    write_arldm_hdf5,
)

PALETTE = np.array([(220, 30, 30), (30, 60, 220), (240, 200, 0), (0, 150, 60), (200, 0, 200),
                    (255, 120, 0), (0, 200, 220), (120, 40, 160), (20, 20, 20)], dtype=np.int16)
SHAPES = ("circle", "square", "triangle", "diamond", "plus", "ring", "wide bar", "tall bar", "down triangle")
BACKGROUNDS = {"in the park": (170, 215, 160), "in the snow": (225, 232, 245), "at the beach": (240, 225, 175),
               "in the house": (215, 190, 160), "at night": (60, 65, 100)}
ACTIONS = {"is jumping": 0.3, "is standing": 0.6, "is sitting": 0.76}  # sprite centre height / frame size
RADIUS = 0.11  # sprite radius / frame size
SITTING_SQUASH = 0.65
LAYOUTS = ("arldm", "pororo", "flintstones")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--layout", choices=LAYOUTS, default="arldm", help="AR-LDM HDF5 or a raw StoryDALL-E folder")
    parser.add_argument("--n-episodes", type=int, default=48, help="episodes of 5-9 frames (stories = 5-frame windows)")
    parser.add_argument("--n-characters", type=int, default=6, help="4-9 (at most 7 in the flintstones layout)")
    parser.add_argument("--size", type=int, default=128, help="frame size S in pixels (AR-LDM strips use 128)")


def _shape_mask(shape: int, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Pixels of sprite ``shape`` in coordinates (u, v) scaled so the sprite fits in [-1, 1]^2 (v down)."""
    au, av = np.abs(u), np.abs(v)
    if shape in (0, 5):  # circle, ring
        rho = np.hypot(u, v)
        return (rho <= 1) & (rho >= (0.5 if shape == 5 else 0))
    if shape == 1:
        return (au <= 0.85) & (av <= 0.85)
    if shape in (2, 8):  # triangle pointing up, down
        w = v if shape == 2 else -v
        return (w <= 0.8) & (au <= 0.55 * (w + 1))
    if shape == 3:
        return au + av <= 1
    if shape == 4:
        return ((au <= 0.35) & (av <= 1)) | ((av <= 0.35) & (au <= 1))
    return (au <= (1 if shape == 6 else 0.5)) & (av <= (0.5 if shape == 6 else 1))  # wide bar, tall bar


def render_frame(rng: np.random.Generator, size: int, background: int, characters: np.ndarray,
                 actions: np.ndarray) -> np.ndarray:
    """One (S, S, 3) uint8 RGB frame: textured background, then characters left to right, jittered."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    base = np.array(list(BACKGROUNDS.values())[background], dtype=np.float32)
    wave = 5 * np.sin(2 * np.pi * (xx / size * 3 + yy / size + rng.uniform()))  # smooth texture, shifts per frame
    img = base + (15 - 30 * yy / size + wave)[..., None]  # lighter sky, darker ground
    radius = RADIUS * size
    heights = np.array(list(ACTIONS.values()))
    for j, (c, a) in enumerate(zip(characters, actions)):
        cx = (j + 1) / (len(characters) + 1) * size + rng.uniform(-1, 1) * size / 32
        cy = heights[a] * size + rng.uniform(-1, 1) * size / 32
        squash = SITTING_SQUASH if a == 2 else 1.0
        top, left = max(int(cy - radius) - 1, 0), max(int(cx - radius) - 1, 0)
        box = np.s_[top:int(cy + radius) + 2, left:int(cx + radius) + 2]
        mask = _shape_mask(int(c), (xx[box] - cx) / radius, (yy[box] - cy) / (radius * squash))
        img[box][mask] = PALETTE[c]
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def caption(names: tuple[str, ...], characters: np.ndarray, actions: np.ndarray, background: int) -> str:
    """'pororo is jumping, crong is sitting and eddy is standing in the snow.'"""
    verbs = list(ACTIONS)
    parts = [f"{names[c]} {verbs[a]}" for c, a in zip(characters, actions)]
    body = parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]
    return f"{body} {list(BACKGROUNDS)[background]}."


def make_episodes(rng: np.random.Generator, n_episodes: int, n_characters: int, size: int, names: tuple[str, ...],
                  strip_frames: int | None = None) -> list[list[tuple[np.ndarray, str, np.ndarray]]]:
    """Episodes as lists of (strip, caption, multi-hot label over ``names``) frames, cast from the first
    ``n_characters`` names; ``strip_frames`` None = 1-4 squares per strip."""
    episodes = []
    for _ in range(n_episodes):
        cast = rng.choice(n_characters, size=rng.integers(1, 4), replace=False)
        background = int(rng.integers(len(BACKGROUNDS)))
        frames = []
        for _ in range(int(rng.integers(FRAMES, FRAMES + 5))):
            present = rng.permutation(cast)[: rng.integers(1, len(cast) + 1)]
            actions = rng.integers(len(ACTIONS), size=present.size)
            n = strip_frames or int(rng.integers(1, 5))
            strip = np.concatenate([render_frame(rng, size, background, present, actions) for _ in range(n)])
            label = np.zeros(len(names), dtype=np.uint8)
            label[present] = 1
            frames.append((strip, caption(names, present, actions, background), label))
        episodes.append(frames)
    return episodes


def split_episodes(n_episodes: int) -> dict[str, range]:
    """Contiguous 70/15/15 episode ranges, each split non-empty."""
    n_val = n_test = max(1, round(0.15 * n_episodes))
    n_train = n_episodes - n_val - n_test
    return {"train": range(n_train), "val": range(n_train, n_train + n_val), "test": range(n_train + n_val, n_episodes)}


def _write_arldm(out: Path, episodes, names: tuple[str, ...]) -> None:
    splits = {s: [] for s in SPLITS}
    for split, eps in split_episodes(len(episodes)).items():
        for e in eps:
            for t in range(len(episodes[e]) - FRAMES + 1):
                strips, captions, labels = zip(*episodes[e][t:t + FRAMES])
                ids = tuple(f"{e}/{t + k}" for k in range(FRAMES))
                splits[split].append(Story(strips, captions, np.stack(labels), ids))
    write_arldm_hdf5(out / "story.h5", splits, names)


def _write_pororo(out: Path, episodes) -> None:
    descriptions, labels, firsts, followings, split_of = {}, {}, [], [], []
    split_index = {e: SPLITS.index(s) for s, eps in split_episodes(len(episodes)).items() for e in eps}
    for e, ep in enumerate(episodes):
        folder = f"Pororo_ENGLISH1_1/Pororo_ENGLISH1_1_ep{e + 1}"
        (out / folder).mkdir(parents=True, exist_ok=True)
        for t, (strip, text, label) in enumerate(ep):
            (out / folder / f"{t}.png").write_bytes(encode_png(strip))
            descriptions[f"{folder}/{t}"] = [text]
            labels[f"{folder}/{t}"] = label.astype(np.int64)
        for t in range(len(ep) - FRAMES + 1):
            firsts.append(f"{folder}/{t}.png".encode())
            followings.append([f"{folder}/{t + k}.png".encode() for k in range(1, FRAMES)])
            split_of.append(split_index[e])
    split_of = np.array(split_of)
    ids = np.empty(3, dtype=object)
    for s in range(3):
        ids[s] = np.flatnonzero(split_of == s)
    np.save(out / "descriptions.npy", descriptions, allow_pickle=True)
    np.save(out / "labels.npy", labels, allow_pickle=True)
    np.save(out / "img_cache4.npy", np.array(firsts))
    np.save(out / "following_cache4.npy", np.array(followings))
    np.save(out / "train_seen_unseen_ids.npy", ids, allow_pickle=True)


def _write_flintstones(out: Path, episodes) -> None:
    (out / "video_frames_sampled").mkdir(parents=True, exist_ok=True)
    annotations, followings, labels = [], {}, {}
    splits = {s: [] for s in SPLITS}
    split_of = {e: s for s, eps in split_episodes(len(episodes)).items() for e in eps}
    for e, ep in enumerate(episodes):
        gids = [f"s_01_e_{e + 1:02d}_shot_{t:06d}" for t in range(len(ep))]
        for t, (strip, text, label) in enumerate(ep):
            size = strip.shape[1]
            np.save(out / "video_frames_sampled" / f"{gids[t]}.npy", strip.reshape(-1, size, size, 3))
            annotations.append({"globalID": gids[t], "description": text})
            labels[gids[t]] = label.astype(np.int64)
            if t + FRAMES <= len(ep):
                followings[gids[t]] = gids[t + 1:t + FRAMES]
            splits[split_of[e]].append(gids[t])
    (out / "flintstones_annotations_v1-0.json").write_text(json.dumps(annotations))
    (out / "train-val-test_split.json").write_text(json.dumps(splits))
    for name, obj in (("following_cache4.pkl", followings), ("labels.pkl", labels)):
        with (out / name).open("wb") as f:
            pickle.dump(obj, f)


def write(out: Path, seed: int = 0, layout: str = "arldm", n_episodes: int = 48, n_characters: int = 6,
          size: int = 128) -> Path:
    """Write the dataset into ``out`` (created) and return ``out``."""
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {', '.join(LAYOUTS)}, got {layout!r}")
    names = FLINTSTONES_CHARACTERS if layout == "flintstones" else PORORO_CHARACTERS
    if not 4 <= n_characters <= len(names):
        raise ValueError(f"n_characters must be in 4..{len(names)} for the {layout} layout, got {n_characters}")
    if size < 16 or n_episodes < 3:
        raise ValueError(f"need size >= 16 and n_episodes >= 3, got {size} and {n_episodes}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    episodes = make_episodes(rng, n_episodes, n_characters, size, names, 5 if layout == "flintstones" else None)
    if layout == "arldm":
        _write_arldm(out, episodes, names)
    elif layout == "pororo":
        _write_pororo(out, episodes)
    else:
        _write_flintstones(out, episodes)
    return out

"""SYNTHETIC VideoQA features, vocabulary and question pickles in HCRN/DualVGR's files.

Planted structure: every video has an actor, an object, an object count, a location and a time of
day (seen by the appearance stream) and an action (seen by the motion stream). Each attribute value
has a random D-vector; appearance features [C, 16, D] are the scaled sum of the five appearance vectors
plus Gaussian noise per frame, motion features [C, D] the action vector plus noise per clip. Each
video gets one question per template (what holding / what doing / who / how many / when / where);
the answer is the video's value of the template's attribute, so it is a deterministic function of
the planted attributes and recoverable from the features.

Files as ``common.data.videoqa`` reads them: feature HDF5s with rows in two independent random video
orders (as HCRN's shuffled extraction runs), vocabulary JSON (question tokens in train order; answers
by train frequency, ``<UNK0>``/``<UNK1>`` first), ``{ds}_{split}_questions.pt`` pickles with HCRN's
keys (tokens = the lowercased question without its final '?', split on spaces, which is what
nltk's word_tokenize gives for these questions), ``glove`` = random 300-d vectors (zero rows for
``<NULL>``/``<UNK>``) in train only, and for ``svqa`` a ``question_category`` per template (a stand-in
mapping onto SVQA's 15 categories, to exercise that path). ``synthetic_attributes.json`` records every
video's attributes and every question's template (SYNTHETIC only, for tests and reports).
Videos are split 70/15/15.
"""

from __future__ import annotations

import argparse
import json
import pickle
from collections import Counter
from pathlib import Path

import h5py
import numpy as np

from common.data.videoqa import FRAMES_PER_CLIP, NUM_CLIPS, SPLITS, SVQA_CATEGORIES

ATTRIBUTES = {
    "actor": ("man", "woman", "boy", "girl", "baby"),
    "object": ("ball", "guitar", "knife", "phone", "cup", "book", "camera", "bowl"),
    "count": ("one", "two", "three", "four"),
    "location": ("kitchen", "street", "beach", "stage", "park", "pool"),
    "time": ("night", "morning", "evening", "noon"),
    "action": ("run", "dance", "cook", "sing", "swim", "talk", "jump", "drive"),
}
APPEARANCE_ATTRIBUTES = ("actor", "object", "count", "location", "time")
GERUND = {"run": "running", "dance": "dancing", "cook": "cooking", "sing": "singing", "swim": "swimming",
          "talk": "talking", "jump": "jumping", "drive": "driving"}
# (attribute answered, question format, SVQA stand-in category)
TEMPLATES = (
    ("object", "what is the {actor} holding?", "query_shape"),
    ("action", "what is the {actor} doing?", "query_actiontype"),
    ("actor", "who is {action_ing}?", "query_color"),
    ("count", "how many {object}s are there?", "count"),
    ("time", "when is the {actor} {action_ing}?", "query_size"),
    ("location", "where is the {actor} {action_ing}?", "query_direction"),
)
GLOVE_DIM = 300


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dataset", default="msvd-qa", help="file prefix; 'svqa' adds question_category")
    parser.add_argument("--n-videos", type=int, default=64)
    parser.add_argument("--num-clips", type=int, default=None, help="clips per video (default: num_of_nodes)")
    parser.add_argument("--feature-dim", type=int, default=2048)
    parser.add_argument("--feature-noise", type=float, default=1.0, help="std of the Gaussian noise on features")
    parser.add_argument("--float16", action="store_true", help="store features as float16 (the loader reads float32)")


def question_text(template: int, video: dict[str, str]) -> str:
    """The question of ``template`` about a video with attribute values ``video``."""
    return TEMPLATES[template][1].format(action_ing=GERUND[video["action"]], **video)


def tokenize(question: str) -> list[str]:
    """HCRN's preprocessing (lowercase, drop the final character) with a whitespace split."""
    return question.lower()[:-1].split()


def _features(rng: np.random.Generator, values: dict[str, np.ndarray], num_clips: int, dim: int,
              noise: float) -> tuple[np.ndarray, np.ndarray]:
    """Appearance [Nv, C, 16, D] and motion [Nv, C, D] float32 from the attribute value indices.

    Every attribute value has a random D-vector; appearance = sum of the five appearance vectors / sqrt(5),
    motion = the action vector, each plus N(0, noise^2) per frame / clip. The appearance mean is a random
    linear map of the 27-dim one-hot of the appearance values, so it is linearly decodable when D >= 27.
    """
    emb = {a: rng.standard_normal((len(v), dim), dtype=np.float32) for a, v in ATTRIBUTES.items()}
    app_mean = sum(emb[a][values[a]] for a in APPEARANCE_ATTRIBUTES) / np.sqrt(len(APPEARANCE_ATTRIBUTES))
    n, f32 = values["actor"].size, np.float32
    app = app_mean[:, None, None, :] + noise * rng.standard_normal((n, num_clips, FRAMES_PER_CLIP, dim), dtype=f32)
    mot = emb["action"][values["action"]][:, None, :] + noise * rng.standard_normal((n, num_clips, dim), dtype=f32)
    return app, mot


def _encode(questions: list[str], answers: list[str], vocab: dict, split: str) -> dict:
    """HCRN's encoding of one split (``preprocess/datautils/msvd_qa.py``)."""
    q_idx, a_idx = vocab["question_token_to_idx"], vocab["answer_token_to_idx"]
    encoded = [[q_idx.get(t, q_idx["<UNK>"]) for t in tokenize(q)] for q in questions]
    lengths = [len(e) for e in encoded]
    padded = np.zeros((len(encoded), max(lengths)), dtype=np.int32)
    for i, e in enumerate(encoded):
        padded[i, : len(e)] = e
    unknown = 0 if split == "train" else 1
    return {"questions": padded, "questions_len": np.asarray(lengths, dtype=np.int32),
            "question_id": list(range(len(questions))), "answers": [a_idx.get(a, unknown) for a in answers]}


def _vocabulary(questions: list[str], answers: list[str], answer_top: int = 4000) -> dict:
    q_idx = {"<NULL>": 0, "<UNK>": 1}
    for q in questions:
        for t in tokenize(q):
            q_idx.setdefault(t, len(q_idx))
    a_idx = {"<UNK0>": 0, "<UNK1>": 1}
    for a, _ in Counter(answers).most_common(answer_top):
        a_idx[a] = len(a_idx)
    return {"question_token_to_idx": q_idx, "answer_token_to_idx": a_idx,
            "question_answer_token_to_idx": {"<NULL>": 0, "<UNK>": 1}}


def _write_features(path: Path, name: str, feats: np.ndarray, ids: np.ndarray, order: np.ndarray, dtype) -> None:
    with h5py.File(path, "w") as f:
        f.create_dataset(name, data=feats[order].astype(dtype))
        f.create_dataset("ids", data=ids[order].astype(np.int64))


def write(out: Path, seed: int = 0, dataset: str = "msvd-qa", n_videos: int = 64, num_clips: int | None = None,
          feature_dim: int = 2048, feature_noise: float = 1.0, float16: bool = False) -> Path:
    """Write the dataset into ``out`` (created) and return ``out``."""
    num_clips = num_clips if num_clips is not None else NUM_CLIPS.get(dataset, 8)
    if n_videos < 3 or num_clips < 1 or feature_dim < 1:
        raise ValueError(f"need n_videos >= 3, num_clips >= 1, feature_dim >= 1; "
                         f"got {n_videos}, {num_clips}, {feature_dim}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    video_ids = np.sort(rng.choice(10 * n_videos, n_videos, replace=False)) + 1
    values = {a: rng.integers(len(v), size=n_videos) for a, v in ATTRIBUTES.items()}
    videos = [{a: ATTRIBUTES[a][values[a][i]] for a in ATTRIBUTES} for i in range(n_videos)]
    app, mot = _features(rng, values, num_clips, feature_dim, feature_noise)
    dtype = np.float16 if float16 else np.float32
    for kind, name, feats in (("appearance", "resnet_features", app), ("motion", "resnext_features", mot)):
        _write_features(out / f"{dataset}_{kind}_feat.h5", name, feats, video_ids, rng.permutation(n_videos), dtype)

    n_held = max(1, round(0.15 * n_videos))  # val and test each
    split_videos = dict(zip(SPLITS, np.split(rng.permutation(n_videos), [n_videos - 2 * n_held, n_videos - n_held])))
    rows = {s: [(int(v), t) for v in sorted(split_videos[s]) for t in range(len(TEMPLATES))] for s in SPLITS}
    text = {s: [question_text(t, videos[v]) for v, t in rows[s]] for s in SPLITS}
    answers = {s: [videos[v][TEMPLATES[t][0]] for v, t in rows[s]] for s in SPLITS}
    vocab = _vocabulary(text["train"], answers["train"])
    (out / f"{dataset}_vocab.json").write_text(json.dumps(vocab, indent=4))

    n_tokens = len(vocab["question_token_to_idx"])
    glove = rng.standard_normal((n_tokens, GLOVE_DIM)).astype(np.float32)
    glove[:2] = 0  # <NULL>, <UNK> are not GloVe words
    for split in SPLITS:
        obj = _encode(text[split], answers[split], vocab, split)
        vids = [int(video_ids[v]) for v, _ in rows[split]]
        obj.update(video_ids=np.asarray(vids), video_names=np.array(vids), glove=glove if split == "train" else None)
        if dataset == "svqa":
            obj["question_category"] = [SVQA_CATEGORIES.index(TEMPLATES[t][2]) for _, t in rows[split]]
        with (out / f"{dataset}_{split}_questions.pt").open("wb") as f:
            pickle.dump(obj, f)
    record = {"videos": {str(int(video_ids[i])): videos[i] for i in range(n_videos)},
              "templates": [list(t) for t in TEMPLATES],
              "question_templates": {s: [t for _, t in rows[s]] for s in SPLITS}}
    (out / "synthetic_attributes.json").write_text(json.dumps(record))
    return out

"""HCRN-style VideoQA data: clip features in HDF5, a vocabulary JSON and question pickles.

Files in a data folder (names from ``NJUPT-MCC/DualVGR-VideoQA:train.py``/``validate.py``):

- ``{ds}_appearance_feat.h5``: ``resnet_features`` float32 [Nv, C, 16, 2048] (ResNet-101 pool per frame of
  C clips of 16 frames) and ``ids`` int [Nv]; ``{ds}_motion_feat.h5``: ``resnext_features`` float32
  [Nv, C, 2048] (ResNeXt-101 per clip) and ``ids``. Rows are in shuffled video order, independently
  per file (``preprocess/preprocess_features.py`` shuffles the video list before each extraction),
  so a question's video is found through ``ids``. C = ``num_of_nodes`` of the config.
- ``{ds}_vocab.json``: ``question_token_to_idx`` (``<NULL>``: 0, ``<UNK>``: 1, train tokens),
  ``answer_token_to_idx`` (``<UNK0>``: 0, ``<UNK1>``: 1, top train answers),
  ``question_answer_token_to_idx``.
- ``{ds}_{split}_questions.pt`` (a pickle, ``preprocess/datautils/{msvd_qa,svqa}.py``): ``questions``
  int32 [Nq, Lmax] 0-padded, ``questions_len`` int32 [Nq], ``question_id`` (list), ``video_ids``,
  ``video_names``, ``answers`` (list of int; out-of-vocabulary = 0 in train, 1 in val/test), ``glove``
  (float32 [|Vq|, 300] in train, None otherwise) and, for SVQA only, ``question_category`` (ints 0-14).

Question type: SVQA's category; otherwise the first question token (what/who/how/when/where, as
DualVGR's ``validate.py`` buckets them), with any other first token mapped to the extra type "other".
"""

from __future__ import annotations

import json
import logging
import pickle
import time
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import torch

from common.errors import DataFormatError, require_file

log = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")
NUM_CLIPS = {"msvd-qa": 8, "msrvtt-qa": 16, "svqa": 20}  # num_of_nodes in DualVGR's configs
FRAMES_PER_CLIP = 16
QUESTION_WORDS = ("what", "who", "how", "when", "where", "other")
# NJUPT-MCC/DualVGR-VideoQA:validate.py QUESTION_CATEGORY (the ints written by preprocess/datautils/svqa.py)
SVQA_CATEGORIES = ("count", "exist", "query_color", "query_size", "query_actiontype", "query_direction", "query_shape",
                   "compare_more", "compare_equal", "compare_less", "attribute_compare_color", "attribute_compare_size",
                   "attribute_compare_actiontype", "attribute_compare_direction", "attribute_compare_shape")
VOCAB_KEYS = ("question_token_to_idx", "answer_token_to_idx", "question_answer_token_to_idx")
QUESTION_KEYS = ("questions", "questions_len", "question_id", "video_ids", "answers", "glove")


@dataclass(frozen=True)
class VideoQAFiles:
    appearance: Path
    motion: Path
    vocab: Path
    questions: Path


def videoqa_files(data_dir: str | Path, dataset: str, split: str) -> VideoQAFiles:
    """The DualVGR file names of ``dataset`` (e.g. 'msvd-qa') and ``split`` in ``data_dir``."""
    data_dir = Path(data_dir)
    questions = data_dir / f"{dataset}_{split}_questions.pt"
    if split not in SPLITS:
        raise DataFormatError(questions, f"unknown split {split!r}; expected one of {', '.join(SPLITS)}")
    return VideoQAFiles(data_dir / f"{dataset}_appearance_feat.h5", data_dir / f"{dataset}_motion_feat.h5",
                        data_dir / f"{dataset}_vocab.json", questions)


def _reason(err: Exception) -> str:
    """First line of an exception message, or its type name when it has none."""
    return str(err).splitlines()[0] if str(err).strip() else type(err).__name__


def load_vocab(path: str | Path) -> dict[str, dict[str, int]]:
    """The vocabulary JSON, validated (the three token->index maps, indices 0..n-1)."""
    path = require_file(path, "vocabulary JSON")
    try:
        vocab = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as err:
        raise DataFormatError(path, f"not valid JSON ({_reason(err)})") from None
    for key in VOCAB_KEYS:
        table = vocab.get(key) if isinstance(vocab, dict) else None
        if not isinstance(table, dict) or sorted(table.values()) != list(range(len(table))):
            raise DataFormatError(path, f"{key} missing or not a token -> index map with indices 0..n-1")
    return vocab


def load_questions(path: str | Path) -> dict:
    """The question pickle with arrays as numpy (int64), validated for keys, shapes and lengths."""
    path = require_file(path, "question pickle")
    try:
        with path.open("rb") as f:
            obj = pickle.load(f)
    except (pickle.UnpicklingError, EOFError, ValueError, AttributeError, ImportError, IndexError) as err:
        raise DataFormatError(path, f"not a readable pickle ({_reason(err)})") from None
    if not isinstance(obj, dict):
        raise DataFormatError(path, f"expected a dict, got {type(obj).__name__}")
    missing = [k for k in QUESTION_KEYS if k not in obj]
    if missing:
        raise DataFormatError(path, f"missing key(s) {', '.join(missing)}")
    out = {"glove": None if obj["glove"] is None else np.asarray(obj["glove"], dtype=np.float32)}
    for key in ("questions", "questions_len", "question_id", "video_ids", "answers", "question_category"):
        if obj.get(key) is not None:
            arr = np.asarray(obj[key])
            if not np.issubdtype(arr.dtype, np.integer):
                raise DataFormatError(path, f"{key} must hold integers, got dtype {arr.dtype}")
            out[key] = arr.astype(np.int64)
    q = out["questions"]
    if q.ndim != 2:
        raise DataFormatError(path, f"questions must be [Nq, Lmax], got shape {q.shape}")
    for key in ("questions_len", "question_id", "video_ids", "answers", "question_category"):
        if key in out and out[key].shape != (q.shape[0],):
            raise DataFormatError(path, f"{key} has shape {out[key].shape}, expected ({q.shape[0]},)")
    if q.shape[0] == 0:
        raise DataFormatError(path, "no questions")
    if (out["questions_len"] < 1).any() or (out["questions_len"] > q.shape[1]).any():
        raise DataFormatError(path, f"questions_len must lie in 1..{q.shape[1]}")
    return out


def _open_h5(path: Path) -> h5py.File:
    require_file(path, "feature HDF5")
    try:
        return h5py.File(path, "r")
    except OSError as err:
        raise DataFormatError(path, f"unreadable or truncated HDF5 ({_reason(err)})") from None


def _refuse_nonfinite(rows: np.ndarray, first: int, path: Path, name: str) -> None:
    """DataFormatError naming the first of ``rows`` (row ``first`` of ``name`` onwards) holding NaN or an infinity."""
    finite = np.isfinite(rows.reshape(len(rows), -1)).all(axis=1)
    if not finite.all():
        raise DataFormatError(path, f"{name} row {first + int(np.argmin(finite))} holds NaN or infinite values")


def check_features(files: VideoQAFiles, rows_per_read: int = 32, progress: bool = True) -> float:
    """Read both feature HDF5s through once, ``rows_per_read`` rows at a time, before a run starts: a row holding NaN
    or an infinity (or one that cannot be read) is the one-line error the streamed reader would give only when a
    batch reaches it, mid-epoch. 32 rows of MSRVTT-QA's appearance file are 67 MB as float32. Logs and returns the
    seconds it took. ``progress``: a tqdm bar (terminal only)."""
    from tqdm import tqdm

    start = time.perf_counter()
    for path, name in ((files.appearance, "resnet_features"), (files.motion, "resnext_features")):
        with _open_h5(path) as f:
            feats = f[name]
            for first in tqdm(range(0, len(feats), rows_per_read), desc=f"checking {path.name}", unit="block",
                              leave=False, disable=None if progress else True):
                try:
                    rows = feats[first:first + rows_per_read]
                except OSError as err:
                    raise DataFormatError(path, f"{name} rows from {first} unreadable ({_reason(err)})") from None
                _refuse_nonfinite(rows, first, path, name)
    seconds = time.perf_counter() - start
    log.info("data check: every feature row of %s and %s is finite (%.1f s)", files.appearance.name,
             files.motion.name, seconds)
    return seconds


def read_feature_index(path: Path, dataset: str, shape: tuple[int, ...], axes: str) -> np.ndarray:
    """``ids`` of a feature file after checking ``dataset`` has shape [len(ids), *shape] (``axes`` names them)."""
    with _open_h5(path) as f:
        for name in (dataset, "ids"):
            if name not in f:
                raise DataFormatError(path, f"dataset {name!r} missing (found: {', '.join(f.keys()) or 'none'})")
        feats, ids = f[dataset], f["ids"]
        if ids.ndim != 1 or not np.issubdtype(ids.dtype, np.integer):
            raise DataFormatError(path, f"ids must be a 1-d integer array, got {ids.dtype} {ids.shape}")
        if feats.shape[0] != ids.shape[0]:
            raise DataFormatError(path, f"{dataset} has {feats.shape[0]} rows but ids has {ids.shape[0]}")
        if feats.shape[1:] != shape:
            raise DataFormatError(path, f"{dataset} has per-video shape {feats.shape[1:]} but the config expects "
                                        f"{shape} = ({axes}); clips must equal num_of_nodes")
        if not np.issubdtype(feats.dtype, np.floating):
            raise DataFormatError(path, f"{dataset} must be floating point, got {feats.dtype}")
        return ids[()].astype(np.int64)


def rows_of(ids: np.ndarray, video_ids: np.ndarray, path: Path) -> np.ndarray:
    """Row of each wanted video id in a feature file holding ``ids`` (vectorised; errors on duplicates/missing)."""
    if ids.size == 0:
        raise DataFormatError(path, "ids is empty")
    order = np.argsort(ids, kind="stable")
    sorted_ids = ids[order]
    repeated = np.diff(sorted_ids) == 0
    if repeated.any():
        raise DataFormatError(path, f"duplicate video id {sorted_ids[1:][repeated][0]} in ids")
    pos = np.clip(np.searchsorted(sorted_ids, video_ids), 0, sorted_ids.size - 1)
    missing = sorted_ids[pos] != video_ids
    if missing.any():
        lost = np.unique(video_ids[missing])
        raise DataFormatError(path, f"{lost.size} video id(s) of the questions not in ids, e.g. {lost[0]}")
    return order[pos]


def load_videoqa(data_dir: str | Path, dataset: str, split: str, num_clips: int | None = None,
                 feature_dim: int = 2048, in_memory: bool = False) -> VideoQADataset:
    """``VideoQADataset`` of DualVGR's files for ``dataset`` ('msvd-qa', 'msrvtt-qa', 'svqa', ...) and ``split``;
    ``num_clips`` defaults to the dataset's num_of_nodes."""
    if num_clips is None:
        if dataset not in NUM_CLIPS:
            raise ValueError(f"num_clips is needed for dataset {dataset!r} (known defaults: {NUM_CLIPS})")
        num_clips = NUM_CLIPS[dataset]
    return VideoQADataset(videoqa_files(data_dir, dataset, split), num_clips, feature_dim, dataset == "svqa", in_memory)


class VideoQADataset(torch.utils.data.Dataset):
    """Questions of one split joined to their videos' appearance and motion features.

    Item: ``appearance`` float32 [C, 16, D], ``motion`` float32 [C, D], ``question`` int64 [Lmax],
    ``question_len``, ``answer``, ``question_type``, ``video_id``, ``question_id`` (int64 scalars).
    Features are read from the HDF5 files per item (one handle per worker process) or, with
    ``in_memory``, loaded once; a row holding NaN or an infinity is a one-line error naming the file and the row
    (when loaded, else when read; ``check_features`` reads every row up front).
    """

    def __init__(self, files: VideoQAFiles, num_clips: int, feature_dim: int = 2048, svqa: bool = False,
                 in_memory: bool = False):
        self.files, self.svqa = files, svqa
        self.vocab = load_vocab(files.vocab)
        q = load_questions(files.questions)
        n_tokens, n_answers = len(self.vocab["question_token_to_idx"]), len(self.vocab["answer_token_to_idx"])
        if q["questions"].min() < 0 or q["questions"].max() >= n_tokens:
            raise DataFormatError(files.questions, f"token ids must lie in 0..{n_tokens - 1} ({files.vocab.name})")
        if q["answers"].min() < 0 or q["answers"].max() >= n_answers:
            raise DataFormatError(files.questions, f"answers must lie in 0..{n_answers - 1} ({files.vocab.name})")
        if q["glove"] is not None and (q["glove"].ndim != 2 or q["glove"].shape[0] != n_tokens):
            raise DataFormatError(files.questions, f"glove has shape {q['glove'].shape}, expected ({n_tokens}, dim)")
        self.questions, self.questions_len = q["questions"], q["questions_len"]
        self.answers, self.video_ids, self.question_ids = q["answers"], q["video_ids"], q["question_id"]
        self.glove = q["glove"]
        self.question_types = self._question_types(q)

        app_ids = read_feature_index(files.appearance, "resnet_features", (num_clips, FRAMES_PER_CLIP, feature_dim),
                                     "clips, frames, dim")
        mot_ids = read_feature_index(files.motion, "resnext_features", (num_clips, feature_dim), "clips, dim")
        self.app_rows = rows_of(app_ids, self.video_ids, files.appearance)
        self.mot_rows = rows_of(mot_ids, self.video_ids, files.motion)
        self._app = self._mot = self._handles = None
        if in_memory:
            self._app = self._read(files.appearance, "resnet_features")
            self._mot = self._read(files.motion, "resnext_features")

    @property
    def type_names(self) -> tuple[str, ...]:
        return SVQA_CATEGORIES if self.svqa else QUESTION_WORDS

    def _question_types(self, q: dict) -> np.ndarray:
        if self.svqa:
            cats = q.get("question_category")
            if cats is None:
                raise DataFormatError(self.files.questions, "question_category missing (required for SVQA)")
            if cats.min() < 0 or cats.max() >= len(SVQA_CATEGORIES):
                raise DataFormatError(self.files.questions, f"question_category outside 0..{len(SVQA_CATEGORIES) - 1}")
            return cats
        token_type = np.full(len(self.vocab["question_token_to_idx"]), len(QUESTION_WORDS) - 1, dtype=np.int64)
        for t, word in enumerate(QUESTION_WORDS[:-1]):
            if word in self.vocab["question_token_to_idx"]:
                token_type[self.vocab["question_token_to_idx"][word]] = t
        return token_type[self.questions[:, 0]]

    @staticmethod
    def _read(path: Path, name: str) -> np.ndarray:
        with _open_h5(path) as f:
            try:
                feats = f[name][()].astype(np.float32)
            except OSError as err:
                raise DataFormatError(path, f"{name} unreadable ({_reason(err)})") from None
        _refuse_nonfinite(feats, 0, path, name)
        return feats

    def __getstate__(self) -> dict:  # h5py handles do not cross process boundaries (DataLoader workers)
        return {**self.__dict__, "_handles": None}

    def __len__(self) -> int:
        return self.questions.shape[0]

    def _features(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        if self._app is not None:
            return self._app[self.app_rows[index]], self._mot[self.mot_rows[index]]
        if self._handles is None:
            self._handles = (_open_h5(self.files.appearance), _open_h5(self.files.motion))
        out = []
        for handle, name, rows, path in zip(self._handles, ("resnet_features", "resnext_features"),
                                            (self.app_rows, self.mot_rows), (self.files.appearance, self.files.motion)):
            try:
                out.append(handle[name][rows[index]].astype(np.float32))
            except OSError as err:
                raise DataFormatError(path, f"{name} row {rows[index]} unreadable ({_reason(err)})") from None
            _refuse_nonfinite(out[-1][None], int(rows[index]), path, name)
        return out[0], out[1]

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        app, mot = self._features(index)
        scalars = {"question_len": self.questions_len, "answer": self.answers, "question_type": self.question_types,
                   "video_id": self.video_ids, "question_id": self.question_ids}
        return {"appearance": torch.from_numpy(app), "motion": torch.from_numpy(mot),
                "question": torch.from_numpy(self.questions[index]),
                **{k: torch.tensor(int(v[index])) for k, v in scalars.items()}}

"""``dualvgr prepare-questions``: QA annotations -> ``{ds}_vocab.json`` and ``{ds}_{split}_questions.pt``.

Follows ``NJUPT-MCC/DualVGR-VideoQA:preprocess/datautils/{msvd_qa,msrvtt_qa,svqa}.py`` (HCRN's): each question is
lowercased, its last character (the "?") dropped and split with nltk ``word_tokenize`` (re-implemented here by
``word_tokenize``); the train split fixes the vocabulary (every train token in order of first appearance after
``<NULL>``, ``<UNK>``; the ``answer_top`` most frequent train answers, ties in order of first appearance, after
``<UNK0>``, ``<UNK1>``); unknown answers are 0 in train and 1 in val/test; questions are 0-padded to the split's
longest; ``glove`` (train only) holds the 300-d GloVe 840B vector of every question token, zero when absent.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from common.data.videoqa import SPLITS, SVQA_CATEGORIES, load_vocab
from common.errors import DataFormatError, WeightsNotFoundError

GLOVE_SOURCE = "https://nlp.stanford.edu/data/glove.840B.300d.zip (unzip to glove.840B.300d.txt)"
DATASETS = ("msvd-qa", "msrvtt-qa", "svqa")

# nltk's NLTKWordTokenizer (nltk >= 3.6, what word_tokenize runs per sentence), as ordered (pattern, replacement)
# rules: quotes and punctuation on the raw text, then clitics and MacIntyre contractions on the space-padded text.
_BEFORE_PADDING = [(re.compile(p), r) for p, r in (
    (r"([«“‘„]|[`]+)", r" \1 "),
    (r'^"', "``"),
    (r"(``)", r" \1 "),
    (r"([ (\[{<])(\"|'{2})", r"\1 `` "),
    (r"(?i)(')(?!re|ve|ll|m|t|s|d|n)(\w)\b", r"\1 \2"),
    (r"([^.])(\.)([\])}>\"'»”’ ]*)\s*$", r"\1 \2 \3 "),
    (r"([:,])([^\d])", r" \1 \2"),
    (r"([:,])$", r" \1 "),
    (r"\.{2,}", r" \g<0> "),
    (r"[;@#$%&]", r" \g<0> "),
    (r"([^.])(\.)([\])}>\"']*)\s*$", r"\1 \2\3 "),
    (r"[?!]", r" \g<0> "),
    (r"([^'])' ", r"\1 ' "),
    (r"[*]", r" \g<0> "),
    (r"[\]\[(){}<>]", r" \g<0> "),
    (r"--", r" -- "),
)]
_AFTER_PADDING = [(re.compile(p), r) for p, r in (
    (r"([»”’])", r" \1 "),
    (r"''", " '' "),
    (r'"', " '' "),
    (r"([^' ])('[sS]|'[mM]|'[dD]|') ", r"\1 \2 "),
    (r"([^' ])('ll|'LL|'re|'RE|'ve|'VE|n't|N'T) ", r"\1 \2 "),
    *((rf"(?i)\b({a})({b})\b", r" \1 \2 ") for a, b in (("can", "not"), ("d", "'ye"), ("gim", "me"), ("gon", "na"),
                                                       ("got", "ta"), ("lem", "me"), ("more", "'n"))),
    (r"(?i)\b(wan)(na)(?=\s)", r" \1 \2 "),
    (r"(?i) ('t)(is)\b", r" \1 \2 "),
    (r"(?i) ('t)(was)\b", r" \1 \2 "),
)]


def word_tokenize(text: str) -> list[str]:
    """nltk ``word_tokenize`` (Treebank rules) without NLTK data; text is taken as one sentence (no punkt split)."""
    for pattern, repl in _BEFORE_PADDING:
        text = pattern.sub(repl, text)
    text = f" {text} "
    for pattern, repl in _AFTER_PADDING:
        text = pattern.sub(repl, text)
    return text.split()


def question_tokens(question: str) -> list[str]:
    """``question.lower()[:-1]`` tokenised, as the official scripts do (the last character is the "?")."""
    return word_tokenize(question.lower()[:-1])


@dataclass(frozen=True)
class QA:
    """One annotated question; ``category`` is SVQA's question type (0-14), None for the other datasets."""

    question: str
    answer: str
    video_id: int
    category: int | None = None


def read_annotations(path: Path, fields: tuple[str, ...]) -> list[dict]:
    """A JSON list of objects that all have ``fields``."""
    if not path.is_file():
        raise DataFormatError(path, "annotation file not found")
    try:
        items = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as err:
        raise DataFormatError(path, f"not valid JSON ({str(err).splitlines()[0]})") from None
    if not isinstance(items, list):
        raise DataFormatError(path, f"expected a JSON list of questions, got {type(items).__name__}")
    for i, item in enumerate(items):
        if not isinstance(item, dict) or any(f not in item for f in fields):
            raise DataFormatError(path, f"entry {i} lacks field(s) {', '.join(fields)}")
    return items


def _int_id(path: Path, i: int, value: object) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise DataFormatError(path, f"entry {i}: video id {value!r} is not an integer") from None


def _svqa_category(path: Path, i: int, item: dict) -> int:
    """``QUESTION_CATEGORY_DICT[program[-1]['function']]`` of ``datautils/svqa.py`` (= ``SVQA_CATEGORIES``)."""
    program = item["program"]
    function = program[-1].get("function") if isinstance(program, list) and program and isinstance(
        program[-1], dict) else None
    if function not in SVQA_CATEGORIES:
        raise DataFormatError(path, f"entry {i}: last program function {function!r} is not one of the 15 categories")
    return SVQA_CATEGORIES.index(function)


def parse_qa(dataset: str, path: Path, items: list[dict] | None = None) -> list[QA]:
    """MSVD-QA / MSRVTT-QA entries {video_id, question, answer}; SVQA entries {id (the video), question, ans,
    program}."""
    svqa = dataset == "svqa"
    fields = ("id", "question", "ans", "program") if svqa else ("video_id", "question", "answer")
    items = read_annotations(path, fields) if items is None else items
    return [QA(str(q["question"]), str(q[fields[2]]), _int_id(path, i, q[fields[0]]),
               _svqa_category(path, i, q) if svqa else None) for i, q in enumerate(items)]


def svqa_split_items(questions_json: Path, split_dir: Path, split: str) -> list[dict]:
    """Entries of SVQA ``questions.json`` whose video is listed in the official ``{split}_svqa_ids.txt``
    (``SVQA_splits/``: 8400/1200/2400 video ids), in file order."""
    ids_path = split_dir / f"{split}_svqa_ids.txt"
    if not ids_path.is_file():
        raise DataFormatError(ids_path, "SVQA split file not found (SVQA_splits/ of NJUPT-MCC/DualVGR-VideoQA)")
    try:
        ids = {int(line) for line in ids_path.read_text().split()}
    except ValueError:
        raise DataFormatError(ids_path, "expected one integer video id per line") from None
    items = read_annotations(questions_json, ("id",))
    return [q for i, q in enumerate(items) if _int_id(questions_json, i, q["id"]) in ids]


def build_vocab(train: list[QA], answer_top: int = 4000) -> dict[str, dict[str, int]]:
    """The vocabulary of the train split (see the module docstring)."""
    answers = {"<UNK0>": 0, "<UNK1>": 1}
    for answer, _ in Counter(qa.answer for qa in train).most_common(answer_top):
        answers[answer] = len(answers)
    tokens = {"<NULL>": 0, "<UNK>": 1}
    for qa in train:
        for token in question_tokens(qa.question):
            tokens.setdefault(token, len(tokens))
    return {"question_token_to_idx": tokens, "answer_token_to_idx": answers,
            "question_answer_token_to_idx": {"<NULL>": 0, "<UNK>": 1}}


def encode_split(qas: list[QA], vocab: dict[str, dict[str, int]], split: str, path: Path) -> dict:
    """The question pickle of one split (without ``glove``)."""
    q2i, a2i = vocab["question_token_to_idx"], vocab["answer_token_to_idx"]
    encoded = [[q2i.get(t, q2i["<UNK>"]) for t in question_tokens(qa.question)] for qa in qas]
    empty = [i for i, e in enumerate(encoded) if not e]
    if empty:
        raise DataFormatError(path, f"entry {empty[0]}: question has no tokens")
    lengths = np.array([len(e) for e in encoded], dtype=np.int32)
    questions = np.zeros((len(qas), lengths.max()), dtype=np.int32)
    questions[np.arange(lengths.max()) < lengths[:, None]] = np.concatenate(encoded)
    unknown = 0 if split == "train" else 1
    video_ids = np.array([qa.video_id for qa in qas])
    obj = {"questions": questions, "questions_len": lengths, "question_id": list(range(len(qas))),
           "video_ids": video_ids, "video_names": video_ids.copy(),
           "answers": [a2i.get(qa.answer, unknown) for qa in qas], "glove": None}
    if qas[0].category is not None:
        obj["question_category"] = [qa.category for qa in qas]
    return obj


def require_glove(path: str | Path | None) -> Path:
    """``path`` as a Path, or WeightsNotFoundError naming it (or the missing option) and the download."""
    if path is None or not Path(path).is_file():
        raise WeightsNotFoundError("glove", "(--glove not given)" if path is None else path, GLOVE_SOURCE)
    return Path(path)


def read_glove(path: str | Path | None, vocab: dict[str, int], dim: int = 300) -> np.ndarray:
    """float32 [len(vocab), dim]: the GloVe vector of each token (row = its index), zero when absent.

    One streamed pass over the text file; a line is "word v1 ... v<dim>" and the word may contain spaces (840B),
    so the vector is the last ``dim`` fields. A word listed twice keeps its last vector (the official pickle is a
    dict built from the whole file).
    """
    path = require_glove(path)
    matrix = np.zeros((len(vocab), dim), dtype=np.float32)
    with path.open(encoding="utf-8", errors="replace") as f:
        for n, line in enumerate(tqdm(f, desc=f"GloVe {path.name}", unit=" lines", mininterval=5), 1):
            word = line.partition(" ")[0]
            if word not in vocab:
                continue
            fields = line.rstrip("\n").split(" ")
            if len(fields) < dim + 1:
                raise DataFormatError(path, f"line {n}: expected a word and {dim} numbers, got {len(fields)} fields")
            if len(fields) == dim + 1:  # otherwise the word contains spaces and cannot be a token
                try:
                    matrix[vocab[word]] = np.array(fields[1:], dtype=np.float32)
                except ValueError:
                    raise DataFormatError(path, f"line {n}: non-numeric vector value") from None
    return matrix


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".partial")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def load_split(dataset: str, ann_dir: Path, split: str, svqa_splits: Path | None = None) -> tuple[list[QA], Path]:
    """The QA pairs of ``split`` and their file: ``{split}_qa.json`` in ``ann_dir`` (official paths); for SVQA
    with ``svqa_splits``, ``questions.json`` filtered by the official split's video ids instead."""
    if dataset == "svqa" and svqa_splits is not None:
        path = ann_dir / "questions.json"
        qas = parse_qa(dataset, path, svqa_split_items(path, svqa_splits, split))
    else:
        path = ann_dir / f"{split}_qa.json"
        qas = parse_qa(dataset, path)
    if not qas:
        raise DataFormatError(path, f"no {split} questions")
    return qas, path


def prepare(dataset: str, ann_dir: str | Path, out_dir: str | Path, splits: tuple[str, ...] = SPLITS,
            glove: str | Path | None = None, answer_top: int = 4000, svqa_splits: str | Path | None = None,
            glove_dim: int = 300) -> list[Path]:
    """Write the vocabulary (with train) and the question pickles of ``splits``; returns the written paths."""
    ann_dir, out_dir = Path(ann_dir), Path(out_dir)
    svqa_splits = None if svqa_splits is None else Path(svqa_splits)
    out_dir.mkdir(parents=True, exist_ok=True)
    vocab_path, written = out_dir / f"{dataset}_vocab.json", []
    if "train" in splits:
        require_glove(glove)  # before any work
    for split in sorted(splits, key=SPLITS.index):
        qas, ann_path = load_split(dataset, ann_dir, split, svqa_splits)
        if split == "train":
            vocab = build_vocab(qas, answer_top)
            _write_atomic(vocab_path, json.dumps(vocab, indent=4).encode())
            written.append(vocab_path)
        else:
            vocab = load_vocab(vocab_path)
        obj = encode_split(qas, vocab, split, ann_path)
        if split == "train":
            obj["glove"] = read_glove(glove, vocab["question_token_to_idx"], glove_dim)
            found = int(obj["glove"].any(axis=1).sum())
            print(f"GloVe vectors for {found} of {len(vocab['question_token_to_idx'])} question tokens")
        path = out_dir / f"{dataset}_{split}_questions.pt"
        _write_atomic(path, pickle.dumps(obj))
        written.append(path)
        print(f"{split}: {len(qas)} questions, max length {obj['questions'].shape[1]} -> {path}")
    return written


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``dualvgr prepare-questions``."""
    parser.add_argument("--dataset", required=True, choices=DATASETS)
    parser.add_argument("--annotation-dir", required=True, type=Path,
                        help="folder of {split}_qa.json (SVQA with --svqa-splits: questions.json)")
    parser.add_argument("--out", required=True, type=Path, help="output data folder")
    parser.add_argument("--splits", nargs="+", choices=SPLITS, default=list(SPLITS),
                        help="val/test read the vocabulary train wrote to --out")
    parser.add_argument("--glove", type=Path, help="glove.840B.300d.txt (needed for train)")
    parser.add_argument("--glove-dim", type=int, default=300)
    parser.add_argument("--answer-top", type=int, default=4000, help="answer vocabulary size (official: 4000)")
    parser.add_argument("--svqa-splits", type=Path,
                        help="folder of the official {split}_svqa_ids.txt, to split SVQA's questions.json")


def run(args: argparse.Namespace) -> list[Path]:
    """``dualvgr prepare-questions``."""
    return prepare(args.dataset, args.annotation_dir, args.out, tuple(args.splits), args.glove, args.answer_top,
                   args.svqa_splits, args.glove_dim)

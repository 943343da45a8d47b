"""Question preprocessing: the Treebank tokenizer, vocabulary and pickles of tiny MSVD-QA and SVQA files."""

from __future__ import annotations

import argparse
import json
import pickle
from pathlib import Path

import numpy as np
import pytest

from common.data.videoqa import SVQA_CATEGORIES, load_questions, load_vocab
from common.errors import DataFormatError, WeightsNotFoundError
from dualvgr import questions
from dualvgr.questions import word_tokenize

# expected outputs derived by hand from the Treebank rules of nltk's word_tokenize
TOKENIZER_CASES = [
    ("what is the man doing", ["what", "is", "the", "man", "doing"]),
    ("what is the man's shirt color", ["what", "is", "the", "man", "'s", "shirt", "color"]),
    ("who isn't wearing a hat", ["who", "is", "n't", "wearing", "a", "hat"]),
    ("what can't the dog do", ["what", "ca", "n't", "the", "dog", "do"]),
    ("what cannot fly", ["what", "can", "not", "fly"]),
    ("where are they gonna go", ["where", "are", "they", "gon", "na", "go"]),
    ("what is he holding, a cup or a ball", ["what", "is", "he", "holding", ",", "a", "cup", "or", "a", "ball"]),
    ("how many people are there (in total)", ["how", "many", "people", "are", "there", "(", "in", "total", ")"]),
    ('what does the sign say: "stop"', ["what", "does", "the", "sign", "say", ":", "``", "stop", "''"]),
    ("what is 3,000 plus 2:30", ["what", "is", "3,000", "plus", "2:30"]),
    ("who're they and what'll he do", ["who", "'re", "they", "and", "what", "'ll", "he", "do"]),
    ("what is mr. smith doing", ["what", "is", "mr.", "smith", "doing"]),
    ("what is the man doing...", ["what", "is", "the", "man", "doing", "..."]),
    ("what is it.", ["what", "is", "it", "."]),
    ("the 'big' sphere", ["the", "'big", "'", "sphere"]),
    ("a cat & a dog; who wanna eat", ["a", "cat", "&", "a", "dog", ";", "who", "wan", "na", "eat"]),
    ("is it red--or a well-known blue", ["is", "it", "red", "--", "or", "a", "well-known", "blue"]),
]


@pytest.mark.parametrize(("text", "tokens"), TOKENIZER_CASES)
def test_word_tokenize_follows_the_treebank_rules(text, tokens):
    assert word_tokenize(text) == tokens


def write_json(path: Path, obj: object) -> None:
    path.write_text(json.dumps(obj))


def write_glove(path: Path) -> None:
    """300-d vectors: 'the' = 0.5, 'man' twice (the last, 2.5, counts), a token with spaces starting with 'at'."""
    rows = [("the", 0.5), ("man", 1.5), ("at name@example.com", 9.0), ("man", 2.5), (". . .", 7.0), ("'s", 3.5),
            ("park", -1.25)]
    path.write_text("".join(f"{word} {' '.join([str(value)] * 300)}\n" for word, value in rows))


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    questions.add_arguments(parser)
    return parser.parse_args(argv)


def test_msvd_qa_vocab_and_pickles(tmp_path):
    ann = tmp_path / "MSVD-QA"
    ann.mkdir()
    write_json(ann / "train_qa.json", [
        {"answer": "dance", "id": 0, "question": "What is the man doing?", "video_id": 1},
        {"answer": "man", "id": 1, "question": "Who is slicing a tomato?", "video_id": 2},
        {"answer": "run", "id": 2, "question": "What is the man's dog doing?", "video_id": 1},
        {"answer": "dance", "id": 3, "question": "What is a man doing at the park?", "video_id": 3}])
    write_json(ann / "val_qa.json", [
        {"answer": "run", "id": 4, "question": "Who is the woman?", "video_id": 4},
        {"answer": "man", "id": 5, "question": "what is the man doing?", "video_id": 4}])
    write_json(ann / "test_qa.json", [{"answer": "dance", "id": 6, "question": "Who dances?", "video_id": 5}])
    write_glove(tmp_path / "glove.txt")
    out = tmp_path / "data"
    questions.run(_parse(["--dataset", "msvd-qa", "--annotation-dir", str(ann), "--out", str(out),
                          "--glove", str(tmp_path / "glove.txt"), "--answer-top", "2"]))

    vocab = load_vocab(out / "msvd-qa_vocab.json")
    tokens = ["<NULL>", "<UNK>", "what", "is", "the", "man", "doing", "who", "slicing", "a", "tomato", "'s", "dog",
              "at", "park"]
    assert list(vocab["question_token_to_idx"].items()) == [(t, i) for i, t in enumerate(tokens)]
    # dance (2) first, then man and run (1 each) in order of first appearance; top 2 keeps man
    assert vocab["answer_token_to_idx"] == {"<UNK0>": 0, "<UNK1>": 1, "dance": 2, "man": 3}
    assert vocab["question_answer_token_to_idx"] == {"<NULL>": 0, "<UNK>": 1}

    train = load_questions(out / "msvd-qa_train_questions.pt")
    np.testing.assert_array_equal(train["questions"], [[2, 3, 4, 5, 6, 0, 0, 0], [7, 3, 8, 9, 10, 0, 0, 0],
                                                       [2, 3, 4, 5, 11, 12, 6, 0], [2, 3, 9, 5, 6, 13, 4, 14]])
    np.testing.assert_array_equal(train["questions_len"], [5, 5, 7, 8])
    np.testing.assert_array_equal(train["answers"], [2, 3, 0, 2])  # run is out of vocabulary: 0 in train
    np.testing.assert_array_equal(train["video_ids"], [1, 2, 1, 3])
    np.testing.assert_array_equal(train["question_id"], [0, 1, 2, 3])
    glove = train["glove"]
    assert glove.shape == (15, 300) and glove.dtype == np.float32
    expected = {"the": 0.5, "man": 2.5, "'s": 3.5, "park": -1.25}  # 'at' must not take the 'at name@...' vector
    np.testing.assert_array_equal(glove, [np.full(300, expected.get(t, 0.0), np.float32) for t in tokens])

    val = load_questions(out / "msvd-qa_val_questions.pt")
    np.testing.assert_array_equal(val["questions"], [[7, 3, 4, 1, 0], [2, 3, 4, 5, 6]])  # woman -> <UNK>
    np.testing.assert_array_equal(val["answers"], [1, 3])  # run is out of vocabulary: 1 in val/test
    assert val["glove"] is None
    with (out / "msvd-qa_test_questions.pt").open("rb") as f:
        test = pickle.load(f)
    assert test["questions"].dtype == np.int32 and test["questions"].tolist() == [[7, 1]]
    assert test["video_names"].tolist() == [5] and "question_category" not in test
    assert not list(out.glob("*.partial"))


def _svqa_question(video: int, text: str, answer: str, function: str) -> dict:
    return {"id": video, "question": text, "ans": answer, "program": [{"function": "scene"}, {"function": function}]}


def test_svqa_official_split_and_categories(tmp_path):
    ann = tmp_path / "SVQA"
    ann.mkdir()
    write_json(ann / "questions.json", [
        _svqa_question(10, "How many cubes are there?", "2", "count"),
        _svqa_question(11, "Is there a red sphere?", "yes", "exist"),
        _svqa_question(12, "What is the shape of the moving object?", "cube", "query_shape"),
        _svqa_question(10, "Are there more cubes than spheres?", "no", "compare_more"),
        _svqa_question(13, "Is the cube the same colour as the sphere?", "yes", "attribute_compare_color")])
    splits = tmp_path / "SVQA_splits"
    splits.mkdir()
    for split, ids in (("train", "10\n13\n"), ("val", "11\n"), ("test", "12\n")):
        (splits / f"{split}_svqa_ids.txt").write_text(ids)
    write_glove(tmp_path / "glove.txt")
    out = tmp_path / "data"
    questions.prepare("svqa", ann, out, glove=tmp_path / "glove.txt", svqa_splits=splits)

    train = load_questions(out / "svqa_train_questions.pt")
    np.testing.assert_array_equal(train["video_ids"], [10, 10, 13])
    np.testing.assert_array_equal(train["question_category"], [SVQA_CATEGORIES.index(c) for c in
                                                               ("count", "compare_more", "attribute_compare_color")])
    np.testing.assert_array_equal(train["question_category"], [0, 7, 10])
    assert load_vocab(out / "svqa_vocab.json")["answer_token_to_idx"] == {"<UNK0>": 0, "<UNK1>": 1, "2": 2,
                                                                          "no": 3, "yes": 4}
    val, test = (load_questions(out / f"svqa_{s}_questions.pt") for s in ("val", "test"))
    assert val["answers"].tolist() == [4] and val["question_category"].tolist() == [1]
    assert test["answers"].tolist() == [1] and test["question_category"].tolist() == [6]


def test_bad_inputs_are_one_line_errors(tmp_path):
    ann = tmp_path / "ann"
    ann.mkdir()
    write_json(ann / "train_qa.json", [{"answer": "a", "question": "what?", "video_id": 1}])
    with pytest.raises(WeightsNotFoundError, match=r"absent\.txt does not exist; get it from https://nlp\.stanford"):
        questions.prepare("msvd-qa", ann, tmp_path / "out", ("train",), glove=tmp_path / "absent.txt")
    with pytest.raises(DataFormatError, match="val_qa.json: annotation file not found"):
        questions.prepare("msvd-qa", ann, tmp_path / "out", ("val",))
    write_json(ann / "train_qa.json", [{"ans": "a", "question": "what?", "id": 1, "program": [{"function": "x"}]}])
    write_glove(tmp_path / "glove.txt")
    with pytest.raises(DataFormatError, match="entry 0: last program function 'x' is not one of the 15"):
        questions.prepare("svqa", ann, tmp_path / "out", ("train",), glove=tmp_path / "glove.txt")
    with pytest.raises(DataFormatError, match="entry 0 lacks field"):
        questions.prepare("msvd-qa", ann, tmp_path / "out", ("train",), glove=tmp_path / "glove.txt")
    assert not (tmp_path / "out" / "msvd-qa_vocab.json").exists()

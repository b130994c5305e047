"""The bundled corpus and load_texts."""

import collections
import json
import re

import pytest

from msma_sklearn.datasets import load_corpus, load_texts

NEGATION = re.compile(
    r"\b(not|never|no|nobody|nothing|none|nor|neither|cannot)\b|n't\b", re.IGNORECASE
)


def test_corpus_shape_and_balance():
    corpus = load_corpus()
    n = len(corpus.texts)
    assert n == 256 and len(set(corpus.texts)) == n
    cells = collections.Counter(zip(corpus.topic, corpus.discourse, corpus.polarity, strict=True))
    assert len(cells) == 8 * 4 * 2 and set(cells.values()) == {4}
    assert set(corpus.targets) == {"global", "intermediate", "local"}
    texts, y = load_corpus(return_X_y=True, level="intermediate")
    assert texts == corpus.texts and (y == corpus.discourse).all()


def test_local_label_is_the_negation_rule():
    corpus = load_corpus()
    for text, label in zip(corpus.texts, corpus.polarity, strict=True):
        assert bool(NEGATION.search(text)) == (label == "negated"), text


def test_question_label_matches_punctuation():
    corpus = load_corpus()
    for text, label in zip(corpus.texts, corpus.discourse, strict=True):
        assert text.endswith("?") == (label == "question"), text


def test_bad_level():
    with pytest.raises(ValueError, match="level must be one of"):
        load_corpus(return_X_y=True, level="word")


def test_load_texts_formats(tmp_path):
    (tmp_path / "a.txt").write_text("one\n\ntwo\n")
    with pytest.warns(UserWarning, match="skipped 1 blank line"):
        assert load_texts(tmp_path / "a.txt") == ["one", "two"]
    (tmp_path / "b.csv").write_text('id,text\n1,"hello, world"\n2,bye\n')
    assert load_texts(tmp_path / "b.csv") == ["hello, world", "bye"]
    (tmp_path / "c.jsonl").write_text(json.dumps({"text": "x"}) + "\n" + json.dumps({"text": "y"}))
    assert load_texts(tmp_path / "c.jsonl") == ["x", "y"]


def test_load_texts_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="not found"):
        load_texts(tmp_path / "missing.txt")
    (tmp_path / "e.txt").write_text("  \n")
    with pytest.raises(ValueError, match="is empty"):
        load_texts(tmp_path / "e.txt")
    (tmp_path / "d.docx").write_text("x")
    with pytest.raises(ValueError, match="Unsupported texts file"):
        load_texts(tmp_path / "d.docx")
    (tmp_path / "b.csv").write_text("id,body\n1,x\n")
    with pytest.raises(ValueError, match="no 'text' column"):
        load_texts(tmp_path / "b.csv")
    (tmp_path / "c.jsonl").write_text('{"text": "ok"}\n{broken\n')
    with pytest.raises(ValueError, match="line 2: invalid JSON"):
        load_texts(tmp_path / "c.jsonl")
    (tmp_path / "f.csv").write_text('text\nok\n""\n')
    with pytest.raises(ValueError, match="line 3"):
        load_texts(tmp_path / "f.csv")

"""A natural corpus of >= 2,000 multi-paragraph documents, offline (issue #15, item 3)."""

import collections

import pytest

from msma_sklearn.datasets import load_docstrings
from msma_sklearn.datasets._docstrings import _prose_paragraphs


@pytest.fixture(scope="module")
def corpus():
    return load_docstrings()


def test_at_least_2000_documents_of_several_paragraphs(corpus):
    n = len(corpus.texts)
    assert n >= 2000
    assert len(corpus.package) == len(corpus.kind) == len(corpus.names) == n
    assert len(set(corpus.texts)) == n  # aliases kept once
    for text in corpus.texts:
        paragraphs = text.split("\n\n")
        assert len(paragraphs) >= 3 and all(len(p.split()) >= 8 for p in paragraphs)
        assert ">>>" not in text
    counts = collections.Counter(corpus.package)
    assert set(counts) == set(corpus.versions) and min(counts.values()) >= 100
    assert corpus.DESCR.startswith(f"{n} docstrings")


def test_the_same_corpus_every_time(corpus):
    again = load_docstrings(packages=("numpy",))
    numpy_docs = [t for t, p in zip(corpus.texts, corpus.package, strict=True) if p == "numpy"]
    assert again.texts == numpy_docs


def test_prose_is_kept_and_code_parameters_names_and_examples_are_not():
    doc = """Summary line.

    A longer description that explains the function in a few plain words.

    Parameters
    ----------
    x : array_like
        The input values that the function reads and transforms in place.
    flag : bool
        Short.

    Examples
    --------
    >>> f(1)
    2

    Notes
    -----
    The method follows the classic algorithm described by several textbooks.
    """
    got = _prose_paragraphs(doc, min_words=6)
    assert got == [
        "A longer description that explains the function in a few plain words.",
        "The input values that the function reads and transforms in place.",
        "The method follows the classic algorithm described by several textbooks.",
    ]


def test_a_missing_package_is_left_out_with_a_warning():
    with pytest.warns(UserWarning, match="'no_such_pkg' is not installed"):
        out = load_docstrings(packages=("no_such_pkg", "numpy"))
    assert set(out.package) == {"numpy"}

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


@pytest.fixture(scope="module")
def word_order():
    from msma_sklearn.datasets import load_word_order

    return load_word_order(random_state=3)


def test_word_order_labels_change_order_only_and_are_balanced_in_every_package(word_order):
    import numpy as np

    data = word_order
    g, loc, topic = (data.targets[k] for k in ("global", "local", "topic"))
    assert len(data.texts) == len(data.original_texts) == len(g) >= 800
    # independent 2 x 2 labels, balanced within every package (cells differ by at most one)
    for package in set(topic.tolist()):
        cells = collections.Counter(zip(g[topic == package], loc[topic == package], strict=True))
        assert len(cells) == 4 and max(cells.values()) - min(cells.values()) <= 1
    for text, original, order, shift, sentences, perm in zip(
        data.texts, data.original_texts, g, loc, data.sentences, data.sentence_order, strict=True
    ):
        assert original == " ".join(sentences) and sorted(perm) == list(range(len(sentences)))
        assert len(sentences) >= 4 and len(original.split()) <= 64
        assert sorted(text.split()) == sorted(original.split())  # the same words
        if order == "original" and shift == "original":
            assert text == original
        words, source = text.split(), original.split()
        if order == "original" and shift == "shifted":
            # one adjacent swap per sentence, never of the sentence's first or last word
            diff = np.flatnonzero(np.array(words) != np.array(source))
            assert diff.size >= 2 and diff.size % 2 == 0
            for i in diff[::2]:
                assert words[i] == source[i + 1] and words[i + 1] == source[i]
        if order == "shuffled" and shift == "original":
            assert perm != sorted(perm)  # a permutation other than the identity
            assert text == " ".join(sentences[j] for j in perm)


def test_word_order_is_seeded_and_refuses_an_impossible_size(word_order):
    from msma_sklearn.datasets import load_word_order

    small = load_word_order(40, random_state=3)
    assert small.texts == load_word_order(40, random_state=3).texts
    assert small.texts != load_word_order(40, random_state=4).texts
    assert len(small.texts) == 40 and set(small.names) <= set(word_order.names)
    with pytest.raises(ValueError, match=r"n_documents must be between 4 and \d+"):
        load_word_order(10**6)

"""Lexical metrics of generated text: one value per text, NaN where undefined.

Pure functions over lists of strings, with one word pattern: type-token ratio, its
moving average (MATTR), MTLD with its completed factors, distinct n-grams, repetition,
length, and the share of non-letter characters.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

__all__ = [
    "MATTR_WINDOW",
    "MIN_MTLD_FACTORS",
    "MTLD_THRESHOLD",
    "distinct_n",
    "moving_average_ttr",
    "mtld",
    "mtld_factors",
    "non_alpha_share",
    "repeated_ngram_share",
    "type_token_ratio",
    "word_count",
]

#: words per window of the moving-average TTR (Covington & McFall 2010 use 50 and more)
MATTR_WINDOW = 25
#: completed factors (in each direction) MTLD needs to be defined; fewer and its value is
#: an extrapolation of a partial factor
MIN_MTLD_FACTORS = 2
#: MTLD's TTR threshold (McCarthy & Jarvis 2010)
MTLD_THRESHOLD = 0.72

_WORD = re.compile(r"[A-Za-z0-9']+")


def _words(text: str) -> list[str]:
    return [w.lower() for w in _WORD.findall(text)]


def type_token_ratio(texts: Sequence[str]) -> np.ndarray:
    """Distinct words / words per text (NaN for a text without words).

    Parameters
    ----------
    texts : sequence of str
        The texts.

    Returns
    -------
    ndarray of shape (n_texts,)

    Examples
    --------
    >>> type_token_ratio(["a b a", "x"]).tolist()
    [0.6666666666666666, 1.0]
    """
    out = []
    for t in texts:
        w = _words(t)
        out.append(len(set(w)) / len(w) if w else np.nan)
    return np.asarray(out)


def word_count(texts: Sequence[str]) -> np.ndarray:
    """Words per text (the word pattern of every lexical metric here).

    Parameters
    ----------
    texts : sequence of str
        The texts.

    Returns
    -------
    ndarray of shape (n_texts,), float

    Examples
    --------
    >>> word_count(["a b a", ""]).tolist()
    [3.0, 0.0]
    """
    return np.asarray([float(len(_words(t))) for t in texts])


def moving_average_ttr(texts: Sequence[str], window: int = MATTR_WINDOW) -> np.ndarray:
    """Moving-average type-token ratio (MATTR; Covington & McFall 2010).

    The TTR of every run of ``window`` consecutive words, averaged: unlike the
    TTR it does not fall as a text grows longer, so texts of different lengths
    compare. NaN for a text with fewer than ``window`` words (undefined, not
    guessed).

    Parameters
    ----------
    texts : sequence of str
        The texts.
    window : int, default=MATTR_WINDOW
        Words per window.

    Returns
    -------
    ndarray of shape (n_texts,)

    Examples
    --------
    >>> moving_average_ttr(["a b a b", "a b"], window=3).tolist()
    [0.6666666666666666, nan]
    """
    if window < 1:
        raise ValueError(f"window must be at least 1, got {window}.")
    out = []
    for t in texts:
        w = _words(t)
        if len(w) < window:
            out.append(np.nan)
            continue
        counts: dict = {}
        for x in w[:window]:
            counts[x] = counts.get(x, 0) + 1
        total = len(counts)
        for i in range(window, len(w)):  # slide: one word in, one word out
            old, new = w[i - window], w[i]
            counts[old] -= 1
            if counts[old] == 0:
                del counts[old]
            counts[new] = counts.get(new, 0) + 1
            total += len(counts)
        out.append(total / ((len(w) - window + 1) * window))
    return np.asarray(out)


def mtld_factors(words: Sequence[str], threshold: float = MTLD_THRESHOLD) -> tuple[int, float]:
    """One direction of MTLD: completed factors and the partial factor's share.

    Walking the words, a factor completes when the running TTR falls to
    ``threshold`` or below; the TTR then restarts. The remainder counts as
    ``(1 - TTR) / (1 - threshold)`` of a factor (McCarthy & Jarvis 2010).

    Parameters
    ----------
    words : sequence of str
        The words in order.
    threshold : float, default=0.72
        The TTR at which a factor completes.

    Returns
    -------
    completed : int
    partial : float

    Examples
    --------
    >>> mtld_factors("a a b b".split())  # TTR 1, 0.5: complete; then 1, 0.5
    (2, 0.0)
    """
    completed, types, tokens = 0, set(), 0
    for x in words:
        types.add(x)
        tokens += 1
        if len(types) / tokens <= threshold:
            completed += 1
            types, tokens = set(), 0
    partial = (1 - len(types) / tokens) / (1 - threshold) if tokens else 0.0
    return completed, partial


def mtld(
    texts: Sequence[str],
    *,
    threshold: float = MTLD_THRESHOLD,
    min_factors: int = MIN_MTLD_FACTORS,
) -> np.ndarray:
    """MTLD lexical diversity, defined only where enough factors complete.

    Words over factors, forward and backward averaged (McCarthy & Jarvis
    2010). When fewer than ``min_factors`` factors complete in either
    direction the value rests mostly on the extrapolated partial factor (on
    ~43-word continuations it exceeded the word count for most texts): it is
    NaN (undefined), and counted as such.

    Parameters
    ----------
    texts : sequence of str
        The texts.
    threshold : float, default=0.72
        The TTR at which a factor completes.
    min_factors : int, default=MIN_MTLD_FACTORS
        Completed factors needed in each direction.

    Returns
    -------
    ndarray of shape (n_texts,)

    Examples
    --------
    >>> mtld(["a a b b c c d d", "a b c"]).tolist()
    [2.0, nan]
    """
    out = []
    for t in texts:
        w = _words(t)
        values = []
        for seq in (w, w[::-1]):
            completed, partial = mtld_factors(seq, threshold)
            if completed < min_factors:
                break
            values.append(len(seq) / (completed + partial))
        out.append(float(np.mean(values)) if len(values) == 2 else np.nan)
    return np.asarray(out)


def repeated_ngram_share(texts: Sequence[str], n: int = 4) -> np.ndarray:
    """Share of a text's word n-grams that repeat an earlier one (repetition).

    ``1 - distinct / total`` n-grams: 0 for a text that never repeats itself,
    near 1 for a loop. NaN with fewer than ``n`` words.

    Parameters
    ----------
    texts : sequence of str
        The texts.
    n : int, default=4
        N-gram length.

    Returns
    -------
    ndarray of shape (n_texts,)

    Examples
    --------
    >>> repeated_ngram_share(["a b a b a b", "a b c d"], n=2).tolist()
    [0.6, 0.0]
    """
    return 1.0 - distinct_n(texts, n)


def distinct_n(texts: Sequence[str], n: int = 2) -> np.ndarray:
    """Distinct word n-grams / n-grams per text (NaN with fewer than n words).

    Parameters
    ----------
    texts : sequence of str
        The texts.
    n : int, default=2
        The n-gram length.

    Returns
    -------
    ndarray of shape (n_texts,)

    Examples
    --------
    >>> distinct_n(["a b a b"], n=2).tolist()
    [0.6666666666666666]
    """
    out = []
    for t in texts:
        w = _words(t)
        grams = [tuple(w[i : i + n]) for i in range(len(w) - n + 1)]
        out.append(len(set(grams)) / len(grams) if grams else np.nan)
    return np.asarray(out)


def non_alpha_share(texts: Sequence[str]) -> np.ndarray:
    """Share of a text's non-space characters that are not letters (NaN for an empty text).

    High for punctuation fragments such as ``" , , and .  ."`` that embed alike.

    Parameters
    ----------
    texts : sequence of str
        The texts.

    Returns
    -------
    ndarray of shape (n_texts,)

    Examples
    --------
    >>> non_alpha_share(["ab, c.", ""]).round(2).tolist()
    [0.4, nan]
    """
    out = []
    for t in texts:
        chars = [c for c in t if not c.isspace()]
        out.append(sum(not c.isalpha() for c in chars) / len(chars) if chars else np.nan)
    return np.asarray(out)

"""Validation of user input shared by the estimators."""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Iterator, Mapping, Set

import numpy as np
import scipy.sparse as sp

__all__ = ["check_texts"]


def check_texts(texts, *, name: str = "texts") -> list[str]:
    """Validate a collection of texts and return it as a list of ``str``.

    Parameters
    ----------
    texts : list, tuple, numpy array, pandas Series, one-column DataFrame or iterator of str
        The texts, one per row; an iterator or generator is read once. A
        single string is rejected (wrap it in a list); so is a DataFrame of
        several columns (which column is meant?), a mapping (iterating it
        gives its keys, not its texts) and a set (its order is arbitrary, so
        rows would not line up with labels).
    name : str, default="texts"
        Name used in error messages.

    Returns
    -------
    list of str

    Raises
    ------
    TypeError
        If ``texts`` is ``None``, a single string, a mapping, a set, not
        iterable, or holds a non-string item.
    ValueError
        If ``texts`` is empty or holds a text with no visible character (only
        whitespace, zero-width spaces, byte-order marks or control
        characters: the model would see no real token, and every such text
        would get the same vector).

    Examples
    --------
    >>> check_texts(("a cat", "a dog"))
    ['a cat', 'a dog']
    >>> import pandas as pd
    >>> check_texts(pd.DataFrame({"text": ["a cat", "a dog"]}))
    ['a cat', 'a dog']
    """
    if texts is None:
        raise TypeError(f"{name} must be a list of strings, got None.")
    if isinstance(texts, (str, bytes)):
        raise TypeError(
            f"{name} must be a list of strings, got a single {type(texts).__name__} "
            f"({texts[:40]!r}); wrap it in a list: [{name[:-1] if name.endswith('s') else name}]."
        )
    if sp.issparse(texts):
        raise TypeError(
            f"{name} must be a list of strings; sparse input is not supported "
            f"(got {type(texts).__name__} of shape {texts.shape})."
        )
    if isinstance(texts, Mapping):
        raise TypeError(
            f"{name} must be a list of strings, got a {type(texts).__name__} with "
            f"{len(texts)} entries: iterating it would give its keys, not its texts. Pass "
            "list(d.values()) (and keep list(d) as the ids)."
        )
    if isinstance(texts, Set):
        raise TypeError(
            f"{name} must be a list of strings, got a {type(texts).__name__}: its order is "
            "arbitrary, so the rows would not line up with anything else. Pass a list "
            "(e.g. sorted(texts))."
        )
    columns = getattr(texts, "columns", None)
    if columns is not None and hasattr(texts, "iloc"):  # a DataFrame (pandas, or alike)
        if len(columns) != 1:
            raise ValueError(
                f"{name} must be one text per row; got a DataFrame with {len(columns)} columns "
                f"{list(columns)[:5]}. Pass the text column alone: df['text'] or "
                "df[['text']] (in a ColumnTransformer, select one column: ['text'] or 'text')."
            )
        texts = texts.iloc[:, 0]
    if isinstance(texts, np.ndarray):
        if texts.ndim == 2 and texts.shape[1] == 1:
            texts = texts[:, 0]
        elif texts.ndim != 1:
            raise ValueError(
                f"{name} must be 1-D (one text per row), got an array of shape {texts.shape}."
            )
    if not isinstance(texts, Iterable):
        raise TypeError(f"{name} must be a list of strings, got {type(texts).__name__}.")
    consumed = isinstance(texts, Iterator)
    out = list(texts)
    if not out:
        hint = (
            " (an iterator or generator that was already read? fit and transform each read "
            "their input: pass a list)"
            if consumed
            else ""
        )
        raise ValueError(f"{name} is empty{hint}: pass at least one non-empty string.")
    bad_type = [(i, type(t).__name__) for i, t in enumerate(out) if not isinstance(t, str)]
    if bad_type:
        shown = ", ".join(f"index {i}: {t}" for i, t in bad_type[:5])
        raise TypeError(
            f"{name} must contain only strings; found {len(bad_type)} non-string item(s) "
            f"({shown}{', ...' if len(bad_type) > 5 else ''})."
        )
    empty = [i for i, t in enumerate(out) if not has_visible_character(t)]
    if empty:
        shown = ", ".join(map(str, empty[:10]))
        raise ValueError(
            f"{name} contains {len(empty)} text(s) with no visible character (empty, or only "
            "whitespace, zero-width spaces, byte-order marks or control characters) at index "
            f"{shown}{', ...' if len(empty) > 10 else ''}; remove them or replace them with text."
        )
    return out


#: Unicode categories that print nothing: separators, controls, format characters
#: (zero-width space U+200B, byte-order mark U+FEFF, ...), surrogates, unassigned
_INVISIBLE = {"Zs", "Zl", "Zp", "Cc", "Cf", "Cs", "Co", "Cn"}


def has_visible_character(text: str) -> bool:
    """Whether ``text`` holds a letter, digit, mark, punctuation or symbol.

    Examples
    --------
    >>> has_visible_character("\u200b\ufeff \t"), has_visible_character("a\u200b")
    (False, True)
    """
    return any(unicodedata.category(c) not in _INVISIBLE for c in text)

"""Validation of user input shared by the estimators."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import scipy.sparse as sp

__all__ = ["check_texts"]


def check_texts(texts, *, name: str = "texts") -> list[str]:
    """Validate a collection of texts and return it as a list of ``str``.

    Parameters
    ----------
    texts : list, tuple, numpy array, pandas Series or one-column DataFrame of str
        The texts, one per row. A single string is rejected (wrap it in a
        list); so is a DataFrame of several columns (which column is meant?),
        where iterating would give its column names.
    name : str, default="texts"
        Name used in error messages.

    Returns
    -------
    list of str

    Raises
    ------
    TypeError
        If ``texts`` is ``None``, a single string, not iterable, or holds a
        non-string item.
    ValueError
        If ``texts`` is empty or holds empty / whitespace-only strings.

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
    columns = getattr(texts, "columns", None)
    if columns is not None and hasattr(texts, "iloc"):  # a DataFrame (pandas, or alike)
        if len(columns) != 1:
            raise ValueError(
                f"{name} must be one text per row; got a DataFrame with {len(columns)} columns "
                f"{list(columns)[:5]}. Pass the text column alone: df['text'] or "
                "df[['text']] (in a ColumnTransformer, select one column: ['text'] or 'text')."
            )
        texts = texts.iloc[:, 0]
    if sp.issparse(texts):
        raise TypeError(
            f"{name} must be a list of strings; sparse input is not supported "
            f"(got {type(texts).__name__} of shape {texts.shape})."
        )
    if isinstance(texts, np.ndarray):
        if texts.ndim == 2 and texts.shape[1] == 1:
            texts = texts[:, 0]
        elif texts.ndim != 1:
            raise ValueError(
                f"{name} must be 1-D (one text per row), got an array of shape {texts.shape}."
            )
    if not isinstance(texts, Iterable):
        raise TypeError(f"{name} must be a list of strings, got {type(texts).__name__}.")
    out = list(texts)
    if not out:
        raise ValueError(f"{name} is empty: pass at least one non-empty string.")
    bad_type = [(i, type(t).__name__) for i, t in enumerate(out) if not isinstance(t, str)]
    if bad_type:
        shown = ", ".join(f"index {i}: {t}" for i, t in bad_type[:5])
        raise TypeError(
            f"{name} must contain only strings; found {len(bad_type)} non-string item(s) "
            f"({shown}{', ...' if len(bad_type) > 5 else ''})."
        )
    empty = [i for i, t in enumerate(out) if not t.strip()]
    if empty:
        shown = ", ".join(map(str, empty[:10]))
        raise ValueError(
            f"{name} contains {len(empty)} empty or whitespace-only string(s) at index "
            f"{shown}{', ...' if len(empty) > 10 else ''}; remove them or replace them with text."
        )
    return out

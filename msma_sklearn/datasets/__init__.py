"""Bundled data and readers for users' texts."""

from ._corpus import load_corpus, load_texts
from ._docstrings import load_docstrings, load_word_order
from ._prose import load_reference_prose

__all__ = [
    "load_corpus",
    "load_docstrings",
    "load_reference_prose",
    "load_texts",
    "load_word_order",
]

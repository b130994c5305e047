"""Bundled data and readers for users' texts."""

from ._corpus import load_corpus, load_texts

__all__ = ["load_corpus", "load_texts"]

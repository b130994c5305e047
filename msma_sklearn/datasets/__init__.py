"""Bundled data, readers for users' texts, and simulated layer stacks."""

from ._corpus import load_corpus, load_texts
from ._docstrings import load_docstrings, load_word_order
from ._layers import DRIFT_KINDS, make_layer_blocks, make_layer_drift
from ._prose import load_reference_prose

__all__ = [
    "DRIFT_KINDS",
    "load_corpus",
    "load_docstrings",
    "load_reference_prose",
    "load_texts",
    "load_word_order",
    "make_layer_blocks",
    "make_layer_drift",
]

"""Texts -> per-layer hidden states, and the model loader shared by every stage."""

from ._core import POOLINGS, reshape_by_layer
from ._extractor import HiddenStateExtractor
from ._models import OFFLINE_MODELS, clear_model_cache, load_model, model_fingerprint
from ._store import HiddenStateStore, extract_to_store, write_array_store

__all__ = [
    "OFFLINE_MODELS",
    "POOLINGS",
    "HiddenStateExtractor",
    "HiddenStateStore",
    "clear_model_cache",
    "extract_to_store",
    "load_model",
    "model_fingerprint",
    "reshape_by_layer",
    "write_array_store",
]

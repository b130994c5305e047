"""Texts -> per-layer hidden states, and the model loader shared by every stage."""

from ._core import POOLINGS, ModelLayout, pad_batch, pad_token_id, reshape_by_layer, resolve_layout
from ._extractor import HiddenStateExtractor
from ._lazy import ModelBackedMixin
from ._models import (
    OFFLINE_MODELS,
    clear_model_cache,
    has_random_weights,
    load_model,
    model_fingerprint,
)
from ._store import HiddenStateStore, extract_to_store, write_array_store

__all__ = [
    "OFFLINE_MODELS",
    "POOLINGS",
    "HiddenStateExtractor",
    "HiddenStateStore",
    "ModelBackedMixin",
    "ModelLayout",
    "clear_model_cache",
    "extract_to_store",
    "has_random_weights",
    "load_model",
    "model_fingerprint",
    "pad_batch",
    "pad_token_id",
    "reshape_by_layer",
    "resolve_layout",
    "write_array_store",
]

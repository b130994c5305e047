"""The on-disk cache of :class:`HiddenStateExtractor` (``cache_dir``): keyed by the
model's weights, the settings and the texts, checked by a SHA-256 of the array."""

from __future__ import annotations

import hashlib
import json
import logging
import warnings
from pathlib import Path

import numpy as np

from ..utils._io import atomic_path
from ._models import model_fingerprint

__all__ = ["ExtractionCacheMixin"]

logger = logging.getLogger(__name__)

_CACHE_FORMAT = 2  # 2: sink_tokens in the key


def _digest(X: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(X).tobytes()).hexdigest()


class ExtractionCacheMixin:
    """Load pooled states from ``cache_dir`` when an entry matches, else compute and
    write them atomically."""

    def _cache_key(self, texts: list[str]) -> str:
        model, _ = self._loaded()
        h = hashlib.sha256()
        spec = {
            "format": _CACHE_FORMAT,
            "weights": model_fingerprint(model),
            "layers": self.layers_.tolist(),
            "pooling": self.pooling,
            "sink_tokens": self._sinks(),
            "max_length": self.max_length,
            "dtype": self.dtype,
            "stack": self.stack_,
            "padding_side": self.padding_side if self.pooling == "mean_all" else None,
        }
        h.update(json.dumps(spec, sort_keys=True).encode())
        for text in texts:
            h.update(text.encode("utf-8"))
            h.update(b"\x00")
        return h.hexdigest()

    def _cached(self, texts: list[str]) -> np.ndarray:
        path = Path(self.cache_dir) / f"hidden-{self._cache_key(texts)}.npz"
        expected_shape = (len(texts), len(self.layers_) * self.hidden_size_)
        if path.exists():
            try:
                with np.load(path, allow_pickle=False) as data:
                    X, digest = data["X"], str(data["sha256"])
                if X.shape == expected_shape and _digest(X) == digest:
                    logger.info("Loaded hidden states from cache %s", path)
                    return X
                reason = "shape or checksum mismatch"
            except Exception as exc:  # noqa: BLE001 - any unreadable entry is recomputed
                reason = f"{type(exc).__name__}: {exc}"
            warnings.warn(
                f"Ignoring corrupt cache entry {path.name} ({reason}); recomputing.",
                UserWarning,
                stacklevel=3,
            )
        X = self._compute(texts)
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as fh:
                np.savez(fh, X=X, sha256=np.array(_digest(X)))
        return X

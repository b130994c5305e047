"""msma_sklearn: Multi-Scale Manifold Alignment for language models, with a scikit-learn API.

Importing the package is cheap: the estimators (which need torch and
transformers) are imported on first access.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0.dev0"

_LAZY = {
    "HiddenStateExtractor": "msma_sklearn.extraction",
    "ScaleSegmenter": "msma_sklearn.segmentation",
    "ManifoldAligner": "msma_sklearn.alignment",
    "Intervener": "msma_sklearn.interventions",
    "load_model": "msma_sklearn.extraction",
    "load_corpus": "msma_sklearn.datasets",
    "load_texts": "msma_sklearn.datasets",
}

__all__ = [
    "HiddenStateExtractor",
    "Intervener",
    "ManifoldAligner",
    "ScaleSegmenter",
    "__version__",
    "load_corpus",
    "load_model",
    "load_texts",
]


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'msma_sklearn' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))

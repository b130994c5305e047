"""Formatting shared by the report's sections and the run's file names."""

from __future__ import annotations

import math
from pathlib import Path

from ..utils._format import layer_ranges

__all__ = [
    "file_stem",
    "finite",
    "fmt_bounds",
    "fmt_optional",
    "layer_ranges",
    "layer_span",
    "rounded",
    "sig3",
]


def file_stem(name: str) -> str:
    """A file-name-safe stem for a model spec.

    The name itself for the package's models, else the last path part made
    safe plus a short hash of the whole spec (so two checkpoints called
    ``model`` in different folders do not overwrite each other's figures).

    Parameters
    ----------
    name : str
        A model spec.

    Returns
    -------
    str
    """
    import hashlib
    import re

    if re.fullmatch(r"[A-Za-z0-9._:-]+", name) and name not in (".", ".."):
        return name.replace(":", "-")
    tail = re.sub(r"[^A-Za-z0-9._-]+", "-", Path(name.rstrip("/\\")).name or name).strip("-.")
    return f"{tail or 'model'}-{hashlib.sha1(name.encode()).hexdigest()[:8]}"


def fmt_bounds(b) -> str:
    return ", ".join(str(x) for x in b) if b else "–"


def fmt_optional(value, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)


def finite(v) -> bool:
    """Whether ``v`` is a number that is not NaN or infinite (None is not)."""
    return v is not None and math.isfinite(float(v))


def rounded(v, digits: int = 4):
    """``v`` rounded as the results' JSON keeps it (None when not finite), so the report
    and ``summary.json`` never disagree in the last digit."""
    return round(float(v), digits) if finite(v) else None


def sig3(v):
    """A p-value to three significant digits, as the JSON keeps it (1e-9 is not 0)."""
    return float(f"{float(v):.3g}") if finite(v) else None


def layer_span(layers) -> str:
    return f"{layers[0]}-{layers[-1]}" if len(layers) > 1 else str(layers[0])

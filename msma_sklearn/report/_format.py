"""Formatting shared by the report's sections and the run's file names."""

from __future__ import annotations

from pathlib import Path

from ..utils._format import layer_ranges

__all__ = ["file_stem", "fmt_bounds", "fmt_optional", "layer_ranges", "layer_span"]


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


def layer_span(layers) -> str:
    return f"{layers[0]}-{layers[-1]}" if len(layers) > 1 else str(layers[0])

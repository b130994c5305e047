"""Multi-paragraph documents nobody here wrote: docstrings of installed scientific packages."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re
import warnings

from sklearn.utils import Bunch

__all__ = ["load_docstrings"]

#: numpydoc section headers; the paragraphs under them are parameter lists, code, ...
_SECTION = re.compile(r"^\s*([A-Z][A-Za-z ]+)\n\s*-{3,}\s*$", re.M)
_DEFAULT_PACKAGES = ("numpy", "scipy", "sklearn", "pandas", "matplotlib")


_ENTRIES = {"Parameters", "Returns", "Yields", "Attributes", "Other Parameters", "Raises"}


def _entry_descriptions(body: str) -> list[str]:
    """The indented descriptions of a numpydoc entry list (``name : type`` lines dropped)."""
    out, current = [], []
    for line in body.splitlines():
        if line.strip() and not line.startswith((" ", "\t")):  # a "name : type" line
            if current:
                out.append("\n".join(current))
            current = []
        elif line.strip():
            current.append(line.strip())
        elif current:
            current.append("")
    if current:
        out.append("\n".join(current))
    return out


def _prose_paragraphs(doc: str, min_words: int) -> list[str]:
    """Prose paragraphs of a numpydoc docstring, whitespace normalised: the summary and
    extended summary, each parameter's / return value's / attribute's description, and
    the Notes; code, examples, references and maths left out."""
    doc = inspect.cleandoc(doc)
    parts = _SECTION.split(doc)  # [head, name1, body1, name2, body2, ...]
    chunks = [parts[0]]
    for name, body in zip(parts[1::2], parts[2::2], strict=False):
        if name == "Notes":
            chunks.append(body)
        elif name in _ENTRIES:
            chunks.extend(_entry_descriptions(body))
    out = []
    for chunk in chunks:
        for block in re.split(r"\n\s*\n", chunk):
            lines = block.strip().splitlines()
            if not lines or any(
                line.lstrip().startswith((">>>", "..", "|", "+-", "* ", "- ")) for line in lines
            ):
                continue
            text = " ".join(block.split())
            if len(text.split()) < min_words or ":math:" in text or "`~" in text:
                continue
            if sum(c.isalpha() or c.isspace() for c in text) < 0.9 * len(text):
                continue
            out.append(text)
    return out


def _public_objects(package: str):
    """(qualified name, object) of the public functions and classes of ``package``'s public
    modules, in name order; modules that fail to import are left out."""
    root = importlib.import_module(package)
    names = [package]
    for info in pkgutil.walk_packages(root.__path__, prefix=package + ".", onerror=lambda _: None):
        parts = info.name.split(".")
        skip = {"tests", "conftest", "testing", "backends", "sphinxext"}
        if any(p.startswith("_") for p in parts) or skip & set(parts):
            continue
        names.append(info.name)
    seen = set()
    for module_name in sorted(names):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                module = importlib.import_module(module_name)
        except Exception:  # noqa: BLE001 - optional backends, removed APIs: skip the module
            continue
        for attr in sorted(getattr(module, "__all__", None) or dir(module)):
            if attr.startswith("_"):
                continue
            obj = getattr(module, attr, None)
            if not (inspect.isfunction(obj) or inspect.isclass(obj)):
                continue
            if not getattr(obj, "__module__", "").startswith(package) or id(obj) in seen:
                continue
            seen.add(id(obj))
            yield f"{module_name}.{attr}", obj


def load_docstrings(
    packages=_DEFAULT_PACKAGES, *, min_paragraphs: int = 3, min_words: int = 8
) -> Bunch:
    """Documents of several paragraphs from the docstrings of installed packages.

    Each document is one public function or class: the prose paragraphs of its
    docstring (summary, extended summary and Notes; parameter lists, examples and
    maths left out), joined by blank lines. Written by those projects, installed
    as this package's dependencies, no download. A document-level label is the
    package; every document has at least ``min_paragraphs`` paragraphs of at least
    ``min_words`` words. Identical documents (aliases, inherited docstrings) are
    kept once. The set depends on the installed versions, recorded in ``versions``
    (a package that is not installed is left out with a warning). With numpy
    2.3.5, scipy 1.17.1, scikit-learn 1.9.1, pandas 3.1.1 and matplotlib 3.11.2
    (this project's environment on 2026-11-26): 2,157 documents (scipy 900,
    scikit-learn 542, numpy 256, pandas 245, matplotlib 214).

    Whether a label is readable off the words alone (the package surely is, from
    its vocabulary) must be checked with the probes' control tasks before a
    document-level scale is judged on it.

    Parameters
    ----------
    packages : sequence of str, default=("numpy", "scipy", "sklearn", "pandas", "matplotlib")
    min_paragraphs : int, default=3
    min_words : int, default=8

    Returns
    -------
    sklearn.utils.Bunch
        ``texts`` (list of str), ``package`` and ``kind`` ("function" / "class")
        per text, ``names`` (qualified names), ``versions`` ({package: version}),
        ``DESCR``.
    """
    with warnings.catch_warnings():  # deprecated names warn when touched: not the user's concern
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", FutureWarning)
        return _load(packages, min_paragraphs, min_words)


def _load(packages, min_paragraphs, min_words):
    texts, package_of, kind, names, seen = [], [], [], [], set()
    versions = {}
    for package in packages:
        try:
            versions[package] = getattr(importlib.import_module(package), "__version__", "?")
        except ImportError:
            warnings.warn(f"load_docstrings: {package!r} is not installed; left out.", stacklevel=3)
            continue
        for name, obj in _public_objects(package):
            doc = getattr(obj, "__doc__", None)
            if not isinstance(doc, str):
                continue
            paragraphs = _prose_paragraphs(doc, min_words)
            if len(paragraphs) < min_paragraphs:
                continue
            text = "\n\n".join(paragraphs)
            if text in seen:
                continue
            seen.add(text)
            texts.append(text)
            package_of.append(package)
            kind.append("class" if inspect.isclass(obj) else "function")
            names.append(name)
    descr = (
        f"{len(texts)} docstrings of public functions and classes of "
        + ", ".join(f"{p} {v}" for p, v in versions.items())
        + f"; each at least {min_paragraphs} prose paragraphs of at least {min_words} words."
    )
    return Bunch(
        texts=texts, package=package_of, kind=kind, names=names, versions=versions, DESCR=descr
    )

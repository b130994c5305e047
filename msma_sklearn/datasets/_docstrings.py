"""Multi-paragraph documents nobody here wrote: docstrings of installed scientific packages."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re
import warnings

from sklearn.utils import Bunch

__all__ = ["load_docstrings", "load_word_order"]

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
        Installed packages whose public functions and classes are read.
    min_paragraphs : int, default=3
        Fewest prose paragraphs a document keeps.
    min_words : int, default=8
        Fewest words a paragraph needs to count.

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


#: a sentence ends at . ! or ? after a lower-case letter, digit or bracket, before a capital
_SENTENCE_END = re.compile(r"(?<=[a-z0-9)\]][.!?])\s+(?=[A-Z])")


def load_word_order(
    n_documents: int | None = None,
    *,
    min_sentences: int = 4,
    max_words: int = 64,
    random_state: int = 0,
) -> Bunch:
    """Docstring documents with word-order labels at two scales, unreadable from the words.

    Each document is the opening sentences of one :func:`load_docstrings` text
    (at least ``min_sentences`` sentences of at least 4 words, at most
    ``max_words`` words in all). Two labels are then planted, each on half the
    documents, independently and balanced within every package:

    * ``global`` (document): ``"shuffled"`` -- the sentences put in a random
      other order -- or ``"original"``;
    * ``local`` (word): ``"shifted"`` -- in every sentence two adjacent words,
      neither the first nor the last, swapped (the bigram-shift task of
      Conneau et al. 2018) -- or ``"original"``.

    Both leave the multiset of words unchanged, so a representation that
    ignores order cannot decode them: the mean of the embedding layer does so
    only through a word's position (its leading space at the start of a text,
    a position embedding), which the probes' control task and the layer-0
    accuracy measure. ``topic`` (the package) is a lexical label kept beside
    them for comparison.

    Parameters
    ----------
    n_documents : int, default=None
        How many documents to draw (seeded); None for every one that qualifies
        (900 with this project's environment on 2026-11-26).
    min_sentences, max_words : int
        The length of each document.
    random_state : int, default=0
        Seeds the draw, the labels, the orders and the swapped pairs.

    Returns
    -------
    sklearn.utils.Bunch
        ``texts``, ``targets`` (``{"global": ..., "local": ..., "topic": ...}``,
        arrays of str), ``original_texts`` (before either change), ``sentences``
        (each document's original sentences), ``sentence_order`` (the order they
        appear in, the identity unless shuffled), ``names``,
        ``versions``, ``DESCR``.

    Examples
    --------
    >>> data = load_word_order(40, random_state=0)
    >>> sorted(set(data.targets["global"].tolist()))
    ['original', 'shuffled']
    """
    import numpy as np

    source = load_docstrings()
    rng = np.random.default_rng(random_state)
    docs = []
    for text, package, name in zip(source.texts, source.package, source.names, strict=True):
        kept, words = [], 0
        for sentence in _SENTENCE_END.split(" ".join(text.split())):
            n = len(sentence.split())
            if words + n > max_words:
                break
            kept.append(sentence)
            words += n
        if len(kept) >= min_sentences and all(len(s.split()) >= 4 for s in kept):
            docs.append((kept, package, name))
    if n_documents is not None:
        if not 4 <= n_documents <= len(docs):
            raise ValueError(
                f"n_documents must be between 4 and {len(docs)} (the documents with at least "
                f"{min_sentences} sentences in {max_words} words), got {n_documents}."
            )
        docs = [docs[i] for i in sorted(rng.choice(len(docs), n_documents, replace=False))]
    cells = np.empty(len(docs), dtype=np.int64)
    packages = np.array([d[1] for d in docs])
    for package in dict.fromkeys(packages):  # balanced 2 x 2 within every package
        rows = np.flatnonzero(packages == package)
        cells[rng.permutation(rows)] = (np.arange(rows.size) + rng.integers(4)) % 4
    texts, order, shift, orders = [], [], [], []
    for (sentences, _, _), cell in zip(docs, cells, strict=True):
        shuffled, shifted = bool(cell & 1), bool(cell & 2)
        out = [s.split() for s in sentences]
        if shifted:
            for words in out:
                i = int(rng.integers(1, len(words) - 2))  # words i, i+1: not first, not last
                words[i], words[i + 1] = words[i + 1], words[i]
        if shuffled:
            perm = np.arange(len(out))
            while (perm == np.arange(len(out))).all():
                perm = rng.permutation(len(out))
            out = [out[j] for j in perm]
        else:
            perm = np.arange(len(out))
        orders.append([int(j) for j in perm])
        texts.append(" ".join(" ".join(w) for w in out))
        order.append("shuffled" if shuffled else "original")
        shift.append("shifted" if shifted else "original")
    descr = (
        f"{len(texts)} documents: the opening {min_sentences}+ sentences (<= {max_words} "
        "words) of docstrings of "
        + ", ".join(f"{p} {v}" for p, v in source.versions.items())
        + "; global = sentence order shuffled or not, local = one bigram per sentence "
        "swapped or not (balanced, independent, within every package); topic = package."
    )
    return Bunch(
        texts=texts,
        targets={
            "global": np.array(order),
            "local": np.array(shift),
            "topic": packages.astype(str),
        },
        original_texts=[" ".join(d[0]) for d in docs],
        sentences=[list(d[0]) for d in docs],
        sentence_order=orders,
        names=[d[2] for d in docs],
        versions=source.versions,
        DESCR=descr,
    )

"""The bundled corpus and a reader for users' own text files."""

from __future__ import annotations

import csv
import io
import json
import warnings
from importlib import resources
from pathlib import Path

import numpy as np
from sklearn.utils import Bunch

__all__ = ["load_corpus", "load_texts"]

_LEVELS = {"global": "topic", "intermediate": "discourse", "local": "polarity"}

_DESCR = """\
msma_sklearn bundled corpus
---------------------------
256 short English texts (one to three sentences) written for this project.
Each text carries three labels, one per semantic scale:

* global       -> ``topic``: science, sport, food, travel, finance, health,
                  technology, nature (32 texts each);
* intermediate -> ``discourse``: narrative, instruction, question, opinion
                  (64 each; 8 per topic);
* local        -> ``polarity``: ``negated`` if the text contains a negation word
                  (not, n't, never, no, nobody, nothing, none, nor, neither,
                  cannot, won't), else ``affirmative`` (128 each; balanced in every
                  topic x discourse cell).
"""


def load_corpus(*, return_X_y: bool = False, level: str = "global"):
    """Load the bundled, labelled corpus.

    Parameters
    ----------
    return_X_y : bool, default=False
        If True, return ``(texts, labels)`` for the label set ``level``.
    level : {"global", "intermediate", "local"}, default="global"
        Which labels ``return_X_y`` returns.

    Returns
    -------
    data : sklearn.utils.Bunch
        ``texts`` (list of str), ``topic``, ``discourse``, ``polarity``
        (arrays of str), ``targets`` (dict scale -> labels), ``DESCR``.
    (texts, labels) : tuple
        If ``return_X_y`` is True.

    Examples
    --------
    >>> corpus = load_corpus()
    >>> len(corpus.texts), sorted(set(corpus.discourse.tolist()))[:2]
    (256, ['instruction', 'narrative'])
    """
    if level not in _LEVELS:
        raise ValueError(f"level must be one of {sorted(_LEVELS)}, got {level!r}.")
    raw = resources.files(__package__).joinpath("data", "corpus.tsv").read_text("utf-8")
    rows = list(csv.DictReader(io.StringIO(raw), delimiter="\t"))
    texts = [r["text"] for r in rows]
    cols = {k: np.array([r[k] for r in rows]) for k in ("topic", "discourse", "polarity")}
    targets = {scale: cols[col] for scale, col in _LEVELS.items()}
    if return_X_y:
        return texts, targets[level]
    return Bunch(texts=texts, targets=targets, DESCR=_DESCR, **cols)


def load_texts(path, *, text_column: str = "text") -> list[str]:
    """Read texts from a ``.txt`` (one per line), ``.csv`` or ``.jsonl`` file.

    Parameters
    ----------
    path : str or path-like
        The file.
    text_column : str, default="text"
        Column (CSV) or key (JSON Lines) holding the text.

    Returns
    -------
    list of str

    Raises
    ------
    FileNotFoundError
        If the file does not exist.
    ValueError
        Unsupported extension, empty file, missing column, malformed JSON line
        or empty text (the message names the line).

    Notes
    -----
    Blank lines of a ``.txt`` file are skipped with a warning that names them.
    Files are read as UTF-8; a leading byte-order mark is ignored.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Texts file not found: {str(path)!r}.")
    suffix = path.suffix.lower()
    if suffix not in (".txt", ".csv", ".jsonl"):
        raise ValueError(
            f"Unsupported texts file {path.name!r}: use .txt (one text per line), .csv "
            f"(a {text_column!r} column) or .jsonl (a {text_column!r} key per line)."
        )
    try:  # utf-8-sig: a byte-order mark (Excel's CSV) is not part of the first column's name
        raw = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValueError(
            f"Texts file {str(path)!r} is not UTF-8 (byte {exc.start}: {exc.reason}); "
            "re-save it as UTF-8."
        ) from None
    if not raw.strip():
        raise ValueError(f"Texts file {str(path)!r} is empty.")
    if suffix == ".txt":
        lines = raw.splitlines()
        texts = [line.strip() for line in lines if line.strip()]
        blank = [i + 1 for i, line in enumerate(lines) if not line.strip()]
        if blank:
            shown = ", ".join(map(str, blank[:10])) + (", ..." if len(blank) > 10 else "")
            warnings.warn(
                f"{path.name}: skipped {len(blank)} blank line(s) (line {shown}); the texts are "
                "the other lines in order, so row i is no longer line i + 1. Remove the blank "
                "lines if anything else is indexed by line.",
                UserWarning,
                stacklevel=2,
            )
        return texts
    if suffix == ".csv":
        reader = csv.DictReader(io.StringIO(raw))
        if text_column not in (reader.fieldnames or []):
            raise ValueError(
                f"{path.name} has no {text_column!r} column; columns are {reader.fieldnames}. "
                "Pass text_column= to choose one."
            )
        records = [(i + 2, row[text_column]) for i, row in enumerate(reader)]
    else:
        records = []
        for lineno, line in enumerate(raw.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path.name}, line {lineno}: invalid JSON ({exc.msg}).") from None
            if not isinstance(obj, dict) or text_column not in obj:
                raise ValueError(f"{path.name}, line {lineno}: no {text_column!r} key.")
            records.append((lineno, obj[text_column]))
    for lineno, text in records:
        if not isinstance(text, str) or not text.strip():
            raise ValueError(
                f"{path.name}, line {lineno}: {text_column!r} is empty or not a string ({text!r})."
            )
    return [text.strip() for _, text in records]

"""Natural English prose that nobody on this project wrote: the paragraphs of the
Python Language Reference that ship with every CPython (``pydoc_data.topics``)."""

from __future__ import annotations

import re

from sklearn.utils import Bunch

__all__ = ["load_reference_prose"]

_DESCR = """\
Python Language Reference prose
-------------------------------
The prose paragraphs of the Python Language Reference as shipped in CPython's
standard library (``pydoc_data.topics``, the text behind ``help("if")``;
Python Software Foundation licence). Written by the Python documentation
authors, not by this project. A paragraph is kept when it has at least
``min_words`` words, ends with a full stop, is not indented (code, grammar) or a
version note ("Added/Changed in version ..."), and at least 93% of its characters
are letters or spaces. The set depends on the Python version (it is read at run
time, not bundled); ``topic`` is the reference section each paragraph comes from.
"""

_NOTE = re.compile(r"^(Added|Changed|Deprecated|Removed) in version")


def load_reference_prose(*, min_words: int = 25) -> Bunch:
    """Load prose paragraphs of the Python Language Reference (offline, in the stdlib).

    Parameters
    ----------
    min_words : int, default=25
        Shortest paragraph kept, in whitespace-separated words.

    Returns
    -------
    sklearn.utils.Bunch
        ``texts`` (list of str, whitespace normalised, in section order),
        ``topic`` (list of str, the section of each), ``DESCR``.

    Examples
    --------
    >>> prose = load_reference_prose()
    >>> len(prose.texts) > 200, min(len(t.split()) for t in prose.texts) >= 25
    (True, True)
    """
    try:
        from pydoc_data.topics import topics
    except ImportError as exc:  # some distributions split pydoc_data off
        raise ImportError(
            "load_reference_prose needs the standard library's pydoc_data package, which "
            "this Python installation lacks (some Linux distributions ship it separately, "
            "e.g. in python3-doc); install it or pass your own texts."
        ) from exc
    texts, topic = [], []
    for key in sorted(topics):
        for block in re.split(r"\n\s*\n", topics[key]):
            if not block.strip() or block.startswith((" ", "\t")):
                continue
            text = " ".join(block.split())
            if len(text.split()) < min_words or not text.endswith(".") or _NOTE.match(text):
                continue
            if sum(c.isalpha() or c.isspace() for c in text) < 0.93 * len(text):
                continue
            texts.append(text)
            topic.append(key)
    return Bunch(texts=texts, topic=topic, DESCR=_DESCR)

"""Warnings attributed to the user's own line, not to our or scikit-learn's internals."""

from __future__ import annotations

import os
import sys
import warnings

import sklearn

__all__ = ["warn_user"]

_INTERNAL = tuple(
    os.path.dirname(os.path.abspath(m.__file__)) + os.sep
    for m in (sys.modules[__name__.split(".")[0]], sklearn)
)


def warn_user(message: str, category: type[Warning] = UserWarning) -> None:
    """``warnings.warn`` with the stack level of the first caller outside this package
    and scikit-learn (whose ``set_output`` wrapper sits between a user and ``transform``)."""
    frame, level = sys._getframe(1), 2
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(_INTERNAL):
        frame, level = frame.f_back, level + 1
    warnings.warn(message, category, stacklevel=level)

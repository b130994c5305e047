"""Warnings attributed to the user's own line, not to our or scikit-learn's internals."""

from __future__ import annotations

import os
import sys
import warnings

import joblib
import sklearn

__all__ = ["warn_user"]

_INTERNAL = tuple(
    os.path.dirname(os.path.abspath(m.__file__)) + os.sep
    for m in (sys.modules[__name__.split(".")[0]], sklearn, joblib)
)


#: model_selection's entry points run each fit under ``warnings.catch_warnings``, which
#: clears Python's once-per-line registry: (id of the search's outermost frame, user file,
#: line, message) of the warnings already shown during a search
_SHOWN_IN_SEARCH: dict[tuple, None] = {}
_SEARCH = os.path.join(os.path.dirname(os.path.abspath(sklearn.__file__)), "model_selection")


def _first_action(message: str, category: type[Warning]) -> str:
    """The action of the first filter matching ``message`` and ``category`` (module and
    line aside), as ``warnings`` would apply it; "default" if none does."""
    for action, msg, cat, _module, _lineno in warnings.filters:
        if issubclass(category, cat) and (msg is None or msg.match(message)):
            return action
    return "default"


def warn_user(message: str, category: type[Warning] = UserWarning) -> None:
    """``warnings.warn`` with the stack level of the first caller outside this package,
    scikit-learn and joblib (``set_output`` wrappers, ``GridSearchCV``'s fits, which run
    through joblib even with ``n_jobs=None``).

    Inside a search or cross-validation, a message is shown once per search and user
    line, as Python's default filter would without the search's own ``catch_warnings``
    around each fit; under an "always" or "error" filter every call warns.
    """
    frame, level = sys._getframe(1), 2
    entry = None
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(_INTERNAL):
        if os.path.abspath(frame.f_code.co_filename).startswith(_SEARCH):
            entry = frame  # the outermost model_selection frame: the search itself
        frame, level = frame.f_back, level + 1
    if entry is not None and frame is not None:
        if _first_action(message, category) not in ("always", "error"):
            key = (id(entry), frame.f_code.co_filename, frame.f_lineno, message)
            if key in _SHOWN_IN_SEARCH:
                return
            if len(_SHOWN_IN_SEARCH) > 1000:
                _SHOWN_IN_SEARCH.clear()
            _SHOWN_IN_SEARCH[key] = None
    warnings.warn(message, category, stacklevel=level)

"""The ``msma`` command line (``msma extract``, ``msma run``)."""

from ._main import main

__all__ = ["main"]

"""Hugging Face's own progress bars, on only when asked."""

from __future__ import annotations

import contextlib

__all__ = ["hf_progress_bars"]


@contextlib.contextmanager
def hf_progress_bars(verbose):
    """transformers' and huggingface_hub's progress bars on only when ``verbose``."""
    from huggingface_hub.utils import (
        are_progress_bars_disabled,
        disable_progress_bars,
        enable_progress_bars,
    )
    from transformers.utils import logging as hf_logging

    if verbose:
        yield
        return
    was_on = hf_logging.is_progress_bar_enabled()
    hub_was_off = are_progress_bars_disabled()
    hf_logging.disable_progress_bar()
    disable_progress_bars()
    try:
        yield
    finally:
        if was_on:
            hf_logging.enable_progress_bar()
        if not hub_was_off:
            enable_progress_bars()

"""The one way msma_sklearn attaches hooks to a torch model."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator

from torch import nn

__all__ = ["attached_hooks"]

_KINDS = ("forward_pre", "forward")


@contextlib.contextmanager
def attached_hooks(
    hooks: Iterable[tuple[nn.Module, str, Callable]],
) -> Iterator[None]:
    """Attach hooks for the duration of a ``with`` block, then always remove them.

    Parameters
    ----------
    hooks : iterable of (module, kind, fn)
        ``kind`` is ``"forward_pre"`` (``fn(module, args, kwargs)``, may return
        ``(args, kwargs)`` to replace them) or ``"forward"``
        (``fn(module, args, kwargs, output)``, may return a new output). Both
        are registered with ``with_kwargs=True``.

    Notes
    -----
    Every handle is removed in ``finally``: no hook outlives the block, even
    when the forward pass raises (as early stopping does on purpose) or a
    later registration fails.

    Examples
    --------
    >>> import torch
    >>> layer = torch.nn.Linear(2, 2)
    >>> seen = []
    >>> with attached_hooks([(layer, "forward", lambda m, a, k, out: seen.append(out.shape))]):
    ...     _ = layer(torch.zeros(1, 2))
    >>> seen, len(layer._forward_hooks)
    ([torch.Size([1, 2])], 0)
    """
    handles = []
    try:
        for module, kind, fn in hooks:
            if kind == "forward_pre":
                handles.append(module.register_forward_pre_hook(fn, with_kwargs=True))
            elif kind == "forward":
                handles.append(module.register_forward_hook(fn, with_kwargs=True))
            else:
                raise ValueError(f"hook kind must be one of {_KINDS}, got {kind!r}.")
        yield
    finally:
        for handle in handles:
            handle.remove()

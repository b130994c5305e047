"""Simulated layer stacks with known structure: smooth drift without blocks, and
planted blocks. The oracles of the number-of-scales null (``scale_count_curve``)."""

from __future__ import annotations

import numpy as np

__all__ = ["DRIFT_KINDS", "make_layer_blocks", "make_layer_drift"]

#: step profiles over depth x in [0, 1]: equal, slowing (10x), quickening (10x),
#: fastest at both ends (10x the middle)
DRIFT_KINDS = {
    "equal": lambda x: np.ones_like(x),
    "decelerating": lambda x: 10.0 ** (-x),
    "accelerating": lambda x: 10.0**x,
    "u-shaped": lambda x: 1.0 + 9.0 * (2.0 * x - 1.0) ** 2,
}


def make_layer_drift(
    kind: str = "equal",
    n_layers: int = 19,
    *,
    n_samples: int = 256,
    n_features: int = 64,
    total: float = 3.0,
    accumulate: bool = False,
    random_state=None,
) -> list[np.ndarray]:
    """A stack of layers that drifts smoothly with depth and has no blocks.

    Layer 0 is Gaussian; each next layer adds a fresh Gaussian step,
    ``X_{i+1} = X_i + s_i E_i``, with the steps' sizes ``s_i`` following
    ``kind`` (scaled so that ``sqrt(sum s_i²) = total``). By default the
    variance is renormalised after each step (``X_{i+1} /= sqrt(1 + s_i²)``:
    the old component is replaced); ``accumulate=True`` lets it grow (the old
    component stays, as in a residual stream).

    Parameters
    ----------
    kind : {"equal", "decelerating", "accelerating", "u-shaped"}, default="equal"
        The step profile (:data:`DRIFT_KINDS`).
    n_layers : int, default=19
        Layers in the stack (at least 2).
    n_samples, n_features : int, default=256, 64
        Rows (texts) and units per layer.
    total : float, default=3.0
        Root sum of squared steps.
    accumulate : bool, default=False
        Keep the variance growing instead of renormalising.
    random_state : int, Generator or None
        Seeds the draw.

    Returns
    -------
    list of ndarray of shape (n_samples, n_features)
        One array per layer, in depth order.

    Examples
    --------
    >>> layers = make_layer_drift("decelerating", 5, random_state=0)
    >>> len(layers), layers[0].shape
    (5, (256, 64))
    """
    if kind not in DRIFT_KINDS:
        raise ValueError(f"kind must be one of {sorted(DRIFT_KINDS)}, got {kind!r}.")
    if n_layers < 2:
        raise ValueError(f"n_layers must be at least 2, got {n_layers}.")
    rng = np.random.default_rng(random_state)
    steps = DRIFT_KINDS[kind](np.linspace(0.0, 1.0, n_layers - 1))
    steps = steps / np.sqrt((steps**2).sum()) * total
    X = rng.standard_normal((n_samples, n_features))
    layers = [X]
    for s in steps:
        X = X + s * rng.standard_normal((n_samples, n_features))
        if not accumulate:
            X = X / np.sqrt(1.0 + s**2)
        layers.append(X)
    return layers


def make_layer_blocks(
    n_blocks: int = 3,
    n_layers: int = 19,
    *,
    n_samples: int = 256,
    n_features: int = 64,
    noise: float = 0.5,
    drift: float = 0.0,
    sizes=None,
    random_state=None,
) -> list[np.ndarray]:
    """A stack of layers in contiguous blocks: each block's layers share a base.

    Layer ``i`` of block ``g`` is ``B_g + drift * W_i + noise * E_i``: its
    block's Gaussian base, a within-block drift (a random walk ``W`` over the
    block's layers, 0 by default) and fresh noise.

    Parameters
    ----------
    n_blocks : int, default=3
        Number of blocks.
    n_layers : int, default=19
        Layers in the stack.
    n_samples, n_features : int, default=256, 64
        Rows and units per layer.
    noise : float, default=0.5
        Standard deviation of each layer's own noise.
    drift : float, default=0.0
        Standard deviation of each within-block step.
    sizes : sequence of int, default=None
        Layers per block (summing to ``n_layers``); None: as equal as possible.
    random_state : int, Generator or None
        Seeds the draw.

    Returns
    -------
    list of ndarray of shape (n_samples, n_features)

    Examples
    --------
    >>> len(make_layer_blocks(2, 6, random_state=0))
    6
    """
    if sizes is None:
        sizes = np.full(n_blocks, n_layers // n_blocks)
        sizes[: n_layers % n_blocks] += 1
    sizes = [int(s) for s in sizes]
    if len(sizes) != n_blocks or sum(sizes) != n_layers or min(sizes) < 1:
        raise ValueError(
            f"sizes must be {n_blocks} positive counts summing to {n_layers}, got {sizes}."
        )
    rng = np.random.default_rng(random_state)
    layers = []
    for size in sizes:
        base = rng.standard_normal((n_samples, n_features))
        walk = np.zeros_like(base)
        for _ in range(size):
            layers.append(base + walk + noise * rng.standard_normal(base.shape))
            walk = walk + drift * rng.standard_normal(base.shape)
    return layers

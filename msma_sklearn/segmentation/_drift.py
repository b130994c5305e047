"""The block-free null of the number of scales: smooth drift, fitted to each matrix.

A boundary between scales is where the representation changes fast between layers
that otherwise change slowly: an interior maximum of the *speed* at which the layers
move. Smooth drift has none, whatever its pace: equal steps, steps that shrink or grow
with depth, or steps fastest at both ends. So the null fitted here is every drift whose
speed profile is convex over depth (no interior maximum), with similarity any
decreasing function of the distance travelled:

    u_i = sum_{m < i} v(x_m),   S_ij ≈ a_i a_j f(|u_i - u_j|),

``v`` a non-negative combination of convex shapes over the normalised depth ``x``
(a constant, rising and falling ramps, quadratic and quartic bowls, exponential rises
at either end with free rates), ``f`` non-increasing (isotonic regression, so no shape
of decay is assumed) and ``a`` one factor per layer (a layer that carries a component
of its own is less similar to every other; a drift that adds variance as it goes,
rather than replacing it, is not exactly a function of the distance without them; a
rank-one factor cannot make a block). The fit minimises the squared error over the
matrix's off-diagonal entries (Powell from a few starts, alternating with the
factors). The Toeplitz null (``S`` averaged along its diagonals) is the special case
of equal steps, and it is not enough: a drift that slows with depth makes its late
layers look like a block.

``scale_count_curve`` scores boundaries on the fitted drift exactly as on the data;
the gap between the two is the evidence for scales beyond drift.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import isotonic_regression, minimize

__all__ = ["SmoothDrift", "fit_smooth_drift"]

_OFF = -8.0  # log-weight of a shape that is switched off
#: starts of the fit: equal steps, then each shape dominant
_STARTS = (
    (_OFF,) * 6 + (1.6, 1.6),
    (2.0, _OFF, _OFF, _OFF, _OFF, _OFF, 1.6, 1.6),
    (_OFF, 2.0, _OFF, _OFF, _OFF, _OFF, 1.6, 1.6),
    (_OFF, _OFF, 2.0, _OFF, _OFF, _OFF, 1.6, 1.6),
    (_OFF, _OFF, _OFF, 3.0, _OFF, _OFF, 1.6, 1.6),
    (_OFF, _OFF, _OFF, _OFF, 4.0, _OFF, 2.5, 2.5),
    (_OFF, _OFF, _OFF, _OFF, _OFF, 4.0, 2.5, 2.5),
    (_OFF, _OFF, _OFF, _OFF, 4.0, 4.0, 2.5, 2.5),
)
_BOUNDS = [(-12.0, 12.0)] * 6 + [(-1.0, 4.5)] * 2
#: alternations of the layer factors with the speeds, and factor updates per round
_ROUNDS, _FACTOR_STEPS = 2, 5


@dataclass(frozen=True)
class SmoothDrift:
    """A similarity matrix's best block-free drift.

    Parameters
    ----------
    matrix : ndarray of shape (n, n)
        The drift's similarity matrix (the data's diagonal kept).
    speed : ndarray of shape (n - 1,)
        The speed profile between adjacent layers (convex over depth), scaled
        so that the whole stack is travelled in 1.
    position : ndarray of shape (n,)
        Distance travelled up to each layer (0 to 1).
    factors : ndarray of shape (n,)
        Each layer's factor on its similarities (geometric mean 1).
    sse : float
        Squared error of the fit over the off-diagonal entries (each pair once).
    """

    matrix: np.ndarray
    speed: np.ndarray
    position: np.ndarray
    factors: np.ndarray
    sse: float


def _speed(params, x: np.ndarray) -> np.ndarray:
    ramp_up, ramp_down, bowl, quartic, rise_end, rise_start, rate_end, rate_start = params
    t = 2.0 * x - 1.0
    return (
        1.0
        + np.exp(ramp_up) * x
        + np.exp(ramp_down) * (1.0 - x)
        + np.exp(bowl) * t**2
        + np.exp(quartic) * t**4
        + np.exp(rise_end + np.exp(rate_end) * (x - 1.0))
        + np.exp(rise_start - np.exp(rate_start) * x)
    )


def fit_smooth_drift(S) -> SmoothDrift:
    """The block-free drift closest to a layer-similarity matrix.

    Parameters
    ----------
    S : array-like of shape (n, n)
        A symmetric layer-similarity matrix (e.g. CKA), layers in depth order.

    Returns
    -------
    SmoothDrift

    Examples
    --------
    >>> i = np.arange(8)
    >>> S = np.exp(-np.abs(i[:, None] - i[None, :]) / 3)  # equal steps
    >>> drift = fit_smooth_drift(S)
    >>> bool(np.abs(drift.matrix - S).max() < 0.01)
    True
    """
    S = np.asarray(S, dtype=np.float64)
    if S.ndim != 2 or S.shape[0] != S.shape[1] or S.shape[0] < 2:
        raise ValueError(f"S must be a square matrix of at least 2 layers, got shape {S.shape}.")
    n = S.shape[0]
    iu = np.triu_indices(n, 1)
    y = S[iu]
    x = (np.arange(n - 1) + 0.5) / max(n - 1, 1)
    off_diagonal = S.copy()
    np.fill_diagonal(off_diagonal, 0.0)

    def positions(params):
        v = _speed(params, x)
        u = np.concatenate([[0.0], np.cumsum(v)])
        return v / u[-1], u / u[-1]

    def fit(params, a):
        """Squared error and the decay at each pair, for speeds ``params`` and
        layer factors ``a`` (the decay is isotonic in the distance travelled)."""
        _, u = positions(params)
        d = u[iu[1]] - u[iu[0]]
        w = a[iu[0]] * a[iu[1]]
        order = np.argsort(d, kind="stable")
        decay = isotonic_regression((y / w)[order], weights=(w**2)[order], increasing=False).x
        values = np.empty_like(decay)
        values[order] = decay
        return float(((w * values - y) ** 2).sum()), values

    def refit(params, a):
        result = minimize(
            lambda q: fit(q, a)[0],
            np.asarray(params, dtype=np.float64),
            method="Powell",
            bounds=_BOUNDS,
            options={"xtol": 1e-2, "ftol": 1e-6},
        )
        return result.x if result.fun <= fit(params, a)[0] else np.asarray(params)

    a = np.ones(n)
    params = refit(min(_STARTS, key=lambda p: fit(p, a)[0]), a)
    for _ in range(_ROUNDS):
        for _ in range(_FACTOR_STEPS):  # each layer's factor by least squares, others fixed
            F = np.zeros((n, n))
            F[iu] = fit(params, a)[1]
            F = F + F.T
            a = (off_diagonal * F) @ a / np.maximum((F**2) @ a**2, 1e-12)
            a = np.clip(a, 1e-3, None)
            a = a / np.exp(np.log(a).mean())
        params = refit(params, a)
    err, decay = fit(params, a)
    values = a[iu[0]] * a[iu[1]] * decay
    M = np.diag(np.diag(S)).astype(np.float64)
    M[iu] = values
    M[iu[1], iu[0]] = values
    speed, position = positions(params)
    return SmoothDrift(M, speed, position, a, err)

"""A temperature control at matched disruption: the sampling temperature at which the
unmodified model's next-token entropy equals an intervened model's.

An operator that sharpens or flattens the next-token distribution changes generated
text the way a sampling temperature does, whatever scale it acts on (global amplify at
alpha 1.22 lowered the entropy from 2.67 to 2.03 nats, and a temperature of 0.864 with
no intervention reproduced most of its effect on lexical diversity). A claim is
scale-specific only where the intervened text differs from the unmodified model's at
the temperature that matches its entropy.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.optimize import brentq

__all__ = ["next_token_entropy", "temperature_for_entropy"]


def next_token_entropy(logprobs, temperature: float = 1.0) -> np.ndarray:
    """Entropy (nats) of each row's next-token distribution at ``temperature``.

    Parameters
    ----------
    logprobs : array-like of shape (n_rows, vocab)
        Log-probabilities (or logits: rows are renormalised).
    temperature : float, default=1.0
        Softmax temperature applied to the rows.

    Returns
    -------
    ndarray of shape (n_rows,)

    Examples
    --------
    >>> float(next_token_entropy(np.zeros((1, 4)))[0]) == float(np.log(4))
    True
    """
    if not temperature > 0:
        raise ValueError(f"temperature must be positive, got {temperature}.")
    return _entropies(_as_rows(logprobs), temperature).numpy()


def _as_rows(logprobs) -> torch.Tensor:
    rows = logprobs if isinstance(logprobs, torch.Tensor) else torch.as_tensor(np.asarray(logprobs))
    if rows.ndim != 2 or rows.shape[0] == 0:
        raise ValueError(f"logprobs must be (n_rows, vocab), got shape {tuple(rows.shape)}.")
    return rows


def _entropies(rows: torch.Tensor, temperature: float, chunk: int = 4) -> torch.Tensor:
    """Row entropies, a few rows at a time in the rows' own precision (float32 rows in
    float32: 2e-8 relative here, 5x faster than float64), returned as float64: a
    (1,000 x 262,144) float64 copy and its temporaries (Gemma 3's vocabulary) would be
    gigabytes each, and small chunks stay in cache."""
    out = torch.empty(rows.shape[0], dtype=torch.float64)
    dtype = torch.float64 if rows.dtype == torch.float64 else torch.float32
    for start in range(0, rows.shape[0], chunk):
        z = rows[start : start + chunk].to(dtype) / temperature
        logp = z - torch.logsumexp(z, dim=1, keepdim=True)
        p = logp.exp()
        out[start : start + chunk] = -torch.where(p > 0, p * logp, 0.0).sum(dim=1).double()
    return out


def temperature_for_entropy(
    logprobs, target: float, *, low: float = 0.05, high: float = 20.0, tol: float = 1e-4
) -> float:
    """The temperature at which the rows' mean next-token entropy equals ``target``.

    The mean entropy rises monotonically with the temperature (from the
    entropy of the argmax to log of the support), so a root search in log
    temperature (Brent's method) finds it; a target outside what ``[low, high]`` reaches
    returns the nearer end.

    Parameters
    ----------
    logprobs : array-like of shape (n_rows, vocab)
        The unmodified model's next-token log-probabilities.
    target : float
        Mean entropy to match, in nats (e.g. the intervened model's).
    low, high : float, default=0.05, 20.0
        The temperatures searched.
    tol : float, default=1e-4
        Tolerance on the log temperature (about the relative error of the result).

    Returns
    -------
    float

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> logits = rng.normal(size=(8, 50)) * 3
    >>> h = next_token_entropy(logits, 0.8).mean()
    >>> round(temperature_for_entropy(logits, h), 3)
    0.8
    """
    rows = _as_rows(logprobs)
    if not np.isfinite(target) or target < 0:
        raise ValueError(f"target must be a finite entropy >= 0, got {target}.")

    def excess(log_t):
        return float(_entropies(rows, float(np.exp(log_t))).mean()) - target

    lo, hi = np.log(low), np.log(high)
    if excess(lo) >= 0:
        return float(low)
    if excess(hi) <= 0:
        return float(high)
    # Brent's method on the monotone excess: ~8 evaluations where bisection took 18
    return float(np.exp(brentq(excess, lo, hi, xtol=tol / 2)))

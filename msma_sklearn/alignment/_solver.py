"""The MSMA map solver as plain functions: a start, a critic warm-up, Adam on the weighted
objective until it converges on the training rows (with validation rows, they choose the
checkpoint).

:func:`fit_map` takes two standardised arrays; :func:`fit_map_batches` takes minibatch
generators (``ManifoldAligner.fit`` and ``fit_store`` both end there). Both return a
:class:`MapFit`: the map, the objective's trajectory on training and validation rows,
the steps taken and how far the predictions travelled from the start.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, fields

import numpy as np
import torch
from torch import nn

from ._objective import (
    BilinearCritic,
    geometry_loss,
    information_loss,
    knn_graph,
    least_squares_from_stats,
    make_map,
    mean_curvature_loss,
    ot_loss,
    rotation_from_cross,
    scaled_param_groups,
)
from ._rows import as_tensor, epoch_batches, fixed_chunks

__all__ = [
    "INITS",
    "TERMS",
    "MapFit",
    "SolverSettings",
    "fit_map",
    "fit_map_batches",
    "start_matrix",
    "trains",
]

#: the objective's terms, in the order of their lambdas
TERMS = ("geo", "info", "curv", "ot")
#: where a map starts
INITS = ("least_squares", "identity", "random")


@dataclass(frozen=True)
class SolverSettings:
    """Everything :func:`fit_map_batches` needs besides the data and the start.

    ``weights`` maps each term of :data:`TERMS` to its lambda. ``critic_warmup``:
    optimiser steps of the InfoNCE critic alone, on the start map's outputs, before
    the map moves (0: none). Training stops when the training objective (mean over the
    steps between two checks) has not dropped by more than ``tol`` (relative) for
    ``n_iter_no_change`` checks, or after ``max_iter`` epochs.

    Parameters
    ----------
    weights : dict
        Term (``"geo"``, ``"info"``, ``"curv"``, ``"ot"``) -> lambda.
    family : {"orthogonal", "linear", "mlp"}, default="orthogonal"
        The map family.
    hidden_size : int, default=64
        Width of the MLP's residual.
    learning_rate : float, default=0.05
        About how far each tensor moves per Adam step (Frobenius norm).
    max_iter : int, default=300
        Epoch budget.
    tol : float, default=1e-3
        Relative gain of the training objective that counts as progress.
    n_iter_no_change : int, default=6
        Checks in a row without progress that end training.
    check_interval : int, default=5
        Optimiser steps between two checks of the training objective.
    critic_warmup : int, default=50
        Steps of the InfoNCE critic alone on the start's outputs.
    normalize_terms : bool, default=True
        Scale-free terms (see :mod:`msma_sklearn.alignment`).
    device : str, default="cpu"
        Torch device.
    """

    weights: dict
    family: str = "orthogonal"
    hidden_size: int = 64
    learning_rate: float = 0.05
    max_iter: int = 300
    tol: float = 1e-3
    n_iter_no_change: int = 6
    check_interval: int = 5
    critic_warmup: int = 50
    normalize_terms: bool = True
    device: str = "cpu"

    @classmethod
    def from_params(cls, params: dict) -> SolverSettings:
        """From an aligner's ``get_params()``: ``lambda_<term>`` weights, ``map`` as the
        family, every other field by its own name."""
        names = {f.name for f in fields(cls)} - {"weights", "family"}
        return cls(
            weights={t: float(params.get(f"lambda_{t}", 0.0)) for t in TERMS},
            family=params["map"],
            **{k: v for k, v in params.items() if k in names},
        )

    def options(self) -> dict:
        """Every field but the weights and the family (:func:`fit_map`'s ``**settings``).

        Returns
        -------
        dict
        """
        out = dict(vars(self))
        del out["weights"], out["family"]
        return out


@dataclass
class MapFit:
    """One fitted map and how it got there.

    Parameters
    ----------
    map, critic : torch.nn.Module
        On the CPU, in eval mode.
    start : ndarray of shape (d_in, d_out)
        The start's linear part (the MLP's residual starts at zero).
    curve : list of dict
        One per check: ``step``, ``epoch``, each term's and the ``total`` minibatch
        mean since the last check, ``train`` (the weighted objective on all training
        rows, which decides convergence) and ``validation`` (on the validation rows,
        which chooses the checkpoint) when there are any.
    shares : dict
        Term -> mean share of the gradient norm on the mapped points (its pull).
    n_iter, n_steps : int
        Epochs and optimiser steps (0 for a closed form).
    start_objective, end_objective : float
        The weighted objective on the training rows at the start (after the critic
        warm-up) and for the returned map.
    prediction_change : float
        ``||f(S) - f_0(S)|| / ||f_0(S)||`` over the training rows: how far the
        returned map's predictions are from the start's (0: the start returned).
    returned_start : bool
        The start was returned: no step size tried lowered the training objective
        (the start is an optimum to the solver's resolution), or training ended
        worse than it began.
    best_check : int or None
        Index in ``curve`` of the checkpoint validation chose (None: the last).
    converged : bool
        Training stopped on convergence rather than at ``max_iter`` (True for a
        closed form).
    """

    map: nn.Module
    critic: nn.Module
    start: np.ndarray
    curve: list = field(default_factory=list)
    shares: dict = field(default_factory=dict)
    n_iter: int = 0
    n_steps: int = 0
    start_objective: float = float("nan")
    end_objective: float = float("nan")
    prediction_change: float = 0.0
    returned_start: bool = False
    best_check: int | None = None
    converged: bool = True


def trains(weights: dict, family: str, init: str) -> bool:
    """False where the start is the answer: an orthogonal or linear map under the
    geometry term alone, started at that term's closed-form minimiser."""
    only_geo = not any(weights.get(t, 0.0) for t in TERMS if t != "geo")
    return not (family in ("orthogonal", "linear") and only_geo and init == "least_squares")


def start_matrix(
    family: str, init: str, gram: np.ndarray, cross: np.ndarray, *, seed: int = 0
) -> np.ndarray:
    """The ``(d_in, d_out)`` start of a map from ``S^T S`` and ``S^T T``.

    ``"least_squares"``: the geometry term's minimiser in the family (orthogonal
    Procrustes for orthogonal maps, least squares for linear maps and the MLP's
    linear part). ``"identity"``: the identity (padded or cut when the widths
    differ). ``"random"``: a Haar-random orthogonal matrix drawn from ``seed``
    (unit-RMS outputs for unit-RMS inputs, like the other starts).

    Parameters
    ----------
    family : {"orthogonal", "linear", "mlp"}
        The map family.
    init : {"least_squares", "identity", "random"}
        The start.
    gram, cross : ndarray of shape (d_in, d_in) and (d_in, d_out)
        ``S^T S`` and ``S^T T`` of the training rows.
    seed : int, default=0
        Seeds the random start.

    Returns
    -------
    ndarray of shape (d_in, d_out)

    Examples
    --------
    >>> import numpy as np
    >>> start_matrix("linear", "identity", np.eye(2), np.eye(2))
    array([[1., 0.],
           [0., 1.]])
    """
    d_in, d_out = np.shape(cross)
    if init == "least_squares":
        if family == "orthogonal":
            return rotation_from_cross(cross)
        return least_squares_from_stats(gram, cross)
    if init == "identity":
        return np.eye(d_in, d_out)
    if init == "random":
        rng = np.random.default_rng(seed)
        width = max(d_in, d_out)
        q, r = np.linalg.qr(rng.normal(size=(width, width)))
        q = q * np.sign(np.diagonal(r))  # Haar measure (Mezzadri 2007)
        return q[:d_in, :d_out]
    raise ValueError(f"init must be one of {list(INITS)}, got {init!r}.")


# ------------------------------------------------------------------ objective
def objective_terms(mapped, critic, s, t, settings: SolverSettings) -> dict:
    """Each term with a non-zero lambda (geometry always) for mapped sources ``f(s)``."""
    w = settings.weights
    terms = {"geo": geometry_loss(mapped, t)}
    if w.get("info"):
        terms["info"] = information_loss(critic, mapped, t, normalize=settings.normalize_terms)
    if w.get("curv") and len(s) > 2:
        terms["curv"] = mean_curvature_loss(
            mapped, t, knn_graph(s), normalize=settings.normalize_terms
        )
    if w.get("ot"):
        terms["ot"] = ot_loss(mapped, t)
    return terms


def weighted_objective(fmap, critic, chunks: Callable[[], Iterable], settings) -> float:
    """The weighted objective over fixed chunks (mean over rows); no gradient."""
    w = settings.weights
    total, rows = 0.0, 0
    with torch.no_grad():
        for s, t in chunks():
            terms = objective_terms(fmap(s), critic, s, t, settings)
            total += float(sum(w.get(k, 0.0) * v for k, v in terms.items())) * len(s)
            rows += len(s)
    return total / max(rows, 1)


def _prediction_change(fmap, start_map, chunks) -> float:
    num = den = 0.0
    with torch.no_grad():
        for s, _ in chunks():
            f0 = start_map(s)
            num += float(((fmap(s) - f0) ** 2).sum())
            den += float((f0**2).sum())
    return math.sqrt(num / den) if den > 0 else 0.0


# ------------------------------------------------------------------ solvers
def fit_map(
    source,
    target,
    *,
    weights: dict,
    family: str = "orthogonal",
    init: str = "least_squares",
    validation_rows=None,
    batch_size: int = 1024,
    random_state: int = 0,
    **settings,
) -> MapFit:
    """Fit one map ``f: source -> target`` under the weighted MSMA objective.

    Parameters
    ----------
    source, target : array-like of shape (n_samples, d_in) and (n_samples, d_out)
        Paired rows, each scale centred and scaled to unit RMS (the aligner's
        standardisation).
    weights : dict
        Lambda of each term: ``{"geo", "info", "curv", "ot"}`` (missing = 0).
    family : {"orthogonal", "linear", "mlp"}, default="orthogonal"
    init : {"least_squares", "identity", "random"}, default="least_squares"
        See :func:`start_matrix`. The start is computed from the training rows.
    validation_rows : array-like of int, default=None
        Rows held out from training; the objective on them chooses among the
        accepted checkpoints (never the untrained start). None: the last
        accepted state.
    batch_size : int, default=1024
        Rows per minibatch (and per chunk when the objective is evaluated).
    random_state : int, default=0
        Seeds the random start, the MLP's hidden layer and the minibatch order.
    **settings
        Fields of :class:`SolverSettings` (``learning_rate``, ``max_iter``, ...).

    Returns
    -------
    MapFit

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> S = rng.normal(size=(200, 3))
    >>> fit = fit_map(S, S[:, ::-1], weights={"geo": 1.0}, family="orthogonal")
    >>> fit.n_steps, round(float(fit.end_objective), 6)
    (0, 0.0)
    """
    S = np.asarray(source, dtype=np.float64)
    T = np.asarray(target, dtype=np.float64)
    if S.ndim != 2 or T.ndim != 2 or len(S) != len(T):
        raise ValueError(
            f"source and target must be 2-D with the same rows, got {S.shape} and {T.shape}."
        )
    conf = SolverSettings(weights=dict(weights), family=family, **settings)
    val = np.zeros(0, dtype=np.int64) if validation_rows is None else np.asarray(validation_rows)
    train = np.setdiff1d(np.arange(len(S)), val)
    S_tr, T_tr = S[train], T[train]
    device = torch.device(conf.device)
    W0 = start_matrix(family, init, S_tr.T @ S_tr, S_tr.T @ T_tr, seed=random_state)
    if not trains(conf.weights, family, init):
        return fit_map_batches(W0, None, fixed_chunks(S_tr, T_tr, batch_size, device), None, conf)
    s_all, t_all = as_tensor(S_tr, device), as_tensor(T_tr, device)

    def train_batches(gen):
        for _, idx in epoch_batches([len(train)], batch_size, gen):
            idx = idx.to(device)
            yield s_all[idx], t_all[idx]

    val_chunks = fixed_chunks(S[val], T[val], batch_size, device) if len(val) else None
    return fit_map_batches(
        W0,
        train_batches,
        fixed_chunks(S_tr, T_tr, batch_size, device),
        val_chunks,
        conf,
        seed=random_state,
    )


def fit_map_batches(
    start: np.ndarray,
    train_batches,
    train_chunks,
    val_chunks,
    settings: SolverSettings,
    *,
    seed: int = 0,
) -> MapFit:
    """The solver's core, on minibatch generators (in memory or streamed from a store).

    ``train_batches(generator)`` yields one epoch of shuffled ``(s, t)`` tensors;
    ``train_chunks()`` and ``val_chunks()`` yield fixed chunks for evaluating the
    objective (``val_chunks`` None: no validation). ``train_batches`` None: the
    start is returned as it is (a closed form).

    1. The map starts at ``start``; with an information term, the critic alone is
       trained for ``critic_warmup`` steps on the start's outputs, so the term is
       measured with a fitted critic before the map moves.
    2. Adam (steps scaled per tensor) on the weighted objective; every
       ``check_interval`` steps the objective on all training rows is computed. A
       check below the best so far is accepted; one that is not is rejected: the map
       and critic go back to the last accepted state and the step is halved (Adam
       moves each tensor by about its step whatever the gradient, so from a start
       near the optimum a fixed step only jitters around it). The training
       objective therefore never rises across checks. Training has converged after
       ``n_iter_no_change`` checks in a row that were rejected or gained less than
       ``tol`` (relative); it stops at ``max_iter`` epochs otherwise.
    3. Validation (when given) chooses the accepted checkpoint with the lowest
       validation objective, never the untrained start; without validation rows the
       last accepted state is kept.
    4. A returned map whose training objective is worse than the start's is
       replaced by the start (``returned_start``).

    Parameters
    ----------
    start : ndarray of shape (d_in, d_out)
        The start (:func:`start_matrix`).
    train_batches : callable or None
        ``train_batches(generator)`` yields one epoch of ``(s, t)`` tensors.
    train_chunks : callable
        ``train_chunks()`` yields fixed chunks of the training rows.
    val_chunks : callable or None
        The same for the validation rows (None: no validation).
    settings : SolverSettings
        The weights, the family and the optimiser's settings.
    seed : int, default=0
        Seeds the map's hidden layer and the minibatch order.

    Returns
    -------
    MapFit
    """
    conf = settings
    w = conf.weights
    gen = torch.Generator().manual_seed(int(seed))
    d_in, d_out = np.shape(start)
    fmap = make_map(conf.family, d_in, d_out, start, conf.hidden_size, generator=gen)
    critic = BilinearCritic(d_out, d_out)
    if train_batches is None:
        fit = MapFit(map=fmap.eval(), critic=critic.eval(), start=np.asarray(start))
        fit.shares = {"geo": 1.0}
        fit.start_objective = fit.end_objective = weighted_objective(
            fmap, critic, train_chunks, conf
        )
        return fit
    device = torch.device(conf.device)
    fmap, critic = fmap.to(device), critic.to(device)
    start_map = copy.deepcopy(fmap).eval()
    if w.get("info") and conf.critic_warmup:
        _warm_up_critic(critic, start_map, train_batches, gen, conf)
    modules = [fmap] + ([critic] if w.get("info") else [])
    opt = torch.optim.Adam(scaled_param_groups(modules, conf.learning_rate))
    critic_params = list(critic.parameters()) if w.get("info") else []

    def snapshot():
        return [{k: v.detach().clone() for k, v in m.state_dict().items()} for m in modules]

    def restore(state):
        for m, s in zip(modules, state, strict=True):
            m.load_state_dict(s)

    start_state = snapshot()
    start_train = weighted_objective(fmap, critic, train_chunks, conf)
    curve, share_sum, n_share = [], dict.fromkeys(TERMS, 0.0), 0
    window = dict.fromkeys(("total", *TERMS), 0.0)
    window_batches, step, epoch, no_change, converged = 0, 0, 0, 0, False
    best_train, best_val, best_state, best_check = start_train, math.inf, None, None
    accepted, lr_scale = start_state, 1.0
    while epoch < conf.max_iter and not converged:
        epoch += 1
        for s, t in train_batches(gen):
            mapped = fmap(s)
            terms = objective_terms(mapped, critic, s, t, conf)
            loss = sum(w.get(k, 0.0) * v for k, v in terms.items())
            opt.zero_grad()
            # each term's gradient on the mapped points (its pull on f(S), and its share),
            # then one backward through the map with their sum
            pull, norms = torch.zeros_like(mapped), {}
            for k, v in terms.items():
                if not w.get(k):
                    continue
                inputs = [mapped] + (critic_params if k == "info" else [])
                grads = torch.autograd.grad(w[k] * v, inputs, retain_graph=True, allow_unused=True)
                if grads[0] is not None:
                    pull += grads[0]
                    norms[k] = float(grads[0].norm())
                for p, g in zip(critic_params, grads[1:], strict=False):
                    p.grad = g
            mapped.backward(pull)
            if hasattr(fmap, "project_grad"):  # orthogonal maps: Riemannian step
                fmap.project_grad()
            total_norm = sum(norms.values())
            if total_norm > 0:
                for k, v in norms.items():
                    share_sum[k] += v / total_norm
                n_share += 1
            opt.step()
            if hasattr(fmap, "retract"):
                fmap.retract()
            step += 1
            window_batches += 1
            window["total"] += loss.item()
            for k, v in terms.items():
                window[k] += v.item()
            if step % conf.check_interval:
                continue
            entry = {"step": step, "epoch": epoch}
            entry.update({k: v / window_batches for k, v in window.items()})
            # convergence is judged on the whole training objective, not on the minibatch
            # means (which differ by which batches fell in the window)
            entry["train"] = weighted_objective(fmap, critic, train_chunks, conf)
            window = dict.fromkeys(window, 0.0)
            window_batches = 0
            # a check is accepted when the training objective fell below the best so far;
            # otherwise the map goes back to the last accepted state with half the step,
            # so the objective on the training rows never rises across checks
            entry["accepted"] = entry["train"] < best_train
            if entry["accepted"]:
                progress = best_train - entry["train"] > conf.tol * abs(best_train)
                no_change = 0 if progress else no_change + 1
                best_train, accepted = entry["train"], snapshot()
                if val_chunks is not None:
                    entry["validation"] = weighted_objective(fmap, critic, val_chunks, conf)
                    if entry["validation"] < best_val:
                        best_val, best_state, best_check = entry["validation"], accepted, len(curve)
            else:
                no_change += 1
                restore(accepted)
                lr_scale *= 0.5
                opt = torch.optim.Adam(scaled_param_groups(modules, conf.learning_rate * lr_scale))
            curve.append(entry)
            if no_change >= conf.n_iter_no_change:
                converged = True
                break
    # validation's choice among the accepted checkpoints (never the start); without
    # validation rows, the last accepted state (the lowest training objective)
    restore(best_state if best_state is not None else accepted)
    end_train = weighted_objective(fmap, critic, train_chunks, conf)
    # no accepted check (no step size tried lowered the objective), or worse than the start
    returned_start = accepted is start_state or end_train > start_train
    if returned_start:
        restore(start_state)
        end_train = start_train
    shares = {k: share_sum[k] / n_share for k in TERMS if w.get(k)} if n_share else {}
    return MapFit(
        map=fmap.cpu().eval(),
        critic=critic.cpu().eval(),
        start=np.asarray(start),
        curve=curve,
        shares=shares,
        n_iter=epoch,
        n_steps=step,
        start_objective=start_train,
        end_objective=end_train,
        prediction_change=0.0
        if returned_start
        else _prediction_change(fmap.to(device), start_map, train_chunks),
        returned_start=returned_start,
        best_check=best_check,
        converged=converged,
    )


def _warm_up_critic(critic, start_map, train_batches, gen, conf: SolverSettings) -> None:
    """Train the InfoNCE critic alone on the start map's (fixed) outputs; keep the critic
    state with the lowest minibatch loss seen (a step size that diverges keeps the
    identity critic it started from)."""
    opt = torch.optim.Adam(scaled_param_groups([critic], conf.learning_rate))
    best, best_state, steps = math.inf, None, 0
    while steps < conf.critic_warmup:
        for s, t in train_batches(gen):
            with torch.no_grad():
                mapped = start_map(s)
            loss = information_loss(critic, mapped, t, normalize=conf.normalize_terms)
            if loss.item() < best:  # the state that produced this loss
                best = loss.item()
                best_state = {k: v.detach().clone() for k, v in critic.state_dict().items()}
            opt.zero_grad()
            loss.backward()
            opt.step()
            steps += 1
            if steps >= conf.critic_warmup:
                break
    if best_state is not None:
        critic.load_state_dict(best_state)

"""ManifoldAligner: learned maps between adjacent semantic scales."""

from __future__ import annotations

import logging
import math
import re
from numbers import Integral, Real

import numpy as np
import torch
from joblib import Parallel, delayed
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.decomposition import PCA
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data

from ..utils._warnings import warn_user
from ._objective import pca_dimension_scores
from ._scoring import ALIGNMENT_METRICS, alignment_score
from ._solver import (
    INITS,
    MapFit,
    SolverSettings,
    fit_map,
    trains,
    validation_order,
)
from ._streaming import fit_from_store

__all__ = ["ManifoldAligner"]

logger = logging.getLogger(__name__)

_SCALE_NAME = re.compile(r"^(.+)__(\d+)$")
_DEFAULT_SCALES = ("local", "intermediate", "global")
_TERMS = ("geo", "info", "curv", "ot")
#: fewer rows than this many times the width counts as "few samples" (n < 5 d)
_ROWS_PER_DIM = 5
#: "auto" PCA candidates, as fractions of the number of rows (n < 5 d only)
_PCA_FRACTIONS = (0.1, 0.2, 0.35, 0.5, 0.7, 0.85)
#: a term with lambda > 0 and a smaller share of the gradient norm is reported as inert
_INERT_SHARE = 1e-3


class ManifoldAligner(TransformerMixin, BaseEstimator):
    """Maps between semantic scales trained with the MSMA objective.

    ``L = lambda_geo L_geo + lambda_info L_info + lambda_curv L_curv + lambda_ot L_ot``
    for each (source, target) pair of scales, by default global -> intermediate
    (f_GI) and intermediate -> local (f_IL), as in the MSMA paper. The model
    is never fine-tuned: the maps act on frozen, pooled states.

    Each scale is centred and divided by its RMS (reduced by PCA first when
    ``n_components`` asks for it). Each map is fitted by
    :func:`~msma_sklearn.alignment.fit_map_batches` (the same solver for
    :meth:`fit` and :meth:`fit_store`): it starts at ``init`` (by default the
    geometry term's closed-form minimiser in the family: orthogonal Procrustes
    for ``map="orthogonal"``, least squares for ``"linear"`` and the MLP's
    linear part; with only ``lambda_geo`` non-zero the orthogonal and linear
    fits *are* those solutions). With an information term, the InfoNCE critic
    is first trained alone on the start's outputs (``critic_warmup`` steps).
    Then Adam runs with a step that does not grow with the width (each tensor
    moves by about ``learning_rate`` in norm per step; Riemannian steps for
    orthogonal maps). Every ``check_interval`` steps the objective on all
    training rows is computed: a check that lowered it is accepted, one that
    did not sends the map back to the last accepted state with half the step,
    so the training objective never rises. Training has converged after
    ``n_iter_no_change`` checks in a row without a relative gain of ``tol``.
    With ``early_stopping``, the objective on a held-out ``validation_fraction``
    of the rows chooses among the accepted checkpoints (never the untrained
    start). ``prediction_change_`` says how far each map's predictions moved
    from the start; a start that no step improves is returned with a warning.

    Parameters
    ----------
    lambda_geo, lambda_info, lambda_curv : float, defaults 0.1, 0.1, 0.01
        Weights of the geometric (Procrustes residual), information (InfoNCE
        with a trained bilinear critic) and curvature (mismatch of the
        discrete mean-curvature vectors of f(S) and T on the source's
        neighbour graph) terms, as in the paper.
    lambda_ot : float, default=0.0
        Weight of an entropic OT (Sinkhorn, POT) term between minibatches of
        mapped and target points.
    map : {"orthogonal", "linear", "mlp"}, default="orthogonal"
    init : {"least_squares", "identity", "random"}, default="least_squares"
        Where each map starts (:func:`~msma_sklearn.alignment.start_matrix`):
        the geometry term's minimiser in the family, the identity, or a
        Haar-random rotation seeded from ``random_state``. From
        ``"least_squares"`` only the other terms can move the map; from the
        other two, the geometry term has to be optimised as well, which costs
        steps (docs/alignment.md).
    critic_warmup : int, default=50
        Steps of the InfoNCE critic alone on the start map's outputs before
        the map moves (with ``lambda_info > 0``), so that the information term
        is measured with a fitted critic from the first step. 0: none.
    pairs : sequence of (source, target) scale names, default=None
        None: ``[("global", "intermediate"), ("intermediate", "local")]``.
    n_components : int, "auto" or None, default="auto"
        PCA dimensions per scale before alignment, fitted on the rows given to
        ``fit``. "auto": none when there are at least 5 rows per dimension;
        below that (where a full-width map is not determined by its rows),
        the dimension among none and 10-85% of the rows whose closed-form map
        scores the best r² on the held-out validation rows, with a warning
        (docs/alignment.md has the measurement). None: keep all dimensions
        (warns when n < 5 d).
    normalize_terms : bool, default=True
        True: every term is 0 for a perfect fit and 1 for the "no alignment"
        reference, so equal lambdas pull comparably (docs/alignment.md).
        False: the raw terms (MSE, minus the InfoNCE bound in nats, raw
        curvature mismatch), the form before issue #12.
    hidden_size : int, default=64
        Width of the residual MLP (``map="mlp"``).
    learning_rate : float, default=0.05
        Adam's step, scaled per tensor by ``1 / sqrt(n_entries)`` so that each
        tensor moves by about this much in norm per step at any width.
    max_iter : int, default=300
        Maximum number of epochs.
    batch_size : int, default=1024
        Minibatch size. InfoNCE scores each row against at most 255 others of
        its minibatch, so the bound's ceiling does not depend on it.
    tol : float, default=1e-3
        A check gains when the training objective drops by more than ``tol``
        (relative) below the best so far.
    early_stopping : bool, default=True
        Hold out ``validation_fraction`` of the rows; the objective on them
        chooses the accepted checkpoint that is returned. False: train on
        every row and keep the last accepted state.
    validation_fraction : float, default=0.1
    n_iter_no_change : int, default=6
        Converged after this many checks in a row that were rejected (each
        halves the step) or gained less than ``tol``.
    check_interval : int, default=5
        Optimiser steps between checks; the number of steps to converge does
        not grow with the number of rows, so neither does the fit's cost
        beyond one pass.
    scoring : str, default="r2"
        What :meth:`score` measures (and so what ``GridSearchCV`` maximises
        without its own ``scoring=``): a key of
        :data:`~msma_sklearn.alignment.ALIGNMENT_METRICS` ("r2", "neg_kl",
        "ksg_mi", "cka", "retrieval", "neg_procrustes", "dcor"), in the target
        scale's original coordinates (after mapping back through PCA); all
        are independent of the lambdas and of ``n_components``.
    scales : sequence of str, default=None
        Scale names for a plain array (equal-width blocks); None reads the
        feature names (``local__0 ...``) or, without names, assumes
        ``("local", "intermediate", "global")``.
    device : str, default="cpu"
    n_jobs : int, default=None
        Pairs are fitted in parallel threads, each with its own generator:
        results do not depend on ``n_jobs``.
    random_state : int, RandomState or None, default=None
    verbose : int, default=0

    Attributes
    ----------
    scales_ : tuple of str
    scale_width_ : int
        Width of each scale's block in ``X``.
    scale_dims_ : dict
        Dimensions each scale is aligned in (after PCA).
    n_components_ : int or None
        PCA dimensions per scale actually used.
    n_components_scores_ : dict or None
        With "auto" and n < 5 d: candidate dimension (None = no PCA) ->
        held-out r² of the closed-form maps.
    pairs_ : list of (str, str)
    maps_ : dict
        ``"global->intermediate"`` -> the fitted torch module (CPU, eval mode).
    coef_ : dict
        For orthogonal and linear maps: ``W`` with ``mapped = z_source @ W + b``
        in standardised (PCA) coordinates.
    intercept_ : dict
    loss_curve_ : dict
        Pair -> one dict per check: ``step``, ``epoch``, each term and the
        ``total`` (minibatch means since the last check), ``train`` (the
        objective on all training rows), ``accepted`` and, on accepted checks
        with early stopping, ``validation``.
    term_gradient_share_ : dict
        Pair -> term -> mean share of the gradient norm (on the map's
        parameters) that the weighted term contributed, measured on the
        first step after each check.
    prediction_change_ : dict
        Pair -> ``||f(S) - f_0(S)|| / ||f_0(S)||`` on the training rows: how far
        the returned map's predictions are from its start's (0: the start).
    objective_ : dict
        Pair -> ``{"start", "end"}``: the weighted objective on the training
        rows at the start (after the critic warm-up) and for the returned map.
    n_iter_ : ndarray of int, shape (n_pairs,)
        Epochs run per pair, in ``pairs_`` order (0: the closed form).
    n_steps_ : ndarray of int, shape (n_pairs,)
        Optimiser steps per pair.
    pca_ : dict or None
    n_features_in_ : int

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> z = rng.normal(size=(200, 4))
    >>> q, _ = np.linalg.qr(rng.normal(size=(4, 4)))
    >>> X = np.hstack([z, z @ q, z @ q @ q])           # local, intermediate, global
    >>> aligner = ManifoldAligner(lambda_info=0, lambda_curv=0).fit(X)
    >>> round(aligner.score(X), 6)
    1.0
    """

    _parameter_constraints: dict = {
        "lambda_geo": [Interval(Real, 0, None, closed="left")],
        "lambda_info": [Interval(Real, 0, None, closed="left")],
        "lambda_curv": [Interval(Real, 0, None, closed="left")],
        "lambda_ot": [Interval(Real, 0, None, closed="left")],
        "map": [StrOptions({"orthogonal", "linear", "mlp"})],
        "init": [StrOptions(set(INITS))],
        "critic_warmup": [Interval(Integral, 0, None, closed="left")],
        "pairs": [None, list, tuple],
        "n_components": [None, StrOptions({"auto"}), Interval(Integral, 1, None, closed="left")],
        "normalize_terms": ["boolean"],
        "hidden_size": [Interval(Integral, 1, None, closed="left")],
        "learning_rate": [Interval(Real, 0, None, closed="neither")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "batch_size": [Interval(Integral, 2, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left")],
        "check_interval": [Interval(Integral, 1, None, closed="left")],
        "scoring": [StrOptions(set(ALIGNMENT_METRICS))],
        "scales": [None, list, tuple],
        "device": [str],
        "n_jobs": [None, Integral],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        lambda_geo=0.1,
        lambda_info=0.1,
        lambda_curv=0.01,
        lambda_ot=0.0,
        *,
        map="orthogonal",
        init="least_squares",
        critic_warmup=50,
        pairs=None,
        n_components="auto",
        normalize_terms=True,
        hidden_size=64,
        learning_rate=0.05,
        max_iter=300,
        batch_size=1024,
        tol=1e-3,
        early_stopping=True,
        validation_fraction=0.1,
        n_iter_no_change=6,
        check_interval=5,
        scoring="r2",
        scales=None,
        device="cpu",
        n_jobs=None,
        random_state=None,
        verbose=0,
    ):
        self.lambda_geo = lambda_geo
        self.lambda_info = lambda_info
        self.lambda_curv = lambda_curv
        self.lambda_ot = lambda_ot
        self.map = map
        self.init = init
        self.critic_warmup = critic_warmup
        self.pairs = pairs
        self.n_components = n_components
        self.normalize_terms = normalize_terms
        self.hidden_size = hidden_size
        self.learning_rate = learning_rate
        self.max_iter = max_iter
        self.batch_size = batch_size
        self.tol = tol
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.check_interval = check_interval
        self.scoring = scoring
        self.scales = scales
        self.device = device
        self.n_jobs = n_jobs
        self.random_state = random_state
        self.verbose = verbose

    # ---------------------------------------------------------------- layout
    def _layout(self, n_features, names):
        if self.scales is not None:
            scales = tuple(str(s) for s in self.scales)
        elif names is not None:
            parsed = [_SCALE_NAME.match(str(n)) for n in names]
            if any(m is None for m in parsed):
                raise ValueError(
                    "Feature names must look like 'global__17' (ScaleSegmenter output); got "
                    f"{[str(n) for n, m in zip(names, parsed, strict=True) if m is None][:3]}. "
                    "Pass scales= for other inputs."
                )
            scales = tuple(dict.fromkeys(m.group(1) for m in parsed))
        else:
            scales = _DEFAULT_SCALES
        if n_features % len(scales):
            raise ValueError(
                f"X has {n_features} features, which cannot be split into {len(scales)} "
                f"equal scale blocks {list(scales)}."
            )
        return scales, n_features // len(scales)

    def _blocks(self, X):
        width = X.shape[1] // len(self.scales_)
        return {s: X[:, i * width : (i + 1) * width] for i, s in enumerate(self.scales_)}

    def _resolve_components(self, blocks, order: np.ndarray) -> int | None:
        """PCA dimensions per scale; "auto" chooses them on held-out rows when n < 5 d."""
        n_rows, width = len(order), self.scale_width_
        few = n_rows < _ROWS_PER_DIM * width
        self.n_components_scores_ = None
        if self.n_components == "auto":
            if not few:
                return None
            n_val = max(2, math.ceil(self.validation_fraction * n_rows))
            val_rows, train_rows = np.sort(order[:n_val]), np.sort(order[n_val:])
            limit = min(width, len(train_rows)) - 1
            candidates = sorted(
                {max(1, min(limit, round(f * n_rows))) for f in _PCA_FRACTIONS if limit >= 1}
            )
            family = "orthogonal" if self.map == "orthogonal" else "linear"
            self.n_components_scores_ = pca_dimension_scores(
                blocks,
                self.pairs_,
                train_rows,
                val_rows,
                [None, *candidates],
                family,
                random_state=self._pca_seed,
            )
            k = max(self.n_components_scores_, key=lambda c: self.n_components_scores_[c])
            # one stable message, at the caller's line: shown once per search, not once per
            # fit (the rows, the scores and the choice are in the fitted attributes)
            warn_user(
                f"ManifoldAligner: fewer rows than {_ROWS_PER_DIM} per dimension of the scales "
                "(n < 5 d): a full-width map is not determined by so few rows, so "
                "n_components='auto' chose a PCA dimension by the closed form's held-out r² on "
                "a validation fraction (n_components_, n_components_scores_). Pass an int or "
                "None to fix it."
            )
            return k
        if self.n_components is None:
            if few:
                warn_user(
                    "ManifoldAligner: fewer rows than 5 per dimension of the scales (n < 5 d) "
                    "with n_components=None: the maps are not determined by so few rows and "
                    "will interpolate them. n_components='auto' chooses a PCA dimension on "
                    "held-out rows."
                )
            return None
        return int(self.n_components)

    def _format_scores(self) -> str:
        return ", ".join(
            f"{'none' if k is None else k}: {v:.3f}" for k, v in self.n_components_scores_.items()
        )

    def _standardise(self, blocks, fit: bool):
        out = {}
        if fit:
            self._mean, self._rms, self._raw_mean, self._raw_rms = {}, {}, {}, {}
            self.pca_ = {} if self.n_components_ else None
        for s, B in blocks.items():
            if fit:
                self._raw_mean[s] = B.mean(0)
                rms = float(np.sqrt(((B - self._raw_mean[s]) ** 2).mean()))
                if rms == 0:
                    raise ValueError(f"Scale {s!r} is constant across samples: nothing to align.")
                self._raw_rms[s] = rms
                if self.n_components_:
                    k = min(self.n_components_, B.shape[1], B.shape[0] - 1)
                    self.pca_[s] = PCA(k, svd_solver="auto", random_state=self._pca_seed).fit(B)
                Z = self.pca_[s].transform(B) if self.pca_ else B
                self._mean[s] = Z.mean(0)
                self._rms[s] = float(np.sqrt(((Z - self._mean[s]) ** 2).mean()))
            Z = self.pca_[s].transform(B) if self.pca_ else B
            out[s] = (Z - self._mean[s]) / self._rms[s]
        return out

    # -------------------------------------------------------------------- fit
    def fit(self, X, y=None):
        """Fit one map per pair of scales.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_scales * width)
            Per-scale representations (``ScaleSegmenter`` output).
        y : None
            Ignored.

        Returns
        -------
        self : ManifoldAligner
        """
        self._validate_params()
        X = validate_data(self, X, ensure_min_samples=8, dtype=np.float64)
        self._set_pairs(X.shape[1], getattr(self, "feature_names_in_", None))
        rng = check_random_state(self.random_state)
        self._pca_seed = int(rng.randint(np.iinfo(np.int32).max))
        n = X.shape[0]
        # the rule fit_store uses per shard: the same held-out rows choose PCA and stop
        # training, and a store of one shard holds out the same rows
        order = validation_order(n, int(rng.randint(np.iinfo(np.int32).max)))
        blocks = self._blocks(X)
        self.n_components_ = self._resolve_components(blocks, order)
        Z = self._standardise(blocks, fit=True)
        self.scale_dims_ = {s: Z[s].shape[1] for s in self.scales_}
        n_val = self._n_validation(n)
        val_rows, train_rows = np.sort(order[:n_val]), np.sort(order[n_val:])
        seeds = rng.randint(np.iinfo(np.int32).max, size=len(self.pairs_))
        fits = Parallel(n_jobs=self.n_jobs, prefer="threads")(
            delayed(self._fit_pair)(Z[a], Z[b], train_rows, val_rows, int(seed))
            for (a, b), seed in zip(self.pairs_, seeds, strict=True)
        )
        self._store_fits(fits)
        return self

    def _n_validation(self, n: int) -> int:
        if not (self.early_stopping and self._trains()):
            return 0
        n_val = max(2, math.ceil(self.validation_fraction * n))
        if n - n_val < 4:
            raise ValueError(
                f"{n} rows leave {n - n_val} for training after a validation fraction of "
                f"{self.validation_fraction}; pass more rows or early_stopping=False."
            )
        return n_val

    def _trains(self) -> bool:
        """False for the closed forms (orthogonal or linear map, only the geometry term,
        started at its minimiser)."""
        return trains(self._weights(), self.map, self.init)

    def fit_store(self, store, transformer=None):
        """Fit from an on-disk store in minibatches, one shard in memory at a time.

        Two streaming passes compute each scale's mean and RMS and each
        pair's cross-covariance (for the closed-form Procrustes start); then
        every epoch visits the shards in a seeded random order, shuffles rows
        within a shard and takes minibatches of ``batch_size``. Validation
        rows (for early stopping) are drawn per shard from ``random_state``
        and kept in memory: ``validation_fraction`` of the rows, at most
        20,000. Memory otherwise grows with the shard size, not with the
        number of rows. Fitted attributes are those of :meth:`fit`; with
        ``map="orthogonal"`` and only ``lambda_geo`` the result equals
        :meth:`fit` on the whole array. Validation rows (the first
        ``ceil(validation_fraction * rows)`` of a permutation drawn per shard)
        and minibatches (shards in a random order, rows shuffled within each)
        follow :meth:`fit`'s rules, so on a store of one shard a trained map
        equals :meth:`fit`'s up to the rounding of the streamed statistics.

        Parameters
        ----------
        store : HiddenStateStore
            From :func:`~msma_sklearn.extraction.extract_to_store` or
            :func:`~msma_sklearn.extraction.write_array_store`; anything with
            ``n_shards``, ``read_shard(k)`` and ``feature_names()`` works.
        transformer : fitted transformer, default=None
            Applied to each shard first, e.g. a fitted ``ScaleSegmenter``
            turning per-layer states into per-scale ones. None: the store
            already holds scale features (``global__0`` ... names).

        Returns
        -------
        self : ManifoldAligner
        """
        return fit_from_store(self, store, transformer)

    def _set_pairs(self, n_features, names) -> None:
        self.scales_, self.scale_width_ = self._layout(n_features, names)
        pairs = self.pairs
        if pairs is None:
            pairs = [("global", "intermediate"), ("intermediate", "local")]
        self.pairs_ = [(str(a), str(b)) for a, b in pairs]
        unknown = sorted({s for p in self.pairs_ for s in p} - set(self.scales_))
        if unknown or any(a == b for a, b in self.pairs_):
            raise ValueError(
                f"pairs {self.pairs_} must name two different scales among {list(self.scales_)}"
                + (f"; unknown: {unknown}" if unknown else "")
                + "."
            )

    def _store_fits(self, fits: list[MapFit]) -> None:
        self.maps_, self.critics_, self.loss_curve_ = {}, {}, {}
        self.coef_, self.intercept_, self.term_gradient_share_ = {}, {}, {}
        self.prediction_change_, self.objective_ = {}, {}
        self.n_iter_ = np.array([f.n_iter for f in fits], dtype=np.int64)
        self.n_steps_ = np.array([f.n_steps for f in fits], dtype=np.int64)
        weights = self._weights()
        for (a, b), fit in zip(self.pairs_, fits, strict=True):
            key = f"{a}->{b}"
            self.maps_[key], self.critics_[key] = fit.map, fit.critic
            self.loss_curve_[key] = fit.curve
            self.term_gradient_share_[key] = fit.shares
            self.prediction_change_[key] = fit.prediction_change
            self.objective_[key] = {"start": fit.start_objective, "end": fit.end_objective}
            if self.map != "mlp":
                with torch.no_grad():
                    W, bias = fit.map.affine()
                self.coef_[key] = W.detach().double().numpy().copy()
                self.intercept_[key] = bias.detach().double().numpy().copy()
            if not fit.converged:
                warn_user(
                    f"ManifoldAligner: map {key!r} did not converge in max_iter={self.max_iter} "
                    f"epochs (the training objective still dropped by more than tol={self.tol} "
                    f"within {self.n_iter_no_change} checks); raise max_iter.",
                    ConvergenceWarning,
                )
            if fit.returned_start:
                warn_user(
                    f"ManifoldAligner: on map {key!r} no step lowered the training objective "
                    f"below its start ({fit.start_objective:.6g}), down to learning_rate / "
                    f"2**{self.n_iter_no_change}; the start is returned (prediction_change_ "
                    "is 0). Lower learning_rate, or the start is already the optimum.",
                    ConvergenceWarning,
                )
            inert = [
                f"lambda_{t}={weights[t]}"
                for t in _TERMS
                if weights[t] > 0 and fit.shares and fit.shares.get(t, 0.0) < _INERT_SHARE
            ]
            if inert:
                warn_user(
                    f"ManifoldAligner: on map {key!r}, {', '.join(inert)} contributed less than "
                    f"{_INERT_SHARE:g} of the gradient norm over training: the term barely "
                    "acts. Raise its lambda or set it to 0 (term_gradient_share_)."
                )

    def _weights(self) -> dict[str, float]:
        return {
            "geo": float(self.lambda_geo),
            "info": float(self.lambda_info),
            "curv": float(self.lambda_curv),
            "ot": float(self.lambda_ot),
        }

    def _settings(self) -> SolverSettings:
        return SolverSettings(
            weights=self._weights(),
            family=self.map,
            hidden_size=self.hidden_size,
            learning_rate=self.learning_rate,
            max_iter=self.max_iter,
            tol=self.tol,
            n_iter_no_change=self.n_iter_no_change,
            check_interval=self.check_interval,
            critic_warmup=self.critic_warmup,
            normalize_terms=self.normalize_terms,
            device=self.device,
        )

    def _fit_pair(self, S, T, train_rows, val_rows, seed: int) -> MapFit:
        rows = np.concatenate([train_rows, val_rows])  # validation rows last, as given
        return fit_map(
            S[rows],
            T[rows],
            weights=self._weights(),
            family=self.map,
            init=self.init,
            validation_rows=np.arange(len(train_rows), len(rows)) if len(val_rows) else None,
            batch_size=self.batch_size,
            random_state=seed,
            **_solver_kwargs(self._settings()),
        )

    # -------------------------------------------------------------- transform
    def _mapped(self, X):
        """Mapped sources and targets, both standardised in the target's original space."""
        check_is_fitted(self, "maps_")
        X = validate_data(self, X, reset=False, dtype=np.float64)
        raw = self._blocks(X)
        Z = self._standardise(raw, fit=False)
        mapped, targets = {}, {}
        with torch.inference_mode():
            for a, b in self.pairs_:
                fmap = self.maps_[f"{a}->{b}"]
                m = fmap(torch.as_tensor(Z[a], dtype=torch.float32)).double().numpy()
                mapped[(a, b)] = (self._to_original(m, b) - self._raw_mean[b]) / self._raw_rms[b]
                targets[(a, b)] = (raw[b] - self._raw_mean[b]) / self._raw_rms[b]
        return mapped, targets

    def _to_original(self, z: np.ndarray, scale: str) -> np.ndarray:
        """Standardised (PCA) coordinates of ``scale`` back to its original coordinates."""
        values = z * self._rms[scale] + self._mean[scale]
        return self.pca_[scale].inverse_transform(values) if self.pca_ else values

    def transform(self, X):
        """The mapped source of every pair, in the target scale's original coordinates.

        Returns
        -------
        X_aligned : ndarray of shape (n_samples, n_pairs * scale_width_)
            Blocks in ``pairs_`` order (mapped back through the target's PCA
            when one was fitted).
        """
        check_is_fitted(self, "maps_")
        X = validate_data(self, X, reset=False, dtype=np.float64)
        Z = self._standardise(self._blocks(X), fit=False)
        out = []
        with torch.inference_mode():
            for a, b in self.pairs_:
                m = self.maps_[f"{a}->{b}"](torch.as_tensor(Z[a], dtype=torch.float32))
                out.append(self._to_original(m.double().numpy(), b))
        return np.hstack(out)

    def inverse_transform(self, X):
        """Map aligned blocks back to their source scales (orthogonal and linear maps).

        Returns
        -------
        X_source : ndarray of shape (n_samples, n_pairs * scale_width_)
            Exact without PCA; with PCA, the source's projection on its
            principal components.
        """
        check_is_fitted(self, "maps_")
        if self.map == "mlp":
            raise ValueError("map='mlp' is not invertible; use 'orthogonal' or 'linear'.")
        X = np.asarray(X, dtype=np.float64)
        width = self.scale_width_
        if X.ndim != 2 or X.shape[1] != width * len(self.pairs_):
            raise ValueError(
                f"Expected {width * len(self.pairs_)} columns (transform output), got {X.shape}."
            )
        out = []
        for i, (a, b) in enumerate(self.pairs_):
            key = f"{a}->{b}"
            block = X[:, i * width : (i + 1) * width]
            values = self.pca_[b].transform(block) if self.pca_ else block
            z = (values - self._mean[b]) / self._rms[b]
            src = (z - self.intercept_[key]) @ np.linalg.pinv(self.coef_[key])
            out.append(self._to_original(src, a))
        return np.hstack(out)

    def score(self, X, y=None):
        """Alignment quality on ``X`` (higher is better; independent of the lambdas).

        Measured in each target scale's original coordinates, standardised
        with the training rows' mean and RMS (mapped points are brought back
        through PCA first), so scores compare across ``n_components``; the mean
        over pairs of the metric ``scoring`` names (a key of
        :data:`~msma_sklearn.alignment.ALIGNMENT_METRICS`). The default,
        ``"r2"``, is ``1 - ||f(s) - t||^2 / ||t - mean(t)||^2`` row by row, which is
        what ``GridSearchCV`` maximises unless given ``scoring=``
        (:func:`~msma_sklearn.alignment.get_alignment_scorer` for the others).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_scales * width)
        y : None
            Ignored.

        Returns
        -------
        score : float
        """
        return alignment_score(self, X, self.scoring)

    def get_feature_names_out(self, input_features=None):
        """``global_to_intermediate__0 ...`` per pair, in ``pairs_`` order."""
        check_is_fitted(self, "maps_")
        return np.asarray(
            [f"{a}_to_{b}__{u}" for a, b in self.pairs_ for u in range(self.scale_width_)],
            dtype=object,
        )


def _solver_kwargs(settings: SolverSettings) -> dict:
    """The solver settings besides the weights and the family (fit_map takes those)."""
    out = dict(vars(settings))
    del out["weights"], out["family"]
    return out

"""ManifoldAligner: learned maps between adjacent semantic scales."""

from __future__ import annotations

import logging
from numbers import Integral, Real

import numpy as np
import torch
from joblib import Parallel, delayed
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data

from ._preparation import ScaleLayoutMixin
from ._rows import validation_count, validation_order
from ._scoring import ALIGNMENT_METRICS, alignment_score
from ._solver import (
    INITS,
    MapFit,
    fit_map,
    trains,
)
from ._streaming import fit_from_store

__all__ = ["ManifoldAligner"]

logger = logging.getLogger(__name__)


class ManifoldAligner(ScaleLayoutMixin, TransformerMixin, BaseEstimator):
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
        curvature mismatch), the form before the normalised terms.
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
    early_stopping : bool, default=False
        True: hold out ``validation_fraction`` of the rows; the objective on
        them chooses the accepted checkpoint that is returned. False (as
        scikit-learn's ``MLPRegressor``): train on every row until the training
        objective converges and keep the last accepted state. The default was
        True until measured: on MiniLM states of 1,725 docstrings the
        checkpoint the validation rows chose changed with the seed, and held-out
        predictions moved by 14% between seeds against 1% without it, at a
        lower held-out r² (docs/alignment.md).
    validation_fraction : float, default=0.1
        Share of the rows held out (with ``early_stopping``) to choose among the
        accepted checkpoints, and (``n_components="auto"``) the PCA dimension.
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
        Torch device the maps are trained on; fitted maps are moved to the CPU.
    n_jobs : int, default=None
        Pairs are fitted in parallel threads, each with its own generator:
        results do not depend on ``n_jobs``.
    random_state : int, RandomState or None, default=None
        Seeds the validation rows, the PCA, the random start, the MLP's hidden
        layer and the minibatch order (through local generators); an int makes
        fits repeat exactly.
    verbose : int, default=0
        Accepted for scikit-learn compatibility; the aligner prints nothing.

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
        Pair -> term -> mean over the training steps of the share of the
        gradient norm (on the mapped points) that the weighted term
        contributed: its pull, not its effect (see ``term_effects``).
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
        early_stopping=False,
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
        return validation_count(n, self.validation_fraction)

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
            **self._settings().options(),
        )

    # -------------------------------------------------------------- transform
    def _mapped(self, X):
        """Mapped sources and targets, both standardised in the target's original space."""
        raw, mapped = self._map_blocks(X)
        scaled = {}
        for a, b in self.pairs_:
            scaled[(a, b)] = (self._std.scaled(mapped[(a, b)], b), self._std.scaled(raw[b], b))
        return {k: v[0] for k, v in scaled.items()}, {k: v[1] for k, v in scaled.items()}

    def _map_blocks(self, X):
        """The raw blocks of X and each pair's mapped source in the target's original
        coordinates."""
        check_is_fitted(self, "maps_")
        X = validate_data(self, X, reset=False, dtype=np.float64)
        raw = self._blocks(X)
        Z = self._standardise(raw, fit=False)
        mapped = {}
        with torch.inference_mode():
            for a, b in self.pairs_:
                m = self.maps_[f"{a}->{b}"](torch.as_tensor(Z[a], dtype=torch.float32))
                mapped[(a, b)] = self._std.to_original(m.double().numpy(), b)
        return raw, mapped

    def transform(self, X):
        """The mapped source of every pair, in the target scale's original coordinates.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_scales * width)
            Per-scale representations laid out as in :meth:`fit`.

        Returns
        -------
        X_aligned : ndarray of shape (n_samples, n_pairs * scale_width_)
            Blocks in ``pairs_`` order (mapped back through the target's PCA
            when one was fitted).
        """
        _, mapped = self._map_blocks(X)
        return np.hstack([mapped[pair] for pair in self.pairs_])

    def inverse_transform(self, X):
        """Map aligned blocks back to their source scales (orthogonal and linear maps).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_pairs * scale_width_)
            Output of :meth:`transform`.

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
            z = self._std.apply({b: block})[b]
            src = (z - self.intercept_[key]) @ np.linalg.pinv(self.coef_[key])
            out.append(self._std.to_original(src, a))
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
            Held-out per-scale representations laid out as in :meth:`fit`.
        y : None
            Ignored.

        Returns
        -------
        score : float
        """
        return alignment_score(self, X, self.scoring)

    def get_feature_names_out(self, input_features=None):
        """``global_to_intermediate__0 ...`` per pair, in ``pairs_`` order.

        Parameters
        ----------
        input_features : None
            Ignored (the names come from ``pairs_``).

        Returns
        -------
        ndarray of str
            One name per output column of :meth:`transform`.
        """
        check_is_fitted(self, "maps_")
        return np.asarray(
            [f"{a}_to_{b}__{u}" for a, b in self.pairs_ for u in range(self.scale_width_)],
            dtype=object,
        )

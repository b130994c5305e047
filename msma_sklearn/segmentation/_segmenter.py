"""ScaleSegmenter: a model's layers -> contiguous semantic scales."""

from __future__ import annotations

from numbers import Integral, Real

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import validate_data

from ..metrics import cka_matrix
from ._dp import cut_costs, optimal_segments, similarity_costs, sse_costs
from ._layout import check_layer_width as _check_layer_width
from ._output import ScaleOutputMixin
from ._presets import preset_scale_layers
from ._refits import RefitMixin
from ._selection import scale_count_curve
from ._steps import (
    _groups,
    _standardized,
    adjacent_mi,
    manual_groups,
    parse_layout,
    spans_per_state,
)

__all__ = ["ScaleSegmenter"]

_DEFAULT_NAMES = ("local", "intermediate", "global")


class ScaleSegmenter(ScaleOutputMixin, RefitMixin, TransformerMixin, BaseEstimator):
    """Split a model's layers into contiguous semantic scales, and pool each scale.

    Fitted on :class:`~msma_sklearn.HiddenStateExtractor` output, one block of
    ``hidden_size`` columns per hidden state. The layer layout is read from the
    feature names ``layer{j}__{unit}`` (a DataFrame, e.g. after
    ``set_output(transform="pandas")``), or from ``layers`` for a plain array.

    Parameters
    ----------
    method : {"cka", "mi", "attention_span", "preset", "manual"}, default="cka"
        How boundaries are found:

        - ``"cka"``: debiased linear CKA between every pair of layers, then the
          exact best split into ``n_scales`` contiguous groups maximising
          within-group similarity (kernel k-means objective, solved by dynamic
          programming);
        - ``"mi"``: KSG mutual information between adjacent layers, each
          (standardised if ``standardize``) reduced by PCA to
          ``n_components``; boundaries at the ``n_scales - 1`` weakest links
          (lowest summed adjacent MI) that leave every scale at least
          ``min_scale_size`` layers;
        - ``"attention_span"``: each block's mean attention distance (from
          :meth:`HiddenStateExtractor.attention_span`, passed as
          ``attention_spans``), split by ``span_thresholds`` or, if None, by
          the best piecewise-constant fit;
        - ``"preset"``: the original project's tables (``preset``);
        - ``"manual"``: ``scale_layers`` as given.
    n_scales : int or "auto", default=3
        Number of scales (MSMA states 3). ``"auto"`` (``method="cka"`` only)
        chooses it from the data with :func:`scale_count_curve`: boundaries
        fitted on one half of the texts and scored on the other, over
        ``k = 1..max_scales``, against a no-block null; the curve is kept in
        ``scale_count_curve_``.
    max_scales : int, default=6
        Largest k tried by ``n_scales="auto"``.
    min_scale_size : int or "auto", default="auto"
        Fewest hidden states in one scale, for the data-driven methods.
        ``"auto"``: 2 when there are at least ``2 * n_scales`` hidden states,
        and a sixth of them per scale (``n // (2 * n_scales)``) when that is
        more; else 1. Keeps single outlying states (the embedding output, the
        final-norm output) from becoming a "scale" of their own.
    scale_names : tuple of str, default=None
        ``("local", "intermediate", "global")`` for 3 scales, else
        ``("scale0", ...)``. Scales are named in depth order.
    preset : {"readme", "msma_code", "uniform"}, default="readme"
        Table for ``method="preset"``. ``"readme"`` and ``"msma_code"`` need
        ``family``; other depths are mapped proportionally.
    family : {"gpt2", "bert", "roberta", "t5"}, default=None
    scale_layers : dict or list of lists of int, default=None
        Hidden-state indices per scale for ``method="manual"``.
    require_contiguous : bool, default=True
        Reject manual scales that are not contiguous runs in depth order.
    layers : None, "columns", int or list of int, default=None
        Layout of a plain array: the number of hidden states (``0..n-1``), or
        their indices; ``"columns"`` makes every column its own layer.
        ``None`` reads the feature names.
    include_embeddings : bool, default=True
        Whether hidden state 0 (the embedding output) takes part. Shares are
        fractions of the hidden states that take part (``share_denominator_``).
    aggregate : {"mean", "concat", "weighted"}, default="mean"
        Per-scale representation in ``transform``: the mean of the scale's
        layers, their concatenation, or a mean weighted by each layer's mean
        CKA to the rest of its scale.
    n_components : int, default=8
        PCA dimensions per layer for ``method="mi"``.
    n_neighbors : int, default=3
        k of the KSG estimator.
    attention_spans : array-like of shape (n_blocks,), default=None
        Mean attention distance of blocks 1..L (hidden state j >= 1 gets block
        j's span; the embedding output gets 0).
    span_thresholds : tuple of float, default=None
        ``n_scales - 1`` increasing thresholds in tokens.
    n_bootstrap : int, default=0
        Refits on random subsamples of the texts (without replacement, a
        ``bootstrap_fraction`` of them: resampling with replacement would put
        duplicate rows into the U-statistics behind debiased CKA and KSG).
    bootstrap_fraction : float, default=0.8
        Share of the samples each bootstrap refit draws (without replacement).
    debiased : bool, default=True
        Debiased (True) or biased linear CKA.
    standardize : bool, default=True
        Z-score every feature (over the fitted samples) before computing
        similarities (CKA) and before the PCA of ``method="mi"``. Raw linear
        CKA is dominated by a model's few largest directions (the "massive
        activations" of Llama-family models: one unit of SmolLM2-135M has a
        mean magnitude ~500x the median unit's); standardising weighs all
        units equally. ``False`` is the behaviour before version 0.1 (raw
        states). ``transform`` is unaffected. Evidence for the default:
        docs/segmentation.md.
    random_state : int, RandomState or None, default=None
        Seeds subsampling, PCA and the KSG jitter.
    verbose : int, default=0
        Progress bar over the bootstrap refits.

    Attributes
    ----------
    layers_ : ndarray
        Hidden-state indices of the input's blocks, in column order.
    hidden_size_ : int
    scale_names_ : tuple of str
    scale_layers_ : dict
        Scale name -> list of hidden-state indices.
    boundaries_ : list of int
        First hidden-state index of every scale after the first.
    layer_shares_ : dict
        Scale name -> fraction of the participating hidden states.
    share_denominator_ : str
        What the shares are fractions of.
    layer_similarity_ : ndarray of shape (n_layers, n_layers)
        Debiased (or biased) linear CKA between the participating layers,
        computed for every method.
    adjacent_mi_ : ndarray
        ``method="mi"`` only: I(layer j; layer j+1) in nats.
    n_scales_ : int
        The number of scales used (``n_scales`` or the one chosen).
    min_scale_size_ : int
        ``min_scale_size`` resolved.
    scale_count_curve_ : ScaleCountCurve
        Only with ``n_scales="auto"``.
    boundary_confidence_ : ndarray of shape (n_scales - 1,)
        With ``n_bootstrap > 0`` and a data-driven method: fraction of
        refits that put each boundary at the same index.
    bootstrap_boundaries_ : ndarray of shape (n_bootstrap, n_scales - 1)
    bootstrap_stability_ : dict
        ``{"ari", "distance"}``: mean adjusted Rand index and mean boundary
        distance (layers) between the refits and the fitted split, beside
        ``"null_ari"`` and ``"null_distance"``, the same for random contiguous
        splits: stability means the refits are much closer than chance.
    source_model_ : dict or None
        The model whose states it was fitted on (``{"model", "model_type",
        "stack", "weights"}``, see
        :meth:`~msma_sklearn.HiddenStateExtractor.model_source`), read from the
        DataFrame a ``HiddenStateExtractor`` with ``set_output(transform="pandas")``
        writes; None for other input. An ``Intervener`` refuses scales whose
        recorded model is not the one it steers.
    n_features_in_ : int
    feature_names_in_ : ndarray
        Only when fitted on a DataFrame.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> base = [rng.normal(size=(60, 4)) for _ in range(3)]
    >>> X = np.hstack([base[g] + 0.1 * rng.normal(size=(60, 4)) for g in (0, 0, 1, 1, 1, 2, 2)])
    >>> seg = ScaleSegmenter(layers=7).fit(X)
    >>> seg.scale_layers_
    {'local': [0, 1], 'intermediate': [2, 3, 4], 'global': [5, 6]}
    >>> seg.transform(X).shape
    (60, 12)
    """

    _parameter_constraints: dict = {
        "method": [StrOptions({"cka", "mi", "attention_span", "preset", "manual"})],
        "n_scales": [Interval(Integral, 1, None, closed="left"), StrOptions({"auto"})],
        "max_scales": [Interval(Integral, 1, None, closed="left")],
        "min_scale_size": [Interval(Integral, 1, None, closed="left"), StrOptions({"auto"})],
        "scale_names": [None, tuple, list],
        "preset": [StrOptions({"readme", "msma_code", "uniform"})],
        "family": [None, StrOptions({"gpt2", "bert", "roberta", "t5"})],
        "scale_layers": [None, dict, list, tuple],
        "require_contiguous": ["boolean"],
        "layers": [
            None,
            StrOptions({"columns"}),
            Interval(Integral, 1, None, closed="left"),
            "array-like",
        ],
        "include_embeddings": ["boolean"],
        "aggregate": [StrOptions({"mean", "concat", "weighted"})],
        "n_components": [Interval(Integral, 1, None, closed="left")],
        "n_neighbors": [Interval(Integral, 1, None, closed="left")],
        "attention_spans": [None, "array-like"],
        "span_thresholds": [None, "array-like"],
        "n_bootstrap": [Interval(Integral, 0, None, closed="left")],
        "bootstrap_fraction": [Interval(Real, 0, 1, closed="right")],
        "debiased": ["boolean"],
        "standardize": ["boolean"],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        method="cka",
        *,
        n_scales=3,
        max_scales=6,
        min_scale_size="auto",
        scale_names=None,
        preset="readme",
        family=None,
        scale_layers=None,
        require_contiguous=True,
        layers=None,
        include_embeddings=True,
        aggregate="mean",
        n_components=8,
        n_neighbors=3,
        attention_spans=None,
        span_thresholds=None,
        n_bootstrap=0,
        bootstrap_fraction=0.8,
        debiased=True,
        standardize=True,
        random_state=None,
        verbose=0,
    ):
        self.method = method
        self.n_scales = n_scales
        self.max_scales = max_scales
        self.min_scale_size = min_scale_size
        self.scale_names = scale_names
        self.preset = preset
        self.family = family
        self.scale_layers = scale_layers
        self.require_contiguous = require_contiguous
        self.layers = layers
        self.include_embeddings = include_embeddings
        self.aggregate = aggregate
        self.n_components = n_components
        self.n_neighbors = n_neighbors
        self.attention_spans = attention_spans
        self.span_thresholds = span_thresholds
        self.n_bootstrap = n_bootstrap
        self.bootstrap_fraction = bootstrap_fraction
        self.debiased = debiased
        self.standardize = standardize
        self.random_state = random_state
        self.verbose = verbose

    # ------------------------------------------------------------------ layout
    def _layout(self, n_features: int, names) -> tuple[np.ndarray, int]:
        return parse_layout(n_features, names, self.layers)

    # --------------------------------------------------------------------- fit
    def fit(self, X, y=None):
        """Find the scales.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_layers * hidden_size)
            Pooled hidden states, blocks in layer order.
        y : None
            Ignored.

        Returns
        -------
        self : ScaleSegmenter
        """
        self._validate_params()
        attrs = getattr(X, "attrs", None)
        source = attrs.get("msma_source") if isinstance(attrs, dict) else None
        self.source_model_ = dict(source) if isinstance(source, dict) else None
        X = validate_data(self, X, ensure_min_samples=4, dtype=np.float64)
        names = getattr(self, "feature_names_in_", None)
        self.layers_, self.hidden_size_ = self._layout(X.shape[1], names)
        if isinstance(self.layers, Integral) and names is None:
            _check_layer_width(X, int(self.layers))
        Z = _standardized(X) if self.standardize else X
        cube = Z.reshape(X.shape[0], self.layers_.size, self.hidden_size_)
        use = np.ones(self.layers_.size, bool)
        if not self.include_embeddings:
            use &= self.layers_ != 0
        self._use = use
        used = self.layers_[use]
        auto = self.n_scales == "auto"
        if auto and self.method != "cka":
            raise ValueError(
                f"n_scales='auto' chooses the number of scales from the CKA matrix; it needs "
                f"method='cka', got method={self.method!r}. Pass an int n_scales."
            )
        if used.size < (1 if auto else self.n_scales):
            raise ValueError(
                f"Cannot split {used.size} layer(s) {used.tolist()} into n_scales={self.n_scales} "
                "scales; extract more layers or lower n_scales."
            )
        layer_arrays = [cube[:, i] for i in np.flatnonzero(use)]
        constant = [
            int(j) for j, a in zip(used, layer_arrays, strict=True) if np.ptp(a, axis=0).max() == 0
        ]
        if self.method in ("cka", "mi") and constant:
            raise ValueError(
                f"Hidden state(s) {constant} are the same for every text (e.g. all zeros), so "
                f"their similarity to other layers is undefined and method={self.method!r} "
                "cannot place them. Check the extraction (or leave those layers out with "
                "layers=)."
            )
        if auto:
            k_max = min(self.max_scales, used.size)
            seed = check_random_state(self.random_state).randint(np.iinfo(np.int32).max)
            self.scale_count_curve_ = scale_count_curve(
                layer_arrays,
                k_max=k_max,
                min_size=self._min_size(used.size, k_max),
                debiased=self.debiased,
                random_state=seed,
            )
            self.n_scales_ = self.scale_count_curve_.best_k
        else:
            self.n_scales_ = int(self.n_scales)
        self.min_scale_size_ = self._min_size(used.size, self.n_scales_)
        if self.method in ("cka", "mi", "attention_span") and (
            self.n_scales_ * self.min_scale_size_ > used.size
        ):
            raise ValueError(
                f"Cannot split {used.size} layers into {self.n_scales_} scales of at least "
                f"min_scale_size={self.min_scale_size} layers; lower one of them."
            )
        self.scale_names_ = self._names()
        self.layer_similarity_ = cka_matrix(layer_arrays, debiased=self.debiased)
        groups = self._segment(layer_arrays, used, self.layer_similarity_)
        self._store(groups, used)
        self._bootstrap(layer_arrays, used)
        return self

    def _min_size(self, n_used: int, k: int) -> int:
        if self.min_scale_size != "auto":
            return int(self.min_scale_size)
        if n_used < 2 * k:
            return 1
        return max(2, n_used // (2 * k))

    def _names(self) -> tuple[str, ...]:
        k = self.n_scales_
        if self.scale_names is None:
            if k == 3:
                return _DEFAULT_NAMES
            return tuple(f"scale{i}" for i in range(k))
        names = tuple(str(n) for n in self.scale_names)
        if len(names) != k or len(set(names)) != len(names):
            raise ValueError(f"scale_names must hold {k} distinct names, got {self.scale_names!r}.")
        return names

    def _segment(self, layer_arrays, used, similarity, *, rng=None) -> list[list[int]]:
        """Groups of positions (into ``used``) per scale, in depth order."""
        k = self.n_scales_
        m = self.min_scale_size_
        rng = check_random_state(self.random_state) if rng is None else rng
        if self.method == "cka":
            return _groups(optimal_segments(similarity_costs(similarity), k, m), used.size)
        if self.method == "mi":
            mi = self._adjacent_mi(layer_arrays, rng)
            self._last_mi = mi
            return _groups(optimal_segments(cut_costs(mi), k, m), used.size)
        if self.method == "attention_span":
            spans = self._spans(used)
            if self.span_thresholds is None:
                return _groups(optimal_segments(sse_costs(spans), k, m), used.size)
            thr = np.asarray(self.span_thresholds, dtype=float)
            if thr.shape != (k - 1,) or np.any(np.diff(thr) <= 0):
                raise ValueError(
                    f"span_thresholds must be {k - 1} increasing values, got {self.span_thresholds!r}."
                )
            labels = np.digitize(spans, thr)
            if np.any(np.diff(labels) < 0) or len(set(labels.tolist())) != k:
                raise ValueError(
                    f"span_thresholds {thr.tolist()} do not give {k} contiguous scales for spans "
                    f"{np.round(spans, 2).tolist()}; use span_thresholds=None for the best fit."
                )
            return [np.flatnonzero(labels == i).tolist() for i in range(k)]
        position = {int(j): i for i, j in enumerate(used)}
        if self.method == "preset":
            per_scale = preset_scale_layers(self.preset, self.family, int(self.layers_.max()), k)
        else:
            per_scale = self._manual(used)
        missing = sorted({j for s in per_scale for j in s} - set(position))
        if missing:
            raise ValueError(
                f"Scale lists name hidden states {missing} that are not in X (layers present: "
                f"{used.tolist()}); extract them or change the lists."
            )
        return [[position[j] for j in s] for s in per_scale]

    def _manual(self, used) -> list[list[int]]:
        return manual_groups(
            self.scale_layers,
            self.scale_names_,
            self.n_scales_,
            int(self.layers_.max()),
            self.require_contiguous,
        )

    def _adjacent_mi(self, layer_arrays, rng) -> np.ndarray:
        seed = rng.randint(np.iinfo(np.int32).max)
        return adjacent_mi(
            layer_arrays, n_components=self.n_components, n_neighbors=self.n_neighbors, seed=seed
        )

    def _spans(self, used) -> np.ndarray:
        return spans_per_state(self.attention_spans, int(self.layers_.max()), used)

    def _store(self, groups, used) -> None:
        self.scale_layers_ = {
            name: [int(used[i]) for i in g]
            for name, g in zip(self.scale_names_, groups, strict=True)
        }
        self.boundaries_ = [v[0] for v in list(self.scale_layers_.values())[1:]]
        n_used = used.size
        self.layer_shares_ = {name: len(v) / n_used for name, v in self.scale_layers_.items()}
        emb = 0 in used
        self.share_denominator_ = (
            f"{n_used} hidden states ({'embedding output + ' if emb else ''}"
            f"{n_used - int(emb)} block outputs)"
        )
        if getattr(self, "_last_mi", None) is not None:
            self.adjacent_mi_ = self._last_mi
        pos = {int(j): i for i, j in enumerate(used)}
        weights = {}
        for name, layer_list in self.scale_layers_.items():
            idx = [pos[j] for j in layer_list]
            sub = self.layer_similarity_[np.ix_(idx, idx)]
            w = sub.mean(axis=1) if len(idx) > 1 else np.ones(1)
            w = np.clip(w, 1e-12, None)
            weights[name] = w / w.sum()
        self.layer_weights_ = weights

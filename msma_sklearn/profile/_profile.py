"""The layer profile: independent per-layer signals side by side, and a test of a
segmentation's boundaries against them.

A segmentation from layer similarity (CKA, MI) says where the pooled states change
together; :func:`layer_profile` measures, per hidden state, signals from outside that
family (the logit lens, block deletion, angular distance, intrinsic dimension, the
largest unit's share of the norm), each with an interval over texts, and
:func:`boundaries_against_profile` asks whether the boundaries sit where those signals
change more than they do at admissible random boundaries.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from math import comb

import numpy as np
from tqdm.auto import tqdm

from ..segmentation import (
    boundary_distance,
    optimal_segments,
    random_contiguous_splits,
    sse_costs,
)
from ._signals import angular_distance, largest_unit_share, mean_interval, twonn_dimension

__all__ = [
    "LayerProfile",
    "ProfileTest",
    "ShapeCheck",
    "boundaries_against_profile",
    "layer_profile",
    "reference_shapes",
]

#: signal -> (kind, words): "level" signals have one value per hidden state, "step"
#: signals one per transition (state j to j + 1)
SIGNALS = {
    "logit_lens_kl": ("level", "logit-lens KL to the output (nats)"),
    "deletion_kl": ("step", "next-token KL with the block skipped (nats)"),
    "angular_next": ("step", "angular distance to the next state"),
    "angular_offset": ("level", "angular distance to the state `offset` deeper"),
    "intrinsic_dimension": ("level", "intrinsic dimension (TwoNN)"),
    "largest_unit_share": ("level", "largest unit's share of the norm"),
}


@dataclass(frozen=True)
class LayerProfile:
    """Per-layer signals of one model on one set of texts.

    Parameters
    ----------
    model : str
        The model.
    n_states : int
        Hidden states (embeddings included).
    values : dict
        Signal name -> ndarray of its values (``n_states`` for a level signal,
        ``n_states - 1`` for a step signal; NaN where undefined).
    intervals : dict
        Signal name -> ndarray of shape (len, 2): 95% interval over texts
        (bootstrap of the mean; intrinsic dimension: over subsets of texts).
    n_texts : int
        Texts behind every signal.
    offset : int
        The depth offset of ``angular_offset``.
    per_text : dict
        Signal name -> (n_texts, len) per-text values (model-based and
        angular signals), for paired tests.
    stride : int
        The model-based signals read every ``stride``-th token.
    sink_tokens : int
        Leading tokens the model-based signals left out.
    """

    model: str
    n_states: int
    values: dict
    intervals: dict
    n_texts: int
    offset: int
    per_text: dict = field(default_factory=dict, repr=False, compare=False)
    stride: int = 1
    sink_tokens: int = 0

    def kind(self, signal: str) -> str:
        """ "level" (one value per state) or "step" (one per transition).

        Parameters
        ----------
        signal : str
            A signal name.

        Returns
        -------
        str
        """
        return SIGNALS[signal][0]

    def changes(self, signal: str) -> np.ndarray:
        """How much ``signal`` changes at each transition ``t`` (state ``t - 1`` to
        ``t``, ``t = 1..n_states - 1``): the absolute difference of a level
        signal, the value of a step signal.

        Parameters
        ----------
        signal : str
            A signal name.

        Returns
        -------
        ndarray of shape (n_states - 1,)
        """
        v = np.asarray(self.values[signal], dtype=np.float64)
        return np.abs(np.diff(v)) if self.kind(signal) == "level" else v

    def to_dict(self) -> dict:
        """JSON-able, rounded to 4 digits (NaN as None).

        Returns
        -------
        dict
        """

        def clean(a):
            return [None if not np.isfinite(x) else round(float(x), 4) for x in np.ravel(a)]

        return {
            "model": self.model,
            "n_states": self.n_states,
            "n_texts": self.n_texts,
            "offset": self.offset,
            "stride": self.stride,
            "sink_tokens": self.sink_tokens,
            "values": {k: clean(v) for k, v in self.values.items()},
            "intervals": {k: clean(v) for k, v in self.intervals.items()},
        }


def layer_profile(
    model: str,
    texts,
    *,
    states=None,
    offset: int = 4,
    max_length: int = 128,
    batch_size: int = 4,
    stride: int = 1,
    sink_tokens: int = 0,
    signals=None,
    random_state=0,
    verbose: bool = True,
) -> LayerProfile:
    """Every signal of :data:`SIGNALS` per hidden state of ``model`` on ``texts``.

    The state signals (angular distances, intrinsic dimension, largest unit's
    share) are computed on the extractor's pooled states (``states``, or
    extracted here at its defaults); the logit lens and block deletion run the
    model (decoder-only causal LMs; left out for other models).

    Parameters
    ----------
    model : str
        A model spec the extractor loads.
    texts : sequence of str
        The texts (held out from anything fitted on the profile).
    states : array-like of shape (n_texts, n_states, width), default=None
        Pooled states per layer (None: extracted here).
    offset : int, default=4
        Depth offset of ``angular_offset`` (Gromov et al. prune blocks of n layers).
    max_length, batch_size : int, default=128, 4
        Tokens per text and texts per forward pass of the model-based signals.
    stride : int, default=1
        The model-based signals read every ``stride``-th token (their cost is
        the LM head per position and per layer or block).
    sink_tokens : int, default=0
        Leading tokens the model-based signals leave out (attention sinks; pass
        the extractor's ``sink_tokens_``, as the pooled states do).
    signals : sequence of str, default=None
        A subset of :data:`SIGNALS` (None: all that apply).
    random_state : int, default=0
        Seeds the intervals.
    verbose : bool, default=True
        Progress bars.

    Returns
    -------
    LayerProfile
    """
    from ..extraction import HiddenStateExtractor, load_model, resolve_layout
    from ._model import deletion_kl, logit_lens_kl

    texts = list(texts)
    wanted = list(SIGNALS if signals is None else signals)
    unknown = sorted(set(wanted) - set(SIGNALS))
    if unknown:
        raise ValueError(f"Unknown signals {unknown}; choose from {list(SIGNALS)}.")
    if offset < 1:
        raise ValueError(f"offset must be at least 1, got {offset}.")
    if states is None:
        ext = HiddenStateExtractor(model, max_length=max_length).fit(texts)
        states = ext.reshape_by_layer(ext.transform(texts))
    cube = np.asarray(states, dtype=np.float64)
    if cube.ndim != 3 or cube.shape[0] != len(texts):
        raise ValueError(
            f"states must be (n_texts, n_states, width) for {len(texts)} texts, got {cube.shape}."
        )
    n_texts, n_states, _ = cube.shape
    per_text, values, intervals = {}, {}, {}
    lm, _ = load_model(model)
    causal = resolve_layout(lm).causal and not getattr(lm.config, "is_encoder_decoder", False)
    if "logit_lens_kl" in wanted and causal:
        per_text["logit_lens_kl"] = logit_lens_kl(
            model,
            texts,
            max_length=max_length,
            batch_size=batch_size,
            stride=stride,
            sink_tokens=sink_tokens,
            verbose=verbose,
        )
    if "deletion_kl" in wanted and causal:
        per_text["deletion_kl"] = deletion_kl(
            model,
            texts,
            max_length=max_length,
            batch_size=batch_size,
            stride=stride,
            sink_tokens=sink_tokens,
            verbose=verbose,
        )
    if "angular_next" in wanted:
        per_text["angular_next"] = np.stack(
            [angular_distance(cube[:, j], cube[:, j + 1]) for j in range(n_states - 1)], axis=1
        )
    if "angular_offset" in wanted:
        per_text["angular_offset"] = np.stack(
            [
                angular_distance(cube[:, j], cube[:, j + offset])
                if j + offset < n_states
                else np.full(n_texts, np.nan)
                for j in range(n_states)
            ],
            axis=1,
        )
    if "largest_unit_share" in wanted:
        per_text["largest_unit_share"] = np.stack(
            [largest_unit_share(cube[:, j]) for j in range(n_states)], axis=1
        )
    for name, table in per_text.items():
        rows = [
            mean_interval(table[:, j], random_state=random_state) for j in range(table.shape[1])
        ]
        values[name] = np.array([r[0] for r in rows])
        intervals[name] = np.array([[r[1], r[2]] for r in rows])
    if "intrinsic_dimension" in wanted:
        rows = [
            twonn_dimension(cube[:, j], random_state=random_state)
            for j in tqdm(range(n_states), desc="Intrinsic dimension", disable=not verbose)
        ]
        values["intrinsic_dimension"] = np.array([r[0] for r in rows])
        intervals["intrinsic_dimension"] = np.array([[r[1], r[2]] for r in rows])
    order = [s for s in SIGNALS if s in values]
    return LayerProfile(
        model,
        n_states,
        {s: values[s] for s in order},
        {s: intervals[s] for s in order},
        n_texts,
        offset,
        per_text,
        int(stride),
        int(sink_tokens),
    )


@dataclass(frozen=True)
class ProfileTest:
    """A segmentation's boundaries against one signal of a profile.

    Parameters
    ----------
    signal : str
        The signal.
    change_at_boundaries : float
        Mean change of the signal at the boundaries' transitions.
    null_mean : float
        The same, averaged over admissible random splits.
    p : float
        Share of admissible splits whose mean change is at least the observed
        one (exact when every admissible split is enumerated; with the observed
        one counted once more when they are drawn).
    own_boundaries : list of int
        The signal's own best split into as many scales (exact: a
        piecewise-constant least-squares fit for a level signal; the largest
        total step over every admissible split for a step signal).
    distance : float
        Mean distance, in layers, from those to the tested boundaries.
    n_splits : int
        Admissible random splits behind the null.
    min_p : float
        The smallest p the test can give (1 / ``n_splits`` when every split is
        enumerated, 1 / (``n_splits`` + 1) when they are drawn).
    """

    signal: str
    change_at_boundaries: float
    null_mean: float
    p: float
    own_boundaries: list
    distance: float
    n_splits: int = 0
    min_p: float = float("nan")


def boundaries_against_profile(
    profile: LayerProfile,
    boundaries,
    *,
    min_size: int = 1,
    max_splits: int = 5000,
    random_state=0,
) -> list[ProfileTest]:
    """Do ``boundaries`` sit where the profile's signals change most?

    For each signal the mean change at the boundaries (the transition into each
    scale after the first, :meth:`LayerProfile.changes`) is compared with the
    same for admissible random contiguous splits into as many scales (every
    scale of at least ``min_size`` states, as the segmenter allows).

    Parameters
    ----------
    profile : LayerProfile
        The profile.
    boundaries : sequence of int
        Start states of the scales after the first (e.g. ``boundaries_``).
    min_size : int, default=1
        Fewest states per scale of the random splits (the segmenter's
        ``min_scale_size_``).
    max_splits : int, default=5000
        Random splits behind the null (all when fewer).
    random_state : int, default=0
        Seeds the draw of random splits.

    Returns
    -------
    list of ProfileTest
        One per signal of the profile.

    Examples
    --------
    >>> v = {"logit_lens_kl": np.array([5.0, 5.0, 5.0, 1.0, 1.0, 1.0])}
    >>> p = LayerProfile("m", 6, v, {}, 10, 4)
    >>> t = boundaries_against_profile(p, [3])[0]
    >>> t.own_boundaries, round(t.p, 2)
    ([3], 0.2)
    """
    starts = [int(b) for b in boundaries]
    n = profile.n_states
    k = len(starts) + 1
    rand = random_contiguous_splits(
        n, k, min_size=min_size, max_splits=max_splits, random_state=random_state
    )
    m = n - k * (min_size - 1)
    exhaustive = comb(m - 1, k - 1) <= max_splits
    out = []
    for signal in profile.values:
        change = profile.changes(signal)  # index t - 1 for transition t
        finite = np.isfinite(change)
        fill = np.where(finite, change, np.nan)
        with warnings.catch_warnings():  # a split whose transitions are all undefined: NaN
            warnings.simplefilter("ignore", RuntimeWarning)
            observed = float(np.nanmean(fill[np.asarray(starts) - 1])) if starts else np.nan
            null = np.nanmean(fill[rand - 1], axis=1) if starts else np.array([np.nan])
        hits = np.sum(null >= observed - 1e-12)
        # every admissible split enumerated (the observed one among them): the exact
        # permutation p; drawn: the observed one counted once more
        p = float(hits / null.size if exhaustive else (1 + hits) / (1 + null.size))
        if profile.kind(signal) == "level":
            v = np.asarray(profile.values[signal], dtype=np.float64)
            if np.isfinite(v).all():
                own = optimal_segments(sse_costs(v), k, min_size) if starts else []
            else:
                own = []
        else:
            totals = np.nansum(fill[rand - 1], axis=1)
            own = rand[int(np.argmax(totals))].tolist() if starts else []
        out.append(
            ProfileTest(
                signal,
                observed,
                float(np.nanmean(null)) if np.isfinite(null).any() else float("nan"),
                p,
                [int(x) for x in own],
                boundary_distance(own, starts) if len(own) == len(starts) else float("nan"),
                int(len(rand)),
                1.0 / max(len(rand), 1) if exhaustive else 1.0 / (len(rand) + 1),
            )
        )
    return out


@dataclass(frozen=True)
class ShapeCheck:
    """A published qualitative shape of a profile, checked on a measured one.

    Parameters
    ----------
    signal : str
        The signal.
    expected : str
        The published shape, with its source.
    holds : bool or None
        Whether the measured profile has it (None: the signal was not measured).
    observed : str
        What was measured, in words and numbers.
    """

    signal: str
    expected: str
    holds: bool | None
    observed: str


def _deletion_shape(d, profile):
    top = set(np.argsort(d)[-2:].tolist())
    return 0 in top and d[-1] > np.median(d), (
        f"largest at blocks {sorted(int(t) + 1 for t in top)} of {len(d)} "
        f"(first {d[0]:.3g}, last {d[-1]:.3g}, median {np.median(d):.3g} nats)"
    )


def _dimension_shape(v, profile):
    peak = int(np.argmax(v))
    lo, hi = profile.intervals["intrinsic_dimension"][peak]
    width = float(hi - lo) if np.isfinite(hi - lo) else 0.0
    holds = 0 < peak < len(v) - 1 and v[peak] - max(v[0], v[-1]) > width
    return holds, (
        f"peak {v[peak]:.3g} at state {peak} of {len(v) - 1} (first {v[0]:.3g}, "
        f"last {v[-1]:.3g}; interval at the peak {width:.3g} wide)"
    )


def _lens_shape(k, profile):
    from scipy.stats import spearmanr

    rho = float(spearmanr(np.arange(len(k)), k).statistic)
    return rho < -0.8, (
        f"Spearman correlation with depth {rho:.2f}; peak {np.max(k):.3g} nats at "
        f"state {int(np.argmax(k))}, {k[-1]:.3g} at the last"
    )


#: signal -> (the published shape, its check on a measured profile)
_SHAPES = {
    "deletion_kl": (
        "deletion hurts most at the first and last blocks (Lad et al. 2024)",
        _deletion_shape,
    ),
    "intrinsic_dimension": (
        "intrinsic dimension rises, peaks inside, falls (Valeriani et al. 2023)",
        _dimension_shape,
    ),
    "logit_lens_kl": (
        "logit-lens KL falls with depth to 0 at the output (Belrose et al. 2023)",
        _lens_shape,
    ),
}


def reference_shapes(profile: LayerProfile) -> list[ShapeCheck]:
    """The profile against the published shapes a reviewer would compare it with.

    - Block deletion (Lad et al. 2024): deleting the first or the last block hurts
      most; middle blocks are robust. Holds when the two largest deletion KLs
      include the first block and the last block is above the median.
    - Intrinsic dimension (Valeriani et al. 2023; Cheng et al. 2025): it rises
      from the embeddings to a peak inside the network and falls towards the
      output. Holds when the peak is at an interior state and exceeds both ends
      by more than the interval at the peak is wide.
    - Logit lens (nostalgebraist 2020; Belrose et al. 2023): the KL to the final
      distribution falls with depth, to 0 at the last state. Holds when the
      Spearman correlation of KL with depth is below -0.8.

    Parameters
    ----------
    profile : LayerProfile
        A measured profile.

    Returns
    -------
    list of ShapeCheck
        One per shape (``holds`` None for a signal the profile lacks).

    Examples
    --------
    >>> v = {"intrinsic_dimension": np.array([5.0, 9.0, 12.0, 8.0, 6.0])}
    >>> i = {"intrinsic_dimension": np.array([[x - 0.5, x + 0.5] for x in v["intrinsic_dimension"]])}
    >>> [c.holds for c in reference_shapes(LayerProfile("m", 5, v, i, 10, 4))]
    [None, True, None]
    """
    out = []
    for signal, (expected, judge) in _SHAPES.items():
        v = profile.values.get(signal)
        if v is None or not np.isfinite(v).all():
            out.append(ShapeCheck(signal, expected, None, "not measured"))
        else:
            holds, observed = judge(np.asarray(v, dtype=np.float64), profile)
            out.append(ShapeCheck(signal, expected, bool(holds), observed))
    return out

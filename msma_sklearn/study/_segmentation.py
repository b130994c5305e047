"""The segmentation stage as a library function: one model's layers segmented by every
method, beside the nulls a reviewer asks for.

:func:`run_segmentation` fits every method of the registry that applies to the
model, compares each with the original README's preset and with random
contiguous splits, counts the scales the data support, and optionally segments a
random-weight twin of the model and a robustness grid (pooling x
standardisation x method).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from .._registry import SEGMENTATION_METHODS, build_segmenter
from ..extraction import has_random_weights
from ..metrics import scale_name_tests
from ._profile import profile_boundaries

__all__ = ["SegmentationResult", "run_segmentation", "segmenters_for"]


@dataclass(frozen=True)
class SegmentationResult:
    """Everything :func:`run_segmentation` measured for one model.

    ``fitted`` maps each method's table label to its fitted
    :class:`ScaleSegmenter` (left out of :meth:`to_dict`); ``used`` is the
    label of the one the later stages use; ``curves`` the scale-count curves
    (``"trained"`` or ``"this model"``, and ``"random weights"``).

    Parameters
    ----------
    model : str
        The model's name.
    family : str or None
        Its architecture family for the presets.
    n_states : int
        Hidden states segmented.
    random_weights_model : bool
        Whether the model itself has random weights.
    attention_spans : ndarray of shape (n_states,)
        Mean attention distance per hidden state, in tokens.
    used : str
        The method whose scales the later stages use.
    fitted : dict
        Method label -> fitted ScaleSegmenter.
    curves : dict
        Name -> ScaleCountCurve.
    random_weights : dict or None
        The random-weight twin's boundaries against the trained model's.
    robustness : list or None
        Boundaries under every pooling x standardisation.
    vs_readme : dict or None
        The boundaries against the original README's preset, beside random splits.
    name_tests : list of ScaleNameTest
        Each scale's name against the probe label of that name, on the used
        method's scales (empty without probes).
    profile : LayerProfile or None
        The layer profile on held-out texts (:func:`profile_boundaries`).
    profile_tests : list of ProfileTest
        The used method, refitted without the profile's texts, against each
        signal.
    profile_boundaries : list of int or None
        That refit's boundaries.
    profile_shapes : list of ShapeCheck
        The profile against published shapes.
    profile_seconds : float
        Wall time of the profile.
    alpha : float
        The level at which the agreement with the README preset and the profile
        tests are read.
    """

    model: str
    family: str | None
    n_states: int
    random_weights_model: bool
    attention_spans: np.ndarray
    used: str
    fitted: dict = field(repr=False, compare=False)
    curves: dict = field(default_factory=dict)
    random_weights: dict | None = None
    robustness: list | None = None
    vs_readme: dict | None = None
    name_tests: list = field(default_factory=list)
    profile: object = field(default=None, repr=False, compare=False)
    profile_tests: list = field(default_factory=list)
    profile_boundaries: list | None = None
    profile_shapes: list = field(default_factory=list)
    profile_seconds: float = 0.0
    alpha: float = 0.05

    @property
    def chosen(self):
        """The fitted segmenter whose scales the later stages use."""
        return self.fitted[self.used]

    def to_dict(self) -> dict:
        """The JSON-able summary ``msma run`` writes (``summary.json``'s ``segment``).

        Returns
        -------
        dict
        """
        cka = self.fitted["cka"]
        return {
            "family": self.family,
            "n_states": self.n_states,
            "random_weights_model": self.random_weights_model,
            "attention_spans": np.round(self.attention_spans, 3).tolist(),
            "adjacent_mi": np.round(self.fitted["mi"].adjacent_mi_, 4).tolist(),
            "layer_similarity": np.round(cka.layer_similarity_, 4).tolist(),
            "share_denominator": cka.share_denominator_,
            "min_scale_size": cka.min_scale_size_,
            "methods": {
                label: {
                    "scale_layers": seg.scale_layers_,
                    "boundaries": seg.boundaries_,
                    "shares": {k: round(v, 4) for k, v in seg.layer_shares_.items()},
                    "table_row": seg.distribution_table(f"{self.model} · {label}"),
                    "boundary_confidence": (
                        seg.boundary_confidence_.round(3).tolist()
                        if hasattr(seg, "boundary_confidence_")
                        else None
                    ),
                    "stability": getattr(seg, "bootstrap_stability_", None),
                }
                for label, seg in self.fitted.items()
            },
            "vs_readme": self.vs_readme,
            "scale_count": {
                k: {
                    "rows": c.as_rows(),
                    "best_k": c.best_k,
                    "n_splits": c.n_splits,
                    "null_model": c.null_model,
                }
                for k, c in self.curves.items()
            },
            "random_weights": self.random_weights,
            "robustness": self.robustness,
            "used": self.used,
            "name_tests": [
                {
                    "label": t.label,
                    "accuracy": t.accuracy,
                    "best_other": t.best_other,
                    "advantage": round(t.advantage, 4),
                    "ci": [round(v, 4) for v in t.ci],
                    "p_more_holm": float(f"{t.p_more_holm:.3g}"),
                    "p_less_holm": float(f"{t.p_less_holm:.3g}"),
                    "verdict": t.verdict,
                }
                for t in self.name_tests
            ],
            "profile": self.profile_summary(),
        }

    def profile_summary(self) -> dict | None:
        """The layer profile, the held-out refit's boundaries, their tests and the
        published shapes, JSON-able (None without a profile).

        Returns
        -------
        dict or None
        """
        if self.profile is None:
            return None
        return {
            **self.profile.to_dict(),
            "boundaries": self.profile_boundaries,
            "seconds": round(self.profile_seconds, 1),
            "tests": [
                {k: (round(v, 4) if isinstance(v, float) else v) for k, v in asdict(t).items()}
                for t in self.profile_tests
            ],
            "shapes": [asdict(c) for c in self.profile_shapes],
        }


def segmenters_for(family, *, n_bootstrap=0, random_state=0, spans=None) -> dict:
    """Every registered segmentation method that applies to a model of ``family``,
    unfitted, by table label, in the registry's order."""
    return {
        m.label: build_segmenter(
            m, n_bootstrap=n_bootstrap, random_state=random_state, family=family, spans=spans
        )
        for m in SEGMENTATION_METHODS.values()
        if m.applies(family)
    }


def compare_boundaries(
    starts, reference, n_states: int, random_state=0, *, min_size: int = 1
) -> dict:
    """ARI and boundary distance of ``starts`` to ``reference``, beside random contiguous
    splits of ``n_states`` hidden states (:func:`compare_to_random_splits`), rounded."""
    from ..segmentation import compare_to_random_splits

    c = compare_to_random_splits(
        starts, reference, n_states, min_size=min_size, random_state=random_state
    )
    return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in asdict(c).items()}


def scale_count_curve(states, random_state=0):
    """The number of scales the data support (ScaleSegmenter's k selection, CKA)."""
    from ..segmentation import ScaleSegmenter

    seg = ScaleSegmenter("cka", n_scales="auto", random_state=random_state).fit(states)
    return seg.scale_count_curve_


def pooling_variants(extractor) -> dict:
    """Extractor settings of the robustness grid's pooling axis (distinct ones only)."""
    variants = {f"mean (sink_tokens={extractor.sink_tokens_})": {}}
    if extractor.sink_tokens_ != 0:
        variants["mean (sink_tokens=0)"] = {"pooling": "mean", "sink_tokens": 0}
    variants["last"] = {"pooling": "last"}
    return variants


def _states(extractor, texts, columns, **overrides):
    """``extractor``'s settings with ``overrides``, refitted on ``texts``: their states."""
    import pandas as pd
    from sklearn.base import clone

    X = clone(extractor).set_params(**overrides).fit(texts).transform(texts)
    return pd.DataFrame(X, columns=columns)


def robustness_grid(extractor, states, texts, *, n_bootstrap=20, random_state=0) -> list:
    """Pooling x standardisation x method: each configuration's boundary distribution."""
    from ..segmentation import ScaleSegmenter

    rows = []
    for pooling, settings in pooling_variants(extractor).items():
        frame = (
            _states(extractor, texts, states.columns, **settings) if settings else states
        )  # the first variant is the run's own states
        for standardize in (True, False):
            for method in ("cka", "mi"):
                seg = ScaleSegmenter(
                    method,
                    standardize=standardize,
                    n_bootstrap=n_bootstrap,
                    random_state=random_state,
                ).fit(frame)
                rows.append(
                    {
                        "label": f"{pooling} · {'standardised' if standardize else 'raw'} · "
                        f"{method}",
                        "pooling": pooling,
                        "standardize": standardize,
                        "method": method,
                        "boundaries": seg.boundaries_,
                        "bootstrap_boundaries": (
                            seg.bootstrap_boundaries_.tolist()
                            if hasattr(seg, "bootstrap_boundaries_")
                            else []
                        ),
                        "stability": getattr(seg, "bootstrap_stability_", None),
                    }
                )
    return rows


def run_segmentation(
    model: str,
    extractor,
    states,
    texts,
    *,
    family: str | None = None,
    used: str = "cka",
    n_bootstrap: int = 20,
    random_state: int = 0,
    random_weights: bool | str = "auto",
    robustness: bool | str = "auto",
    random_weights_model: bool | None = None,
    probes: dict | None = None,
    profile_texts: int = 0,
    profile_stride: int = 4,
    alpha: float = 0.05,
) -> SegmentationResult:
    """Segment ``model``'s hidden states with every applicable method, beside nulls.

    Parameters
    ----------
    model : str
        Its name (for the tables).
    extractor : HiddenStateExtractor
        Fitted; it gives the attention spans, and the settings with which the
        random-weight twin and the pooling variants are extracted.
    states : DataFrame
        ``extractor``'s output on ``texts`` (its feature names as columns).
    texts : list of str
        The texts behind the rows.
    family : str, default=None
        The architecture family of the original README's presets (None: the
        presets that need one are left out).
    used : str, default="cka"
        The ``segmentation.method`` whose scales the later stages use.
    n_bootstrap : int, default=20
        Refits on subsamples of the texts (boundary confidence, robustness).
    random_state : int, default=0
        Seeds every data-driven method, the nulls and the refits.
    random_weights : bool or "auto", default="auto"
        Also segment ``random:<model>`` (same architecture, random weights)
        with CKA and compare its boundaries with the trained model's. "auto":
        for a trained model (a random-weight model has no twin of its own).
    robustness : bool or "auto", default="auto"
        Also refit CKA and MI under every pooling x standardisation. "auto":
        for a trained model.
    random_weights_model : bool, default=None
        ``model`` itself has random weights (a tiny test model): said in the
        tables. None: :func:`~msma_sklearn.extraction.has_random_weights`.
    probes : dict, default=None
        Label -> :class:`~msma_sklearn.metrics.LayerProbes` of these texts
        (``run_extraction``'s); each label that names a scale is tested on the
        used method's scales (:func:`~msma_sklearn.metrics.scale_name_tests`).
    profile_texts : int, default=0
        Texts of the layer profile (:func:`profile_boundaries`); 0 leaves it out.
    profile_stride : int, default=4
        Every how many tokens the profile's logit lens and deletion read.
    alpha : float, default=0.05
        The level of the scale-name tests, and at which the README-preset
        agreement and the profile tests are read.

    Returns
    -------
    SegmentationResult
    """
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must lie in (0, 1), got {alpha}.")
    if random_weights_model is None:
        random_weights_model = has_random_weights(model)
    if random_weights == "auto":
        random_weights = not random_weights_model
    if robustness == "auto":
        robustness = not random_weights_model
    spans = extractor.attention_span(texts)
    n_states = len(extractor.layers_)
    fitted = {
        label: seg.fit(states)
        for label, seg in segmenters_for(
            family, n_bootstrap=n_bootstrap, random_state=random_state, spans=spans
        ).items()
    }
    readme = fitted.get(SEGMENTATION_METHODS["readme"].label)
    vs_readme = (
        {
            label: compare_boundaries(
                seg.boundaries_,
                readme.boundaries_,
                n_states,
                random_state,
                min_size=getattr(seg, "min_scale_size_", 1),
            )
            for label, seg in fitted.items()
            if seg is not readme
        }
        if readme is not None
        else None
    )
    trained = scale_count_curve(states, random_state)
    curves = {"this model" if random_weights_model else "trained": trained}
    null = None
    if random_weights:
        r_states = _states(extractor, texts, states.columns, model=f"random:{model}")
        r_seg = build_segmenter(
            SEGMENTATION_METHODS["cka"], n_bootstrap=n_bootstrap, random_state=random_state
        ).fit(r_states)
        curves["random weights"] = scale_count_curve(r_states, random_state)
        null = {
            "scale_layers": r_seg.scale_layers_,
            "boundaries": r_seg.boundaries_,
            "stability": getattr(r_seg, "bootstrap_stability_", None),
            "vs_trained": compare_boundaries(
                r_seg.boundaries_,
                fitted["cka"].boundaries_,
                n_states,
                random_state,
                min_size=r_seg.min_scale_size_,
            ),
        }
    grid = (
        robustness_grid(
            extractor, states, texts, n_bootstrap=n_bootstrap, random_state=random_state
        )
        if robustness
        else None
    )
    chosen = fitted[SEGMENTATION_METHODS[used].label]
    name_tests = (
        scale_name_tests(
            probes,
            chosen.scale_layers_,
            positions={int(j): i for i, j in enumerate(extractor.layers_)},
            alpha=alpha,
            random_state=random_state,
        )
        if probes
        else []
    )
    prof = (
        profile_boundaries(
            extractor.model,
            extractor,
            states,
            list(texts),
            chosen,
            n_texts=profile_texts,
            stride=profile_stride,
            random_state=random_state,
        )
        if profile_texts
        else None
    )
    return SegmentationResult(
        model=model,
        family=family,
        n_states=n_states,
        random_weights_model=random_weights_model,
        attention_spans=np.asarray(spans, dtype=float),
        used=SEGMENTATION_METHODS[used].label,
        fitted=fitted,
        curves=curves,
        random_weights=null,
        robustness=grid,
        vs_readme=vs_readme,
        name_tests=name_tests,
        alpha=alpha,
        **(
            {
                "profile": prof["profile"],
                "profile_tests": prof["tests"],
                "profile_boundaries": prof["boundaries"],
                "profile_shapes": prof["shapes"],
                "profile_seconds": prof["seconds"],
            }
            if prof
            else {}
        ),
    )

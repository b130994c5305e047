"""What ``ManifoldAligner`` does around the solver, as plain functions: the scale layout of
the columns, the PCA dimension for few rows, the per-scale standardisation, and the
warnings a fitted map deserves."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

import numpy as np
import torch
from sklearn.decomposition import PCA
from sklearn.exceptions import ConvergenceWarning

from ..utils._warnings import warn_user
from ._objective import pca_dimension_scores
from ._solver import TERMS, MapFit, SolverSettings

__all__ = [
    "ROWS_PER_DIM",
    "ScaleLayoutMixin",
    "Standardisation",
    "choose_components",
    "fit_standardisation",
    "fit_warnings",
    "fitted_attributes",
    "scale_layout",
]

_SCALE_NAME = re.compile(r"^(.+)__(\d+)$")
_DEFAULT_SCALES = ("local", "intermediate", "global")
#: below this many rows per dimension a full-width map is not determined by the data
ROWS_PER_DIM = 5
#: "auto" PCA candidates, as fractions of the number of rows (n < 5 d only)
_PCA_FRACTIONS = (0.1, 0.2, 0.35, 0.5, 0.7, 0.85)
#: a term whose mean gradient share is below this barely acts
_INERT_SHARE = 1e-3


def scale_layout(n_features: int, names, scales) -> tuple[tuple[str, ...], int]:
    """The scales and their common width: ``scales`` when given, else parsed from
    ``scale__i`` feature names, else local / intermediate / global."""
    if scales is not None:
        scales = tuple(str(s) for s in scales)
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


def choose_components(
    blocks: dict,
    pairs,
    order: np.ndarray,
    *,
    n_components,
    width: int,
    validation_fraction: float,
    family: str,
) -> tuple[int | None, dict | None, str | None]:
    """PCA dimensions per scale: ``(k, scores, warning)``.

    ``n_components="auto"`` with fewer than :data:`ROWS_PER_DIM` rows per dimension
    chooses among fractions of the row count (and None) by the closed form's r² on the
    first ``validation_fraction`` of ``order``; ``scores`` maps each candidate to that
    r². ``warning`` is the message the caller should show (None: nothing to say).
    """
    n_rows = len(order)
    few = n_rows < ROWS_PER_DIM * width
    if n_components == "auto":
        if not few:
            return None, None, None
        n_val = max(2, math.ceil(validation_fraction * n_rows))
        val_rows, train_rows = np.sort(order[:n_val]), np.sort(order[n_val:])
        limit = min(width, len(train_rows)) - 1
        candidates = sorted(
            {max(1, min(limit, round(f * n_rows))) for f in _PCA_FRACTIONS if limit >= 1}
        )
        scores = pca_dimension_scores(
            blocks, pairs, train_rows, val_rows, [None, *candidates], family
        )
        k = max(scores, key=lambda c: scores[c])
        # one stable message (shown once per search, not once per fit): the rows, the
        # scores and the choice are in the fitted attributes
        return (
            k,
            scores,
            f"ManifoldAligner: fewer rows than {ROWS_PER_DIM} per dimension of the scales "
            "(n < 5 d): a full-width map is not determined by so few rows, so "
            "n_components='auto' chose a PCA dimension by the closed form's held-out r² on "
            "a validation fraction (n_components_, n_components_scores_). Pass an int or "
            "None to fix it.",
        )
    if n_components is None:
        if few:
            return (
                None,
                None,
                "ManifoldAligner: fewer rows than 5 per dimension of the scales (n < 5 d) "
                "with n_components=None: the maps are not determined by so few rows and "
                "will interpolate them. n_components='auto' chooses a PCA dimension on "
                "held-out rows.",
            )
        return None, None, None
    return int(n_components), None, None


@dataclass
class Standardisation:
    """Per scale: the raw mean and RMS, an optional PCA, and the mean and RMS after it.

    :meth:`apply` maps raw blocks to centred, unit-RMS (PCA) coordinates.
    """

    raw_mean: dict = field(default_factory=dict)
    raw_rms: dict = field(default_factory=dict)
    pca: dict | None = None
    mean: dict = field(default_factory=dict)
    rms: dict = field(default_factory=dict)

    def apply(self, blocks: dict) -> dict:
        """Raw blocks -> centred, unit-RMS (PCA) coordinates."""
        out = {}
        for s, B in blocks.items():
            Z = self.pca[s].transform(B) if self.pca else B
            out[s] = (Z - self.mean[s]) / self.rms[s]
        return out

    def to_original(self, z: np.ndarray, scale: str) -> np.ndarray:
        """Standardised (PCA) coordinates of ``scale`` back to its original coordinates."""
        values = z * self.rms[scale] + self.mean[scale]
        return self.pca[scale].inverse_transform(values) if self.pca else values

    def scaled(self, B: np.ndarray, scale: str) -> np.ndarray:
        """Original coordinates centred and divided by the training rows' RMS (no PCA)."""
        return (B - self.raw_mean[scale]) / self.raw_rms[scale]


def fit_standardisation(blocks: dict, n_components: int | None) -> Standardisation:
    """Fit each scale's centring, RMS and (``n_components``) PCA on ``blocks``."""
    st = Standardisation(pca={} if n_components else None)
    for s, B in blocks.items():
        st.raw_mean[s] = B.mean(0)
        rms = float(np.sqrt(((B - st.raw_mean[s]) ** 2).mean()))
        if rms == 0:
            raise ValueError(f"Scale {s!r} is constant across samples: nothing to align.")
        st.raw_rms[s] = rms
        if n_components:
            k = min(n_components, B.shape[1], B.shape[0] - 1)
            # exact: a randomized SVD's trailing components change with the seed, and so
            # did 15% of a closed-form map's held-out predictions (MiniLM, 172 of 1,152)
            st.pca[s] = PCA(k, svd_solver="full").fit(B)
        Z = st.pca[s].transform(B) if st.pca else B
        st.mean[s] = Z.mean(0)
        st.rms[s] = float(np.sqrt(((Z - st.mean[s]) ** 2).mean()))
    return st


def fit_warnings(key: str, fit: MapFit, settings: SolverSettings) -> list[tuple[str, type]]:
    """``(message, category)`` for a fitted map: not converged, the start returned, or a
    term whose gradient share says it barely acts."""
    out = []
    if not fit.converged:
        out.append(
            (
                f"ManifoldAligner: map {key!r} did not converge in max_iter={settings.max_iter} "
                f"epochs (the training objective still dropped by more than tol={settings.tol} "
                f"within {settings.n_iter_no_change} checks); raise max_iter.",
                ConvergenceWarning,
            )
        )
    if fit.returned_start:
        out.append(
            (
                f"ManifoldAligner: on map {key!r} no step lowered the training objective "
                f"below its start ({fit.start_objective:.6g}), down to learning_rate / "
                f"2**{settings.n_iter_no_change}; the start is returned (prediction_change_ "
                "is 0). Lower learning_rate, or the start is already the optimum.",
                ConvergenceWarning,
            )
        )
    inert = [
        f"lambda_{t}={settings.weights[t]}"
        for t in TERMS
        if settings.weights.get(t, 0.0) > 0 and fit.shares and fit.shares.get(t, 0.0) < _INERT_SHARE
    ]
    if inert:
        out.append(
            (
                f"ManifoldAligner: on map {key!r}, {', '.join(inert)} contributed less than "
                f"{_INERT_SHARE:g} of the gradient norm over training: the term barely "
                "acts. Raise its lambda or set it to 0 (term_gradient_share_).",
                UserWarning,
            )
        )
    return out


def fitted_attributes(pairs, fits: list[MapFit], family: str) -> dict:
    """The aligner's fitted attributes from one :class:`MapFit` per pair."""
    out = {
        name: {}
        for name in (
            "maps_",
            "critics_",
            "loss_curve_",
            "coef_",
            "intercept_",
            "term_gradient_share_",
            "prediction_change_",
            "objective_",
        )
    }
    out["n_iter_"] = np.array([f.n_iter for f in fits], dtype=np.int64)
    out["n_steps_"] = np.array([f.n_steps for f in fits], dtype=np.int64)
    for (a, b), fit in zip(pairs, fits, strict=True):
        key = f"{a}->{b}"
        out["maps_"][key], out["critics_"][key] = fit.map, fit.critic
        out["loss_curve_"][key] = fit.curve
        out["term_gradient_share_"][key] = fit.shares
        out["prediction_change_"][key] = fit.prediction_change
        out["objective_"][key] = {"start": fit.start_objective, "end": fit.end_objective}
        if family != "mlp":
            with torch.no_grad():
                W, bias = fit.map.affine()
            out["coef_"][key] = W.detach().double().numpy().copy()
            out["intercept_"][key] = bias.detach().double().numpy().copy()
    return out


class ScaleLayoutMixin:
    """How :class:`ManifoldAligner` reads its input: the scales' blocks, the pairs, the
    PCA dimension and the standardisation, and how it stores fitted maps."""

    def _layout(self, n_features, names):
        return scale_layout(n_features, names, self.scales)

    def _blocks(self, X):
        width = X.shape[1] // len(self.scales_)
        return {s: X[:, i * width : (i + 1) * width] for i, s in enumerate(self.scales_)}

    def _resolve_components(self, blocks, order: np.ndarray) -> int | None:
        """PCA dimensions per scale; "auto" chooses them on held-out rows when n < 5 d."""
        k, self.n_components_scores_, message = choose_components(
            blocks,
            self.pairs_,
            order,
            n_components=self.n_components,
            width=self.scale_width_,
            validation_fraction=self.validation_fraction,
            family="orthogonal" if self.map == "orthogonal" else "linear",
        )
        if message:
            warn_user(message)
        return k

    def _standardise(self, blocks, fit: bool):
        """Blocks in centred, unit-RMS (PCA) coordinates; ``fit``: fit that first."""
        if fit:
            self._std = fit_standardisation(blocks, self.n_components_)
            self.pca_ = self._std.pca
        return self._std.apply(blocks)

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
        for name, value in fitted_attributes(self.pairs_, fits, self.map).items():
            setattr(self, name, value)
        settings = self._settings()
        for (a, b), fit in zip(self.pairs_, fits, strict=True):
            for message, category in fit_warnings(f"{a}->{b}", fit, settings):
                warn_user(message, category)

    def _weights(self) -> dict[str, float]:
        return self._settings().weights

    def _settings(self) -> SolverSettings:
        return SolverSettings.from_params(self.get_params(deep=False))

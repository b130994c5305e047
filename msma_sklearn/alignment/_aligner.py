"""ManifoldAligner: learned maps between adjacent semantic scales."""

from __future__ import annotations

import re
import warnings
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

from ..metrics import (
    distance_correlation,
    gaussian_kl,
    linear_cka,
    procrustes_disparity,
)
from ._objective import (
    BilinearCritic,
    curvature_loss,
    geometry_loss,
    infonce_bound,
    make_map,
    ot_loss,
    procrustes_rotation,
)

__all__ = ["ManifoldAligner"]

_SCALE_NAME = re.compile(r"^(.+)__(\d+)$")
_DEFAULT_SCALES = ("local", "intermediate", "global")
_SCORINGS = ("r2", "cka", "neg_procrustes", "neg_kl", "dcor")


class ManifoldAligner(TransformerMixin, BaseEstimator):
    """Maps between semantic scales trained with the MSMA objective.

    ``L = lambda_geo L_geo + lambda_info L_info + lambda_curv L_curv + lambda_ot L_ot``
    for each (source, target) pair of scales, by default global -> intermediate
    (f_GI) and intermediate -> local (f_IL), as in the MSMA paper. The model
    is never fine-tuned: the maps act on frozen, pooled states.

    Each scale is centred and divided by its RMS (optionally reduced by PCA
    first). Every map starts at the closed-form orthogonal Procrustes
    solution; with ``map="orthogonal"`` and only ``lambda_geo`` non-zero the fit
    *is* that solution.

    Parameters
    ----------
    lambda_geo, lambda_info, lambda_curv : float, defaults 0.1, 0.1, 0.01
        Weights of the geometric (Procrustes residual), information (negative
        InfoNCE bound with a trained bilinear critic) and curvature (Hutchinson
        estimate of the map's squared Hessian norm; zero for affine maps)
        terms, as in the paper.
    lambda_ot : float, default=0.0
        Weight of an entropic OT (Sinkhorn, POT) term between minibatches of
        mapped and target points.
    map : {"orthogonal", "linear", "mlp"}, default="orthogonal"
    pairs : sequence of (source, target) scale names, default=None
        None: ``[("global", "intermediate"), ("intermediate", "local")]``.
    n_components : int, default=None
        PCA dimensions per scale before alignment (None: keep all).
    hidden_size : int, default=64
        Width of the residual MLP (``map="mlp"``).
    learning_rate : float, default=0.01
    max_iter : int, default=300
        Epochs of Adam.
    batch_size : int, default=1024
        Minibatch size; also the number of candidates in each InfoNCE
        classification, so the bound is at most ``log(batch_size)``.
    tol : float, default=5e-3
        Stop when the mean loss of the last 10 epochs differs from that of the
        10 before by less than ``tol`` (relative); otherwise warn with
        ``ConvergenceWarning``.
    scoring : {"r2", "cka", "neg_procrustes", "neg_kl", "dcor"}, default="r2"
        What :meth:`score` measures; all are independent of the lambdas.
    scales : sequence of str, default=None
        Scale names for a plain array (equal-width blocks); None reads the
        feature names (``local__0 ...``) or, without names, assumes
        ``("local", "intermediate", "global")``.
    device : str, default="cpu"
    n_jobs : int, default=None
        Pairs are fitted in parallel threads (independent CPU work).
    random_state : int, RandomState or None, default=None
    verbose : int, default=0

    Attributes
    ----------
    scales_ : tuple of str
    scale_dims_ : dict
    pairs_ : list of (str, str)
    maps_ : dict
        ``"global->intermediate"`` -> the fitted torch module (CPU, eval mode).
    coef_ : dict
        For orthogonal and linear maps: ``W`` with ``mapped = z_source @ W + b``
        in standardised coordinates.
    intercept_ : dict
    loss_curve_ : dict
        Pair -> list of per-epoch dicts with each term and the total.
    n_iter_ : ndarray of int, shape (n_pairs,)
        Epochs run per pair, in ``pairs_`` order (0: the closed-form
        Procrustes case).
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
        "pairs": [None, list, tuple],
        "n_components": [None, Interval(Integral, 1, None, closed="left")],
        "hidden_size": [Interval(Integral, 1, None, closed="left")],
        "learning_rate": [Interval(Real, 0, None, closed="neither")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "batch_size": [Interval(Integral, 2, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "scoring": [StrOptions(set(_SCORINGS))],
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
        pairs=None,
        n_components=None,
        hidden_size=64,
        learning_rate=0.01,
        max_iter=300,
        batch_size=1024,
        tol=5e-3,
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
        self.pairs = pairs
        self.n_components = n_components
        self.hidden_size = hidden_size
        self.learning_rate = learning_rate
        self.max_iter = max_iter
        self.batch_size = batch_size
        self.tol = tol
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

    def _standardise(self, blocks, fit: bool):
        out = {}
        if fit:
            self._mean, self._rms, self.pca_ = {}, {}, ({} if self.n_components else None)
        for s, B in blocks.items():
            if fit:
                if self.n_components:
                    k = min(self.n_components, B.shape[1], B.shape[0] - 1)
                    self.pca_[s] = PCA(k, svd_solver="full").fit(B)
                Z = self.pca_[s].transform(B) if self.pca_ else B
                self._mean[s] = Z.mean(0)
                rms = float(np.sqrt(((Z - self._mean[s]) ** 2).mean()))
                if rms == 0:
                    raise ValueError(f"Scale {s!r} is constant across samples: nothing to align.")
                self._rms[s] = rms
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
        Z = self._standardise(self._blocks(X), fit=True)
        self.scale_dims_ = {s: Z[s].shape[1] for s in self.scales_}
        rng = check_random_state(self.random_state)
        seeds = rng.randint(np.iinfo(np.int32).max, size=len(self.pairs_))
        fits = Parallel(n_jobs=self.n_jobs, prefer="threads")(
            delayed(self._fit_pair)(Z[a], Z[b], int(seed))
            for (a, b), seed in zip(self.pairs_, seeds, strict=True)
        )
        self._store_fits(fits)
        return self

    def fit_store(self, store, transformer=None):
        """Fit from an on-disk store in minibatches, one shard in memory at a time.

        Two streaming passes compute each scale's mean and RMS and each
        pair's cross-covariance (for the closed-form Procrustes start); then
        every epoch visits the shards in a seeded random order, shuffles rows
        within a shard and takes minibatches of ``batch_size``. Memory grows
        with the shard size, not with the number of rows. Fitted attributes
        are those of :meth:`fit`; with ``map="orthogonal"`` and only
        ``lambda_geo`` the result equals :meth:`fit` on the whole array.

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
        self._validate_params()
        if self.n_components is not None:
            raise ValueError(
                "fit_store does not support n_components (PCA needs all rows at once); reduce "
                "the states before storing them, or use fit()."
            )

        columns = store.feature_names()

        def prepared(shard) -> np.ndarray:
            X = np.asarray(shard, dtype=np.float64)
            if transformer is None:
                return X
            if hasattr(transformer, "feature_names_in_"):  # fitted on named columns
                import pandas as pd

                X = pd.DataFrame(X, columns=columns)
            return np.asarray(transformer.transform(X), dtype=np.float64)

        def chunks():
            for k in range(store.n_shards):
                yield prepared(store.read_shard(k))

        names = (
            transformer.get_feature_names_out()
            if transformer is not None
            else store.feature_names()
        )
        self.n_features_in_ = len(names)
        self.feature_names_in_ = np.asarray(names, dtype=object)
        self._set_pairs(len(names), self.feature_names_in_)
        self.pca_ = None
        # pass 1: mean and RMS per scale (Chan et al.'s pairwise update of sums)
        count, sums, squares = 0, {}, {}
        for X in chunks():
            for name, B in self._blocks(X).items():
                sums[name] = sums.get(name, 0.0) + B.sum(0)
                squares[name] = squares.get(name, 0.0) + (B**2).sum(0)
            count += X.shape[0]
        if count < 8:
            raise ValueError(f"The store holds {count} rows; fitting needs at least 8.")
        self._mean, self._rms = {}, {}
        for name in self.scales_:
            mean = sums[name] / count
            var = np.maximum(squares[name] / count - mean**2, 0.0)
            rms = float(np.sqrt(var.mean()))
            if rms == 0:
                raise ValueError(f"Scale {name!r} is constant across samples: nothing to align.")
            self._mean[name], self._rms[name] = mean, rms
        # pass 2: cross-covariance of each pair, standardised
        cross = {pair: 0.0 for pair in self.pairs_}
        for X in chunks():
            Z = self._standardise(self._blocks(X), fit=False)
            for a, b in self.pairs_:
                cross[(a, b)] = cross[(a, b)] + Z[a].T @ Z[b]
        self.scale_dims_ = {name: len(self._mean[name]) for name in self.scales_}
        rng = check_random_state(self.random_state)
        seeds = rng.randint(np.iinfo(np.int32).max, size=len(self.pairs_))
        device = torch.device(self.device)
        fits = []
        for (a, b), seed in zip(self.pairs_, seeds, strict=True):

            def batches(gen, a=a, b=b):
                # one shard in memory at a time (memory maps kept open would stay resident)
                for k in torch.randperm(store.n_shards, generator=gen).tolist():
                    Z = self._standardise(self._blocks(prepared(store.read_shard(k))), fit=False)
                    s_all = torch.as_tensor(Z[a], dtype=torch.float32, device=device)
                    t_all = torch.as_tensor(Z[b], dtype=torch.float32, device=device)
                    order = torch.randperm(len(s_all), generator=gen)
                    n_batches = max(1, -(-len(s_all) // self.batch_size))
                    for idx in torch.tensor_split(order, n_batches):
                        idx = idx.to(device)
                        yield s_all[idx], t_all[idx]

            R = _rotation(cross[(a, b)], self.scale_dims_[a], self.scale_dims_[b])
            fits.append(
                self._train_pair(R, self.scale_dims_[a], self.scale_dims_[b], int(seed), batches)
            )
        self._store_fits(fits)
        return self

    def _set_pairs(self, n_features, names) -> None:
        self.scales_, _ = self._layout(n_features, names)
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

    def _store_fits(self, fits) -> None:
        self.maps_, self.critics_, self.loss_curve_ = {}, {}, {}
        self.coef_, self.intercept_ = {}, {}
        self.n_iter_ = np.array([f[3] for f in fits], dtype=np.int64)
        for (a, b), (fmap, critic, curve, _) in zip(self.pairs_, fits, strict=True):
            key = f"{a}->{b}"
            self.maps_[key], self.critics_[key] = fmap, critic
            self.loss_curve_[key] = curve
            if self.map != "mlp":
                W, bias = _affine(fmap)
                self.coef_[key], self.intercept_[key] = W, bias

    def _fit_pair(self, S: np.ndarray, T: np.ndarray, seed: int):
        d_in, d_out = S.shape[1], T.shape[1]
        width = max(d_in, d_out)
        pad = np.zeros((S.shape[0], width))
        S_pad, T_pad = pad.copy(), pad.copy()
        S_pad[:, :d_in], T_pad[:, :d_out] = S, T
        R = procrustes_rotation(S_pad, T_pad)[:d_in, :d_out]
        device = torch.device(self.device)
        s_all = torch.as_tensor(S, dtype=torch.float32, device=device)
        t_all = torch.as_tensor(T, dtype=torch.float32, device=device)
        n = S.shape[0]
        n_batches = max(1, -(-n // self.batch_size))  # near-equal batches covering every row

        def batches(gen):
            order = torch.randperm(n, generator=gen)
            for idx in torch.tensor_split(order, n_batches):
                idx = idx.to(device)
                yield s_all[idx], t_all[idx]

        return self._train_pair(R, d_in, d_out, seed, batches)

    def _train_pair(self, R, d_in: int, d_out: int, seed: int, batches):
        """Start at the Procrustes rotation ``R``; Adam over ``batches(gen)`` per epoch."""
        with torch.random.fork_rng(devices=[]):  # seeded init, global RNG untouched
            torch.manual_seed(seed)
            fmap = make_map(self.map, d_in, d_out, R, self.hidden_size)
            critic = BilinearCritic(d_out, d_out)
        only_geo = self.lambda_info == 0 and self.lambda_curv == 0 and self.lambda_ot == 0
        if self.map == "orthogonal" and only_geo:
            return fmap.eval(), critic.eval(), [], 0  # the closed form is the optimum
        device = torch.device(self.device)
        fmap, critic = fmap.to(device), critic.to(device)
        params = list(fmap.parameters()) + (list(critic.parameters()) if self.lambda_info else [])
        opt = torch.optim.Adam(params, lr=self.learning_rate)
        gen = torch.Generator().manual_seed(seed)
        weights = {
            "geo": self.lambda_geo,
            "info": self.lambda_info,
            "curv": self.lambda_curv,
            "ot": self.lambda_ot,
        }
        curve, n_iter, converged = [], 0, False
        for epoch in range(self.max_iter):
            totals = dict.fromkeys(("total", "geo", "info", "curv", "ot"), 0.0)
            n_batches = 0
            for s, t in batches(gen):
                n_batches += 1
                mapped = fmap(s)
                terms = {"geo": geometry_loss(mapped, t)}
                if self.lambda_info:
                    terms["info"] = -infonce_bound(critic, mapped, t)
                if self.lambda_curv and self.map == "mlp":  # affine maps have no curvature
                    terms["curv"] = curvature_loss(fmap, s, gen)
                if self.lambda_ot:
                    terms["ot"] = ot_loss(mapped, t)
                loss = sum(weights[k] * v for k, v in terms.items())
                opt.zero_grad()
                loss.backward()
                opt.step()
                totals["total"] += loss.item()
                for k, v in terms.items():
                    totals[k] += v.item()
            curve.append({k: v / n_batches for k, v in totals.items()})
            n_iter = epoch + 1
            if n_iter >= 20:
                old = np.mean([c["total"] for c in curve[-20:-10]])
                new = np.mean([c["total"] for c in curve[-10:]])
                if abs(old - new) <= self.tol * max(abs(old), 1e-12):
                    converged = True
                    break
        if not converged:
            warnings.warn(
                f"ManifoldAligner did not converge in max_iter={self.max_iter} epochs "
                f"(loss still changing by more than tol={self.tol} over 10 epochs); raise "
                "max_iter or learning_rate.",
                ConvergenceWarning,
                stacklevel=3,
            )
        return fmap.cpu().eval(), critic.cpu().eval(), curve, n_iter

    # -------------------------------------------------------------- transform
    def _mapped(self, X):
        check_is_fitted(self, "maps_")
        X = validate_data(self, X, reset=False, dtype=np.float64)
        Z = self._standardise(self._blocks(X), fit=False)
        out = {}
        with torch.inference_mode():
            for a, b in self.pairs_:
                fmap = self.maps_[f"{a}->{b}"]
                out[(a, b)] = fmap(torch.as_tensor(Z[a], dtype=torch.float32)).double().numpy()
        return out, Z

    def transform(self, X):
        """The mapped source of every pair, in the target scale's coordinates.

        Returns
        -------
        X_aligned : ndarray of shape (n_samples, sum of target widths)
            Blocks in ``pairs_`` order (after PCA, if ``n_components`` is set).
        """
        mapped, _ = self._mapped(X)
        return np.hstack([m * self._rms[b] + self._mean[b] for (a, b), m in mapped.items()])

    def inverse_transform(self, X):
        """Map aligned blocks back to their source scales (orthogonal and linear maps).

        Returns
        -------
        X_source : ndarray of shape (n_samples, sum of source widths)
        """
        check_is_fitted(self, "maps_")
        if self.map == "mlp":
            raise ValueError("map='mlp' is not invertible; use 'orthogonal' or 'linear'.")
        X = np.asarray(X, dtype=np.float64)
        widths = [self.scale_dims_[b] for _, b in self.pairs_]
        if X.ndim != 2 or X.shape[1] != sum(widths):
            raise ValueError(f"Expected {sum(widths)} columns (transform output), got {X.shape}.")
        out, start = [], 0
        for (a, b), w in zip(self.pairs_, widths, strict=True):
            key = f"{a}->{b}"
            z = (X[:, start : start + w] - self._mean[b]) / self._rms[b]
            src = (z - self.intercept_[key]) @ np.linalg.pinv(self.coef_[key])
            out.append(src * self._rms[a] + self._mean[a])
            start += w
        return np.hstack(out)

    def score(self, X, y=None):
        """Alignment quality on ``X`` (higher is better; independent of the lambdas).

        ``scoring="r2"``: mean over pairs of ``1 - ||f(s) - t||^2 / ||t - mean(t)||^2``;
        ``"cka"``: mean debiased linear CKA between f(S) and T; ``"neg_procrustes"``:
        minus the Procrustes disparity; ``"neg_kl"``: minus the per-dimension
        Gaussian KL(f(S) || T); ``"dcor"``: distance correlation (1,024-row seeded
        subsample).
        """
        mapped, Z = self._mapped(X)
        values = []
        for (_, b), m in mapped.items():
            t = Z[b]
            if self.scoring == "r2":
                values.append(1.0 - ((m - t) ** 2).sum() / ((t - t.mean(0)) ** 2).sum())
            elif self.scoring == "cka":
                values.append(linear_cka(m, t))
            elif self.scoring == "neg_procrustes":
                values.append(-procrustes_disparity(m, t))
            elif self.scoring == "neg_kl":
                values.append(-gaussian_kl(m, t, kind="diag_mean"))
            else:
                values.append(distance_correlation(m, t, random_state=0))
        return float(np.mean(values))

    def get_feature_names_out(self, input_features=None):
        """``global_to_intermediate__0 ...`` per pair, in ``pairs_`` order."""
        check_is_fitted(self, "maps_")
        return np.asarray(
            [f"{a}_to_{b}__{u}" for a, b in self.pairs_ for u in range(self.scale_dims_[b])],
            dtype=object,
        )


def _rotation(cross: np.ndarray, d_in: int, d_out: int) -> np.ndarray:
    """Procrustes rotation from the cross-covariance ``S^T T``, padded to square as in fit."""
    width = max(d_in, d_out)
    M = np.zeros((width, width))
    M[:d_in, :d_out] = cross
    u, _, vt = np.linalg.svd(M)
    return (u @ vt)[:d_in, :d_out]


def _affine(fmap) -> tuple[np.ndarray, np.ndarray]:
    """``(W, b)`` with ``fmap(z) = z @ W + b`` for an affine torch map."""
    with torch.no_grad():
        layer = fmap.linear if hasattr(fmap, "linear") else fmap
        W = layer.weight.detach().double().numpy().T.copy()
        bias = getattr(layer, "bias", None)
        b = bias.detach().double().numpy().copy() if bias is not None else np.zeros(W.shape[1])
    return W, b

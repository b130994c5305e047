"""What :class:`ScaleSegmenter` adds after the fit on all texts: refits on subsamples
(boundary confidence and stability against admissible random splits) and the row of
the original README's layer-distribution table."""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted
from tqdm.auto import tqdm

from ..metrics import cka_matrix
from ..utils._format import layer_ranges
from ._steps import bootstrap_stability

__all__ = ["RefitMixin"]


class RefitMixin:
    """Subsample refits and the README-format table row of a fitted segmenter."""

    def _bootstrap(self, layer_arrays, used) -> None:
        if self.n_bootstrap == 0:
            return
        if self.method in ("preset", "manual", "attention_span"):
            warnings.warn(
                f"n_bootstrap={self.n_bootstrap} ignored: method={self.method!r} does not "
                "estimate boundaries from the texts.",
                UserWarning,
                stacklevel=3,
            )
            return
        rng = check_random_state(self.random_state)
        n = layer_arrays[0].shape[0]
        m = max(4, int(round(self.bootstrap_fraction * n)))
        draws = []
        refits = tqdm(
            range(self.n_bootstrap), desc="Bootstrap refits", disable=not self.verbose, leave=False
        )
        for _ in refits:
            rows = np.sort(rng.choice(n, size=m, replace=False))
            sub = [a[rows] for a in layer_arrays]
            sim = cka_matrix(sub, debiased=self.debiased) if self.method == "cka" else None
            groups = self._segment(sub, used, sim, rng=rng)
            draws.append([int(used[g[0]]) for g in groups[1:]])
        self._last_mi = None
        self.bootstrap_boundaries_ = np.asarray(draws, dtype=np.int64).reshape(
            self.n_bootstrap, self.n_scales_ - 1
        )
        self.boundary_confidence_ = (
            self.bootstrap_boundaries_ == np.asarray(self.boundaries_)[None, :]
        ).mean(axis=0)
        pos = {int(j): i for i, j in enumerate(used)}
        self.bootstrap_stability_ = bootstrap_stability(
            [pos[b] for b in self.boundaries_],
            [[pos[int(b)] for b in row] for row in self.bootstrap_boundaries_],
            used.size,
            seed=rng.randint(np.iinfo(np.int32).max),
            min_size=self.min_scale_size_,
        )

    def distribution_table(self, model_name: str = "model") -> str:
        """One Markdown row in the original README's layer-distribution format.

        Parameters
        ----------
        model_name : str, default="model"
            The row's first cell.

        Returns
        -------
        str
            ``| model | 0-2 (25%) | ... |``: each scale's layers and share.
        """
        check_is_fitted(self, "scale_layers_")
        cells = []
        for name in self.scale_names_:
            layer_list = self.scale_layers_[name]
            cells.append(f"{layer_ranges(layer_list)} ({self.layer_shares_[name]:.0%})")
        return f"| {model_name} | " + " | ".join(cells) + " |"

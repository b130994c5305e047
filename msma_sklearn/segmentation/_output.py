"""What a fitted :class:`ScaleSegmenter` outputs: one representation per scale, and its
column names."""

from __future__ import annotations

import numpy as np
from sklearn.base import TransformerMixin
from sklearn.utils.validation import check_is_fitted, validate_data


class ScaleOutputMixin(TransformerMixin):
    """:class:`ScaleSegmenter`'s ``transform`` and ``get_feature_names_out``.

    A ``TransformerMixin`` itself, so scikit-learn wraps this ``transform`` for
    ``set_output`` (it wraps only a method defined in the subclass's own body)."""

    def transform(self, X):
        """One representation per scale.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_layers * hidden_size)
            Per-layer states laid out as in :meth:`fit`.

        Returns
        -------
        X_scales : ndarray
            ``(n_samples, n_scales * hidden_size)`` for ``"mean"`` and
            ``"weighted"``; for ``"concat"`` each scale's layers side by side.
        """
        check_is_fitted(self, "scale_layers_")
        X = validate_data(self, X, reset=False, dtype=np.float64)
        cube = X.reshape(X.shape[0], self.layers_.size, self.hidden_size_)
        pos = {int(j): i for i, j in enumerate(self.layers_)}
        blocks = []
        for name, layer_list in self.scale_layers_.items():
            part = cube[:, [pos[j] for j in layer_list]]
            if self.aggregate == "mean":
                blocks.append(part.mean(axis=1))
            elif self.aggregate == "weighted":
                blocks.append(np.einsum("nlh,l->nh", part, self.layer_weights_[name]))
            else:
                blocks.append(part.reshape(X.shape[0], -1))
        return np.hstack(blocks)

    def get_feature_names_out(self, input_features=None):
        """``local__0 ...`` (mean/weighted) or ``local__layer3__0 ...`` (concat).

        Parameters
        ----------
        input_features : None
            Ignored (the names come from the fitted scales).

        Returns
        -------
        ndarray of str
            One name per output column of :meth:`transform`.
        """
        check_is_fitted(self, "scale_layers_")
        units = range(self.hidden_size_)
        if self.aggregate == "concat":
            names = [
                f"{name}__layer{j}__{u}"
                for name, layer_list in self.scale_layers_.items()
                for j in layer_list
                for u in units
            ]
        else:
            names = [f"{name}__{u}" for name in self.scale_layers_ for u in units]
        return np.asarray(names, dtype=object)

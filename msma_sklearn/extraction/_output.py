"""How :class:`HiddenStateExtractor`'s output is laid out: column names and the per-layer
view."""

from __future__ import annotations

import numpy as np
from sklearn.utils.validation import check_is_fitted

from ._core import reshape_by_layer


class LayerOutputMixin:
    """:class:`HiddenStateExtractor`'s ``get_feature_names_out`` and ``reshape_by_layer``."""

    def get_feature_names_out(self, input_features=None):
        """Names ``layer{index}__{unit}`` in output order.

        Parameters
        ----------
        input_features : None
            Ignored (the names come from the fitted layers).

        Returns
        -------
        feature_names_out : ndarray of str objects
        """
        check_is_fitted(self, "layers_")
        units = np.arange(self.hidden_size_)
        return np.asarray([f"layer{j}__{u}" for j in self.layers_ for u in units], dtype=object)

    def reshape_by_layer(self, X) -> np.ndarray:
        """View ``transform``'s output as ``(n_samples, n_selected_layers, hidden_size)``.

        Parameters
        ----------
        X : ndarray of shape (n_samples, n_selected_layers * hidden_size)
            Output of :meth:`transform`.

        Returns
        -------
        ndarray of shape (n_samples, n_selected_layers, hidden_size)
        """
        check_is_fitted(self, "layers_")
        return reshape_by_layer(X, len(self.layers_))

"""Where :class:`Intervener` acts: the hidden states of a scale (one centred-window rule for
users and the study), checked against the model the scales were fitted on, and the heads."""

from __future__ import annotations

import warnings

import numpy as np

from .._registry import operator_for
from ..extraction import model_fingerprint
from ._helpers import centred_window


class LayerResolutionMixin:
    """Resolves :class:`Intervener`'s ``layers`` / ``scale`` / ``window`` and ``heads``."""

    def _resolve_heads(self, n_heads: int) -> np.ndarray:
        if self.heads is None:
            return np.zeros(0, dtype=np.int64)
        if operator_for(self.kind).site != "attention":
            raise ValueError(
                "heads= masks attention heads; it needs kind='attention' (an operator "
                f"acting inside attention), not {self.kind!r}."
            )
        heads = np.atleast_1d(np.asarray(self.heads))
        if heads.size == 0 or not np.issubdtype(heads.dtype, np.integer):
            raise ValueError(f"heads must be a non-empty list of ints, got {self.heads!r}.")
        bad = [int(h) for h in heads if not 0 <= h < n_heads]
        if bad:
            raise ValueError(
                f"Head indices {bad} out of range for {self.model!r}: it has {n_heads} heads "
                f"per block (0..{n_heads - 1})."
            )
        return np.unique(heads).astype(np.int64)

    def _check_segmenter_layout(self, segmenter) -> None:
        """A segmenter fitted on another model's hidden states would steer the wrong layers."""
        fitted_layers = np.asarray(getattr(segmenter, "layers_", []))
        width = getattr(segmenter, "hidden_size_", None)
        n_states = self.n_layers_ + 1
        theirs = (
            f"{fitted_layers.size} hidden states (indices {int(fitted_layers.min())}.."
            f"{int(fitted_layers.max())}) of width {width}"
            if fitted_layers.size
            else f"width {width}"
        )
        ours = f"{n_states} hidden states (0..{self.n_layers_}) of width {self.hidden_size_}"
        all_states = fitted_layers.size > 1 and np.array_equal(
            fitted_layers, np.arange(fitted_layers.size)
        )
        wrong_width = width not in (None, 1, self.hidden_size_)  # 1: one column per layer
        if (
            wrong_width
            or (fitted_layers.size and int(fitted_layers.max()) > self.n_layers_)
            or (all_states and fitted_layers.size != n_states)
        ):
            raise ValueError(
                f"scale_layers is a ScaleSegmenter fitted on {theirs}, but {self.model!r} "
                f"({self.stack_} stack) has {ours}: its scales belong to another model. Fit "
                "the segmenter on this model's hidden states (HiddenStateExtractor(same model))."
            )

    def _check_scale_source(self) -> None:
        """Scales fitted on another model's states steer the wrong layers: refused when
        the segmenter recorded its model, warned when nothing can be checked."""
        source = getattr(self.scale_layers, "source_model_", None)
        if not isinstance(source, dict):
            what = (
                "a ScaleSegmenter fitted without the extractor's provenance"
                if hasattr(self.scale_layers, "scale_layers_")
                else f"a plain {type(self.scale_layers).__name__}"
            )
            warnings.warn(
                f"scale_layers is {what}: it cannot be checked against {self.model!r}. Fit "
                "the ScaleSegmenter on this model's HiddenStateExtractor output with "
                "set_output(transform='pandas') and pass the segmenter, so scales of another "
                "model are refused.",
                UserWarning,
                stacklevel=4,
            )
            return
        model, _ = self._loaded()
        ours = model_fingerprint(model)
        if source.get("weights") != ours or source.get("stack") != self.stack_:
            raise ValueError(
                f"scale_layers is a ScaleSegmenter fitted on the {source.get('stack')} states of "
                f"{source.get('model')!r} (weights {str(source.get('weights'))[:12]}), but this "
                f"Intervener steers the {self.stack_} stack of {self.model!r} (weights "
                f"{ours[:12]}): its scales belong to another model. Fit the segmenter on "
                f"HiddenStateExtractor({self.model!r}) output."
            )

    def _resolve_layers(self) -> np.ndarray:
        if self.layers is not None:
            if self.window is not None:
                raise ValueError(
                    "window= applies to scale=; with layers= list the layers directly."
                )
            layers = np.atleast_1d(np.asarray(self.layers))
        else:
            if self.scale is None:
                raise ValueError(
                    "Pass scale= (with scale_layers=) or layers= to choose where to act."
                )
            table = getattr(self.scale_layers, "scale_layers_", self.scale_layers)
            if hasattr(self.scale_layers, "scale_layers_"):
                self._check_segmenter_layout(self.scale_layers)
            self._check_scale_source()
            if not isinstance(table, dict):
                raise ValueError(
                    "scale_layers must be a dict of scale -> hidden-state indices or a fitted "
                    f"ScaleSegmenter, got {type(self.scale_layers).__name__}."
                )
            if self.scale not in table:
                raise ValueError(f"Unknown scale {self.scale!r}; scale_layers has {sorted(table)}.")
            layers = np.unique(np.asarray(table[self.scale]))
            if self.window is not None:
                if self.window > layers.size:
                    raise ValueError(
                        f"window={self.window} is wider than scale {self.scale!r}, which has "
                        f"{layers.size} hidden states ({layers.tolist()}); pass a smaller window."
                    )
                if operator_for(self.kind).site == "attention":  # state 0 has no block
                    blocks = layers[layers > 0]
                    chosen = [j for j in centred_window(layers, self.window) if j > 0]
                    if not blocks.size:
                        raise ValueError(
                            f"kind={self.kind!r} acts inside the block that produces each "
                            f"state; scale {self.scale!r} has only hidden state 0 (the "
                            "embeddings), which no block produces. Choose another scale."
                        )
                    layers = np.asarray(chosen or centred_window(blocks, 1))
                else:
                    layers = np.asarray(centred_window(layers, self.window))
        if layers.size == 0 or not np.issubdtype(layers.dtype, np.integer):
            raise ValueError(f"layers must be a non-empty list of ints, got {self.layers!r}.")
        bad = [int(j) for j in layers if not 0 <= j <= self.n_layers_]
        if bad:
            raise ValueError(
                f"Layer indices {bad} out of range for {self.model!r} ({self.stack_} stack): "
                f"hidden states are 0..{self.n_layers_}."
            )
        if operator_for(self.kind).site == "attention" and 0 in layers:
            raise ValueError(
                "kind='attention' acts on the block that produces each selected state; hidden "
                "state 0 (embeddings) has none. Drop 0 from the layers."
            )
        return np.unique(layers).astype(np.int64)

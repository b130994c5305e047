"""The one private base of estimators that hold a loaded model."""

from __future__ import annotations

from ._models import load_model

__all__ = ["ModelBackedMixin"]


class ModelBackedMixin:
    """Load ``self.model`` lazily and leave the weights out of pickles.

    Subclasses define ``model``, ``device`` and ``dtype`` parameters. The
    loaded objects live in private attributes; pickling drops them (and any
    names listed in ``_transient``) and the first use after unpickling
    reloads them through :func:`load_model` (its in-process cache makes that
    cheap when the model is already loaded).
    """

    _transient: tuple[str, ...] = ("_model", "_tokenizer")

    def _load(self):
        model, tokenizer = load_model(
            self.model,
            device=self.device,
            dtype=self.dtype,
            device_map=getattr(self, "device_map", None),
            verbose=getattr(self, "verbose", 0),
        )
        self._model, self._tokenizer = model, tokenizer
        return model, tokenizer

    def _loaded(self):
        if getattr(self, "_model", None) is None:
            return self._load()
        return self._model, self._tokenizer

    def __getstate__(self):
        state = super().__getstate__()
        for name in self._transient:
            state.pop(name, None)
        return state

"""Intervener: steer the hidden states of one scale's layers during generation."""

from __future__ import annotations

import os
from numbers import Integral, Real

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions

from .._registry import operator_for
from ..extraction import (
    HiddenStateExtractor,
    ModelBackedMixin,
    resolve_layout,
)
from ..utils._validation import check_texts
from ._generation import GenerationMixin
from ._helpers import (
    REPRESENTATION_METRICS,
    _check_finite,
    _is_generative,
    _is_seq2seq,
    centred_window,
    kl_rows,
)
from ._layers import LayerResolutionMixin
from ._operators import OperatorHooksMixin
from ._representation import RepresentationMixin

__all__ = ["REPRESENTATION_METRICS", "Intervener", "centred_window", "kl_rows"]


class Intervener(
    GenerationMixin,
    RepresentationMixin,
    OperatorHooksMixin,
    LayerResolutionMixin,
    ModelBackedMixin,
    BaseEstimator,
):
    """Intervene on the hidden states of chosen layers and measure what changes.

    Causal LMs (GPT-2, Llama / SmolLM2) and encoder-decoders (T5, either
    stack, chosen by ``stack``) generate text under the intervention;
    encoder-only models (BERT, RoBERTa, MiniLM) do not generate, and there
    :meth:`transform` measures the effect on the final representations and,
    where the model has a masked-LM head, on its token predictions
    (:meth:`fill_mask` shows them).

    Operators (``kind``), applied to hidden state ``j`` of every selected layer
    (the residual stream entering block ``j``; ``j = L`` is the final state
    read by the LM head):

    - ``"translation"``: ``h' = h + delta_j``. ``delta`` may be a vector of
      the hidden size; otherwise ``direction="random"`` draws a seeded unit
      direction scaled to ``norm`` times the typical token-state norm of that
      layer (the median over the ``fit`` texts' tokens, attention-sink tokens
      left out as the extractor's ``sink_tokens="auto"`` does), and ``direction="learned"`` uses
      ``norm`` times the difference of class means of the ``fit`` texts'
      mean-pooled states at that layer (a steering vector; ``y`` needs 2 classes);
    - ``"scaling"``: ``h' = alpha * h``;
    - ``"noise"``: ``h' = h + sigma * rms(h) * eps``, ``eps`` standard normal,
      seeded by the prompt's text, return sequence, step and layer (so
      batching and call order do not change it);
    - ``"attention"``: in the self-attention of the blocks producing the
      selected states, logits divided by ``temperature`` (the query
      projection's output is scaled) and/or the heads listed in ``heads``
      masked (their outputs zeroed where they enter the attention's output
      projection, which is what a head mask does). Both act through forward
      hooks on the model's own modules; transformers' attention code is
      untouched. On T5 the temperature divides the content term ``q.k``; the
      relative-position bias, computed once and shared by all blocks, is
      left as it is.

    ``positions`` restricts the operator to the prompt's forward pass
    (``"prompt"``), to the generated tokens (``"generated"``), or applies it
    everywhere (``"all"``). A stack that only ever sees the prompt (T5's
    encoder, an encoder-only model) takes ``"all"`` or ``"prompt"``; T5's
    decoder, which only ever sees generated tokens, takes ``"all"`` or
    ``"generated"``. Every hook goes through
    :func:`msma_sklearn.utils.attached_hooks` and is removed when the call
    ends, also on error. An identity operator (``alpha=1``, zero ``delta``,
    ``sigma=0``, ``temperature=1``) gives token-identical output to no
    intervention.

    Parameters
    ----------
    model : str, default="smollm2-135m"
        A model spec (see :func:`~msma_sklearn.extraction.load_model`).
    stack : {"auto", "encoder", "decoder"}, default="auto"
        Which stack of an encoder-decoder the layer indices refer to ("auto":
        the encoder, as in :class:`~msma_sklearn.HiddenStateExtractor`).
    scale : str, default=None
        Scale name looked up in ``scale_layers``.
    scale_layers : dict or fitted ScaleSegmenter, default=None
        Scale name -> hidden-state indices (e.g. ``segmenter.scale_layers_``).
    layers : list of int, default=None
        Explicit hidden-state indices (instead of ``scale``).
    window : int, default=None
        With ``scale``: act only on the ``window`` consecutive hidden states
        at the centre of the scale (the lower middle when the parity
        differs), so every scale gets the same number of layers and an
        operator that compounds over layers (scaling) gets the same dose on
        scales of different sizes. For an operator that acts inside attention,
        hidden state 0 (the embeddings, produced by no block) is left out of
        the window; a scale with no other state cannot be steered that way.
        None: every layer of the scale.
    kind : {"translation", "scaling", "noise", "attention"}, default="scaling"
        The operator (above): a kind of the operator table
        (``msma_sklearn._registry.OPERATORS``), where a new kind is declared
        with its ``apply``.
    alpha : float, default=1.0
        Scaling factor (``kind="scaling"``).
    delta : array-like of shape (hidden_size,), default=None
        Translation vector (``kind="translation"``); None: from ``direction``.
    direction : {"random", "learned"}, default="random"
        Where the translation points when ``delta`` is None.
    norm : float, default=1.0
        Translation length, in units of the layer's typical token-state norm
        (``"random"``) or of the class-mean difference (``"learned"``).
    sigma : float, default=0.0
        Noise scale, relative to each state's RMS (``kind="noise"``).
    temperature : float, default=1.0
        Attention-logit divisor (``kind="attention"``).
    heads : list of int, default=None
        Attention heads to mask (``kind="attention"``), in every selected block.
    positions : {"all", "prompt", "generated"}, default="all"
        Which forward passes the operator acts on (above).
    max_new_tokens : int, default=20
        Tokens generated per prompt.
    do_sample : bool, default=False
        Sample instead of greedy decoding: temperature, then nucleus (top-p)
        filtering over the whole vocabulary, nothing else (transformers'
        implicit ``top_k=50`` is switched off).
    top_p : float, default=1.0
        Nucleus mass kept when sampling (1: the whole vocabulary).
    sampling_temperature : float, default=1.0
        Softmax temperature of sampling (not the attention operator's).
    num_return_sequences : int, default=1
        Continuations per prompt (more than one needs ``do_sample=True``).
    batch_size : int, default=8
        Prompts per forward pass.
    device : str, default="auto"
        Torch device; "auto": the ``MSMA_DEVICE`` environment variable if set,
        else CUDA when available, else the CPU.
    dtype : {"float32", "float16", "bfloat16"}, default="float32"
        Weights' dtype.
    random_state : int or None, default=None
        Seeds random directions, noise and sampling (torch's global generator
        is forked and restored around sampling).
    metrics : sequence of str, default=None
        Text metrics for :meth:`transform` (see
        :class:`msma_sklearn.metrics.text.TextMetrics`); None:
        ``("ttr", "distinct_2", "sentence_count", "mean_sentence_length", "sentiment")``.
        For encoder-only models, representation metrics from
        ``REPRESENTATION_METRICS`` (None: all that apply; the prediction
        metrics need a masked-LM head).
    target_metric : str, default="sentiment"
        What :meth:`score` measures the shift of.
    verbose : int, default=0
        Progress bar over the batches of a generation call.

    Attributes
    ----------
    layers_ : ndarray of int
    n_layers_ : int
        Blocks in the chosen stack (hidden states are ``0..n_layers_``).
    generative_ : bool
        Whether the model generates (causal LM or encoder-decoder).
    stack_ : {"encoder", "decoder"}
    hidden_size_ : int
    steering_vectors_ : dict
        Hidden-state index -> translation vector (``kind="translation"``).

    Examples
    --------
    >>> iv = Intervener("tiny-gpt2", layers=[2], kind="scaling", alpha=1.0,
    ...                 max_new_tokens=5).fit()
    >>> iv.generate(["The cat"]) == iv.generate_baseline(["The cat"])
    True
    """

    _transient = ("_model", "_tokenizer", "_text_metrics")

    _parameter_constraints: dict = {
        "model": [str, os.PathLike],
        "stack": [StrOptions({"auto", "encoder", "decoder"})],
        "scale": [None, str],
        "scale_layers": "no_validation",  # a dict or a fitted ScaleSegmenter; checked in fit
        "layers": [None, "array-like", Integral],
        "window": [None, Interval(Integral, 1, None, closed="left")],
        "kind": [str],  # one of the operator table's kinds, checked in fit
        "alpha": [Real],
        "delta": [None, "array-like"],
        "direction": [StrOptions({"random", "learned"})],
        "norm": [Real],
        "sigma": [Interval(Real, 0, None, closed="left")],
        "temperature": [Interval(Real, 0, None, closed="neither")],
        "heads": [None, "array-like", Integral],
        "positions": [StrOptions({"all", "prompt", "generated"})],
        "max_new_tokens": [Interval(Integral, 1, None, closed="left")],
        "do_sample": ["boolean"],
        "top_p": [Interval(Real, 0, 1, closed="right")],
        "sampling_temperature": [Interval(Real, 0, None, closed="neither")],
        "num_return_sequences": [Interval(Integral, 1, None, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "device": [str],
        "dtype": [StrOptions({"float32", "float16", "bfloat16"})],
        "random_state": [None, Integral],
        "metrics": [None, list, tuple],
        "target_metric": [str],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        model="smollm2-135m",
        *,
        stack="auto",
        scale=None,
        scale_layers=None,
        layers=None,
        window=None,
        kind="scaling",
        alpha=1.0,
        delta=None,
        direction="random",
        norm=1.0,
        sigma=0.0,
        temperature=1.0,
        heads=None,
        positions="all",
        max_new_tokens=20,
        do_sample=False,
        top_p=1.0,
        sampling_temperature=1.0,
        num_return_sequences=1,
        batch_size=8,
        device="auto",
        dtype="float32",
        random_state=None,
        metrics=None,
        target_metric="sentiment",
        verbose=0,
    ):
        self.model = model
        self.stack = stack
        self.scale = scale
        self.scale_layers = scale_layers
        self.layers = layers
        self.window = window
        self.kind = kind
        self.alpha = alpha
        self.delta = delta
        self.direction = direction
        self.norm = norm
        self.sigma = sigma
        self.temperature = temperature
        self.heads = heads
        self.positions = positions
        self.max_new_tokens = max_new_tokens
        self.do_sample = do_sample
        self.top_p = top_p
        self.sampling_temperature = sampling_temperature
        self.num_return_sequences = num_return_sequences
        self.batch_size = batch_size
        self.device = device
        self.dtype = dtype
        self.random_state = random_state
        self.metrics = metrics
        self.target_metric = target_metric
        self.verbose = verbose

    # --------------------------------------------------------------------- fit
    def fit(self, X=None, y=None):
        """Load the model, resolve the layers and, for translations, the vectors.

        Parameters
        ----------
        X : list of str, default=None
            Texts whose states set the scale of random directions, or labelled
            texts for ``direction="learned"``. Not needed for other operators.
        y : array-like of shape (n_texts,), default=None
            Two classes, for ``direction="learned"``; ``delta = mean(class 1) -
            mean(class 0)`` (classes in sorted order).

        Returns
        -------
        self : Intervener
        """
        self._validate_params()
        operator_for(self.kind)  # an unknown kind: the table's kinds in the error
        _check_finite(
            self, ("alpha", "norm", "sigma", "temperature", "top_p", "sampling_temperature")
        )
        model, _ = self._load()
        layout = resolve_layout(model, self.stack)
        self.stack_ = layout.stack
        self.generative_ = _is_generative(model)
        self.n_layers_ = layout.n_layers
        text_config = model.config.get_text_config()
        self.hidden_size_ = int(getattr(text_config, "d_model", None) or text_config.hidden_size)
        self._check_positions(model)
        self.layers_ = self._resolve_layers()
        self.heads_ = self._resolve_heads(int(text_config.num_attention_heads))
        self._check_metrics(model)
        self.steering_vectors_ = {}
        if self.kind == "translation":
            self.steering_vectors_ = self._vectors(X, y)
        return self

    def _check_positions(self, model) -> None:
        seq2seq = _is_seq2seq(model)
        if (not self.generative_ or (seq2seq and self.stack_ == "encoder")) and (
            self.positions == "generated"
        ):
            where = "T5's encoder" if seq2seq else f"{self.model!r} (encoder-only)"
            raise ValueError(
                f"positions='generated' does not apply to {where}: that stack only sees the "
                "prompt. Use positions='all' or 'prompt'."
            )
        if seq2seq and self.stack_ == "decoder" and self.positions == "prompt":
            raise ValueError(
                "positions='prompt' does not apply to the decoder of an encoder-decoder: it "
                "never sees the prompt. Use stack='encoder', or positions='all' / 'generated'."
            )

    def _check_metrics(self, model) -> None:
        self._has_lm_head_ = model.get_output_embeddings() is not None
        if self.generative_ or self.metrics is None:
            return
        allowed = self._representation_metrics()
        unknown = [m for m in self.metrics if m not in allowed]
        if unknown:
            raise ValueError(
                f"{self.model!r} is encoder-only: it does not generate text, so its metrics are "
                f"measured on representations; {unknown} not available, choose from {allowed}."
            )

    def _representation_metrics(self) -> list[str]:
        names = list(REPRESENTATION_METRICS)
        return names if self._has_lm_head_ else names[:2]

    def _vectors(self, X, y) -> dict[int, np.ndarray]:
        H = self.hidden_size_
        if self.delta is not None:
            delta = np.asarray(self.delta, dtype=np.float64)
            if delta.shape != (H,):
                raise ValueError(
                    f"delta must have shape ({H},) (the hidden size of {self.model!r}), got "
                    f"{delta.shape}."
                )
            return {int(j): delta.copy() for j in self.layers_}
        texts = check_texts(X, name="X") if X is not None else None
        if texts is None:
            raise ValueError(
                f"direction={self.direction!r} needs texts in fit(X) to measure the states."
            )
        ext = HiddenStateExtractor(
            self.model,
            layers=self.layers_.tolist(),
            stack=self.stack_,
            device=self.device,
            dtype=self.dtype,
        ).fit(texts)
        if self.direction == "learned":
            labels = np.asarray(y) if y is not None else None
            if labels is None or labels.shape != (len(texts),) or len(set(labels.tolist())) != 2:
                raise ValueError(
                    "direction='learned' needs y with exactly two classes, one label per text."
                )
            pooled = ext.reshape_by_layer(ext.transform(texts)).astype(np.float64)
            lo, hi = sorted(set(labels.tolist()))
            diff = pooled[labels == hi].mean(0) - pooled[labels == lo].mean(0)
            return {int(j): self.norm * diff[i] for i, j in enumerate(self.layers_)}
        tokens = ext.transform_tokens(texts)
        # attention sinks (the first token of a causal stack) carry norms 10-100x the others
        # and would set the dose: leave them out, and take the median over tokens
        sink = int(ext.sink_tokens_)
        rng = check_random_state(self.random_state)
        vectors = {}
        for i, j in enumerate(self.layers_):
            states = np.concatenate(
                [t[i][sink:] if t.shape[1] > sink else t[i] for t in tokens], axis=0
            ).astype(np.float64)
            typical_norm = float(np.median(np.linalg.norm(states, axis=1)))
            u = rng.standard_normal(H)
            vectors[int(j)] = self.norm * typical_norm * u / np.linalg.norm(u)
        return vectors

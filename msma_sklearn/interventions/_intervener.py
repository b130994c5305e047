"""Intervener: steer the hidden states of one scale's layers during generation."""

from __future__ import annotations

import hashlib
import inspect
import math
import os
import warnings
from numbers import Integral, Real

import numpy as np
import torch
from sklearn.base import BaseEstimator
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted
from tqdm.auto import tqdm
from transformers import LogitsProcessorList

from ..extraction import (
    HiddenStateExtractor,
    ModelBackedMixin,
    model_fingerprint,
    pad_batch,
    pad_token_id,
    resolve_layout,
)
from ..utils._hooks import attached_hooks
from ..utils._validation import check_texts
from ._sampling import NucleusSampling

__all__ = ["REPRESENTATION_METRICS", "Intervener"]

# self-attention projections: Llama-style, GPT-2, BERT / RoBERTa, T5 (layer 0 = self-attention)
# Models with a norm on the queries (Gemma 3, Qwen3, OLMo 2) would undo a scaling of
# q_proj's output, so the temperature acts on the normalised queries there.
_Q_PROJ = (
    "self_attn.q_norm",
    "self_attn.q_proj",
    "attn.c_attn",
    "attention.self.query",
    "layer.0.SelfAttention.q",
)
_O_PROJ = ("self_attn.o_proj", "attn.c_proj", "attention.output.dense", "layer.0.SelfAttention.o")

#: Representation metrics of encoder-only models, with their value when nothing changes.
REPRESENTATION_METRICS = {
    "state_shift": 0.0,
    "state_cosine": 1.0,
    "prediction_kl": 0.0,
    "top1_agreement": 1.0,
}


class Intervener(ModelBackedMixin, BaseEstimator):
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
        scales of different sizes. None: every layer of the scale.
    kind : {"translation", "scaling", "noise", "attention"}, default="scaling"
        The operator (above).
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
        Continuations per prompt.
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
        "kind": [StrOptions({"translation", "scaling", "noise", "attention"})],
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

    def _resolve_heads(self, n_heads: int) -> np.ndarray:
        if self.heads is None:
            return np.zeros(0, dtype=np.int64)
        if self.kind != "attention":
            raise ValueError(
                f"heads= masks attention heads; it needs kind='attention', not {self.kind!r}."
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
                layers = np.asarray(centred_window(layers, self.window))
        if layers.size == 0 or not np.issubdtype(layers.dtype, np.integer):
            raise ValueError(f"layers must be a non-empty list of ints, got {self.layers!r}.")
        bad = [int(j) for j in layers if not 0 <= j <= self.n_layers_]
        if bad:
            raise ValueError(
                f"Layer indices {bad} out of range for {self.model!r} ({self.stack_} stack): "
                f"hidden states are 0..{self.n_layers_}."
            )
        if self.kind == "attention" and 0 in layers:
            raise ValueError(
                "kind='attention' acts on the block that produces each selected state; hidden "
                "state 0 (embeddings) has none. Drop 0 from the layers."
            )
        return np.unique(layers).astype(np.int64)

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

    # ---------------------------------------------------------------- generate
    def generate(self, prompts) -> list[str]:
        """Generated continuations with the intervention (prompt excluded).

        Parameters
        ----------
        prompts : list of str
            The prompts.

        Returns
        -------
        list of str
            ``num_return_sequences`` per prompt, prompts in input order.
        """
        return self._generate(prompts, intervene=True)

    def generate_baseline(self, prompts) -> list[str]:
        """The matched baseline: same prompts, settings and seeds, no intervention.

        Parameters
        ----------
        prompts : list of str
            The prompts.

        Returns
        -------
        list of str
            One continuation per prompt and return sequence, prompt excluded.
        """
        return self._generate(prompts, intervene=False)

    def _generate(self, prompts, *, intervene: bool) -> list[str]:
        check_is_fitted(self, "layers_")
        prompts = check_texts(prompts, name="prompts")
        if not self.generative_:
            raise ValueError(
                f"{self.model!r} is encoder-only and does not generate text. Use transform / "
                "effects (effects on its representations and token predictions) or fill_mask."
            )
        model, tokenizer = self._loaded()
        device = next(model.parameters()).device
        pad_id = pad_token_id(tokenizer, model)
        seq2seq = _is_seq2seq(model)
        ids = tokenizer(prompts, add_special_tokens=True)["input_ids"]
        out: list[str] = []
        starts = tqdm(
            range(0, len(prompts), self.batch_size),
            desc="Generating" if intervene else "Generating (baseline)",
            unit="batch",
            disable=not self.verbose,
            leave=False,
        )
        for start in starts:
            batch = ids[start : start + self.batch_size]
            # causal LMs continue from the right edge: pad on the left
            input_ids, mask = pad_batch(batch, pad_id, "right" if seq2seq else "left")
            enc = {"input_ids": input_ids.to(device), "attention_mask": mask.to(device)}
            state = self._state(prompts[start : start + len(batch)], mask)
            hooks = self._hooks(model, state) if intervene else []
            kwargs = dict(
                max_new_tokens=self.max_new_tokens,
                do_sample=self.do_sample,
                num_return_sequences=self.num_return_sequences,
                pad_token_id=pad_id,
            )
            if self.do_sample:  # transformers' own top-p sorts the whole vocabulary each step
                nucleus = NucleusSampling(self.top_p, self.sampling_temperature)
                # top_k=0: transformers would otherwise fill in its global default top_k=50
                kwargs.update(
                    logits_processor=LogitsProcessorList([nucleus]), temperature=1.0, top_k=0
                )
            with (
                attached_hooks(hooks),
                torch.inference_mode(),
                torch.random.fork_rng(devices=[device] if device.type == "cuda" else []),
            ):
                torch.manual_seed(self._seed(start))
                generated = model.generate(**enc, **kwargs)
            # an encoder-decoder returns decoder tokens only (after its start token)
            new_tokens = generated if seq2seq else generated[:, enc["input_ids"].shape[1] :]
            out.extend(tokenizer.batch_decode(new_tokens, skip_special_tokens=True))
        return out

    def next_token_kl(self, prompts) -> np.ndarray:
        """KL(baseline || intervened) of the next-token distribution after each prompt, in nats.

        One forward pass over the prompts with and one without the
        intervention (causal LMs: the last real prompt token's logits; the
        intervention acts as on generation's prompt pass). A dose-free
        measure of how much the operator disrupts the model, used by
        :func:`calibrate_dose`.

        Parameters
        ----------
        prompts : list of str
            The prompts.

        Returns
        -------
        ndarray of shape (n_prompts,)
        """
        base = self._next_token_logprobs(prompts, intervene=False)
        return kl_rows(base, self._next_token_logprobs(prompts, intervene=True))

    def next_token_logprobs(self, prompts, *, intervene: bool = True) -> np.ndarray:
        """Log-probabilities of the token after each prompt, with or without the intervention.

        Parameters
        ----------
        prompts : list of str
            The prompts.
        intervene : bool, default=True
            False: the unmodified model.

        Returns
        -------
        ndarray of shape (n_prompts, vocab)
        """
        return self._next_token_logprobs(prompts, intervene=intervene).numpy()

    def _next_token_logprobs(self, prompts, *, intervene: bool) -> torch.Tensor:
        """Log-probabilities of the token after each prompt, (n_prompts, vocab), on the CPU."""
        check_is_fitted(self, "layers_")
        prompts = check_texts(prompts, name="prompts")
        model, tokenizer = self._loaded()
        if not self.generative_ or _is_seq2seq(model):
            raise ValueError(
                f"next_token_kl needs a causal LM; {self.model!r} is "
                f"{'encoder-only' if not self.generative_ else 'an encoder-decoder'}."
            )
        device = next(model.parameters()).device
        pad_id = pad_token_id(tokenizer, model)
        ids = tokenizer(prompts, add_special_tokens=True)["input_ids"]
        # the LM head on the last position only (a 262k vocabulary makes the rest costly)
        last_only = "logits_to_keep" in inspect.signature(model.forward).parameters
        out = []
        for start in range(0, len(prompts), self.batch_size):
            batch = ids[start : start + self.batch_size]
            input_ids, mask = pad_batch(batch, pad_id, "left")  # last column: last real token
            # positions counted over real tokens, as generate() does for left padding
            positions = (mask.long().cumsum(-1) - 1).clamp(min=0)
            enc = {
                "input_ids": input_ids.to(device),
                "attention_mask": mask.to(device),
                "position_ids": positions.to(device),
            }
            if last_only:
                enc["logits_to_keep"] = 1
            state = self._state(prompts[start : start + len(batch)], mask)
            hooks = self._hooks(model, state) if intervene else []
            with attached_hooks(hooks), torch.inference_mode():
                logits = model(**enc).logits[:, -1].float()
            out.append(torch.log_softmax(logits, dim=-1).cpu())
        return torch.cat(out)

    def _state(self, prompts: list[str], mask: torch.Tensor) -> dict:
        """What the hooks share during one batch: the forward-pass counter and the rows."""
        return {
            "step": -1,
            "prompts": prompts,
            "mask": mask.bool(),  # real prompt tokens, (n_prompts, width)
            # a stack that sees only the prompt (T5's encoder, encoder-only models)
            "prompt_only": not self.generative_ or self.stack_ == "encoder",
            "seq2seq_decoder": self.generative_ and self.stack_ == "decoder" and self._seq2seq,
        }

    @property
    def _seq2seq(self) -> bool:
        return _is_seq2seq(self._loaded()[0])

    # ----------------------------------------------------- encoder-only models
    def _forward(self, texts: list[str], *, intervene: bool):
        """Yield ``(mask, final_states, logits or None)`` per batch for an encoder model."""
        model, tokenizer = self._loaded()
        device = next(model.parameters()).device
        layout = resolve_layout(model, self.stack_)
        pad_id = pad_token_id(tokenizer, model)
        ids = tokenizer(texts, add_special_tokens=True)["input_ids"]
        for start in range(0, len(texts), self.batch_size):
            batch = ids[start : start + self.batch_size]
            input_ids, mask = pad_batch(batch, pad_id, "right")
            state = self._state(texts[start : start + len(batch)], mask)
            captured: dict = {}
            hooks = self._hooks(model, state) if intervene else []
            # registered last, so it sees the output after any intervention at state L
            hooks.append((layout.module, "forward", _capture(captured)))
            with attached_hooks(hooks), torch.inference_mode():
                out = model(input_ids=input_ids.to(device), attention_mask=mask.to(device))
            logits = out.logits if self._has_lm_head_ else None
            yield mask.bool(), input_ids, captured["h"], logits

    def _representation_rows(self, texts: list[str]) -> np.ndarray:
        names = self._metric_names()
        rows = []
        batches = zip(
            self._forward(texts, intervene=False), self._forward(texts, intervene=True), strict=True
        )
        mask_id = self._loaded()[1].mask_token_id
        for (mask, input_ids, h0, logits0), (_, _, h1, logits1) in batches:
            h0, h1 = h0.double().cpu(), h1.double().cpu()
            m = mask.double()
            n = m.sum(1)
            shift = (h1 - h0).norm(dim=-1) / h0.norm(dim=-1).clamp_min(1e-12)
            cosine = torch.nn.functional.cosine_similarity(h1, h0, dim=-1)
            cols = {
                "state_shift": (shift * m).sum(1) / n,
                "state_cosine": (cosine * m).sum(1) / n,
            }
            if logits0 is not None:
                # masked positions where a text has them, else every real token
                at = mask & (input_ids == mask_id) if mask_id is not None else mask & False
                at = torch.where(at.any(1, keepdim=True), at, mask).double()
                lp0 = torch.log_softmax(logits0.double().cpu(), -1)
                lp1 = torch.log_softmax(logits1.double().cpu(), -1)
                kl = (lp0.exp() * (lp0 - lp1)).sum(-1)
                agree = (lp0.argmax(-1) == lp1.argmax(-1)).double()
                cols["prediction_kl"] = (kl * at).sum(1) / at.sum(1)
                cols["top1_agreement"] = (agree * at).sum(1) / at.sum(1)
            rows.append(torch.stack([cols[name] for name in names], dim=1).numpy())
        return np.concatenate(rows, axis=0)

    def fill_mask(self, texts, *, top_k: int = 5, baseline: bool = False) -> list[list[list[str]]]:
        """Top predictions at each mask token, with (or, ``baseline=True``, without) the intervention.

        Parameters
        ----------
        texts : list of str
            Each containing the tokenizer's mask token at least once (e.g.
            ``"[MASK]"`` for BERT, ``"<mask>"`` for RoBERTa).
        top_k : int, default=5
            Predictions kept per mask token.
        baseline : bool, default=False
            Predict without the intervention.

        Returns
        -------
        list
            Per text, per mask token, the ``top_k`` predicted tokens (best first).
        """
        check_is_fitted(self, "layers_")
        texts = check_texts(texts, name="texts")
        tokenizer = self._loaded()[1]
        if self.generative_ or not self._has_lm_head_:
            raise ValueError(
                f"fill_mask needs an encoder-only model with a masked-LM head; {self.model!r} "
                "has none (try 'tiny-bert' or a *ForMaskedLM checkpoint)."
            )
        token = tokenizer.mask_token
        missing = [i for i, t in enumerate(texts) if token not in t]
        if missing:
            raise ValueError(f"texts {missing} contain no mask token {token!r}.")
        out = []
        for mask, input_ids, _, logits in self._forward(texts, intervene=not baseline):
            top = logits.topk(top_k, dim=-1).indices.cpu()
            for b in range(input_ids.shape[0]):
                where = (input_ids[b] == tokenizer.mask_token_id) & mask[b]
                out.append(
                    [
                        [tokenizer.decode([int(t)]).strip() for t in top[b, pos]]
                        for pos in torch.nonzero(where).flatten().tolist()
                    ]
                )
        return out

    # ----------------------------------------------------------------- measure
    _DEFAULT_METRICS = ("ttr", "distinct_2", "sentence_count", "mean_sentence_length", "sentiment")

    def _metric_names(self) -> list[str]:
        if self.metrics is not None:
            return list(self.metrics)
        if getattr(self, "generative_", True):
            return list(self._DEFAULT_METRICS)
        return self._representation_metrics()

    def _measure(self, texts: list[str], n_prompts: int) -> np.ndarray:
        from ..metrics.text import TextMetrics

        if getattr(self, "_text_metrics", None) is None:
            self._text_metrics = TextMetrics(self._metric_names())
        table = self._text_metrics.compute(texts).to_numpy(dtype=float)
        # average the return sequences of each prompt (NaN-aware: a metric undefined for
        # one sequence is averaged over the others)
        per_prompt = table.reshape(n_prompts, self.num_return_sequences, -1)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN rows stay NaN
            return np.nanmean(per_prompt, axis=1)

    def transform(self, X) -> np.ndarray:
        """Text metrics of the intervened continuations, one row per prompt.

        For an encoder-only model, the representation metrics of each text
        instead: ``state_shift`` (mean over tokens of
        ``||h'_L - h_L|| / ||h_L||`` for the final states), ``state_cosine``
        and, with a masked-LM head, ``prediction_kl`` (KL(baseline ||
        intervened) of the token predictions, nats) and ``top1_agreement``,
        averaged over the text's mask tokens if it has any, else over all
        its tokens.

        Parameters
        ----------
        X : list of str
            The prompts.

        Returns
        -------
        ndarray of shape (n_prompts, n_metrics)
            Columns named by :meth:`get_feature_names_out`.
        """
        check_is_fitted(self, "layers_")
        prompts = check_texts(X, name="X")
        if not self.generative_:
            return self._representation_rows(prompts)
        return self._measure(self.generate(prompts), len(prompts))

    def _paired(self, prompts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """(treated, baseline) metric matrices; an encoder's baseline is the identity."""
        if not self.generative_:
            treated = self._representation_rows(prompts)
            identity = [REPRESENTATION_METRICS[name] for name in self._metric_names()]
            return treated, np.broadcast_to(np.asarray(identity, float), treated.shape)
        treated = self._measure(self.generate(prompts), len(prompts))
        return treated, self._measure(self.generate_baseline(prompts), len(prompts))

    def effects(self, X):
        """Paired effects (intervened vs matched baseline) of every metric over the prompts.

        Parameters
        ----------
        X : list of str
            The prompts.

        Returns
        -------
        pandas.DataFrame
            One row per metric: means, percent change, paired Cohen's d with a
            bootstrap 95% CI, Wilcoxon p (raw and Holm-adjusted across
            metrics), and how many prompts were dropped because the metric
            was undefined (NaN) for them.
        """
        import pandas as pd

        from ..stats import holm, paired_effect

        check_is_fitted(self, "layers_")
        prompts = check_texts(X, name="X")
        treated, baseline = self._paired(prompts)
        rows = []
        for k, name in enumerate(self._metric_names()):
            ok = np.isfinite(treated[:, k]) & np.isfinite(baseline[:, k])
            row = {"metric": name, "dropped": int((~ok).sum())}
            if ok.sum() >= 2:
                row.update(
                    paired_effect(baseline[ok, k], treated[ok, k], random_state=self.random_state)
                )
            rows.append(row)
        table = pd.DataFrame(rows)
        if "wilcoxon_p" in table:
            valid = table["wilcoxon_p"].notna()
            table.loc[valid, "wilcoxon_p_holm"] = holm(table.loc[valid, "wilcoxon_p"])
        return table

    def score(self, X, y=None) -> float:
        """Paired Cohen's d of ``target_metric``, intervened minus baseline (higher = more increase).

        Parameters
        ----------
        X : list of str
            The prompts.
        y : None
            Ignored.

        Returns
        -------
        float
            d_z of ``target_metric`` over the prompts.
        """
        from ..stats import paired_cohens_d

        names = self._metric_names()
        if self.target_metric not in names:
            raise ValueError(f"target_metric {self.target_metric!r} is not among metrics {names}.")
        check_is_fitted(self, "layers_")
        prompts = check_texts(X, name="X")
        k = names.index(self.target_metric)
        treated, baseline = self._paired(prompts)
        t, b = treated[:, k], baseline[:, k]
        ok = np.isfinite(t) & np.isfinite(b)
        return paired_cohens_d(b[ok], t[ok])

    def get_feature_names_out(self, input_features=None):
        """The metric names of :meth:`transform`'s columns.

        Parameters
        ----------
        input_features : None
            Ignored (the names are the metrics').

        Returns
        -------
        ndarray of str
        """
        return np.asarray(self._metric_names(), dtype=object)

    def _seed(self, *parts) -> int:
        key = repr((self.random_state, *parts)).encode()
        return int.from_bytes(hashlib.sha256(key).digest()[:4], "little")

    # ------------------------------------------------------------------- hooks
    def _active(self, state) -> bool:
        if self.positions == "all" or state["prompt_only"] or state["seq2seq_decoder"]:
            return True  # the stack's own positions were checked against `positions` in fit
        prompt_pass = state["step"] == 0
        return prompt_pass if self.positions == "prompt" else not prompt_pass

    def _hooks(self, model, state):
        layout = resolve_layout(model, self.stack_)
        hooks = [(model, "forward_pre", _step_counter(state))]
        if self.kind == "attention":
            for j in self.layers_:
                block = layout.blocks[j - 1]
                if self.temperature != 1.0 or not self.heads_.size:
                    hooks.append((_submodule(block, _Q_PROJ), "forward", self._query_hook(state)))
                if self.heads_.size:
                    hooks.append(
                        (_submodule(block, _O_PROJ), "forward_pre", self._head_mask_hook(state))
                    )
            return hooks
        for j in self.layers_:
            if j < layout.n_layers:
                hooks.append((layout.blocks[j], "forward_pre", self._state_hook(int(j), state)))
            else:  # the final state: the stack's own output (after its final norm)
                hooks.append((layout.module, "forward", self._output_hook(int(j), state)))
        return hooks

    def _query_hook(self, state):
        scale = 1.0 / self.temperature
        hidden = self.hidden_size_

        def hook(module, args, kwargs, output):
            if not self._active(state):
                return None
            if output.shape[-1] == 3 * hidden:  # GPT-2's fused [q | k | v] projection
                return torch.cat([output[..., :hidden] * scale, output[..., hidden:]], dim=-1)
            return output * scale

        return hook

    def _head_mask_hook(self, state):
        n_heads = int(self._loaded()[0].config.get_text_config().num_attention_heads)
        heads = torch.as_tensor(self.heads_)

        def mask(x):
            keep = torch.ones(n_heads, dtype=x.dtype, device=x.device)
            keep[heads.to(x.device)] = 0
            per_head = x.unflatten(-1, (n_heads, x.shape[-1] // n_heads))
            return (per_head * keep[:, None]).flatten(-2)

        return self._input_hook(state, mask)

    def _state_hook(self, j: int, state):
        return self._input_hook(state, lambda h: self._apply(h, j, state))

    def _input_hook(self, state, change):
        """A forward pre-hook replacing a module's first input ``x`` by ``change(x)``."""

        def hook(module, args, kwargs):
            if not self._active(state):
                return None
            if args:
                return (change(args[0]), *args[1:]), kwargs
            return args, {**kwargs, "hidden_states": change(kwargs["hidden_states"])}

        return hook

    def _output_hook(self, j: int, state):
        def hook(module, args, kwargs, output):
            if not self._active(state):
                return None
            if isinstance(output, tuple):
                return (self._apply(output[0], j, state), *output[1:])
            output["last_hidden_state"] = self._apply(output["last_hidden_state"], j, state)
            return output

        return hook

    def _apply(self, h: torch.Tensor, j: int, state) -> torch.Tensor:
        if self.kind == "scaling":
            return h * self.alpha
        if self.kind == "translation":
            vec = torch.as_tensor(self.steering_vectors_[j], dtype=h.dtype, device=h.device)
            return h + vec
        # noise, seeded per (prompt, return sequence, forward pass, layer); on the prompt's
        # pass only its real tokens get noise, so padding and batching do not change it
        eps = torch.zeros_like(h)
        n_prompts = len(state["prompts"])
        copies = h.shape[0] // n_prompts  # 1 for T5's encoder, else the return sequences
        prompt_pass = state["prompt_only"] or (state["step"] == 0 and not state["seq2seq_decoder"])
        for b in range(h.shape[0]):
            prompt = state["prompts"][b // copies]
            gen = torch.Generator().manual_seed(
                self._seed("noise", prompt, b % copies, max(state["step"], 0), j)
            )
            if prompt_pass:
                real = state["mask"][b // copies].to(h.device)
                draw = torch.randn((int(real.sum()), h.shape[2]), generator=gen)
                eps[b, real] = draw.to(h.device, h.dtype)
            else:
                eps[b] = torch.randn(h.shape[1:], generator=gen).to(h.device, h.dtype)
        rms = h.pow(2).mean(dim=-1, keepdim=True).sqrt()
        return h + self.sigma * rms * eps


def _step_counter(state):
    def hook(module, args, kwargs):
        state["step"] += 1

    return hook


def _capture(store: dict):
    def hook(module, args, kwargs, output):
        store["h"] = output[0]

    return hook


def _is_seq2seq(model) -> bool:
    return bool(getattr(model.config, "is_encoder_decoder", False))


def _is_generative(model) -> bool:
    return bool(getattr(model, "can_generate", lambda: False)())


def _submodule(block, paths):
    for path in paths:
        module = block
        try:
            for part in path.split("."):
                module = getattr(module, part)
        except AttributeError:
            continue
        return module
    raise ValueError(
        f"kind='attention' cannot find the self-attention projection of "
        f"{type(block).__name__} (looked for {', '.join(paths)})."
    )


def kl_rows(base: torch.Tensor, treated: torch.Tensor) -> np.ndarray:
    """Row-wise KL(base || treated) of log-probability rows, in nats (float64)."""
    kl = (base.exp() * (base - treated)).sum(-1).clamp(min=0.0)
    return kl.numpy().astype(np.float64)


def centred_window(layers, window: int) -> list[int]:
    """The ``window`` consecutive entries at the centre of ``layers`` (lower middle on
    a parity mismatch; all of them when the scale is smaller than the window).

    Parameters
    ----------
    layers : sequence of int
        A scale's hidden-state indices, in order.
    window : int
        How many to keep.

    Returns
    -------
    list of int

    Examples
    --------
    >>> centred_window([3, 4, 5, 6, 7, 8, 9, 10], 3)
    [5, 6, 7]
    >>> centred_window([0, 1], 3)
    [0, 1]
    """
    layers = sorted(int(j) for j in layers)
    if window >= len(layers):
        return layers
    first = (len(layers) - window) // 2
    return layers[first : first + window]


def _check_finite(estimator, names) -> None:
    """NaN or infinity passes scikit-learn's Interval checks; refuse it by name."""
    bad = {n: getattr(estimator, n) for n in names if not math.isfinite(getattr(estimator, n))}
    if bad:
        shown = ", ".join(f"{n}={v!r}" for n, v in bad.items())
        raise ValueError(f"{type(estimator).__name__} needs finite numbers; got {shown}.")

"""Intervener: steer the hidden states of one scale's layers during generation."""

from __future__ import annotations

import hashlib
import warnings
from numbers import Integral, Real

import numpy as np
import torch
from sklearn.base import BaseEstimator
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from ..extraction import HiddenStateExtractor
from ..extraction._core import pad_batch, pad_token_id, resolve_layout
from ..extraction._lazy import ModelBackedMixin
from ..utils._hooks import attached_hooks
from ..utils._validation import check_texts

__all__ = ["Intervener"]

_Q_PROJ = ("self_attn.q_proj", "attn.c_attn")  # Llama-style, GPT-2


class Intervener(ModelBackedMixin, BaseEstimator):
    """Intervene on the hidden states of chosen layers while a causal LM generates.

    Operators (``kind``), applied to hidden state ``j`` of every selected layer
    (the residual stream entering block ``j``; ``j = L`` is the final state
    read by the LM head):

    - ``"translation"``: ``h' = h + delta_j``. ``delta`` may be a vector of
      the hidden size; otherwise ``direction="random"`` draws a seeded unit
      direction scaled to ``norm`` times the typical token-state norm of that
      layer (measured on the ``fit`` texts), and ``direction="learned"`` uses
      ``norm`` times the difference of class means of the ``fit`` texts'
      mean-pooled states at that layer (a steering vector; ``y`` needs 2 classes);
    - ``"scaling"``: ``h' = alpha * h``;
    - ``"noise"``: ``h' = h + sigma * rms(h) * eps``, ``eps`` standard normal,
      seeded by the prompt's text, return sequence, step and layer (so
      batching and call order do not change it);
    - ``"attention"``: attention logits of the blocks producing the selected
      states divided by ``temperature`` (the query projection is scaled, so
      transformers' attention code is untouched).

    ``positions`` restricts the operator to the prompt's forward pass
    (``"prompt"``), to the generated tokens (``"generated"``), or applies it
    everywhere (``"all"``). Every hook goes through
    :func:`msma_sklearn.utils.attached_hooks` and is removed when the call
    ends, also on error. An identity operator (``alpha=1``, zero ``delta``,
    ``sigma=0``, ``temperature=1``) gives token-identical output to no
    intervention.

    Parameters
    ----------
    model : str, default="smollm2-135m"
        A causal LM spec (see :func:`~msma_sklearn.extraction.load_model`).
    scale : str, default=None
        Scale name looked up in ``scale_layers``.
    scale_layers : dict or fitted ScaleSegmenter, default=None
        Scale name -> hidden-state indices (e.g. ``segmenter.scale_layers_``).
    layers : list of int, default=None
        Explicit hidden-state indices (instead of ``scale``).
    kind : {"translation", "scaling", "noise", "attention"}, default="scaling"
    alpha : float, default=1.0
    delta : array-like of shape (hidden_size,), default=None
    direction : {"random", "learned"}, default="random"
    norm : float, default=1.0
    sigma : float, default=0.0
    temperature : float, default=1.0
    positions : {"all", "prompt", "generated"}, default="all"
    max_new_tokens : int, default=20
    do_sample : bool, default=False
    top_p : float, default=1.0
    sampling_temperature : float, default=1.0
    num_return_sequences : int, default=1
    batch_size : int, default=8
    device : str, default="auto"
    dtype : {"float32", "float16", "bfloat16"}, default="float32"
    random_state : int or None, default=None
        Seeds random directions, noise and sampling (torch's global generator
        is forked and restored around sampling).
    metrics : sequence of str, default=None
        Text metrics for :meth:`transform` (see
        :class:`msma_sklearn.metrics.text.TextMetrics`); None:
        ``("ttr", "distinct_2", "sentence_count", "mean_sentence_length", "sentiment")``.
    target_metric : str, default="sentiment"
        What :meth:`score` measures the shift of.

    Attributes
    ----------
    layers_ : ndarray of int
    n_layers_ : int
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
        "model": [str],
        "scale": [None, str],
        "scale_layers": "no_validation",  # a dict or a fitted ScaleSegmenter; checked in fit
        "layers": [None, "array-like", Integral],
        "kind": [StrOptions({"translation", "scaling", "noise", "attention"})],
        "alpha": [Real],
        "delta": [None, "array-like"],
        "direction": [StrOptions({"random", "learned"})],
        "norm": [Real],
        "sigma": [Interval(Real, 0, None, closed="left")],
        "temperature": [Interval(Real, 0, None, closed="neither")],
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
    }

    def __init__(
        self,
        model="smollm2-135m",
        *,
        scale=None,
        scale_layers=None,
        layers=None,
        kind="scaling",
        alpha=1.0,
        delta=None,
        direction="random",
        norm=1.0,
        sigma=0.0,
        temperature=1.0,
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
    ):
        self.model = model
        self.scale = scale
        self.scale_layers = scale_layers
        self.layers = layers
        self.kind = kind
        self.alpha = alpha
        self.delta = delta
        self.direction = direction
        self.norm = norm
        self.sigma = sigma
        self.temperature = temperature
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
        model, _ = self._load()
        if not _is_generative(model):
            raise ValueError(
                f"{self.model!r} ({model.config.model_type}) is not a causal language model: "
                "Intervener generates text, so it needs one (e.g. 'smollm2-135m', 'tiny-gpt2')."
            )
        layout = resolve_layout(model)
        self.n_layers_ = layout.n_layers
        self.hidden_size_ = int(model.config.get_text_config().hidden_size)
        self.layers_ = self._resolve_layers()
        self.steering_vectors_ = {}
        if self.kind == "translation":
            self.steering_vectors_ = self._vectors(X, y)
        return self

    def _resolve_layers(self) -> np.ndarray:
        if self.layers is not None:
            layers = np.atleast_1d(np.asarray(self.layers))
        else:
            if self.scale is None:
                raise ValueError(
                    "Pass scale= (with scale_layers=) or layers= to choose where to act."
                )
            table = getattr(self.scale_layers, "scale_layers_", self.scale_layers)
            if not isinstance(table, dict):
                raise ValueError(
                    "scale_layers must be a dict of scale -> hidden-state indices or a fitted "
                    f"ScaleSegmenter, got {type(self.scale_layers).__name__}."
                )
            if self.scale not in table:
                raise ValueError(f"Unknown scale {self.scale!r}; scale_layers has {sorted(table)}.")
            layers = np.asarray(table[self.scale])
        if layers.size == 0 or not np.issubdtype(layers.dtype, np.integer):
            raise ValueError(f"layers must be a non-empty list of ints, got {self.layers!r}.")
        bad = [int(j) for j in layers if not 0 <= j <= self.n_layers_]
        if bad:
            raise ValueError(
                f"Layer indices {bad} out of range for {self.model!r}: hidden states are "
                f"0..{self.n_layers_}."
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
            self.model, layers=self.layers_.tolist(), device=self.device, dtype=self.dtype
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
        rng = check_random_state(self.random_state)
        vectors = {}
        for i, j in enumerate(self.layers_):
            states = np.concatenate([t[i] for t in tokens], axis=0).astype(np.float64)
            typical_norm = float(np.sqrt((states**2).sum(axis=1).mean()))
            u = rng.standard_normal(H)
            vectors[int(j)] = self.norm * typical_norm * u / np.linalg.norm(u)
        return vectors

    # ---------------------------------------------------------------- generate
    def generate(self, prompts) -> list[str]:
        """Generated continuations with the intervention (prompt excluded).

        Returns
        -------
        list of str
            ``num_return_sequences`` per prompt, prompts in input order.
        """
        return self._generate(prompts, intervene=True)

    def generate_baseline(self, prompts) -> list[str]:
        """The matched baseline: same prompts, settings and seeds, no intervention."""
        return self._generate(prompts, intervene=False)

    def _generate(self, prompts, *, intervene: bool) -> list[str]:
        check_is_fitted(self, "layers_")
        prompts = check_texts(prompts, name="prompts")
        model, tokenizer = self._loaded()
        device = next(model.parameters()).device
        pad_id = pad_token_id(tokenizer, model)
        ids = tokenizer(prompts, add_special_tokens=True)["input_ids"]
        out: list[str] = []
        for start in range(0, len(prompts), self.batch_size):
            batch = ids[start : start + self.batch_size]
            input_ids, mask = pad_batch(batch, pad_id, "left")  # no tokenizer state touched
            enc = {"input_ids": input_ids.to(device), "attention_mask": mask.to(device)}
            # noise is seeded by the prompt's text, so batching and call order do not matter
            rows = [
                p
                for p in prompts[start : start + len(batch)]
                for _ in range(self.num_return_sequences)
            ]
            state = {
                "step": -1,
                "rows": rows,
                "lengths": enc["attention_mask"]
                .sum(1)
                .repeat_interleave(self.num_return_sequences)
                .tolist(),
            }
            hooks = self._hooks(model, state) if intervene else []
            kwargs = dict(
                max_new_tokens=self.max_new_tokens,
                do_sample=self.do_sample,
                num_return_sequences=self.num_return_sequences,
                pad_token_id=pad_id,
            )
            if self.do_sample:
                kwargs.update(top_p=self.top_p, temperature=self.sampling_temperature)
            with (
                attached_hooks(hooks),
                torch.inference_mode(),
                torch.random.fork_rng(devices=[device] if device.type == "cuda" else []),
            ):
                torch.manual_seed(self._seed(start))
                generated = model.generate(**enc, **kwargs)
            new_tokens = generated[:, enc["input_ids"].shape[1] :]
            out.extend(tokenizer.batch_decode(new_tokens, skip_special_tokens=True))
        return out

    # ----------------------------------------------------------------- measure
    _DEFAULT_METRICS = ("ttr", "distinct_2", "sentence_count", "mean_sentence_length", "sentiment")

    def _metric_names(self) -> list[str]:
        return list(self._DEFAULT_METRICS if self.metrics is None else self.metrics)

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

        Returns
        -------
        ndarray of shape (n_prompts, n_metrics)
            Columns named by :meth:`get_feature_names_out`.
        """
        prompts = check_texts(X, name="X")
        return self._measure(self.generate(prompts), len(prompts))

    def effects(self, X):
        """Paired effects (intervened vs matched baseline) of every metric over the prompts.

        Returns
        -------
        pandas.DataFrame
            One row per metric: means, percent change, paired Cohen's d with a
            bootstrap 95% CI, Wilcoxon p (raw and Holm-adjusted across
            metrics), and how many prompts were dropped because the metric
            was undefined (NaN) for them.
        """
        import pandas as pd

        from ._effects import holm, paired_effect

        prompts = check_texts(X, name="X")
        treated = self._measure(self.generate(prompts), len(prompts))
        baseline = self._measure(self.generate_baseline(prompts), len(prompts))
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
        """Paired Cohen's d of ``target_metric``, intervened minus baseline (higher = more increase)."""
        from ._effects import paired_cohens_d

        names = self._metric_names()
        if self.target_metric not in names:
            raise ValueError(f"target_metric {self.target_metric!r} is not among metrics {names}.")
        prompts = check_texts(X, name="X")
        k = names.index(self.target_metric)
        t = self._measure(self.generate(prompts), len(prompts))[:, k]
        b = self._measure(self.generate_baseline(prompts), len(prompts))[:, k]
        ok = np.isfinite(t) & np.isfinite(b)
        return paired_cohens_d(b[ok], t[ok])

    def get_feature_names_out(self, input_features=None):
        """The metric names of :meth:`transform`'s columns."""
        return np.asarray(self._metric_names(), dtype=object)

    def _seed(self, *parts) -> int:
        key = repr((self.random_state, *parts)).encode()
        return int.from_bytes(hashlib.sha256(key).digest()[:4], "little")

    # ------------------------------------------------------------------- hooks
    def _active(self, state) -> bool:
        if self.positions == "all":
            return True
        prompt_pass = state["step"] == 0
        return prompt_pass if self.positions == "prompt" else not prompt_pass

    def _hooks(self, model, state):
        layout = resolve_layout(model)
        hooks = [(model, "forward_pre", _step_counter(state))]
        if self.kind == "attention":
            for j in self.layers_:
                hooks.append(
                    (_query_projection(layout.blocks[j - 1]), "forward", self._query_hook(state))
                )
            return hooks
        for j in self.layers_:
            target = layout.blocks[j] if j < layout.n_layers else model.get_output_embeddings()
            hooks.append((target, "forward_pre", self._state_hook(int(j), state)))
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

    def _state_hook(self, j: int, state):
        def hook(module, args, kwargs):
            if not self._active(state):
                return None
            h = args[0] if args else kwargs["hidden_states"]
            new = self._apply(h, j, state)
            if args:
                return (new, *args[1:]), kwargs
            return args, {**kwargs, "hidden_states": new}

        return hook

    def _apply(self, h: torch.Tensor, j: int, state) -> torch.Tensor:
        if self.kind == "scaling":
            return h * self.alpha
        if self.kind == "translation":
            vec = torch.as_tensor(self.steering_vectors_[j], dtype=h.dtype, device=h.device)
            return h + vec
        # noise, seeded per (prompt row, step, layer) and laid on the real positions
        eps = torch.zeros_like(h)
        T = h.shape[1]
        for b, row in enumerate(state["rows"]):
            n = min(T, int(state["lengths"][b])) if state["step"] == 0 else T
            sequence = b % self.num_return_sequences
            gen = torch.Generator().manual_seed(
                self._seed("noise", row, sequence, state["step"], j)
            )
            eps[b, T - n :] = torch.randn((n, h.shape[2]), generator=gen).to(h.device, h.dtype)
        rms = h.pow(2).mean(dim=-1, keepdim=True).sqrt()
        return h + self.sigma * rms * eps


def _step_counter(state):
    def hook(module, args, kwargs):
        state["step"] += 1

    return hook


def _is_generative(model) -> bool:
    return bool(getattr(model, "can_generate", lambda: False)()) and not getattr(
        model.config, "is_encoder_decoder", False
    )


def _query_projection(block):
    for path in _Q_PROJ:
        module = block
        try:
            for part in path.split("."):
                module = getattr(module, part)
        except AttributeError:
            continue
        return module
    raise ValueError(
        f"kind='attention' does not know where the query projection of {type(block).__name__} "
        f"is (looked for {', '.join(_Q_PROJ)})."
    )

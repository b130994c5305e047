"""HiddenStateExtractor: texts -> pooled per-layer hidden states."""

from __future__ import annotations

import functools
import logging
import os
from numbers import Integral
from pathlib import Path

import numpy as np
import torch
from sklearn.base import BaseEstimator, TransformerMixin, clone
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from ..utils._validation import check_texts
from ._batching import (
    _BatchRun,
    _pool_on,
    _position_limit,
)
from ._core import (
    POOLINGS,
    drop_leading_tokens,
    pad_token_id,
    resolve_layout,
    to_device,
    tokenise,
    tokenised_windows,
)
from ._lazy import ModelBackedMixin
from ._models import model_fingerprint, resolve_device
from ._output import LayerOutputMixin
from ._readouts import TokenReadoutMixin
from ._state_cache import ExtractionCacheMixin

__all__ = ["HiddenStateExtractor"]

logger = logging.getLogger(__name__)


class HiddenStateExtractor(
    LayerOutputMixin,
    TokenReadoutMixin,
    ExtractionCacheMixin,
    ModelBackedMixin,
    TransformerMixin,
    BaseEstimator,
):
    """Pooled hidden states of every requested layer of a transformer.

    ``fit`` loads the model (never a constructor parameter: the estimator holds
    only its name, so ``clone`` and pickling stay cheap); ``transform`` maps a
    list of texts to one row per text holding the pooled state of each
    selected layer, blocks in increasing layer order.

    Parameters
    ----------
    model : str, default="minilm"
        An offline name (``"minilm"``, ``"smollm2-135m"``, ``"tiny-gpt2"``,
        ``"tiny-bert"``, ``"tiny-roberta"``, ``"tiny-t5"``), a local checkpoint
        directory, or a Hugging Face Hub id (needs a network).
    layers : "all", int or array-like of int, default="all"
        Hidden-state indices as in transformers' ``hidden_states``: 0 is the
        embedding output, 1..L the blocks. Negative indices count from the
        end. Returned in increasing order.
    pooling : {"mean", "mean_all", "first", "cls", "last", "max"}, default="mean"
        Token pooling. ``"mean"`` ignores padding; ``"mean_all"`` pads every
        text to ``max_length`` and averages all positions, padding included,
        as the original MSMA code did (for like-for-like reproduction only);
        ``"first"``/``"cls"`` take the first token, ``"last"`` the last real
        token, ``"max"`` the element-wise max over real tokens.
    sink_tokens : "auto" or int, default="auto"
        Number of leading real tokens of every text left out of ``"mean"``,
        ``"max"``, ``"first"`` and ``"last"`` pooling: attention-sink tokens,
        whose states in causal LMs are orders of magnitude larger than any
        other token's (on SmolLM2-135M the first token's state norm is about
        100x the median token's from block 4 on; see docs/extraction.md).
        ``"auto"``: 1 for causal stacks (decoder-only LMs, a T5 decoder, whose
        first position is the decoder start token), 0 for bidirectional
        encoders, whose first token ([CLS]) is not an outlier. ``"cls"`` and
        ``"mean_all"`` pooling never drop tokens (``"mean_all"`` reproduces the
        original code). A text with no more real tokens than ``sink_tokens``
        keeps them all, with a warning that counts such texts. The resolved
        number is ``sink_tokens_``.
    max_length : int, default=128
        Maximum tokens per text (special tokens included). Longer texts are
        truncated, with one warning per call that counts them.
    batch_size : int or "auto", default="auto"
        Most texts per forward pass. Texts are sorted by length into batches
        (to minimise padding) and the output is returned in input order.
        ``"auto"``: 32 on a CPU; on an accelerator no cap, the token budget
        decides (``AUTO_BATCH`` holds the values).
    max_batch_tokens : int, "auto" or None, default="auto"
        With it, a batch also holds at most this many padded tokens (texts x
        its longest text), so batches of short texts hold more texts than
        batches of long ones (up to ``batch_size``); see docs/extraction.md
        for the measured effect. ``"auto"``: none on a CPU (where 32 texts
        per batch measured as fast as any budget), 16,384 tokens on an
        accelerator (where small batches leave it idle), lowered on a GPU to
        what an estimate of a batch's memory fits in half its free memory
        (logged). A budget you set is used as given. A batch that runs
        out of accelerator memory is split in two and retried, with a warning.
    device : str, default="auto"
        ``"auto"`` (CUDA if available, else CPU), ``"cpu"``, ``"cuda"``, ...
    device_map : str or dict, default=None
        For a checkpoint directory or Hub id: load it with accelerate spread
        over devices (``"auto"``, ``"balanced"`` or a module -> device
        mapping), for models larger than one GPU; ``device`` is then not used.
        Each layer's states are pooled on the device that holds them.
    dtype : {"float32", "float16", "bfloat16"}, default="float32"
        Precision of the model's forward pass. The output is always float32.
    stack : {"auto", "encoder", "decoder"}, default="auto"
        Which stack to read. Encoder-decoder models (T5) default to the
        encoder; with ``"decoder"`` the text goes to the encoder and, shifted
        right behind the decoder start token, to the decoder (teacher
        forcing), whose states are read. Single-stack models accept only their
        own stack.
    padding_side : {"right", "left"}, default="right"
        Side on which batches are padded. Positions are derived from the
        attention mask, so results do not depend on it (except for
        ``pooling="mean_all"``, whose padded positions differ).
    cache_dir : str or path-like, default=None
        If set, transformed arrays are stored there, keyed by the model's
        weights hash, the texts and every parameter that changes the result;
        a corrupt or truncated entry is detected, recomputed and replaced.
    n_jobs : int, default=None
        Shards processed in parallel through joblib (``None``: 1, ``-1``: all
        workers of the active backend). Each worker process loads the model
        once. Under ``joblib.parallel_backend("dask")`` the shards run on a
        dask.distributed cluster. The output is the same, in input order,
        whatever ``n_jobs`` and backend.
    shard_size : int, default=1024
        Texts per shard. Extraction always works shard by shard (also with
        ``n_jobs=None``: batches never span shards), so that the result does
        not depend on how shards are spread over workers. In one process the
        shards run as one pipeline: the next texts are tokenised, and on a GPU
        the next batch queued, while a shard's last batch runs.
    verbose : int, default=0
        ``> 0`` shows a progress bar and logs timings.

    Attributes
    ----------
    layers_ : ndarray of shape (n_selected_layers,)
        Selected hidden-state indices, increasing.
    n_layers_ : int
        Number of transformer blocks L in the read stack (indices 0..L exist).
    hidden_size_ : int
        Width of one layer's state.
    model_type_ : str
        ``config.model_type`` of the loaded model (e.g. ``"bert"``).
    sink_tokens_ : int
        Leading real tokens left out of pooling (``sink_tokens`` resolved).
    stack_ : str
        The stack read (``"encoder"`` or ``"decoder"``).

    See Also
    --------
    reshape_by_layer : view the output as ``(n_samples, n_layers, hidden)``.

    Notes
    -----
    Pickling or cloning drops the loaded weights; they are reloaded from
    ``model`` on first use (from an in-process cache when already loaded).

    Examples
    --------
    >>> from msma_sklearn import HiddenStateExtractor
    >>> ext = HiddenStateExtractor(model="tiny-gpt2", layers=[0, 2]).fit(["a text"])
    >>> X = ext.transform(["The cat sat.", "A much longer second sentence here."])
    >>> X.shape, ext.get_feature_names_out()[64]
    ((2, 128), 'layer2__0')
    """

    _parameter_constraints: dict = {
        "model": [str, os.PathLike],
        "layers": [StrOptions({"all"}), Integral, "array-like"],
        "pooling": [StrOptions(set(POOLINGS))],
        "sink_tokens": [StrOptions({"auto"}), Interval(Integral, 0, None, closed="left")],
        "max_length": [Interval(Integral, 1, None, closed="left")],
        "batch_size": [StrOptions({"auto"}), Interval(Integral, 1, None, closed="left")],
        "max_batch_tokens": [
            StrOptions({"auto"}),
            Interval(Integral, 1, None, closed="left"),
            None,
        ],
        "device": [str],
        "device_map": [None, str, dict],
        "dtype": [StrOptions({"float32", "float16", "bfloat16"})],
        "stack": [StrOptions({"auto", "encoder", "decoder"})],
        "padding_side": [StrOptions({"right", "left"})],
        "cache_dir": [None, str, os.PathLike],
        "n_jobs": [None, Integral],
        "shard_size": [Interval(Integral, 1, None, closed="left")],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        model="minilm",
        *,
        layers="all",
        pooling="mean",
        sink_tokens="auto",
        max_length=128,
        batch_size="auto",
        max_batch_tokens="auto",
        device="auto",
        device_map=None,
        dtype="float32",
        stack="auto",
        padding_side="right",
        cache_dir=None,
        n_jobs=None,
        shard_size=1024,
        verbose=0,
    ):
        self.model = model
        self.layers = layers
        self.pooling = pooling
        self.sink_tokens = sink_tokens
        self.max_length = max_length
        self.batch_size = batch_size
        self.max_batch_tokens = max_batch_tokens
        self.device = device
        self.device_map = device_map
        self.dtype = dtype
        self.stack = stack
        self.padding_side = padding_side
        self.cache_dir = cache_dir
        self.n_jobs = n_jobs
        self.shard_size = shard_size
        self.verbose = verbose

    # ------------------------------------------------------------------ fit
    def fit(self, X, y=None):
        """Validate the parameters and texts, load the model, resolve the layers.

        Parameters
        ----------
        X : list of str
            Texts (validated only: extraction learns nothing from them).
        y : None
            Ignored.

        Returns
        -------
        self : HiddenStateExtractor
        """
        self._validate_params()
        check_texts(X, name="X")
        resolve_device(self.device)  # fail early on a bad device string
        if self.cache_dir is not None and Path(self.cache_dir).exists():
            if not Path(self.cache_dir).is_dir():
                raise ValueError(
                    f"cache_dir={str(self.cache_dir)!r} is a file, not a directory; pass a "
                    "directory (it is created if missing) or cache_dir=None."
                )
        model, tokenizer = self._load()
        layout = resolve_layout(model, self.stack)
        self.stack_ = layout.stack
        self.n_layers_ = layout.n_layers
        self.layers_ = self._resolve_layers(layout.n_layers)
        self.hidden_size_ = int(model.config.get_text_config().hidden_size)
        self.model_type_ = str(model.config.model_type)
        self.sink_tokens_ = self._resolve_sink_tokens(layout.causal)
        limit = _position_limit(model.config)
        if limit is not None and self.max_length > limit:
            raise ValueError(
                f"max_length={self.max_length} exceeds what {self.model!r} can encode "
                f"({limit} positions); use max_length <= {limit}."
            )
        return self

    def fit_transform(self, X, y=None, **fit_params):
        """Fit, then transform the same texts (read once: a generator works).

        Parameters
        ----------
        X : list of str or iterable of str
            The texts (read once).
        y : None
            Ignored.
            Ignored.
        **fit_params : dict
            Passed to :meth:`fit`.

        Returns
        -------
        X_new : ndarray of shape (n_samples, n_selected_layers * hidden_size), float32
        """
        texts = check_texts(X, name="X")
        return self.fit(texts, y, **fit_params).transform(texts)

    def model_source(self) -> dict:
        """Which model produced this extractor's states: ``{"model", "model_type",
        "stack", "weights"}`` (``weights``: :func:`model_fingerprint`, SHA-256 of the
        config and every parameter, computed once per loaded model).

        With ``set_output(transform="pandas")`` the output DataFrame carries it as
        ``df.attrs["msma_source"]``, so a :class:`~msma_sklearn.ScaleSegmenter` fitted on
        it records its model and an :class:`~msma_sklearn.Intervener` can refuse scales
        of another model.

        Returns
        -------
        source : dict
        """
        check_is_fitted(self, "layers_")
        model, _ = self._loaded()
        return {
            "model": str(self.model),
            "model_type": self.model_type_,
            "stack": self.stack_,
            "weights": model_fingerprint(model),
        }

    def _resolve_sink_tokens(self, causal: bool) -> int:
        if self.pooling in ("mean_all", "cls"):
            if self.sink_tokens not in ("auto", 0):
                raise ValueError(
                    f"sink_tokens={self.sink_tokens!r} does not apply to pooling="
                    f"{self.pooling!r}, which always reads "
                    + ("every position" if self.pooling == "mean_all" else "the first token")
                    + "; use sink_tokens='auto' or 0, or pooling='mean'."
                )
            return 0
        if self.sink_tokens == "auto":
            return 1 if causal else 0
        return int(self.sink_tokens)

    def _resolve_layers(self, n_layers: int) -> np.ndarray:
        n_states = n_layers + 1
        if isinstance(self.layers, str):  # "all" (validated)
            return np.arange(n_states)
        raw = np.atleast_1d(np.asarray(self.layers))
        if raw.size == 0 or raw.ndim != 1 or not np.issubdtype(raw.dtype, np.integer):
            raise ValueError(
                f"layers must be 'all', an int or a non-empty list of ints, got {self.layers!r}."
            )
        bad = [int(i) for i in raw if not -n_states <= i < n_states]
        if bad:
            raise ValueError(
                f"layers {bad} out of range for {self.model!r}: valid indices are 0..{n_layers} "
                f"(0 = embeddings, {n_layers} = last block) or -{n_states}..-1."
            )
        resolved = np.where(raw < 0, raw + n_states, raw)
        if len(set(resolved.tolist())) != len(resolved):
            raise ValueError(
                f"layers contains duplicates after resolving negatives: {self.layers!r}."
            )
        return np.sort(resolved).astype(np.int64)

    # ------------------------------------------------------------ transform
    def transform(self, X):
        """Pooled hidden states of the selected layers.

        Parameters
        ----------
        X : list of str
            The texts.

        Returns
        -------
        X_new : ndarray of shape (n_samples, n_selected_layers * hidden_size), float32
            Blocks in layer order: columns ``[k * hidden_size, (k + 1) *
            hidden_size)`` hold layer ``layers_[k]``.
        """
        check_is_fitted(self, "layers_")
        texts = check_texts(X, name="X")
        if self.cache_dir is None:
            return self._compute(texts)
        return self._cached(texts)

    def _compute(self, texts: list[str]) -> np.ndarray:
        from joblib import Parallel, delayed, effective_n_jobs

        size = self.shard_size
        bounds = [(i, min(i + size, len(texts))) for i in range(0, len(texts), size)]
        if len(bounds) == 1 or effective_n_jobs(self.n_jobs) == 1:
            # in this process: one pipeline through every shard, the accelerator fed
            # across shard ends; batches stay within shards, so the numbers are those
            # of the parallel path
            X, n_truncated, n_short = self._compute_shard(texts, bounds)
        else:
            worker = clone(self).set_params(n_jobs=None, cache_dir=None, verbose=0)
            parts = Parallel(n_jobs=self.n_jobs)(
                delayed(_extract_shard)(worker, texts[a:b]) for a, b in bounds
            )
            X = np.concatenate([p[0] for p in parts], axis=0)
            n_truncated = sum(p[1] for p in parts)
            n_short = sum(p[2] for p in parts)
        self._warn_truncated(n_truncated, len(texts))
        self._warn_sink_only(n_short, len(texts))
        return X

    def _compute_shard(self, texts: list[str], bounds=None) -> tuple[np.ndarray, int, int]:
        """Pooled states of one shard (or of the shards ``bounds``, ``(start, stop)``
        ranges of ``texts``), how many texts were truncated, and how many were too short
        to leave their sink tokens out."""
        model, tokenizer = self._loaded()
        layout = resolve_layout(model, self.stack)
        layers = self.layers_.tolist()
        n_sel, width = len(layers), self.hidden_size_
        out = np.empty((len(texts), n_sel * width), dtype=np.float32)
        n_short = n_truncated = 0
        device = next(model.parameters()).device
        # on an accelerator the pooled rows are copied to pinned host memory without
        # blocking, and the host waits only when it reads them (two batches later)
        overlap = device.type == "cuda"
        pending: list = []

        def drain(keep: int) -> None:
            while len(pending) > keep:
                rows, host, done = pending.pop(0)
                done.synchronize()
                out[rows] = host.numpy()

        pad_id = pad_token_id(tokenizer, model)
        run = _BatchRun(self, model, len(texts), "Extracting")
        # the next window of texts is tokenised while this one's batches run
        windows = tokenised_windows(
            functools.partial(tokenise, tokenizer, max_length=self.max_length),
            texts,
            groups=bounds,
        )
        for index, tok in windows:
            n_truncated += tok.n_truncated
            for rows, states, mask in run.batches(layout, tok, pad_id):
                rows = index[rows]
                mask, short = drop_leading_tokens(mask, self._sinks())  # on the host: no sync
                n_short += short
                mask = to_device(mask, device)
                pooled = torch.stack(
                    [_pool_on(states[j], mask, self.pooling) for j in layers], dim=1
                )
                pooled = pooled.reshape(len(rows), -1).float()
                if overlap:
                    host = torch.empty(pooled.shape, dtype=torch.float32, pin_memory=True)
                    host.copy_(pooled, non_blocking=True)
                    done = torch.cuda.Event()
                    done.record()
                    pending.append((rows, host, done))
                    drain(keep=2)
                else:
                    out[rows] = pooled.cpu().numpy()  # no copy on a CPU; mps, xpu: to the host
        drain(keep=0)
        run.close()
        return out, n_truncated, n_short

    def _sinks(self) -> int:
        # fitted before this attribute existed (old pickles): the old behaviour
        return getattr(self, "sink_tokens_", 0)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.string = True
        tags.requires_fit = True
        tags.non_deterministic = False
        return tags


def _extract_shard(
    extractor: HiddenStateExtractor, texts: list[str]
) -> tuple[np.ndarray, int, int]:
    """One shard, in whichever process joblib or dask runs it (the model loads once there)."""
    return extractor.fit(texts)._compute_shard(texts)


def _with_source(method):
    """Stamp a DataFrame output (``set_output(transform="pandas")``) with the model that
    produced it. Applied after the class is built, outside scikit-learn's own output
    wrapper, which rebuilds the DataFrame and would drop ``attrs``."""

    @functools.wraps(method)
    def stamped(self, X, *args, **kwargs):
        out = method(self, X, *args, **kwargs)
        if hasattr(out, "attrs") and hasattr(out, "columns"):
            out.attrs["msma_source"] = self.model_source()
        return out

    return stamped


HiddenStateExtractor.transform = _with_source(HiddenStateExtractor.transform)
HiddenStateExtractor.fit_transform = _with_source(HiddenStateExtractor.fit_transform)

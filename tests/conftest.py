"""Test configuration: offline, deterministic, small."""

import contextlib
import os

# A mistyped model id must fail at once instead of trying the network.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# `MSMA_TEST_DEVICE=cuda make test-gpu`: every estimator and load_model(name) with their
# default device="auto" run there (one shared instance per model, as in use)
if os.environ.get("MSMA_TEST_DEVICE", "").strip():
    os.environ["MSMA_DEVICE"] = os.environ["MSMA_TEST_DEVICE"].strip()

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

TEXTS = [
    "The cat sat on the mat.",
    "Stock markets rallied after the central bank held rates steady, surprising analysts.",
    "Why?",
    "Whisk the eggs, fold in the flour, and bake for twenty minutes at a moderate heat.",
    "I don't think so.",
    "A long and winding sentence that keeps going, clause after clause, so that it is "
    "clearly the longest text in this small and varied batch of examples.",
    "Rain.",
]


def pytest_configure(config):
    wanted = os.environ.get("MSMA_TEST_DEVICE", "").strip()
    if wanted.startswith("cuda") and not torch.cuda.is_available():
        raise pytest.UsageError(
            f"MSMA_TEST_DEVICE={wanted!r} but torch {torch.__version__} sees no CUDA device."
        )


@pytest.fixture
def texts():
    return list(TEXTS)


def all_hooks(model: torch.nn.Module) -> int:
    """Total number of hooks of every kind on every submodule."""
    total = 0
    for module in model.modules():
        for attr in (
            "_forward_hooks",
            "_forward_pre_hooks",
            "_backward_hooks",
            "_forward_hooks_with_kwargs",
            "_forward_pre_hooks_with_kwargs",
        ):
            total += len(getattr(module, attr, {}))
    return total


def reference_states(model, tokenizer, text, *, stack="auto", max_length=None):
    """The model's own ``output_hidden_states`` for one unpadded text: list of (T, H)."""
    enc = tokenizer(
        text, return_tensors="pt", truncation=max_length is not None, max_length=max_length
    ).to(model.device)
    with torch.inference_mode():
        if model.config.is_encoder_decoder:
            out = model(
                input_ids=enc.input_ids,
                attention_mask=enc.attention_mask,
                decoder_input_ids=model._shift_right(enc.input_ids),
                output_hidden_states=True,
            )
            hs = out.decoder_hidden_states if stack == "decoder" else out.encoder_hidden_states
        else:
            hs = model.base_model(**enc, output_hidden_states=True).hidden_states
    return [h[0].float().cpu().numpy() for h in hs]


def numpy_pool(states: np.ndarray, method: str, skip: int = 0) -> np.ndarray:
    """Independent pooling of an unpadded (T, H) array, its first ``skip`` tokens left out
    (all kept when nothing would be left)."""
    if method not in ("cls", "mean_all") and states.shape[0] > skip:
        states = states[skip:]
    if method == "mean":
        return states.mean(axis=0)
    if method in ("first", "cls"):
        return states[0]
    if method == "last":
        return states[-1]
    if method == "max":
        return states.max(axis=0)
    raise ValueError(method)


@contextlib.contextmanager
def counting_block_calls(model):
    """Count forward calls of each transformer block of ``model`` inside the block."""
    from msma_sklearn.extraction._core import resolve_layout

    blocks = resolve_layout(model).blocks
    calls = [0] * len(blocks)
    handles = [
        b.register_forward_hook(lambda m, a, o, i=i: calls.__setitem__(i, calls[i] + 1))
        for i, b in enumerate(blocks)
    ]
    try:
        yield calls
    finally:
        for h in handles:
            h.remove()

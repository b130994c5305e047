"""Token-budget batching and out-of-memory backoff (issue #14)."""

import numpy as np
import pytest
import torch

from msma_sklearn import HiddenStateExtractor
from msma_sklearn.extraction import _batching, _extractor
from msma_sklearn.extraction._batching import AUTO_BATCH, batch_limits, length_batches


@pytest.mark.parametrize("max_tokens", [None, 1, 7, 40, 1000])
@pytest.mark.parametrize("max_rows", [1, 3, 50])
def test_length_batches_cover_every_text_once_within_the_budget(max_rows, max_tokens):
    lengths = np.random.default_rng(0).integers(1, 30, size=57)
    batches = length_batches(lengths, max_rows, max_tokens)
    flat = np.concatenate(batches)
    assert sorted(flat.tolist()) == list(range(57))
    assert np.all(np.diff(lengths[flat]) <= 0)  # longest first
    for b in batches:
        assert 1 <= len(b) <= max_rows
        if max_tokens is not None and len(b) > 1:
            assert len(b) * lengths[b].max() <= max_tokens


def test_budget_puts_more_short_texts_in_a_batch():
    lengths = [100] * 4 + [10] * 40
    batches = length_batches(lengths, max_rows=64, max_tokens=400)
    assert [len(b) for b in batches] == [4, 40]
    assert length_batches(lengths, max_rows=16)[0].size == 16


def test_length_batches_without_a_row_cap_follow_the_budget_alone():
    lengths = [5] * 100 + [50] * 3
    batches = length_batches(lengths, max_rows=None, max_tokens=500)
    assert [len(b) for b in batches] == [10, 93]  # 10 x 50 tokens, then 93 x 5
    with pytest.raises(ValueError, match="max_rows or max_tokens"):
        length_batches(lengths, None, None)


@pytest.mark.parametrize(
    "batch_size,max_batch_tokens,device,expected",
    [
        ("auto", "auto", "cpu", AUTO_BATCH["cpu"]),
        ("auto", "auto", "cuda", AUTO_BATCH["accelerator"]),
        ("auto", "auto", "meta", AUTO_BATCH["accelerator"]),
        (8, "auto", "cuda", (8, AUTO_BATCH["accelerator"][1])),
        ("auto", 4096, "cpu", (32, 4096)),
        ("auto", None, "cuda", (32, None)),  # never unbounded
        (5, None, "cuda", (5, None)),
    ],
)
def test_auto_batching_resolves_per_device(batch_size, max_batch_tokens, device, expected):
    assert batch_limits(batch_size, max_batch_tokens, torch.device(device)) == expected


def _record_batch_sizes(monkeypatch, shapes: bool = False) -> list:
    """Rows (or ``(rows, padded length)``) of every forward pass the extractor makes."""
    seen = []
    real = _batching.capture_layers

    def capture(layout, input_ids, *args, **kwargs):
        seen.append(tuple(input_ids.shape) if shapes else input_ids.shape[0])
        return real(layout, input_ids, *args, **kwargs)

    monkeypatch.setattr(_batching, "capture_layers", capture)
    return seen


def test_auto_batching_on_cpu_is_batches_of_32(monkeypatch, texts):
    many = texts * 10  # 70 texts: batches of 32, 32, 6
    seen = _record_batch_sizes(monkeypatch)
    auto = HiddenStateExtractor("tiny-gpt2", device="cpu").fit(many).transform(many)
    assert seen == [32, 32, 6]
    fixed = HiddenStateExtractor("tiny-gpt2", batch_size=32, max_batch_tokens=None, device="cpu")
    np.testing.assert_array_equal(auto, fixed.fit(many).transform(many))


@pytest.mark.parametrize(
    "name,stack,pooling",
    [
        ("tiny-gpt2", "auto", "mean"),
        ("tiny-bert", "auto", "max"),
        ("tiny-t5", "decoder", "last"),
        ("tiny-roberta", "auto", "mean_all"),
    ],
)
def test_token_budget_gives_the_same_states(name, stack, pooling, texts):
    many = texts * 3
    plain = HiddenStateExtractor(name, stack=stack, pooling=pooling, batch_size=4).fit(many)
    budget = HiddenStateExtractor(
        name, stack=stack, pooling=pooling, batch_size=64, max_batch_tokens=48
    ).fit(many)
    np.testing.assert_allclose(budget.transform(many), plain.transform(many), atol=1e-5, rtol=0)


def _oom_above(monkeypatch, rows: int):
    real = _batching.capture_layers
    seen = []

    def capture(layout, input_ids, *args, **kwargs):
        seen.append(input_ids.shape[0])
        if input_ids.shape[0] > rows:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real(layout, input_ids, *args, **kwargs)

    monkeypatch.setattr(_batching, "capture_layers", capture)
    return seen


def test_out_of_memory_splits_the_batch_and_warns(monkeypatch, texts):
    ext = HiddenStateExtractor("tiny-gpt2", batch_size=7).fit(texts)
    expected = ext.transform(texts)
    seen = _oom_above(monkeypatch, 2)
    with pytest.warns(ResourceWarning, match=r"batch\(es\) ran out of memory .* split in two"):
        got = ext.transform(texts)
    np.testing.assert_allclose(got, expected, atol=1e-5, rtol=0)
    assert seen[0] == 7 and max(seen[1:]) <= 4 and sum(s for s in seen if s <= 2) == len(texts)


def test_a_text_that_does_not_fit_alone_is_a_clear_error(monkeypatch, texts):
    ext = HiddenStateExtractor("tiny-gpt2", batch_size=2).fit(texts)
    _oom_above(monkeypatch, 0)
    with pytest.raises(MemoryError, match=r"does not fit in memory on (cpu|cuda\S*) even alone"):
        ext.transform(texts)


def test_other_errors_are_not_retried(monkeypatch, texts):
    ext = HiddenStateExtractor("tiny-gpt2", batch_size=2).fit(texts)

    def broken(*args, **kwargs):
        raise RuntimeError("shape mismatch")

    monkeypatch.setattr(_batching, "capture_layers", broken)
    with pytest.raises(RuntimeError, match="shape mismatch"):
        ext.transform(texts)


def test_device_map_loads_a_checkpoint_through_accelerate(tmp_path, texts):
    from msma_sklearn.extraction import load_model

    model, tokenizer = load_model("tiny-gpt2")
    model.save_pretrained(tmp_path / "ckpt")
    tokenizer.save_pretrained(tmp_path / "ckpt")
    plain = HiddenStateExtractor(str(tmp_path / "ckpt"), device="cpu").fit(texts)
    mapped = HiddenStateExtractor(str(tmp_path / "ckpt"), device_map={"": "cpu"}).fit(texts)
    assert mapped._loaded()[0] is not plain._loaded()[0]  # its own, dispatched load
    np.testing.assert_allclose(mapped.transform(texts), plain.transform(texts), atol=1e-6)


def test_device_map_is_refused_for_models_built_here():
    with pytest.raises(ValueError, match="device_map applies to a checkpoint directory"):
        HiddenStateExtractor("tiny-gpt2", device_map="auto").fit(["a text"])


def test_msma_device_steers_auto(monkeypatch):
    from msma_sklearn.extraction._models import resolve_device

    monkeypatch.setenv("MSMA_DEVICE", "cpu")
    assert resolve_device("auto") == torch.device("cpu")
    monkeypatch.setenv("MSMA_DEVICE", "not-a-device")
    with pytest.raises(ValueError, match="'not-a-device' is not a valid torch device"):
        resolve_device("auto")


@pytest.mark.skipif(
    torch.cuda.is_available(), reason="checks the message on a machine without CUDA"
)
def test_cuda_without_cuda_is_a_clear_error():
    with pytest.raises(ValueError, match="asks for CUDA, but this torch .* sees no CUDA device"):
        HiddenStateExtractor("tiny-gpt2", device="cuda").fit(["a text"])


def test_to_device_copies_exactly():
    from msma_sklearn.extraction._core import to_device

    t = torch.arange(12).reshape(3, 4)
    assert torch.equal(to_device(t, torch.device("cpu")), t)
    if torch.cuda.is_available():  # under MSMA_TEST_DEVICE=cuda: the pinned, non-blocking path
        got = to_device(t, torch.device("cuda"))
        assert got.device.type == "cuda" and torch.equal(got.cpu(), t)


def test_window_sizes_double_up_to_the_largest_and_cover_every_text():
    from msma_sklearn.extraction._core import window_sizes

    assert window_sizes(0) == []
    assert window_sizes(1000, first=64, largest=256) == [64, 128, 256, 256, 256, 40]
    for n in (1, 63, 64, 65, 5000):
        assert sum(window_sizes(n)) == n
    with pytest.raises(ValueError, match="first <= largest"):
        window_sizes(10, first=8, largest=4)


def test_tokenised_windows_are_longest_first_and_tokenised_ahead():
    import threading

    from msma_sklearn.extraction._core import Tokenised, tokenised_windows

    rng = np.random.default_rng(0)
    texts = ["x" * int(n) for n in rng.integers(1, 50, size=300)]
    second_started = threading.Event()
    calls = []

    def tokenize(chunk):
        calls.append(threading.current_thread().name)
        if len(calls) == 2:
            second_started.set()
        return Tokenised(ids=[[len(t)] for t in chunk], n_truncated=0)

    seen = []
    for k, (index, tok) in enumerate(tokenised_windows(tokenize, texts, first=16, largest=64)):
        if k == 0:  # the next window is tokenised while the caller still holds this one
            assert second_started.wait(timeout=10)
        assert [ids[0] for ids in tok.ids] == [len(texts[i]) for i in index]
        seen.extend(index.tolist())
    assert sorted(seen) == list(range(300))
    lengths = [len(texts[i]) for i in seen]
    assert lengths == sorted(lengths, reverse=True)  # longest first, across windows
    assert all(name.startswith("msma-tokenise") for name in calls)


def test_tokenised_windows_pass_tokeniser_errors_on():
    from msma_sklearn.extraction._core import tokenised_windows

    def broken(chunk):
        raise RuntimeError("tokeniser broke")

    with pytest.raises(RuntimeError, match="tokeniser broke"):
        list(tokenised_windows(broken, ["a", "b"]))


@pytest.mark.parametrize("name", ["tiny-gpt2", "tiny-bert", "tiny-t5"])
def test_windowed_extraction_equals_one_text_at_a_time(name, texts):
    # 150 texts: several tokenisation windows (64 + 86); character length and token
    # length disagree (long words vs many short ones), so every window is re-sorted
    rng = np.random.default_rng(1)
    words = " ".join(texts).split()
    many = [
        " ".join(rng.choice(words, size=int(rng.integers(3, 25))))
        if i % 3
        else "x" * int(rng.integers(5, 120))
        for i in range(150)
    ]
    stack = "decoder" if name == "tiny-t5" else "auto"
    one = HiddenStateExtractor(name, stack=stack, batch_size=1, max_batch_tokens=None)
    budget = HiddenStateExtractor(name, stack=stack, batch_size=1000, max_batch_tokens=256)
    np.testing.assert_allclose(
        budget.fit(many).transform(many), one.fit(many).transform(many), atol=1e-5, rtol=0
    )


def test_truncation_is_counted_over_every_window():
    many = [("word " * (200 if i % 10 == 0 else 3)).strip() for i in range(150)]
    ext = HiddenStateExtractor("tiny-gpt2", max_length=32).fit(many)
    with pytest.warns(UserWarning, match=r"15 of 150 text\(s\) exceed max_length=32"):
        ext.transform(many)


def test_tokenised_windows_never_span_a_group_and_match_each_group_alone():
    from msma_sklearn.extraction._core import Tokenised, tokenised_windows

    def tokenize(chunk):
        return Tokenised(ids=[[len(t)] for t in chunk], n_truncated=0)

    rng = np.random.default_rng(2)
    texts = ["y" * int(n) for n in rng.integers(1, 40, size=250)]
    groups = [(0, 100), (100, 200), (200, 250)]
    together = [i.tolist() for i, _ in tokenised_windows(tokenize, texts, 16, 32, groups)]
    alone = [
        (a + i).tolist()
        for a, b in groups
        for i, _ in tokenised_windows(tokenize, texts[a:b], 16, 32)
    ]
    assert together == alone
    for window in together:
        assert len({next(k for k, (a, b) in enumerate(groups) if a <= i < b) for i in window}) == 1


def test_shards_in_one_process_run_as_one_pipeline(monkeypatch, texts):
    many = texts * 6  # 42 texts, shards of 8
    reference = HiddenStateExtractor("tiny-gpt2", shard_size=1000).fit(many).transform(many)

    def no_workers(*args, **kwargs):
        raise AssertionError("n_jobs=None must not hand shards to joblib workers")

    monkeypatch.setattr(_extractor, "_extract_shard", no_workers)
    seen = _record_batch_sizes(monkeypatch)
    got = HiddenStateExtractor("tiny-gpt2", shard_size=8).fit(many).transform(many)
    assert seen == [8, 8, 8, 8, 8, 2]  # batches never span a shard
    np.testing.assert_allclose(got, reference, atol=1e-5, rtol=0)


def test_bytes_per_token_reads_each_architecture_s_widths():
    from msma_sklearn.extraction import load_model
    from msma_sklearn.extraction._batching import bytes_per_token

    gpt2 = load_model("tiny-gpt2")[0].config  # n_inner unset: 4 x hidden
    h = gpt2.hidden_size
    assert bytes_per_token(gpt2, 5, torch.float32) == 4 * (5 * h + 3 * 4 * h + 6 * h) + 4 * h
    t5 = load_model("tiny-t5")[0].config  # d_ff
    assert (
        bytes_per_token(t5, 2, torch.bfloat16)
        == 2 * (2 * t5.d_model + 3 * t5.d_ff + 6 * t5.d_model) + 4 * t5.d_model
    )


def test_auto_budget_is_capped_by_free_memory_and_a_set_budget_is_not(monkeypatch, texts):
    from msma_sklearn.extraction._batching import bytes_per_token

    many = texts * 4
    ext = HiddenStateExtractor("tiny-gpt2", batch_size="auto").fit(many)
    expected = ext.transform(many)
    per_token = bytes_per_token(ext._loaded()[0].config, len(ext.layers_), torch.float32)
    # pretend the device has a budget and memory for 40 tokens in half its free bytes
    monkeypatch.setitem(_batching.AUTO_BATCH, "cpu", (None, 16384))
    monkeypatch.setattr(_batching, "free_memory", lambda device: 2 * 40 * per_token)
    seen = _record_batch_sizes(monkeypatch, shapes=True)
    np.testing.assert_allclose(ext.transform(many), expected, atol=1e-5, rtol=0)
    assert max(rows * width for rows, width in seen if rows > 1) <= 40
    seen.clear()
    ext.set_params(max_batch_tokens=16384).transform(many)  # the user's budget stands
    assert max(rows * width for rows, width in seen) > 40

"""Throughput of HiddenStateExtractor against a plain transformers loop.

For each model and scenario, both methods run in this process on the same
texts; the script prints tokens/s of each, the ratio (extractor / baseline)
and the peak resident-memory increase of each run.

Baseline: the loop a user would write -- fixed batches in input order, padded
to the longest text of the batch, ``output_hidden_states=True``, masked mean
pooling of every hidden state, under ``torch.inference_mode``.

Scenarios:
  equal   texts that all tokenise to the same length (no padding to gain)
  varied  texts of 1 to 6 corpus sentences (15-150 tokens)
  half    varied texts, only hidden states 0..L/2 requested (the baseline
          still runs the full forward, as a plain loop must)

Run:  python benchmarks/extraction.py [--models minilm,smollm2-135m] [--repeats 5]
Thread scaling:  python benchmarks/extraction.py --threads (1 vs 2 intra-op threads)
GPU mode:  python benchmarks/extraction.py --gpu [--device cuda] (runs extraction_gpu.py)
"""

from __future__ import annotations

import argparse
import copy
import functools
import os
import statistics
import sys
import threading
import time
import warnings
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402
import psutil  # noqa: E402
import torch  # noqa: E402

from msma_sklearn import HiddenStateExtractor  # noqa: E402
from msma_sklearn.datasets import load_corpus  # noqa: E402
from msma_sklearn.extraction import load_model  # noqa: E402


class PeakRSS:
    """Sample this process's RSS every 2 ms; report the peak above the start."""

    def __enter__(self):
        self._proc = psutil.Process()
        self.start = self.peak = self._proc.memory_info().rss
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, self._proc.memory_info().rss)
            time.sleep(0.002)

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._proc.memory_info().rss)

    @property
    def increase_mb(self) -> float:
        return (self.peak - self.start) / 2**20


def varied_texts(n: int, seed: int = 0) -> list[str]:
    corpus = load_corpus().texts
    rng = np.random.default_rng(seed)
    return [" ".join(rng.choice(corpus, size=rng.integers(1, 7))) for _ in range(n)]


def equal_texts(tokenizer, n: int, target: int) -> list[str]:
    """Texts of exactly ``target`` tokens (special tokens included)."""
    words = " ".join(load_corpus().texts).split()
    out, start = [], 0
    while len(out) < n:
        for end in range(start + 1, start + 4 * target):
            text = " ".join(words[start:end])
            length = len(tokenizer(text).input_ids)
            if length >= target:
                if length == target:
                    out.append(text)
                break
        start = (start + 7) % (len(words) - 4 * target)
    return out


def baseline(model, tokenizer, texts, batch_size, max_length, layers):
    base = model.base_model
    pad_side = tokenizer.padding_side
    rows = []
    with torch.inference_mode():
        for i in range(0, len(texts), batch_size):
            enc = tokenizer(
                texts[i : i + batch_size],
                padding=True,
                truncation=True,
                max_length=max_length,
                return_tensors="pt",
            )
            hs = base(**enc, output_hidden_states=True).hidden_states
            mask = enc.attention_mask.unsqueeze(-1).float()
            pooled = [(hs[j] * mask).sum(1) / mask.sum(1) for j in layers]
            rows.append(torch.cat(pooled, dim=1).numpy())
    assert tokenizer.padding_side == pad_side
    return np.vstack(rows)


def timed_pair(fn_a, fn_b, repeats):
    """Median time and peak memory of two functions, runs interleaved (a, b, a, b, ...)
    so that both see the same machine conditions; one warm-up call each."""
    stats = {"a": ([], [], None), "b": ([], [], None)}
    fns = {"a": fn_a, "b": fn_b}
    for key in fns:
        fns[key]()
    for _ in range(repeats):
        for key, fn in fns.items():
            with PeakRSS() as mem:
                t0 = time.perf_counter()
                result = fn()
                elapsed = time.perf_counter() - t0
            times, peaks, _ = stats[key]
            times.append(elapsed)
            peaks.append(mem.increase_mb)
            stats[key] = (times, peaks, result)
    return [(statistics.median(t), max(p), r) for t, p, r in stats.values()]


def padding_ceiling(lengths, batch_size) -> tuple[float, float]:
    """What removing padding alone can give when the cost is linear in padded tokens
    (attention's quadratic part adds a little at these lengths): padded tokens of the
    plain loop (input order) over (1) padded tokens of the extractor's length-sorted
    batches, (2) real tokens (no padding at all: the bound for any batching or packing).
    """
    from msma_sklearn.extraction._batching import length_batches

    lengths = np.asarray(lengths)
    plain = sum(
        len(lengths[i : i + batch_size]) * lengths[i : i + batch_size].max()
        for i in range(0, len(lengths), batch_size)
    )
    ours = sum(len(b) * lengths[b].max() for b in length_batches(lengths, batch_size))
    return plain / ours, plain / lengths.sum()


def bench_model(name, n_texts, repeats, batch_size=32, max_length=256):
    model, shared_tokenizer = load_model(name)
    # A private copy: the loaded tokenizer is shared through the model cache.
    tokenizer = copy.deepcopy(shared_tokenizer)
    if tokenizer.pad_token is None:  # the plain loop needs one; the extractor does not
        tokenizer.pad_token = tokenizer.eos_token
    n_layers = model.config.num_hidden_layers
    scenarios = {
        "equal": (equal_texts(tokenizer, n_texts, 40), list(range(n_layers + 1))),
        "varied": (varied_texts(n_texts), list(range(n_layers + 1))),
        "half": (varied_texts(n_texts), list(range(n_layers // 2 + 1))),
    }
    rows = []
    for scenario, (texts, layers) in scenarios.items():
        lengths = [
            len(ids) for ids in tokenizer(texts, truncation=True, max_length=max_length).input_ids
        ]
        n_tokens = sum(lengths)
        ext = HiddenStateExtractor(
            name,
            layers=layers,
            batch_size=batch_size,
            max_length=max_length,
            device="cpu",
            sink_tokens=0,  # the plain loop's masked mean keeps every token
        ).fit(texts)
        full = list(range(n_layers + 1))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            (t_ours, m_ours, X_ours), (t_base, m_base, X_base) = timed_pair(
                functools.partial(ext.transform, texts),
                functools.partial(baseline, model, tokenizer, texts, batch_size, max_length, full),
                repeats,
            )
        width = len(layers) * ext.hidden_size_
        scale = np.abs(X_base[:, :width]).max(axis=0) + 1.0
        err = float(np.max(np.abs(X_ours - X_base[:, :width]) / scale))
        rows.append(
            (
                name,
                scenario,
                len(texts),
                n_tokens,
                n_tokens / t_ours,
                n_tokens / t_base,
                t_base / t_ours,
                m_ours,
                m_base,
                err,
                *padding_ceiling(lengths, batch_size),
            )
        )
    return rows


def thread_scaling(name: str, n_texts: int, repeats: int) -> tuple[float, float]:
    """Median seconds of the extractor on varied texts with 1 and with 2 intra-op threads
    (interleaved): how much of a second core one process already uses, i.e. what running
    two single-threaded processes instead could add at most."""
    texts = varied_texts(n_texts)
    ext = HiddenStateExtractor(name, device="cpu", sink_tokens=0, max_length=256).fit(texts)
    ext.transform(texts[:8])
    before = torch.get_num_threads()
    times = {1: [], 2: []}
    try:
        for _ in range(repeats):
            for threads in times:
                torch.set_num_threads(threads)
                start = time.perf_counter()
                ext.transform(texts)
                times[threads].append(time.perf_counter() - start)
    finally:
        torch.set_num_threads(before)
    return statistics.median(times[1]), statistics.median(times[2])


def main():
    if "--gpu" in sys.argv[1:]:  # the GPU mode: random-weight real architectures vs the ceiling
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        import extraction_gpu

        extraction_gpu.main([a for a in sys.argv[1:] if a != "--gpu"])
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", default="minilm,smollm2-135m")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--n-texts", type=int, default=0, help="default: 512 MiniLM, 96 SmolLM2")
    parser.add_argument(
        "--threads", action="store_true", help="only the 1- vs 2-thread scaling of the extractor"
    )
    args = parser.parse_args()
    if args.threads:
        print(f"torch {torch.__version__}, varied texts, median of {args.repeats} interleaved runs")
        for name in args.models.split(","):
            n = args.n_texts or (512 if name == "minilm" else 96)
            one, two = thread_scaling(name, n, args.repeats)
            print(f"{name:<14} 1 thread {one:6.2f} s   2 threads {two:6.2f} s   {one / two:.2f}x")
        return
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, median of "
        f"{args.repeats} interleaved runs after one warm-up\n"
    )
    header = (
        f"{'model':<14}{'scenario':<9}{'texts':>6}{'tokens':>8}{'ours tok/s':>12}"
        f"{'base tok/s':>12}{'ratio':>7}{'ceiling':>9}{'no-pad':>8}{'ours MB':>9}{'base MB':>9}"
        f"{'max rel err':>13}"
    )
    print(header)
    print("-" * len(header))
    for name in args.models.split(","):
        n = args.n_texts or (512 if name == "minilm" else 96)
        for r in bench_model(name, n, args.repeats):
            print(
                f"{r[0]:<14}{r[1]:<9}{r[2]:>6}{r[3]:>8}{r[4]:>12.0f}{r[5]:>12.0f}"
                f"{r[6]:>7.2f}{r[10]:>9.2f}{r[11]:>8.2f}{r[7]:>9.0f}{r[8]:>9.0f}{r[9]:>13.1e}"
            )
    print(
        "\nratio = extractor tokens/s / baseline tokens/s; ceiling = padded tokens of the "
        "baseline / padded tokens of the extractor's length-sorted batches (what removing "
        "padding alone can give);"
        "\nno-pad = padded tokens of the baseline / real tokens (the bound for any batching or "
        "packing that keeps the arithmetic per real token);"
        "\nMB = peak RSS increase during a run;"
        "\nmax rel err = max |ours - baseline| / (column max + 1) over the shared columns."
    )
    print("Targets: equal >= 1.0, varied >= 1.3, half >= 1.5.")


if __name__ == "__main__":
    main()

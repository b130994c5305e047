"""Where one extractor call spends its time: torch.profiler and cProfile over ``transform``.

Builds the SmolLM2-135M architecture with random weights (as
``extraction_gpu.py`` does), extracts 2,048 corpus texts twice to warm up,
prints the wall time of ``transform`` and ``fit``, on CUDA the peak memory of one
128 x 128 forward pass with capture and pooling per token beside
``extraction._batching.bytes_per_token``'s estimate, then one profiled
``transform``: operators by CPU and by CUDA time, and Python functions by own
time. On CUDA, ``cudaStreamSynchronize`` rows show where the host waited.

Run on a GPU:  python benchmarks/extraction_profile.py --device cuda [--tokenizers DIR]
CPU smoke run:  python benchmarks/extraction_profile.py --smoke
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import extraction_gpu as eg  # noqa: E402

from msma_sklearn import HiddenStateExtractor  # noqa: E402
from msma_sklearn.datasets import load_corpus  # noqa: E402


def _memory_check(ext, device, rows: int = 128, length: int = 128) -> None:
    """Peak memory of one forward pass with capture and pooling, per padded token,
    beside ``bytes_per_token``'s estimate (the basis of the automatic budget's cap)."""
    from msma_sklearn.extraction._batching import bytes_per_token
    from msma_sklearn.extraction._core import capture_layers, pool, resolve_layout

    model = ext._loaded()[0]
    layers = ext.layers_.tolist()
    ids = torch.randint(5, model.config.vocab_size, (rows, length), device=device)
    mask = torch.ones_like(ids)
    torch.cuda.synchronize(device)
    base = torch.cuda.memory_allocated(device)
    torch.cuda.reset_peak_memory_stats(device)
    with torch.inference_mode():
        states = capture_layers(resolve_layout(model), ids, mask, layers)
        torch.stack([pool(states[j], mask.bool(), "mean") for j in layers], dim=1)
    torch.cuda.synchronize(device)
    per_token = (torch.cuda.max_memory_allocated(device) - base) / (rows * length)
    est = bytes_per_token(model.config, len(layers), next(model.parameters()).dtype)
    print(
        f"memory per padded token ({rows} x {length}): measured {per_token:,.0f} bytes, "
        f"estimate {est:,} ({est / per_token:.2f}x)"
    )


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--smoke", action="store_true", help="tiny model, few texts")
    parser.add_argument("--tokenizers", type=Path, default=None)
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    kind, config, dtype = eg._configs(args.smoke)[
        "llama-small" if args.smoke else "smollm2-135m-arch"
    ]
    corpus = load_corpus().texts
    texts = [corpus[i % len(corpus)] for i in range(256 if args.smoke else 2048)]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model"
        eg._build(kind, config, eg._tokenizer(kind, args.tokenizers), path)
        spec = {"device": str(device), "dtype": dtype, "sink_tokens": 0}
        ext = HiddenStateExtractor(str(path), **spec).fit(texts)
        ext.transform(texts)
        for _ in range(2):
            seconds, _ = eg._timed(lambda: ext.transform(texts), device)
            print(f"transform {seconds:.3f} s")
            start = time.perf_counter()
            HiddenStateExtractor(str(path), **spec).fit(texts)
            print(f"fit {time.perf_counter() - start:.4f} s")
        if device.type == "cuda":  # the memory estimate behind the automatic budget
            _memory_check(ext, device)
        activities = [torch.profiler.ProfilerActivity.CPU]
        if device.type == "cuda":
            activities.append(torch.profiler.ProfilerActivity.CUDA)
        with torch.profiler.profile(activities=activities) as prof:
            eg._timed(lambda: ext.transform(texts), device)
        table = prof.key_averages()
        print(table.table(sort_by="cpu_time_total", row_limit=25, max_name_column_width=60))
        if device.type == "cuda":
            print(table.table(sort_by="cuda_time_total", row_limit=15, max_name_column_width=60))
        profiler = cProfile.Profile()
        profiler.enable()
        eg._timed(lambda: ext.transform(texts), device)
        profiler.disable()
        pstats.Stats(profiler).sort_stats("tottime").print_stats(25)


if __name__ == "__main__":
    main()

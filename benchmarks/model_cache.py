"""What checking the model cache's SHA-256 manifest costs, beside the load it guards.

For each dequantised model in the cache (SmolLM2-135M; Gemma-3-270M with the `gemma`
extra), in one process and interleaved over ``--repeats`` rounds:

- verify: SHA-256 of every file against MANIFEST.json (what a first load per process
  pays; later loads in the process reuse the result while the files are unchanged);
- load: reading the checkpoint into a model (``from_pretrained`` of the cached directory).

Prints medians and the spread (min-max), and verify as a share of load.

Run:  HF_HUB_OFFLINE=1 python benchmarks/model_cache.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

from msma_sklearn.extraction import _models
from msma_sklearn.utils._io import file_sha256, user_cache_dir


def verify(directory) -> None:
    manifest = json.loads((directory / "MANIFEST.json").read_text())
    for name, entry in manifest.items():
        assert file_sha256(directory / name) == entry["sha256"], name


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    for name in ("smollm2-135m", "gemma3-270m"):
        try:
            _models.load_model(name)  # builds the cache entry if missing
        except (ImportError, ValueError) as exc:
            print(f"{name}: skipped ({exc})")
            continue
        prefix = name.split("-")[0]
        (directory,) = sorted(
            p for p in (user_cache_dir() / "models").iterdir() if p.name.startswith(prefix)
        )[-1:]
        size = sum(p.stat().st_size for p in directory.rglob("*") if p.is_file())
        times: dict[str, list[float]] = {"verify": [], "load": []}
        for _ in range(args.repeats):  # interleaved
            t0 = time.perf_counter()
            verify(directory)
            times["verify"].append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            _models._load_pretrained(str(directory))
            times["load"].append(time.perf_counter() - t0)
        med = {k: statistics.median(v) for k, v in times.items()}
        spread = {k: f"{min(v):.2f}-{max(v):.2f}" for k, v in times.items()}
        print(
            f"{name}: {size / 2**20:.0f} MiB; verify {med['verify']:.2f} s ({spread['verify']}), "
            f"load {med['load']:.2f} s ({spread['load']}); verify / load = "
            f"{med['verify'] / med['load']:.2f} (median of {args.repeats})"
        )


if __name__ == "__main__":
    main()

"""Scale-out: sharded extraction with 1 and 2 dask workers, and flat-memory alignment.

1. Throughput: the bundled corpus (repeated to ``--texts`` texts) through
   ``--model`` into an on-disk store, in process (joblib, n_jobs=1: the
   baseline) and on a ``dask.distributed.LocalCluster`` of 1 and 2 worker
   processes (1 thread each) on this machine; each store is checked equal to
   the in-process one.
2. Memory: ``ManifoldAligner.fit_store`` on synthetic three-scale states of
   10k to 100k rows (shards of 5,000 rows), against ``fit`` on the same rows
   in memory; the peak RSS increase during the fit, sampled every 5 ms in a
   fresh process per fit (so earlier fits do not count), a fixed number of
   epochs.

Run:  python benchmarks/scale_out.py [--model minilm] [--texts 1024]
                                     [--rows 10000,25000,50000,100000]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

D = 64  # dims per scale of the synthetic states
_FIT = r"""
import json, sys, threading, time, warnings
import numpy as np, pandas as pd, psutil
from msma_sklearn import ManifoldAligner
from msma_sklearn.extraction import HiddenStateStore
warnings.simplefilter("ignore")
store = HiddenStateStore(sys.argv[1])
aligner = ManifoldAligner(map="linear", max_iter=int(sys.argv[3]), random_state=0)
proc = psutil.Process()
before = proc.memory_info().rss
peak = [before]
done = threading.Event()
def sample():  # the current RSS every 5 ms: ru_maxrss would still hold the import peak
    while not done.is_set():
        peak[0] = max(peak[0], proc.memory_info().rss)
        time.sleep(0.005)
thread = threading.Thread(target=sample)
thread.start()
if sys.argv[2] == "store":
    aligner.fit_store(store)
else:
    aligner.fit(pd.DataFrame(store.to_numpy(), columns=store.feature_names()))
done.set()
thread.join()
print(json.dumps({"before_mb": before / 2**20, "peak_mb": peak[0] / 2**20}))
"""


def synthetic(n: int, seed: int = 0) -> tuple[np.ndarray, list[str]]:
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, D)).astype(np.float32)
    q, _ = np.linalg.qr(rng.normal(size=(D, D)))
    q = q.astype(np.float32)
    X = np.hstack([z, z @ q + 0.1 * rng.normal(size=(n, D)), z @ q @ q]).astype(np.float32)
    names = [f"{s}__{i}" for s in ("local", "intermediate", "global") for i in range(D)]
    return X, names


def fit_peak(store_dir: str, mode: str, epochs: int) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", _FIT, store_dir, mode, str(epochs)],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def throughput(model: str, n_texts: int, shard_size: int, workers=(1, 2)) -> list[tuple]:
    from dask.distributed import Client, LocalCluster

    from msma_sklearn import HiddenStateExtractor, load_corpus
    from msma_sklearn.extraction import extract_to_store, load_model

    corpus = load_corpus().texts
    texts = (corpus * (n_texts // len(corpus) + 1))[:n_texts]
    load_model(model)  # load outside the timing, as a warm worker would have it
    ext = HiddenStateExtractor(model, shard_size=shard_size)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        ref = extract_to_store(texts, f"{tmp}/ref", ext, n_jobs=1, progress=False)
        base = time.perf_counter() - t0
        rows.append(("in process (baseline)", base, n_texts / base, 1.0, True))
        reference = ref.to_numpy()
        for n in workers:
            with (
                LocalCluster(
                    n_workers=n, threads_per_worker=1, processes=True, dashboard_address=None
                ) as cluster,
                Client(cluster) as client,
            ):
                client.run(load_model, model)  # each worker loads the model before timing
                t0 = time.perf_counter()
                store = extract_to_store(
                    texts, f"{tmp}/w{n}", ext, scheduler=client, progress=False
                )
                seconds = time.perf_counter() - t0
            same = bool(np.array_equal(store.to_numpy(), reference))
            rows.append((f"dask, {n} worker(s)", seconds, n_texts / seconds, base / seconds, same))
    return rows


def memory(sizes: list[int], epochs: int) -> list[tuple]:
    from msma_sklearn.extraction import write_array_store

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in sizes:
            X, names = synthetic(n, seed=n)
            folder = Path(tmp) / str(n)
            write_array_store(X, folder, shard_rows=5000, feature_names=names)
            del X
            streamed = fit_peak(str(folder), "store", epochs)
            whole = fit_peak(str(folder), "fit", epochs)
            rows.append(
                (
                    n,
                    streamed["peak_mb"] - streamed["before_mb"],
                    whole["peak_mb"] - whole["before_mb"],
                )
            )
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="minilm")
    parser.add_argument("--texts", type=int, default=1024)
    parser.add_argument("--shard-size", type=int, default=64)
    parser.add_argument("--rows", default="10000,25000,50000,100000")
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args(argv)

    print(f"Extraction into a store: {args.model}, {args.texts} texts, shards of {args.shard_size}")
    print(f"{'where':<24}{'seconds':>9}{'texts/s':>10}{'vs in-process':>15}  equal")
    tp = throughput(args.model, args.texts, args.shard_size)
    for where, seconds, rate, ratio, same in tp:
        print(f"{where:<24}{seconds:9.1f}{rate:10.1f}{ratio:15.2f}  {same}")
    sizes = [int(s) for s in args.rows.split(",")]
    print(f"\nPeak RSS increase of one fit ({3 * D} features, linear maps, {args.epochs} epochs):")
    print(f"{'rows':>8}{'fit_store MB':>14}{'fit MB':>10}")
    mem = memory(sizes, args.epochs)
    for n, streamed, whole in mem:
        print(f"{n:>8}{streamed:14.1f}{whole:10.1f}")
    return tp, mem


if __name__ == "__main__":
    main()

"""Sharded extraction (joblib, dask.distributed) and the on-disk store.

The in-process extraction is the oracle: every parallel path must give the
same array, exactly, in input order, with one row per text.
"""

import json
import os
import signal
import threading
import time

import joblib
import numpy as np
import pytest

from msma_sklearn import HiddenStateExtractor, load_corpus
from msma_sklearn.cli import main
from msma_sklearn.extraction import HiddenStateStore, extract_to_store

TEXTS = load_corpus().texts[:60]


def _reference(shard_size=8, texts=TEXTS):
    return HiddenStateExtractor("tiny-gpt2", shard_size=shard_size).fit(texts).transform(texts)


def test_joblib_shards_equal_in_process_exactly():
    ext = HiddenStateExtractor("tiny-gpt2", shard_size=8, n_jobs=2).fit(TEXTS)
    np.testing.assert_array_equal(ext.transform(TEXTS), _reference())
    # the shard size changes only batch composition: same numbers to float precision
    np.testing.assert_allclose(_reference(shard_size=1000), _reference(), rtol=1e-5, atol=1e-5)


def test_store_round_trip_and_resume(tmp_path):
    ext = HiddenStateExtractor("tiny-gpt2", shard_size=8)
    store = extract_to_store(TEXTS, tmp_path / "s", ext, n_jobs=2, progress=False)
    assert store.shape == (60, 5 * 64) and store.manifest["n_shards"] == 8
    np.testing.assert_array_equal(store.to_numpy(), _reference())
    assert [s["start"] for s in store.manifest["shards"]] == list(range(0, 60, 8))
    assert store.feature_names()[64] == "layer1__0"
    folder = tmp_path / "s"
    stamps = {p.name: p.stat().st_mtime_ns for p in folder.glob("shard-*.json")}

    # a crash: two shards never finished, one written half-way (checksum broken)
    (folder / "shard-00002.json").unlink()
    (folder / "shard-00005.npy").unlink()
    with open(folder / "shard-00006.npy", "r+b") as fh:
        fh.seek(200)
        fh.write(b"\x00" * 16)
    time.sleep(0.01)
    store = extract_to_store(TEXTS, folder, ext, n_jobs=2, progress=False)
    redone = {
        p.name for p in folder.glob("shard-*.json") if p.stat().st_mtime_ns != stamps.get(p.name)
    }
    assert redone == {"shard-00002.json", "shard-00005.json", "shard-00006.json"}
    np.testing.assert_array_equal(store.to_numpy(), _reference())
    HiddenStateStore(folder, verify=True)
    assert not list(folder.glob("*.tmp"))


def test_store_refuses_other_texts_and_reports_incomplete(tmp_path):
    ext = HiddenStateExtractor("tiny-gpt2", shard_size=8)
    extract_to_store(TEXTS[:16], tmp_path / "s", ext, progress=False)
    with pytest.raises(ValueError, match=r"other texts or settings .*texts_sha256"):
        extract_to_store(TEXTS[:24], tmp_path / "s", ext, progress=False)
    manifest = json.loads((tmp_path / "s" / "manifest.json").read_text())
    manifest["complete"], manifest["shards"] = False, manifest["shards"][:1]
    (tmp_path / "s" / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match="incomplete .1 of 2 shards missing"):
        HiddenStateStore(tmp_path / "s")
    with pytest.raises(ValueError, match="not a hidden-state store"):
        HiddenStateStore(tmp_path)


# ------------------------------------------------------------------ dask
@pytest.fixture(scope="module")
def cluster():
    from dask import distributed  # declared in the [dask] extra, which `make test` installs

    with (
        distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        yield cluster, client


def test_dask_backend_equals_in_process_exactly(cluster):
    with joblib.parallel_backend("dask"):
        X = HiddenStateExtractor("tiny-gpt2", shard_size=8, n_jobs=-1).fit(TEXTS).transform(TEXTS)
    np.testing.assert_array_equal(X, _reference())


def test_store_on_the_cluster_survives_a_killed_worker(cluster, tmp_path):
    local, client = cluster
    texts = load_corpus().texts * 2  # 512 texts, 64 shards: long enough to kill mid-run
    ext = HiddenStateExtractor("tiny-gpt2", shard_size=8)
    folder = tmp_path / "s"
    errors = []

    def run():
        try:
            extract_to_store(texts, folder, ext, scheduler=client, progress=False)
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    deadline = time.time() + 120
    while len(list(folder.glob("shard-*.json"))) < 3 and time.time() < deadline:
        time.sleep(0.05)
    pids = client.run(os.getpid)
    victim = sorted(pids)[0]
    os.kill(pids[victim], signal.SIGKILL)
    killed_at = len(list(folder.glob("shard-*.json")))
    thread.join(timeout=300)
    if errors:  # the scheduler gave up on a task: resume, as a user would
        extract_to_store(texts, folder, ext, scheduler=client, progress=False)
    store = HiddenStateStore(folder, verify=True)
    assert 3 <= killed_at < 64  # the kill happened mid-run
    assert store.n_rows == len(texts)  # one row per text: none lost, none duplicated
    np.testing.assert_array_equal(store.to_numpy(), _reference(texts=texts))


def test_cli_extract_to_a_store_on_a_scheduler(cluster, tmp_path, capsys):
    local, _ = cluster
    path = tmp_path / "texts.txt"
    path.write_text("\n".join(TEXTS[:20]) + "\n")
    out = tmp_path / "store"
    argv = ["extract", "--model", "tiny-gpt2", "--texts", str(path), "--out", str(out)]
    argv += ["--scheduler", local.scheduler_address, "--shard-size", "6"]
    assert main(argv) == 0
    assert "20 texts x 320 features in 4 shards" in capsys.readouterr().out
    np.testing.assert_array_equal(
        HiddenStateStore(out).to_numpy(), _reference(shard_size=6, texts=TEXTS[:20])
    )
    bad = ["extract", "--texts", str(path), "--out", str(tmp_path / "x.npz")]
    assert main([*bad, "--scheduler", local.scheduler_address]) == 2
    assert "give --out a directory" in capsys.readouterr().err


def test_an_unreachable_scheduler_writes_nothing(tmp_path, texts):
    """It used to leave an incomplete manifest that refused the next run of other texts."""
    from msma_sklearn.extraction import extract_to_store

    folder = tmp_path / "store"
    with pytest.raises(OSError, match=r"Cannot reach the Dask scheduler at 'tcp://127.0.0.1:9'"):
        extract_to_store(
            texts, folder, HiddenStateExtractor("tiny-gpt2"), scheduler="tcp://127.0.0.1:9"
        )
    assert not folder.exists()
    store = extract_to_store(texts[:3], folder, HiddenStateExtractor("tiny-gpt2"), progress=False)
    assert store.shape[0] == 3

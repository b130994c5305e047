"""An on-disk, sharded store of pooled hidden states, written by parallel workers.

Layout of a store directory::

    manifest.json          what the store holds; written atomically, last
    shard-00000.npy        rows [0, shard_size) as float32
    shard-00000.json       that shard's rows, checksum and texts hash (its receipt)
    ...

A worker writes its shard file and then its receipt, each atomically, so a
shard either exists whole with a receipt or not at all (a killed worker leaves
at most a temporary file, never trusted). A re-run with the same texts and
extractor settings computes only the shards without a valid receipt, and
shard files are named by index, so a shard computed twice (a task retried
after a worker died) replaces itself: no row is lost or duplicated.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from ..utils._io import atomic_path, atomic_write_text, file_sha256
from ..utils._validation import check_texts

__all__ = ["HiddenStateStore", "extract_to_store", "write_array_store"]

_FORMAT = 1


def _texts_sha256(texts: list[str]) -> str:
    h = hashlib.sha256()
    for t in texts:
        h.update(t.encode("utf-8"))
        h.update(b"\x00")
    return h.hexdigest()


class HiddenStateStore:
    """Read a store written by :func:`extract_to_store`, one shard at a time.

    Parameters
    ----------
    path : str or path-like
        The store directory.
    verify : bool, default=False
        Check every shard's SHA-256 against its receipt while opening.

    Attributes
    ----------
    manifest : dict
    n_rows : int
        One row per input text, in input order.
    n_features : int
    """

    def __init__(self, path, *, verify: bool = False):
        self.path = Path(path)
        manifest = self.path / "manifest.json"
        if not manifest.is_file():
            raise ValueError(
                f"{str(self.path)!r} is not a hidden-state store (no manifest.json); write one "
                "with extract_to_store or `msma extract --out DIR`."
            )
        self.manifest = json.loads(manifest.read_text())
        if not self.manifest.get("complete"):
            missing = self.manifest["n_shards"] - len(self.manifest["shards"])
            raise ValueError(
                f"The store {str(self.path)!r} is incomplete ({missing} of "
                f"{self.manifest['n_shards']} shards missing); run the extraction again to "
                "finish it."
            )
        self.n_rows = int(self.manifest["n_texts"])
        self.n_features = int(self.manifest["n_features"])
        stops = [s["start"] for s in self.manifest["shards"][1:]] + [self.n_rows]
        if [s["stop"] for s in self.manifest["shards"]] != stops or (
            self.manifest["shards"] and self.manifest["shards"][0]["start"] != 0
        ):
            raise ValueError(f"The store {str(self.path)!r} has gaps or overlaps between shards.")
        if verify:
            for shard in self.manifest["shards"]:
                if file_sha256(self.path / shard["file"]) != shard["sha256"]:
                    raise ValueError(f"Shard {shard['file']} does not match its checksum.")

    def __len__(self) -> int:
        return self.n_rows

    @property
    def shape(self) -> tuple[int, int]:
        return (self.n_rows, self.n_features)

    def feature_names(self) -> np.ndarray:
        """``layer{j}__{u}`` names, as :meth:`HiddenStateExtractor.get_feature_names_out`.

        A store written by :func:`write_array_store` returns the names it was given.

        Returns
        -------
        ndarray of str
        """
        if "feature_names" in self.manifest:
            return np.asarray(self.manifest["feature_names"], dtype=object)
        H = self.manifest["hidden_size"]
        return np.asarray(
            [f"layer{j}__{u}" for j in self.manifest["layers"] for u in range(H)], dtype=object
        )

    @property
    def n_shards(self) -> int:
        return len(self.manifest["shards"])

    def read_shard(self, index: int) -> np.ndarray:
        """Shard ``index`` read into memory (freed when the caller drops it).

        Parameters
        ----------
        index : int
            The shard's position, ``0 .. n_shards - 1``.

        Returns
        -------
        ndarray of shape (n_rows_in_shard, n_features)
        """
        return np.load(self.path / self.manifest["shards"][index]["file"])

    def iter_shards(self) -> Iterator[np.ndarray]:
        """Each shard's rows in order, memory-mapped (read-only)."""
        for shard in self.manifest["shards"]:
            yield np.load(self.path / shard["file"], mmap_mode="r")

    def to_numpy(self) -> np.ndarray:
        """The whole store in memory.

        Returns
        -------
        ndarray of shape (n_rows, n_features)
        """
        return np.concatenate([np.asarray(s) for s in self.iter_shards()], axis=0)


def _write_shard(extractor, texts: list[str], folder: str, index: int, start: int) -> dict:
    """Compute one shard and write it with its receipt (runs on a worker)."""
    from ._extractor import _extract_shard

    X, n_truncated, n_sink_only = _extract_shard(extractor, texts)
    folder = Path(folder)
    receipt = {
        **_save_shard(folder, index, start, X),
        "texts_sha256": _texts_sha256(texts),
        "n_truncated": n_truncated,
        "n_sink_only": n_sink_only,
    }
    atomic_write_text(folder / f"shard-{index:05d}.json", json.dumps(receipt))
    return receipt


def _save_shard(folder: Path, index: int, start: int, X: np.ndarray) -> dict:
    """Write rows ``start..`` as shard ``index`` atomically; return its manifest entry."""
    name = f"shard-{index:05d}.npy"
    with atomic_path(folder / name) as tmp:
        with open(tmp, "wb") as fh:
            np.save(fh, np.asarray(X, dtype=np.float32))
    return {
        "index": index,
        "start": start,
        "stop": start + len(X),
        "file": name,
        "sha256": file_sha256(folder / name),
    }


def _valid_receipt(folder: Path, index: int, start: int, texts: list[str]) -> dict | None:
    path = folder / f"shard-{index:05d}.json"
    try:
        receipt = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    ok = (
        receipt.get("start") == start
        and receipt.get("stop") == start + len(texts)
        and receipt.get("texts_sha256") == _texts_sha256(texts)
        and (folder / receipt.get("file", "")).is_file()
        and file_sha256(folder / receipt["file"]) == receipt.get("sha256")
    )
    return receipt if ok else None


def extract_to_store(texts, path, extractor, *, n_jobs=-1, scheduler=None, progress=True):
    """Extract pooled states of ``texts`` into a sharded on-disk store, resumably.

    Parameters
    ----------
    texts : list of str
        The texts, in order.
    path : str or path-like
        Store directory (created). If it already holds a store of the same
        texts and settings, only the shards without a valid receipt are
        computed; a store of other texts or settings is refused.
    extractor : HiddenStateExtractor
        Settings to use (``shard_size`` sets the shard size); need not be fitted.
    n_jobs : int, default=-1
        Parallel shards (joblib); with ``scheduler``, the cluster's workers.
    scheduler : str or dask.distributed.Client, default=None
        A dask.distributed scheduler address (``"tcp://host:8786"``) or
        client: the shards run there through joblib's dask backend. Workers
        must see ``path`` (a shared file system).
    progress : bool, default=True
        Progress bar over shards.

    Returns
    -------
    HiddenStateStore
    """

    texts = check_texts(texts, name="texts")
    # connect first: an unreachable scheduler must leave nothing behind (a manifest
    # written before the failure would refuse the next run of other texts here)
    client = _client(scheduler) if scheduler is not None else None
    try:
        return _extract_to_store(texts, Path(path), extractor, n_jobs, scheduler, progress)
    finally:
        if client is not None and isinstance(scheduler, str):
            client.close()


def _extract_to_store(texts, folder, extractor, n_jobs, scheduler, progress):
    from joblib import Parallel, delayed, parallel_config
    from sklearn.base import clone
    from tqdm.auto import tqdm

    from ._models import model_fingerprint

    folder.mkdir(parents=True, exist_ok=True)
    fitted = clone(extractor).set_params(n_jobs=None, cache_dir=None, verbose=0).fit(texts[:1])
    size = fitted.shard_size
    starts = list(range(0, len(texts), size))
    spec = {
        "format": _FORMAT,
        "model": str(fitted.model),
        "weights": model_fingerprint(fitted._loaded()[0]),
        "params": {k: str(v) for k, v in sorted(fitted.get_params().items())},
        "layers": fitted.layers_.tolist(),
        "hidden_size": int(fitted.hidden_size_),
        "n_features": int(len(fitted.layers_) * fitted.hidden_size_),
        "n_texts": len(texts),
        "texts_sha256": _texts_sha256(texts),
        "n_shards": len(starts),
        "dtype": "float32",
    }
    manifest_path = folder / "manifest.json"
    if manifest_path.is_file():
        old = json.loads(manifest_path.read_text())
        differs = [k for k in spec if old.get(k) != spec[k]]
        if differs:
            raise ValueError(
                f"{str(folder)!r} holds a store of other texts or settings (differs in "
                f"{differs}); choose another directory."
            )
    receipts = {}
    todo = []
    for i, start in enumerate(starts):
        receipt = _valid_receipt(folder, i, start, texts[start : start + size])
        if receipt is None:
            todo.append((i, start))
        else:
            receipts[i] = receipt
    _write_manifest(manifest_path, spec, receipts)
    worker = clone(fitted)
    if todo:
        tasks = (
            delayed(_write_shard)(worker, texts[s : s + size], str(folder), i, s) for i, s in todo
        )
        config = {"backend": "dask"} if scheduler is not None else {}
        with parallel_config(**config, n_jobs=n_jobs):
            results = Parallel(return_as="generator_unordered")(tasks)
            for receipt in tqdm(
                results, total=len(todo), desc="Shards", unit="shard", disable=not progress
            ):
                receipts[receipt["index"]] = receipt
    _write_manifest(manifest_path, spec, receipts)
    truncated = sum(r.get("n_truncated", 0) for r in receipts.values())
    fitted._warn_truncated(truncated, len(texts))
    fitted._warn_sink_only(sum(r.get("n_sink_only", 0) for r in receipts.values()), len(texts))
    return HiddenStateStore(folder)


def _client(scheduler, timeout: str = "20s"):
    from dask.distributed import Client

    if isinstance(scheduler, Client):
        return scheduler
    try:
        return Client(scheduler, timeout=timeout)
    except OSError as exc:  # includes TimeoutError
        raise OSError(
            f"Cannot reach the Dask scheduler at {scheduler!r} within {timeout} ({exc}); start "
            "it (dask scheduler) or check the address. Nothing was written."
        ) from exc


def _write_manifest(path: Path, spec: dict, receipts: dict) -> None:
    shards = [receipts[i] for i in sorted(receipts)]
    body = {**spec, "complete": len(shards) == spec["n_shards"], "shards": shards}
    atomic_write_text(path, json.dumps(body, indent=1))


def write_array_store(X, path, *, shard_rows: int = 4096, feature_names=None) -> HiddenStateStore:
    """Write an array (or any 2-D array-like, e.g. a memmap) as a store of shards.

    For states computed elsewhere, synthetic data and benchmarks; rows are
    written one shard at a time.

    Parameters
    ----------
    X : array-like of shape (n_rows, n_features)
        The rows to store.
    path : str or path-like
        A new or empty directory.
    shard_rows : int, default=4096
        Rows per shard.
    feature_names : sequence of str, default=None
        Stored with the data (e.g. ``global__0`` ... for
        :meth:`ManifoldAligner.fit_store`); None: ``x0``, ``x1``, ...

    Returns
    -------
    HiddenStateStore
    """
    folder = Path(path)
    folder.mkdir(parents=True, exist_ok=True)
    if any(folder.iterdir()):
        raise ValueError(f"{str(folder)!r} is not empty; write a store into a new directory.")
    n_rows, n_features = X.shape
    names = [f"x{i}" for i in range(n_features)] if feature_names is None else list(feature_names)
    if len(names) != n_features:
        raise ValueError(f"{len(names)} feature names for {n_features} columns.")
    starts = list(range(0, n_rows, shard_rows))
    receipts = {i: _save_shard(folder, i, s, X[s : s + shard_rows]) for i, s in enumerate(starts)}
    spec = {
        "format": _FORMAT,
        "n_texts": n_rows,
        "n_features": n_features,
        "n_shards": len(starts),
        "dtype": "float32",
        "feature_names": names,
    }
    _write_manifest(folder / "manifest.json", spec, receipts)
    return HiddenStateStore(folder)

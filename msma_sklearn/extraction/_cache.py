"""The on-disk model cache: directories built atomically, trusted only when every file
matches its manifest's size and SHA-256."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import warnings
from pathlib import Path

from ..utils._io import file_sha256, user_cache_dir

__all__ = ["cached_directory"]


def cached_directory(key: str, build, *, root: Path | None = None) -> Path:
    """Return ``root/key``, building it with ``build(tmp_dir)`` if absent or broken.

    ``build`` writes into a fresh temporary directory beside the target; a
    manifest of every file's size and SHA-256 is written last and the directory
    is then renamed into place, so an interrupted build never leaves a
    directory that a later call would trust. An existing directory is trusted
    only if every file has its manifest's size and SHA-256 (checked once per
    process and directory state); one whose manifest is missing, of the older
    size-only form, or does not match its files is rebuilt with a warning.
    """
    root = Path(root) if root is not None else user_cache_dir() / "models"
    if root.exists() and not root.is_dir():
        raise ValueError(
            f"The model cache {str(root)!r} is a file, not a directory; move it away or set "
            "MSMA_CACHE_DIR to a directory."
        )
    target = root / key
    if _manifest_ok(target):
        return target
    return _rebuild(target, build)


def _rebuild(target: Path, build) -> Path:
    root, key = target.parent, target.name
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=root, prefix=f".{key}.tmp-"))
    try:
        build(tmp)
        files = sorted(p for p in tmp.rglob("*") if p.is_file())
        manifest = {
            str(p.relative_to(tmp)): {"size": p.stat().st_size, "sha256": file_sha256(p)}
            for p in files
        }
        (tmp / "MANIFEST.json").write_text(json.dumps(manifest, sort_keys=True))
        if target.exists():  # present but broken: move aside, then remove
            stale = Path(tempfile.mkdtemp(dir=root, prefix=f".{key}.stale-"))
            os.replace(target, stale / "old")
            shutil.rmtree(stale, ignore_errors=True)
        try:
            os.replace(tmp, target)
        except OSError:
            if not _manifest_ok(target):  # lost a race to a broken writer
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    _VERIFIED.pop(str(target), None)
    return target


#: directory -> the (name, size, mtime) state whose hashes were verified in this process
_VERIFIED: dict[str, tuple] = {}


def _manifest_ok(directory: Path) -> bool:
    manifest_file = directory / "MANIFEST.json"
    if not directory.exists():
        return False
    try:
        manifest = json.loads(manifest_file.read_text())
    except (OSError, ValueError):
        manifest = None
    if not isinstance(manifest, dict) or not manifest:
        _warn_rebuild(directory, "its MANIFEST.json is missing or unreadable")
        return False
    state = []
    for name, entry in manifest.items():
        path = directory / name
        if not isinstance(entry, dict) or "sha256" not in entry:
            warnings.warn(
                f"Cached model in {directory} has a manifest without checksums (an older "
                "version wrote it); rebuilding it once.",
                UserWarning,
                stacklevel=4,
            )
            return False
        if not path.is_file() or path.stat().st_size != entry.get("size"):
            _warn_rebuild(directory, f"{name} is missing or has another size")
            return False
        stat = path.stat()
        state.append((name, stat.st_size, stat.st_mtime_ns))
    if _VERIFIED.get(str(directory)) == tuple(state):
        return True
    for name, entry in manifest.items():
        if file_sha256(directory / name) != entry["sha256"]:
            _warn_rebuild(directory, f"{name} does not match its SHA-256")
            return False
    _VERIFIED[str(directory)] = tuple(state)
    return True


def _warn_rebuild(directory: Path, why: str) -> None:
    warnings.warn(
        f"Cached model in {directory} is damaged ({why}); rebuilding it.",
        UserWarning,
        stacklevel=5,
    )

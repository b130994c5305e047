"""Atomic writes and content hashing."""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

__all__ = [
    "atomic_path",
    "atomic_write_bytes",
    "atomic_write_text",
    "file_sha256",
    "user_cache_dir",
]

_CHUNK = 1 << 20


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _umask()  # read once at import: os.umask is process-wide, not thread-safe


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; move it into place only on success.

    The temporary file lives in the same directory, so the final
    :func:`os.replace` is atomic on POSIX and Windows: a reader sees either the
    old file or the complete new one, never a partial write. On any exception
    the temporary file is removed and ``path`` is left untouched.

    Parameters
    ----------
    path : str or path-like
        The file to write (its folder is created if needed).

    Yields
    ------
    Path
        The temporary file to write to.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        # mkstemp makes the file private (0600); give it the mode a plain open() would
        os.chmod(tmp_path, 0o666 & ~_UMASK)
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_path`).

    Parameters
    ----------
    path : str or path-like
        The file written.
    data : bytes
        Its new content.
    """
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically.

    Parameters
    ----------
    path : str or path-like
        The file written.
    text : str
        Its new content.
    """
    atomic_write_bytes(path, text.encode("utf-8"))


def file_sha256(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file's content, read in 1 MiB chunks.

    Parameters
    ----------
    path : str or path-like
        The file.

    Returns
    -------
    str
    """
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(_CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


def user_cache_dir() -> Path:
    """Root of msma_sklearn's on-disk cache.

    ``$MSMA_CACHE_DIR`` if set, else ``$XDG_CACHE_HOME/msma_sklearn``, else
    ``~/.cache/msma_sklearn``. The directory is not created here.

    Returns
    -------
    Path
    """
    env = os.environ.get("MSMA_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "msma_sklearn"

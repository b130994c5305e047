"""Shared helpers: input validation, atomic I/O, hashing."""

from ._hooks import attached_hooks
from ._io import atomic_path, atomic_write_bytes, atomic_write_text, file_sha256, user_cache_dir
from ._validation import check_texts

__all__ = [
    "attached_hooks",
    "atomic_path",
    "atomic_write_bytes",
    "atomic_write_text",
    "check_texts",
    "file_sha256",
    "user_cache_dir",
]

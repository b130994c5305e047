"""Validation, atomic writes, hooks."""

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from msma_sklearn.utils import (
    atomic_path,
    atomic_write_text,
    attached_hooks,
    check_texts,
    file_sha256,
)


def test_check_texts_accepts_common_containers():
    assert check_texts(("a", "b")) == ["a", "b"]
    assert check_texts(np.array(["a", "b"])) == ["a", "b"]
    assert check_texts(np.array([["a"], ["b"]])) == ["a", "b"]
    assert check_texts(t for t in ["a"]) == ["a"]


def test_check_texts_rejects_sparse_and_numbers():
    with pytest.raises(TypeError, match="sparse input is not supported"):
        check_texts(sp.csr_matrix(np.eye(2)))
    with pytest.raises(TypeError, match="got int"):
        check_texts(5)
    with pytest.raises(TypeError, match=r"index 0: float"):
        check_texts([1.5])


def test_atomic_path_keeps_old_file_on_failure(tmp_path):
    target = tmp_path / "out.txt"
    atomic_write_text(target, "old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.txt"]
    atomic_write_text(target, "new")
    assert target.read_text() == "new"


def test_file_sha256_matches_hashlib(tmp_path):
    import hashlib

    data = bytes(range(256)) * 5000
    (tmp_path / "f").write_bytes(data)
    assert file_sha256(tmp_path / "f") == hashlib.sha256(data).hexdigest()


def test_attached_hooks_removed_on_exception():
    layer = torch.nn.Linear(2, 2)

    def fail(module, args, kwargs):
        raise ValueError("inside")

    with pytest.raises(ValueError, match="inside"):
        with attached_hooks([(layer, "forward_pre", fail)]):
            layer(torch.zeros(1, 2))
    assert len(layer._forward_pre_hooks) == 0
    with pytest.raises(ValueError, match="hook kind"):
        with attached_hooks([(layer, "forward", lambda *a: None), (layer, "backward", None)]):
            pass
    assert len(layer._forward_hooks) == 0


def test_atomic_write_gives_the_mode_a_plain_open_would(tmp_path):
    import os

    atomic_write_text(tmp_path / "a.txt", "x")
    (tmp_path / "b.txt").write_text("x")
    mode = lambda p: os.stat(p).st_mode & 0o777  # noqa: E731
    assert mode(tmp_path / "a.txt") == mode(tmp_path / "b.txt")

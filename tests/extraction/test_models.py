"""The model loader: offline specs, determinism, local dirs, the atomic cache."""

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from msma_sklearn.extraction import (
    OFFLINE_MODELS,
    clear_model_cache,
    load_model,
    model_fingerprint,
)
from msma_sklearn.extraction._models import cached_directory

TINY = ["tiny-gpt2", "tiny-bert", "tiny-roberta", "tiny-t5"]


@pytest.mark.parametrize("name", TINY)
def test_tiny_models_are_deterministic_and_leave_global_rng_alone(name):
    clear_model_cache()
    rng_before = torch.get_rng_state()
    model_a, tok_a = load_model(name)
    assert torch.equal(torch.get_rng_state(), rng_before)
    clear_model_cache()
    model_b, tok_b = load_model(name)
    assert model_a is not model_b
    sa, sb = model_a.state_dict(), model_b.state_dict()
    assert sa.keys() == sb.keys()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert tok_a.get_vocab() == tok_b.get_vocab()
    assert model_fingerprint(model_a) == model_fingerprint(model_b)
    assert not model_a.training


@pytest.mark.parametrize(
    "name,model_type,n_layers",
    [
        ("tiny-gpt2", "gpt2", 4),
        ("tiny-bert", "bert", 4),
        ("tiny-roberta", "roberta", 4),
        ("tiny-t5", "t5", 4),
    ],
)
def test_tiny_architectures(name, model_type, n_layers):
    model, tokenizer = load_model(name)
    assert model.config.model_type == model_type
    assert model.config.num_hidden_layers == n_layers
    ids = tokenizer("hello world").input_ids
    assert len(ids) >= 2 and max(ids) < model.config.vocab_size


def test_in_process_cache_returns_same_object():
    assert load_model("tiny-gpt2")[0] is load_model("tiny-gpt2")[0]


def test_offline_names_listed():
    assert set(OFFLINE_MODELS) == {
        "minilm",
        "smollm2-135m",
        "gemma3-270m",
        "tiny-gpt2",
        "tiny-bert",
        "tiny-roberta",
        "tiny-t5",
    }


def test_hub_id_offline_fails_at_once_naming_model(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ValueError) as info:
        load_model("openai-community/gpt2")
    msg = str(info.value)
    assert "'openai-community/gpt2'" in msg
    assert all(name in msg for name in OFFLINE_MODELS)


def test_bad_spec_type():
    with pytest.raises(TypeError, match="model must be a str"):
        load_model(42)


def test_local_directory_roundtrip(tmp_path):
    model, tokenizer = load_model("tiny-gpt2")
    model.save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    loaded, loaded_tok = load_model(str(tmp_path))
    assert type(loaded) is type(model)
    ids = torch.tensor([tokenizer("a small test").input_ids]).to(model.device)
    with torch.inference_mode():
        np.testing.assert_allclose(
            loaded(ids).logits.cpu().numpy(), model(ids).logits.cpu().numpy(), atol=1e-6
        )
    assert model_fingerprint(loaded) == model_fingerprint(model)


def test_fingerprint_changes_with_weights():
    model, _ = load_model("tiny-bert")
    clone = type(model)(model.config)
    clone.load_state_dict(model.state_dict())
    assert model_fingerprint(clone) == model_fingerprint(model)
    clone2 = type(model)(model.config)
    clone2.load_state_dict(model.state_dict())
    with torch.no_grad():
        next(clone2.parameters())[0, 0] += 1e-3
    assert model_fingerprint(clone2) != model_fingerprint(model)


# ---------------------------------------------------------- atomic disk cache
def _writer(calls):
    def build(target):
        calls.append(target)
        (target / "weights.bin").write_bytes(b"x" * 1000)
        (target / "config.json").write_text("{}")

    return build


def test_cached_directory_builds_once(tmp_path):
    calls = []
    first = cached_directory("m", _writer(calls), root=tmp_path)
    second = cached_directory("m", _writer(calls), root=tmp_path)
    assert first == second == tmp_path / "m"
    assert len(calls) == 1
    manifest = json.loads((first / "MANIFEST.json").read_text())
    assert manifest == {
        "config.json": {"size": 2, "sha256": hashlib.sha256(b"{}").hexdigest()},
        "weights.bin": {"size": 1000, "sha256": hashlib.sha256(b"x" * 1000).hexdigest()},
    }


def test_interrupted_build_leaves_nothing_trusted(tmp_path):
    def crash(target):
        (target / "weights.bin").write_bytes(b"partial")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        cached_directory("m", crash, root=tmp_path)
    assert list(tmp_path.iterdir()) == []  # no target, no temporary left behind
    calls = []
    cached_directory("m", _writer(calls), root=tmp_path)
    assert len(calls) == 1


@pytest.mark.parametrize(
    "damage", ["truncate", "drop_manifest", "delete_file", "zero_inside", "old_manifest"]
)
def test_broken_cache_is_rebuilt(tmp_path, damage):
    calls = []
    target = cached_directory("m", _writer(calls), root=tmp_path)
    if damage == "truncate":
        (target / "weights.bin").write_bytes(b"x" * 10)
    elif damage == "drop_manifest":
        (target / "MANIFEST.json").unlink()
    elif damage == "zero_inside":  # same size, other bytes: only the checksum sees it
        with open(target / "weights.bin", "r+b") as fh:
            fh.seek(100)
            fh.write(b"\0" * 400)
    elif damage == "old_manifest":  # the size-only manifest of earlier versions
        (target / "MANIFEST.json").write_text('{"config.json": 2, "weights.bin": 1000}')
    else:
        (target / "config.json").unlink()
    with pytest.warns(UserWarning, match=r"Cached model in .* (damaged|without checksums)"):
        again = cached_directory("m", _writer(calls), root=tmp_path)
    assert len(calls) == 2
    assert (again / "weights.bin").stat().st_size == 1000
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]


def test_a_cache_that_does_not_load_is_rebuilt_once(tmp_path, monkeypatch):
    """A checkpoint whose header is corrupt (e.g. written damaged, so its checksum agrees)
    is rebuilt instead of raising the loader's error."""
    from msma_sklearn.extraction import _models

    builds, loads = [], []

    def build(target):
        builds.append(target)
        (target / "model.safetensors").write_bytes(b"corrupt" if len(builds) == 1 else b"good")

    def load(directory):
        loads.append(directory)
        if (Path(directory) / "model.safetensors").read_bytes() == b"corrupt":
            raise RuntimeError("Error while deserializing header: HeaderTooLarge")
        return "model", "tokenizer"

    monkeypatch.setattr(_models, "_load_pretrained", load)
    with pytest.warns(UserWarning, match=r"does not load: RuntimeError.*HeaderTooLarge"):
        assert _models._load_cached("k", build, root=tmp_path) == ("model", "tokenizer")
    assert len(builds) == 2 and len(loads) == 2
    assert _models._load_cached("k", build, root=tmp_path) == ("model", "tokenizer")
    assert len(builds) == 2  # the rebuilt checkpoint is trusted


def test_a_cache_root_or_cache_dir_that_is_a_file_is_refused_before_work(tmp_path, texts):
    from msma_sklearn import HiddenStateExtractor

    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(ValueError, match=r"model cache .* is a file, not a directory"):
        cached_directory("m", _writer([]), root=blocker)
    with pytest.raises(ValueError, match=r"cache_dir=.* is a file, not a directory"):
        HiddenStateExtractor("tiny-gpt2", cache_dir=blocker).fit(texts)


def test_random_weights_spec_keeps_architecture_and_tokenizer_not_weights():
    from msma_sklearn.extraction import load_model, model_fingerprint

    trained, tok = load_model("tiny-bert")
    rand, rand_tok = load_model("random:tiny-gpt2")
    assert type(rand).__name__ == "GPT2LMHeadModel"
    assert rand_tok.get_vocab() == load_model("tiny-gpt2")[1].get_vocab()
    # minilm: same config, other weights, reproducible
    m, _ = load_model("minilm")
    r, _ = load_model("random:minilm")
    assert m.config.to_dict() == r.config.to_dict() or m.config.hidden_size == r.config.hidden_size
    assert model_fingerprint(m) != model_fingerprint(r)
    from msma_sklearn.extraction import clear_model_cache

    clear_model_cache()
    assert model_fingerprint(load_model("random:minilm")[0]) == model_fingerprint(r)
    del trained, tok


@pytest.mark.parametrize("spec", ["random:", "random:random:tiny-gpt2"])
def test_random_weights_spec_bad(spec):
    from msma_sklearn.extraction import load_model

    with pytest.raises(ValueError, match="'random:' must be followed by one model spec"):
        load_model(spec)


def test_loading_prints_no_progress_bar_unless_verbose(capfd):
    """transformers' "Loading weights" bar printed on every load, even with verbose=0."""
    from msma_sklearn.extraction._models import _MODEL_CACHE

    for key in [k for k in _MODEL_CACHE if k[0] == "minilm" and "bfloat16" in k[2]]:
        del _MODEL_CACHE[key]
    load_model("minilm", dtype="bfloat16")  # a fresh load from disk
    assert "Loading weights" not in capfd.readouterr().err
    for key in [k for k in _MODEL_CACHE if k[0] == "minilm" and "bfloat16" in k[2]]:
        del _MODEL_CACHE[key]
    load_model("minilm", dtype="bfloat16", verbose=1)
    assert "Loading weights" in capfd.readouterr().err
    from transformers.utils import logging as hf_logging

    assert hf_logging.is_progress_bar_enabled()  # restored for the user's own loads


def test_a_hub_model_in_the_local_cache_loads_offline(tmp_path):
    """Under HF_HUB_OFFLINE=1 a Hub id already in the cache was refused, although
    transformers loads it; one that is not cached is still a clear error."""
    import subprocess
    import sys

    model, tok = load_model("tiny-gpt2")
    snapshot = tmp_path / "hub" / "models--someone--tiny" / "snapshots" / ("0" * 40)
    model.save_pretrained(snapshot)
    tok.save_pretrained(snapshot)
    (tmp_path / "hub" / "models--someone--tiny" / "refs").mkdir()
    (tmp_path / "hub" / "models--someone--tiny" / "refs" / "main").write_text("0" * 40)
    code = (
        "from msma_sklearn.extraction import load_model\n"
        "m, _ = load_model('someone/tiny')\n"
        "print(m.config.model_type)\n"
        "try:\n"
        "    load_model('someone/absent')\n"
        "except ValueError as e:\n"
        "    print('refused:', 'local Hugging Face cache' in str(e))\n"
    )
    env = {
        **__import__("os").environ,
        "HF_HUB_OFFLINE": "1",
        "HF_HUB_CACHE": str(tmp_path / "hub"),
    }
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["gpt2", "refused:", "True"]

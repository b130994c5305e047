"""Bad input of every kind gets a clear error before any work (issue #17, item 6).

One row per case; each message must say what was received and what to do. Cases
that need a model live beside their estimator's tests (named in the comments).
"""

import json

import numpy as np
import pandas as pd
import pytest

from msma_sklearn.cli._config import ConfigError, load_config
from msma_sklearn.datasets import load_texts


def _write(path, data: bytes):
    path.write_bytes(data)
    return path


@pytest.mark.parametrize(
    "name,data,kwargs,expected",
    [
        ("bom.csv", "\ufefftext,label\nA cat.,x\nA dog.,y\n".encode(), {}, ["A cat.", "A dog."]),
        ("plain.txt", b"one\n\ntwo\n", {}, ["one", "two"]),  # blank line: warned
    ],
)
def test_texts_files_that_are_read(tmp_path, name, data, kwargs, expected):
    with pytest.warns(UserWarning) if name.endswith(".txt") else _nothing():
        assert load_texts(_write(tmp_path / name, data), **kwargs) == expected


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


@pytest.mark.parametrize(
    "name,data,kwargs,match",
    [
        ("latin.txt", "caf\u00e9\n".encode("latin-1"), {}, r"latin.txt' is not UTF-8 .*re-save"),
        ("x.csv", b"body\nhello\n", {}, r"no 'text' column; columns are \['body'\]"),
        ("x.jsonl", b'{"text": "a"}\n{oops\n', {}, r"x.jsonl, line 2: invalid JSON"),
        ("x.csv", b"text\nhello\n\n", {}, None),  # a trailing blank line is no row
        ("x.csv", b"text\nhello\n  \n", {}, r"line 3: 'text' is empty"),
        ("x.pdf", b"%PDF", {}, r"Unsupported texts file 'x.pdf'"),
        ("empty.txt", b"  \n", {}, r"is empty"),
    ],
)
def test_texts_files_that_are_refused(tmp_path, name, data, kwargs, match):
    path = _write(tmp_path / name, data)
    if match is None:
        assert load_texts(path) == ["hello"]
        return
    with pytest.raises(ValueError, match=match):
        load_texts(path, **kwargs)


@pytest.mark.parametrize(
    "overrides,match",
    [
        ({"alignment.lambda_geo": [float("nan"), 1.0]}, r"'alignment.lambda_geo' must be .*finite"),
        ({"alignment.lambda_info": [float("inf")]}, r"'alignment.lambda_info' must be .*finite"),
        ({"interventions.target_kl": [float("nan")]}, r"'interventions.target_kl' must be"),
        ({"interventions.primary_kl": float("nan")}, r"'interventions.primary_kl' must be"),
        ({"extraction.batch_size": 0}, r"'extraction.batch_size' must be \"auto\" or an integer"),
        (
            {"interventions.dose_response_models": ["minilm"]},
            r"must be among 'interventions.models'",
        ),
    ],
)
def test_settings_checked_before_any_work(overrides, match):
    with pytest.raises(ConfigError, match=match):
        load_config(**overrides)


@pytest.mark.parametrize(
    "cells,match",
    [
        (
            ["x", "", "y", "x"],
            r"'level' of texts.csv has 3 missing value\(s\) at line\(s\) 3, 7, 11; fill",
        ),
        (["x", "y", " ", ""], r"6 missing value\(s\) at line\(s\) 4, 5, 8, 9, 12, 13"),
    ],
)
def test_label_columns_with_missing_values_are_named_with_their_lines(tmp_path, cells, match):
    from msma_sklearn.cli._stages import load_run_texts

    texts = [f"Text number {i} is here." for i in range(12)]
    labels = (cells * 3)[:12]
    pd.DataFrame({"text": texts, "level": labels}).to_csv(tmp_path / "texts.csv", index=False)
    config = load_config(texts=str(tmp_path / "texts.csv"), label_columns={"local": "level"})
    with pytest.raises(ValueError, match=match):
        load_run_texts(config)


def test_na_and_none_are_labels_not_missing_values(tmp_path):
    from msma_sklearn.cli._stages import load_run_texts

    texts = [f"Text number {i} is here." for i in range(12)]
    labels = ["NA", "None", "null", "x"] * 3
    (tmp_path / "t.jsonl").write_text(
        "\n".join(json.dumps({"text": t, "level": y}) for t, y in zip(texts, labels, strict=True))
    )
    pd.DataFrame({"text": texts, "level": labels}).to_csv(tmp_path / "t.csv", index=False)
    for name in ("t.csv", "t.jsonl"):
        config = load_config(texts=str(tmp_path / name), label_columns={"local": "level"})
        _, got = load_run_texts(config)
        assert got["local"].tolist() == labels
    assert np.unique(got["local"]).size == 4


def test_an_encoder_as_steered_model_is_refused_before_any_work(tmp_path):
    """It used to fail only in the last stage, after extraction, segmentation and alignment."""
    from msma_sklearn.cli._run import run_study

    config = load_config(
        models=["tiny-bert", "tiny-gpt2"],
        **{"interventions.models": ["tiny-bert"], "output.dir": str(tmp_path)},
    )
    with pytest.raises(ValueError, match=r"names 'tiny-bert', a bert model that does not generate"):
        run_study(config)
    assert not any(tmp_path.iterdir())  # nothing written


@pytest.mark.parametrize("X", [np.zeros((20, 5 * 8)), np.ones((20, 5 * 8))])
def test_constant_states_are_refused_by_the_segmenter(X):
    """An all-zero X used to give a segmentation without a word."""
    from msma_sklearn import ScaleSegmenter

    with pytest.raises(ValueError, match=r"Hidden state\(s\) \[0, 1, 2, 3, 4\] are the same"):
        ScaleSegmenter(layers=5, n_scales=2).fit(X)
    X = np.random.default_rng(0).normal(size=(20, 40))
    X[:, 8:16] = 0.0  # one constant layer among varied ones
    with pytest.raises(ValueError, match=r"Hidden state\(s\) \[1\] are the same"):
        ScaleSegmenter(layers=5, n_scales=2).fit(X)


def test_long_calls_show_progress_only_when_verbose(capfd):
    from msma_sklearn import Intervener, ScaleSegmenter

    X = np.random.default_rng(0).normal(size=(30, 5 * 8))
    ScaleSegmenter(layers=5, n_scales=2, n_bootstrap=3, random_state=0).fit(X)
    assert "Bootstrap refits" not in capfd.readouterr().err
    ScaleSegmenter(layers=5, n_scales=2, n_bootstrap=3, random_state=0, verbose=1).fit(X)
    assert "Bootstrap refits" in capfd.readouterr().err
    iv = Intervener("tiny-gpt2", layers=[1], max_new_tokens=2, verbose=1).fit()
    iv.generate(["The cat"])
    assert "Generating" in capfd.readouterr().err


# ----------------------------------------------------------- plausible containers
@pytest.mark.parametrize(
    "X,error,match",
    [
        ({"doc-001": "The cat sat."}, TypeError, r"got a dict with 1 entries: .*its keys"),
        ({"The cat sat.", "A dog ran."}, TypeError, r"got a set: its order is arbitrary"),
        (frozenset({"The cat sat."}), TypeError, r"got a frozenset"),
        (["A text.", "\u200b\u200b"], ValueError, r"no visible character .* at index 1"),
        (["\ufeff", "ok", "\x00\x01 \t"], ValueError, r"2 text\(s\) with no visible .*0, 2"),
        (["\u2028\u00a0"], ValueError, r"no visible character"),
    ],
)
def test_containers_that_would_be_misread_are_refused(X, error, match):
    from msma_sklearn.utils import check_texts

    with pytest.raises(error, match=match):
        check_texts(X, name="X")


def test_texts_of_marks_or_symbols_alone_are_kept():
    from msma_sklearn.utils import check_texts

    assert check_texts(["\u00e9", "\U0001f600", "\u200bword"]) == [
        "\u00e9",
        "\U0001f600",
        "\u200bword",
    ]


def test_a_generator_is_read_once_by_fit_transform():
    from msma_sklearn import HiddenStateExtractor

    texts = ["The cat sat on the mat.", "A dog ran in the park.", "Rain fell all day."]
    ext = HiddenStateExtractor("tiny-gpt2", layers=[0, 4])
    X = ext.fit_transform(t for t in texts)
    np.testing.assert_array_equal(X, ext.transform(texts))
    gen = (t for t in texts)
    ext.fit(gen)  # fit reads it ...
    with pytest.raises(ValueError, match=r"X is empty \(an iterator or generator that was already"):
        ext.transform(gen)  # ... so transform gets nothing, and says why


def test_label_columns_need_a_file_with_columns(tmp_path):
    path = tmp_path / "t.txt"
    path.write_text("a text\n")
    with pytest.raises(ConfigError, match=r"'label_columns' reads labels .* has no columns"):
        load_config(**{"texts": str(path), "label_columns": {"global": "topic"}})


def test_blank_lines_are_named_so_a_shift_of_rows_is_visible(tmp_path):
    path = _write(tmp_path / "t.txt", b"one\n\ntwo\n  \nthree\n")
    with pytest.warns(UserWarning, match=r"skipped 2 blank line\(s\) \(line 2, 4\); .*row i"):
        assert load_texts(path) == ["one", "two", "three"]


def test_run_help_shows_the_configs_own_defaults(capsys):
    from msma_sklearn.cli import main
    from msma_sklearn.cli._config import FIELDS

    with pytest.raises(SystemExit):
        main(["run", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    models = next(f for f in FIELDS if f.path == "models")
    assert "(default: " + ",".join(models.default) + ")" in out
    assert "64 texts" not in out and "every 4th text" in out

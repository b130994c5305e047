"""Text input as scikit-learn's text vectorizers take it (issue #17, item 1)."""

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer

from msma_sklearn import HiddenStateExtractor


@pytest.fixture(scope="module")
def frame(texts):
    return pd.DataFrame({"text": texts[:5], "label": list("ababa"), "n": range(5)})


@pytest.fixture(scope="module")
def texts():
    return [
        "The cat sat on the mat.",
        "Markets rallied after the central bank held rates.",
        "Rain fell all night over the hills.",
        "A short one.",
        "The committee will meet again next week to vote.",
    ]


@pytest.fixture(scope="module")
def expected(texts):
    return HiddenStateExtractor("tiny-bert").fit(texts).transform(texts)


@pytest.mark.parametrize(
    "as_input",
    [
        lambda df: df["text"],  # Series
        lambda df: df[["text"]],  # one-column DataFrame: that column, not its name
        lambda df: df["text"].to_numpy(),
        lambda df: df[["text"]].to_numpy(),  # (n, 1) array
        lambda df: df["text"].tolist(),
    ],
)
def test_one_text_per_row_whatever_the_container(frame, expected, as_input):
    X = as_input(frame)
    got = HiddenStateExtractor("tiny-bert").fit(X).transform(X)
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, atol=1e-6)


def test_a_frame_of_several_columns_is_refused_with_what_to_pass(frame):
    ext = HiddenStateExtractor("tiny-bert").fit(frame["text"])
    with pytest.raises(ValueError, match=r"DataFrame with 3 columns .*Pass the text column alone"):
        ext.transform(frame)
    with pytest.raises(ValueError, match="DataFrame with 2 columns"):
        ext.transform(frame[["text", "label"]])


@pytest.mark.parametrize("columns", [["text"], "text"])
def test_inside_a_column_transformer(frame, expected, columns):
    ct = ColumnTransformer([("states", HiddenStateExtractor("tiny-bert"), columns)])
    got = ct.fit_transform(frame)
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, atol=1e-6)

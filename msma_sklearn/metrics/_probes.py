"""Per-layer linear probes with confidence intervals and control tasks."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

import numpy as np

__all__ = ["LayerProbes", "control_labels", "probe_layers"]

_WORD = re.compile(r"\w+")


def control_labels(texts, y, *, random_state=None) -> np.ndarray:
    """Control-task labels for text-level probing (after Hewitt & Liang, 2019).

    Hewitt and Liang's control task gives every word *type* a random label, so
    a probe that does well on it shows what the probe can memorise from
    lexical identity alone. For labels of whole texts: every lower-cased word
    type gets a label drawn at random from the empirical distribution of
    ``y``, and a text's control label is the most frequent label among its
    word tokens (ties to the label of the earliest tied word). The
    control labels are a deterministic function of the words, as decodable
    from lexical content as the task's labels can be, and carry no
    information about the task.

    Parameters
    ----------
    texts : sequence of str
        The texts.
    y : array-like of shape (n_texts,)
        The task's labels (their classes and frequencies are drawn from).
    random_state : int or None
        Seeds the labels of the word types.

    Returns
    -------
    ndarray of shape (n_texts,), values from ``y``'s classes

    Examples
    --------
    >>> control_labels(["a b", "b a", "c"], ["x", "y", "x"], random_state=0).tolist()[:2]
    ['x', 'x']
    """
    y = np.asarray(y)
    classes, counts = np.unique(y, return_counts=True)
    rng = np.random.default_rng(random_state)
    words = [[w.lower() for w in _WORD.findall(str(t))] for t in texts]
    types = sorted({w for ws in words for w in ws})
    drawn = rng.choice(len(classes), size=len(types), p=counts / counts.sum())
    type_label = dict(zip(types, drawn.tolist(), strict=True))
    out = np.empty(len(words), dtype=np.int64)
    for i, ws in enumerate(words):
        if not ws:  # no word: a label from the same distribution
            out[i] = rng.choice(len(classes), p=counts / counts.sum())
            continue
        labels = [type_label[w] for w in ws]
        tally = Counter(labels)
        top = max(tally.values())
        out[i] = next(c for c in labels if tally[c] == top)  # ties: the earliest word's
    return classes[out]


@dataclass(frozen=True)
class LayerProbes:
    """Linear-probe accuracy per layer, with intervals and a control task.

    Parameters
    ----------
    accuracy : ndarray of shape (n_layers,)
        Out-of-fold accuracy (every text predicted once, by a probe that did
        not see it).
    accuracy_ci : ndarray of shape (n_layers, 2)
        Percentile bootstrap interval over texts.
    control_accuracy : ndarray of shape (n_layers,)
        The same probe on :func:`control_labels`.
    selectivity : ndarray of shape (n_layers,)
        ``accuracy - control_accuracy`` (Hewitt & Liang's selectivity).
    selectivity_ci : ndarray of shape (n_layers, 2)
        Paired bootstrap interval over texts.
    chance, control_chance : float
        Share of the most frequent class, for the task and the control.
    n_texts, folds, n_bootstrap : int
        The design: texts, cross-validation folds, bootstrap resamples.
    confidence : float
        Coverage of the intervals.
    """

    accuracy: np.ndarray
    accuracy_ci: np.ndarray
    control_accuracy: np.ndarray
    selectivity: np.ndarray
    selectivity_ci: np.ndarray
    chance: float
    control_chance: float
    n_texts: int
    folds: int
    n_bootstrap: int
    confidence: float

    def to_dict(self) -> dict:
        """JSON-able, rounded to 4 digits.

        Returns
        -------
        dict
            Every field, arrays as lists.
        """
        return {
            "accuracy": np.round(self.accuracy, 4).tolist(),
            "accuracy_ci": np.round(self.accuracy_ci, 4).tolist(),
            "control_accuracy": np.round(self.control_accuracy, 4).tolist(),
            "selectivity": np.round(self.selectivity, 4).tolist(),
            "selectivity_ci": np.round(self.selectivity_ci, 4).tolist(),
            "chance": round(self.chance, 4),
            "control_chance": round(self.control_chance, 4),
            "n_texts": self.n_texts,
            "folds": self.folds,
            "n_bootstrap": self.n_bootstrap,
            "confidence": self.confidence,
        }


def _splitter(y, folds: int, seed: int):
    from sklearn.model_selection import KFold, StratifiedKFold

    smallest = np.unique(y, return_counts=True)[1].min()
    if smallest >= folds:
        return StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    return KFold(n_splits=folds, shuffle=True, random_state=seed)


def probe_layers(
    layer_states,
    y,
    texts,
    *,
    folds: int = 5,
    alpha: float = 10.0,
    n_bootstrap: int = 1000,
    confidence: float = 0.95,
    random_state: int = 0,
) -> LayerProbes:
    """Probe every layer for a label, with bootstrap intervals and a control task.

    A ridge classifier on standardised states (fitted within each fold) is
    cross-validated on every layer; each text is predicted once, out of fold,
    so accuracy is a mean over texts (the independent unit) and its interval
    comes from resampling texts. The control task (:func:`control_labels`)
    tells where a label is decodable only in the way lexical identity is.

    Parameters
    ----------
    layer_states : array-like of shape (n_texts, n_layers, n_features)
        Each text's state at every layer.
    y : array-like of shape (n_texts,)
        The label probed for.
    texts : sequence of str
        The texts behind the rows (for the control task).
    folds : int, default=5
        Stratified cross-validation folds.
    alpha : float, default=10.0
        Ridge penalty.
    n_bootstrap : int, default=1000
        Resamples of the texts behind each interval.
    confidence : float, default=0.95
        Coverage of the intervals.
    random_state : int, default=0
        Seeds the folds, the control labels and the bootstrap.

    Returns
    -------
    LayerProbes

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> y = np.repeat([0, 1], 30)
    >>> states = rng.normal(size=(60, 2, 5))
    >>> states[:, 1, 0] += 3 * y  # layer 1 carries the label
    >>> texts = [f"text {i}" for i in range(60)]
    >>> p = probe_layers(states, y, texts, n_bootstrap=200)
    >>> bool(p.accuracy[1] > 0.9 > p.accuracy[0])
    True
    """
    from sklearn.linear_model import RidgeClassifier
    from sklearn.model_selection import cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    states = np.asarray(layer_states, dtype=np.float64)
    y = np.asarray(y)
    if states.ndim != 3 or states.shape[0] != y.shape[0] or len(texts) != y.shape[0]:
        raise ValueError(
            f"probe_layers needs layer_states (n_texts, n_layers, n_features), y and texts of "
            f"n_texts rows; got shapes {states.shape}, {y.shape} and {len(texts)} texts."
        )
    if np.unique(y).size < 2:
        raise ValueError(f"y has a single class {np.unique(y).tolist()}: nothing to probe.")
    n, n_layers, _ = states.shape
    control = control_labels(texts, y, random_state=random_state)
    correct = np.empty((2, n_layers, n), dtype=bool)
    for t, labels in enumerate((y, control)):
        cv = _splitter(labels, folds, random_state)
        for j in range(n_layers):
            clf = make_pipeline(StandardScaler(), RidgeClassifier(alpha=alpha))
            pred = cross_val_predict(clf, states[:, j], labels, cv=cv)
            correct[t, j] = pred == labels
    rng = np.random.default_rng(random_state)
    idx = rng.integers(0, n, size=(n_bootstrap, n))
    task = correct[0].astype(float)
    diff = task - correct[1]
    q = [(1 - confidence) / 2, (1 + confidence) / 2]
    acc_boot = task[:, idx].mean(axis=2)  # (n_layers, B)
    sel_boot = diff[:, idx].mean(axis=2)

    def majority(v):
        return float(np.unique(v, return_counts=True)[1].max() / v.size)

    return LayerProbes(
        accuracy=task.mean(axis=1),
        accuracy_ci=np.quantile(acc_boot, q, axis=1).T,
        control_accuracy=correct[1].mean(axis=1),
        selectivity=diff.mean(axis=1),
        selectivity_ci=np.quantile(sel_boot, q, axis=1).T,
        chance=majority(y),
        control_chance=majority(control),
        n_texts=n,
        folds=folds,
        n_bootstrap=n_bootstrap,
        confidence=confidence,
    )

"""The extraction stage as a library function: one model's hidden states of the texts and
its per-layer probes with intervals and a control task."""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field

import numpy as np
from tqdm.auto import tqdm

__all__ = ["ExtractionResult", "layers_above_embedding", "run_extraction"]


@dataclass(frozen=True)
class ExtractionResult:
    """Everything :func:`run_extraction` measured for one model.

    ``probes`` maps each label to its :class:`~msma_sklearn.metrics.LayerProbes`
    (hidden state 0 = the embedding output); ``extractor`` and ``states`` (the
    fitted :class:`HiddenStateExtractor` and its output) feed the later stages
    and are left out of :meth:`to_dict`.

    Parameters
    ----------
    model, model_type : str
        The spec and the architecture (``config.model_type``).
    n_layers, hidden_size : int
        Hidden states read and their width.
    n_texts, n_tokens : int
        Texts and real tokens extracted.
    load_seconds, extract_seconds : float
        Wall time to load the model and to extract.
    mean_state_norm : ndarray of shape (n_layers,)
        Mean norm of each hidden state's pooled vectors.
    sink_tokens : int
        Leading tokens left out of pooling (the extractor's ``sink_tokens_``).
    probes : dict
        Label -> :class:`~msma_sklearn.metrics.LayerProbes`.
    chance : dict
        Label -> share of its most frequent class.
    extractor : HiddenStateExtractor
        The fitted extractor.
    states : ndarray
        Its output.
    """

    model: str
    model_type: str
    n_layers: int
    hidden_size: int
    n_texts: int
    n_tokens: int
    load_seconds: float
    extract_seconds: float
    mean_state_norm: np.ndarray
    sink_tokens: int
    probes: dict
    chance: dict
    extractor: object = field(default=None, repr=False, compare=False)
    states: np.ndarray | None = field(default=None, repr=False, compare=False)

    @property
    def tokens_per_second(self) -> float:
        return self.n_tokens / self.extract_seconds if self.extract_seconds > 0 else float("nan")

    def to_dict(self) -> dict:
        """The JSON-able summary ``msma run`` writes (``summary.json``'s ``extract``).

        Returns
        -------
        dict
        """
        return {
            "model_type": self.model_type,
            "n_layers": self.n_layers,
            "hidden_size": self.hidden_size,
            "n_texts": self.n_texts,
            "n_tokens": self.n_tokens,
            "load_seconds": round(self.load_seconds, 2),
            "extract_seconds": round(self.extract_seconds, 2),
            "tokens_per_second": round(self.tokens_per_second, 1),
            "mean_state_norm": np.round(self.mean_state_norm, 3).tolist(),
            "sink_tokens": self.sink_tokens,
            "probe_accuracy": {s: np.round(p.accuracy, 3).tolist() for s, p in self.probes.items()},
            "probes": {s: p.to_dict() for s, p in self.probes.items()},
            "chance": {s: round(v, 3) for s, v in self.chance.items()},
        }


def layers_above_embedding(probes) -> dict:
    """Where a label is decoded beyond what the embedding layer already gives.

    Returns ``best`` (the layer of highest accuracy) and ``beyond`` (the
    layers whose interval lies wholly above layer 0's), from a
    :class:`~msma_sklearn.metrics.LayerProbes` or its ``to_dict()``.

    Parameters
    ----------
    probes : LayerProbes or dict
        One label's probes.

    Returns
    -------
    dict
        ``{"best": int, "beyond": list of int}``.
    """
    get = probes.get if isinstance(probes, dict) else lambda k: getattr(probes, k)
    acc = np.asarray(get("accuracy"), dtype=float)
    ci = np.asarray(get("accuracy_ci"), dtype=float)
    beyond = [j for j in range(len(acc)) if ci[j][0] > ci[0][1]]
    return {"best": int(np.argmax(acc)), "beyond": beyond}


def run_extraction(
    model,
    texts,
    labels=None,
    *,
    pooling="mean",
    max_length=128,
    batch_size="auto",
    device="auto",
    cv_folds=5,
    random_state=0,
    load_seconds=None,
    verbose=1,
) -> ExtractionResult:
    """Every hidden state of ``texts`` under ``model`` and a linear probe per layer and label.

    Parameters
    ----------
    model : str
        A model spec :func:`load_model` accepts.
    texts : list of str
        The texts.
    labels : dict of str -> array, default=None
        Label name -> one label per text; a label with one class is not probed
        (warned).
    pooling, max_length, batch_size, device :
        :class:`HiddenStateExtractor` settings.
    cv_folds, random_state :
        :func:`~msma_sklearn.metrics.probe_layers` settings.
    load_seconds : float, default=None
        The model's load time if it was loaded before (else measured here).
    verbose : int, default=1
        The extractor's progress bar (0: none).

    Returns
    -------
    ExtractionResult
    """
    from ..extraction import HiddenStateExtractor, load_model
    from ..metrics import probe_layers

    t0 = time.perf_counter()
    _, tokenizer = load_model(model, device=device)
    load_s = time.perf_counter() - t0 if load_seconds is None else load_seconds
    ext = HiddenStateExtractor(
        model,
        pooling=pooling,
        max_length=max_length,
        batch_size=batch_size,
        device=device,
        verbose=verbose,
    ).fit(texts)
    t0 = time.perf_counter()
    X = ext.transform(texts)
    extract_s = time.perf_counter() - t0
    n_tokens = int(sum(min(len(ids), max_length) for ids in tokenizer(list(texts))["input_ids"]))
    per_layer = ext.reshape_by_layer(X)
    probes, chance = {}, {}
    for label, y in tqdm(
        (labels or {}).items(), desc=f"Probing {model}", unit="label", leave=False
    ):
        y = np.asarray(y)
        classes = np.unique(y)
        if classes.size < 2:
            warnings.warn(
                f"Label {label!r} has one class ({classes.tolist()}) in these texts: not probed.",
                UserWarning,
                stacklevel=2,
            )
            continue
        probes[label] = probe_layers(per_layer, y, texts, folds=cv_folds, random_state=random_state)
        chance[label] = 1 / classes.size
    return ExtractionResult(
        model=model,
        model_type=ext.model_type_,
        n_layers=ext.n_layers_,
        hidden_size=ext.hidden_size_,
        n_texts=len(texts),
        n_tokens=n_tokens,
        load_seconds=load_s,
        extract_seconds=extract_s,
        mean_state_norm=np.linalg.norm(per_layer, axis=2).mean(axis=0),
        sink_tokens=ext.sink_tokens_,
        probes=probes,
        chance=chance,
        extractor=ext,
        states=X,
    )

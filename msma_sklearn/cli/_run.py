"""``msma run``: the study on the embedded defaults, as a sequence of stages.

Stages live in :mod:`._stages`; each takes the config, the run directory and
a context dict through which earlier stages hand arrays to later ones, and
returns its JSON-able results and a Markdown section.
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import platform
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..utils._io import atomic_write_text

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
    n_bootstrap: int = 20
    tiny_models: tuple[str, ...] = ("tiny-gpt2", "tiny-bert", "tiny-roberta", "tiny-t5")
    n_texts: int = field(default=0)  # filled in from the corpus


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
    from ._stages import STAGES

    started = time.perf_counter()
    results, sections, context = {}, [], {}
    for stage, fn in STAGES:
        logger.info("Stage %s", stage)
        results[stage], section = fn(config, run_dir, context)
        sections.append(section)
    meta = {
        "config": asdict(config),
        "python": platform.python_version(),
        "seconds": round(time.perf_counter() - started, 1),
    }
    atomic_write_text(run_dir / "config.json", json.dumps(meta, indent=2))
    atomic_write_text(run_dir / "summary.json", json.dumps(results, indent=2))
    header = (
        f"# msma run `{config.run_id}`\n\n{config.n_texts} texts of the bundled corpus "
        f"({'quick subset' if config.quick else 'all'}), pooling `{config.pooling}`, "
        f"max_length {config.max_length}, seed {config.random_state}; "
        f"{meta['seconds']} s.\n"
    )
    atomic_write_text(run_dir / "summary.md", "\n".join([header, *sections]))
    return run_dir

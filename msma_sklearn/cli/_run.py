"""``msma run``: the study as a sequence of stages, resumable, ending in a report.

Stages live in :mod:`._stages`; each takes the config, the run directory and
a context dict through which earlier stages hand arrays to later ones, and
returns its JSON-able results and a Markdown section. After each stage the
context, results and section are written atomically to
``stages/<stage>.joblib`` and then a marker ``stages/<stage>.done.json``
holding the config's fingerprint: a re-run with the same run id and the same
settings loads the finished stages instead of recomputing them, and a file
without its marker (an interrupted write) is never trusted.
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import platform
import time
from pathlib import Path

from tqdm.auto import tqdm

from ..extraction._models import OFFLINE_MODELS
from ..utils._io import atomic_path, atomic_write_text
from ._config import ConfigError, RunConfig, load_config

__all__ = ["RunConfig", "load_config", "run_study"]

logger = logging.getLogger(__name__)

#: The three tables of the original project, each also written on its own.
TABLE_FILES = {
    "segment": "layer_distribution.md",
    "align": "alignment_ablation.md",
    "intervene": "intervention_effects.md",
}


def _prepare_dir(config: RunConfig) -> Path:
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
    return run_dir


def _status(run_dir: Path, config: RunConfig, state: str, done: list, **extra) -> None:
    body = {"state": state, "run_id": config.run_id, "stages_done": done, **extra}
    atomic_write_text(run_dir / "status.json", json.dumps(body, indent=2))


def _finished(run_dir: Path, stage: str, fingerprint: str) -> bool:
    marker = run_dir / "stages" / f"{stage}.done.json"
    if not marker.is_file():
        return False
    try:
        saved = json.loads(marker.read_text())
    except (OSError, json.JSONDecodeError):
        return False
    if saved.get("fingerprint") != fingerprint:
        raise ConfigError(
            f"{str(run_dir)!r} holds stage {stage!r} of a run with different settings; "
            "choose another --run-id, or pass --restart to discard that run's stages."
        )
    return (run_dir / "stages" / f"{stage}.joblib").is_file()


def _save_stage(run_dir: Path, stage: str, fingerprint: str, payload) -> None:
    import joblib

    folder = run_dir / "stages"
    folder.mkdir(exist_ok=True)
    with atomic_path(folder / f"{stage}.joblib") as tmp:
        joblib.dump(payload, tmp, compress=3)
    atomic_write_text(
        folder / f"{stage}.done.json", json.dumps({"stage": stage, "fingerprint": fingerprint})
    )


def _preflight(config: RunConfig) -> None:
    """Fail before any work on what can be checked up front: the texts and the models."""
    from ..extraction import load_model
    from ._stages import load_run_texts

    load_run_texts(config)
    for name in config.models:
        try:
            load_model(name, device=config.device)
        except (OSError, ValueError, ImportError) as exc:
            raise ValueError(f"Model {name!r} cannot be loaded: {exc}") from exc


def run_study(config: RunConfig, *, restart: bool = False) -> Path:
    """Run every stage (resuming finished ones) and write ``<out_dir>/<run_id>/``.

    Returns that directory. ``status.json`` says ``running`` while it works,
    ``failed`` (with the error) if a stage raises, and ``complete`` once
    ``summary.md`` and ``report.html`` are written; the report is only
    written when every stage has finished.
    """
    import joblib

    from ._stages import STAGES

    _preflight(config)
    run_dir = _prepare_dir(config)
    fingerprint = config.fingerprint()
    if restart:
        for marker in (run_dir / "stages").glob("*.done.json"):
            marker.unlink()
    for stale in ("report.html", "summary.md", "summary.json"):
        (run_dir / stale).unlink(missing_ok=True)  # only a finished run has them
    started = time.perf_counter()
    results, sections, context, done, resumed = {}, {}, {}, [], []
    _status(run_dir, config, "running", done)
    try:
        for stage, fn in tqdm(STAGES, desc="msma run", unit="stage"):
            if _finished(run_dir, stage, fingerprint):
                results[stage], sections[stage], context = joblib.load(
                    run_dir / "stages" / f"{stage}.joblib"
                )
                config.n_texts = len(context.get("texts", ()))
                resumed.append(stage)
                logger.info("Stage %s: finished earlier, loaded", stage)
            else:
                logger.info("Stage %s", stage)
                results[stage], sections[stage] = fn(config, run_dir, context)
                _save_stage(run_dir, stage, fingerprint, (results[stage], sections[stage], context))
            done.append(stage)
            _status(run_dir, config, "running", done)
    except BaseException as exc:
        _status(run_dir, config, "failed", done, error=f"{type(exc).__name__}: {exc}")
        raise
    _write_outputs(run_dir, config, results, sections, time.perf_counter() - started, resumed)
    _status(run_dir, config, "complete", done, resumed=resumed)
    return run_dir


def _write_outputs(run_dir, config, results, sections, seconds, resumed) -> None:
    import yaml

    from ._report import write_csvs, write_report

    meta = {
        "config": config.as_yaml_dict(),
        "fingerprint": config.fingerprint(),
        "python": platform.python_version(),
        "seconds": round(seconds, 1),
        "resumed_stages": resumed,
    }
    atomic_write_text(
        run_dir / "config.yaml", yaml.safe_dump(config.as_yaml_dict(), sort_keys=False)
    )
    atomic_write_text(run_dir / "config.json", json.dumps(meta, indent=2))
    atomic_write_text(run_dir / "summary.json", json.dumps(results, indent=2))
    write_csvs(run_dir, results)
    for stage, name in TABLE_FILES.items():
        atomic_write_text(run_dir / name, sections[stage])
    source = "the bundled corpus" if config.texts == "bundled" else f"`{config.texts}`"
    resumed_s = f" (stages {', '.join(resumed)} loaded from an earlier run)" if resumed else ""
    header = (
        f"# msma run `{config.run_id}`\n\n{config.n_texts} texts from {source}"
        f"{' (quick subset)' if config.quick else ''}, pooling `{config.pooling}`, "
        f"max_length {config.max_length}, seed {config.random_state}; "
        f"{meta['seconds']} s{resumed_s}. Settings: `config.yaml`.\n"
    )
    markdown = "\n".join([header, *sections.values()])
    atomic_write_text(run_dir / "summary.md", markdown)
    write_report(run_dir, markdown, title=f"msma run {config.run_id}")
    atomic_write_text(run_dir / "reproduction.md", _reproduction(config, meta, sections))


def _reproduction(config, meta, sections) -> str:
    """The original project's three tables as this run measured them (docs/reproduction.md)."""
    import re

    from .. import __version__

    body = "\n".join(sections[stage] for stage in TABLE_FILES)
    body = re.sub(r"^!\[[^\]]*\]\([^)]*\)\n?", "", body, flags=re.MULTILINE)  # figures: report
    return (
        "# Reproduction: the original three tables, re-measured\n\n"
        f"Generated by `msma run` (msma_sklearn {__version__}, run `{config.run_id}`, "
        f"{_dt.datetime.now():%Y-%m-%d}, {meta['seconds']} s on this machine"
        + (
            f" with stages {', '.join(meta['resumed_stages'])} loaded from an earlier run"
            if meta["resumed_stages"]
            else ""
        )
        + ", settings "
        f"fingerprint `{meta['fingerprint'][:12]}`); regenerate with `make reproduce`, which "
        "runs the default study and copies this file here. Not edited by hand. The figures "
        "are in the run's `report.html`. Models: "
        + ", ".join(
            f"`{m}`" + (f" ({OFFLINE_MODELS[m]})" if m in OFFLINE_MODELS else "")
            for m in config.models
        )
        + f"; texts: {config.n_texts} from "
        + ("the bundled corpus" if config.texts == "bundled" else f"`{config.texts}`")
        + ".\n\n"
        + body
    )

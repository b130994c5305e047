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

import contextlib
import datetime as _dt
import json
import logging
import os
import platform
import signal
import socket
import threading
import time
import warnings
from pathlib import Path

from tqdm.auto import tqdm

from ..extraction._models import OFFLINE_MODELS
from ..utils._io import atomic_path, atomic_write_text
from ._config import ConfigError, RunConfig, load_config
from ._fields import run_id_problem
from ._preflight import _preflight, text_requirements

__all__ = [
    "CheckpointError",
    "RunConfig",
    "check_run_id",
    "load_config",
    "run_study",
    "text_requirements",
]

logger = logging.getLogger(__name__)

#: The three tables of the original project, each also written on its own.
TABLE_FILES = {
    "segment": "layer_distribution.md",
    "align": "alignment_ablation.md",
    "intervene": "intervention_effects.md",
}


def check_run_id(run_id: str) -> str:
    """Refuse a run id that is not one plain folder name (``../x`` would write outside
    ``--out-dir``); returns it unchanged."""
    problem = run_id_problem(run_id) if run_id else "a non-empty folder name"
    if problem:
        raise ConfigError(f"'output.run_id' (--run-id) must be {problem}, got {run_id!r}.")
    return run_id


def _run_dir(config: RunConfig) -> Path:
    if not config.run_id:
        stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        config.run_id = stamp + ("-quick" if config.quick else "")
    check_run_id(config.run_id)
    out_dir = Path(config.out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise OSError(
            f"Output directory {str(out_dir)!r} is a file, not a directory; pass another --out-dir."
        )
    return out_dir / config.run_id


def _prepare_dir(run_dir: Path) -> Path:
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        probe = run_dir / ".write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        raise OSError(f"Output directory {str(run_dir)!r} is not writable: {exc}") from exc
    return run_dir


class RunLockedError(ValueError):
    """Another live process works on this run id."""


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by another user
        return True
    return True


@contextlib.contextmanager
def run_lock(run_dir: Path):
    """Hold ``<run_dir>/run.lock`` (owner's pid, host and start time) for the block.

    A second process on the same run id is refused with :class:`RunLockedError`
    naming the owner. A lock whose owner is gone (same host, pid not running) is
    stale: it is taken over with a warning. A lock from another host cannot be
    checked and is respected; delete the file if that host's run is known dead.
    """
    path = run_dir / "run.lock"
    me = {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "started": _dt.datetime.now().isoformat(),
    }
    for attempt in range(2):  # a stale lock is taken over once; never run without the lock
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            try:
                owner = json.loads(path.read_text())
            except (OSError, json.JSONDecodeError):
                owner = {}
            pid, host = owner.get("pid"), owner.get("host")
            stale = host == me["host"] and isinstance(pid, int) and not _pid_alive(pid)
            if stale and attempt == 0:
                warnings.warn(
                    f"Run {run_dir.name!r}: taking over a stale lock of pid {pid} (not running).",
                    UserWarning,
                    stacklevel=3,
                )
                path.unlink(missing_ok=True)
                continue
            raise RunLockedError(
                f"Run {run_dir.name!r} is in use by pid {pid} on {host} since "
                f"{owner.get('started', '?')}; wait for it to finish or choose another "
                f"--run-id (if that process is known dead, delete {str(path)!r})."
            ) from None
        with os.fdopen(fd, "w") as fh:
            json.dump(me, fh)
        break
    try:
        yield
    finally:
        try:
            if json.loads(path.read_text()).get("pid") == me["pid"]:
                path.unlink()
        except (OSError, json.JSONDecodeError):
            pass


class _Terminated(BaseException):
    """SIGTERM (or SIGHUP) received during a run."""


@contextlib.contextmanager
def _signals_raise():
    """Turn SIGTERM / SIGHUP into an exception, so the run records how it ended."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        raise _Terminated(signal.Signals(signum).name)

    previous = {}
    for sig in (signal.SIGTERM, getattr(signal, "SIGHUP", None)):
        if sig is not None:
            previous[sig] = signal.signal(sig, handler)
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def _status(run_dir: Path, config: RunConfig, state: str, done: list, **extra) -> None:
    body = {"state": state, "run_id": config.run_id, "stages_done": done, **extra}
    atomic_write_text(run_dir / "status.json", json.dumps(body, indent=2))


class CheckpointError(ValueError):
    """A finished stage's checkpoint that cannot be read back."""


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
            "choose another --run-id, or pass --restart to discard that run's stages. "
            "Nothing in that folder was changed."
        )
    return (run_dir / "stages" / f"{stage}.joblib").is_file()


def _load_stage(run_dir: Path, stage: str):
    """A finished stage's (results, section, context, typed results or None), or
    :class:`CheckpointError` naming the file and what to do. Checkpoints written before the
    typed results were kept have none (their saved section is used as it is)."""
    import joblib

    path = run_dir / "stages" / f"{stage}.joblib"
    try:
        payload = joblib.load(path)
        results, section, context, *rest = payload
        typed = rest[0] if rest else None
    except Exception as exc:  # truncated, corrupt or foreign: any unpickling error
        raise CheckpointError(
            f"The checkpoint of stage {stage!r}, {str(path)!r}, cannot be read "
            f"({type(exc).__name__}: {exc}); rerun with --restart to recompute the stages "
            "(the earlier report is kept under previous/), or choose another --run-id. "
            "Nothing in that folder was changed."
        ) from exc
    return results, section, context, typed


def _render(stage: str, config, output) -> str:
    """A stage's report section: ``output`` is its typed results (rendered by the report's
    renderer for that stage) or, for a stage with nothing to render, the section itself."""
    from ._stages import RENDERERS

    return output if isinstance(output, str) else RENDERERS[stage](config, output)


def _resumable(run_dir: Path, fingerprint: str) -> dict:
    """Every finished stage of ``run_dir`` loaded, before anything is written: a rerun with
    other settings or an unreadable checkpoint is refused with the folder untouched."""
    from ._stages import STAGES

    loaded = {}
    if not run_dir.is_dir():
        return loaded
    for stage, _ in STAGES:
        if _finished(run_dir, stage, fingerprint):
            loaded[stage] = _load_stage(run_dir, stage)
        else:
            break  # later stages depend on this one's context: recomputed
    return loaded


def _keep_previous(run_dir: Path) -> Path | None:
    """Move the earlier run's files (report, summaries, tables, figures, CSVs, states,
    status) into ``previous/``, replacing an older copy there, before --restart
    recomputes; the stage checkpoints and the lock stay. Returns that folder, or None."""
    present = [p for p in run_dir.iterdir() if p.is_file() and p.name != "run.lock"]
    if not present:
        return None
    target = run_dir / "previous"
    target.mkdir(exist_ok=True)
    for path in present:
        os.replace(path, target / path.name)
    return target


def _stage_seconds(run_dir: Path, stage: str) -> float | None:
    """The wall time a finished stage took in the run that computed it (None: unrecorded)."""
    try:
        saved = json.loads((run_dir / "stages" / f"{stage}.done.json").read_text())
    except (OSError, json.JSONDecodeError):
        return None
    return saved.get("seconds")


def _save_stage(
    run_dir: Path, stage: str, fingerprint: str, payload, seconds: float | None = None
) -> None:
    import joblib

    folder = run_dir / "stages"
    folder.mkdir(exist_ok=True)
    with atomic_path(folder / f"{stage}.joblib") as tmp:
        joblib.dump(payload, tmp, compress=3)
    atomic_write_text(
        folder / f"{stage}.done.json",
        json.dumps({"stage": stage, "fingerprint": fingerprint, "seconds": seconds}),
    )


def run_study(config: RunConfig, *, restart: bool = False) -> Path:
    """Run every stage (resuming finished ones) and write ``<out_dir>/<run_id>/``.

    Returns that directory. Before anything is written, the run id is checked
    (one folder name), finished stages are checked against the settings'
    fingerprint and loaded, and the models are loaded (the preflight): a
    rerun that is refused there leaves the folder as it was. ``status.json``
    says ``running`` while it works, ``failed`` (with the error) if a stage
    raises, ``interrupted`` after Ctrl-C, SIGTERM or SIGHUP, and ``complete``
    once ``summary.md`` and ``report.html`` are written; the report is only
    written when every stage has finished, replacing the earlier one
    atomically. ``restart=True`` recomputes every stage; the earlier run's
    report, summaries and status are first moved to ``previous/``. ``run.lock``
    keeps a second process off the same run id (:func:`run_lock`).
    """
    run_dir = _run_dir(config)
    fingerprint = config.fingerprint()
    # refused reruns stop here, before any write
    loaded = {} if restart else _resumable(run_dir, fingerprint)
    load_seconds = _preflight(config)
    _prepare_dir(run_dir)
    with run_lock(run_dir), _signals_raise():
        return _run_stages(config, run_dir, load_seconds, restart, loaded)


def _run_stages(
    config: RunConfig, run_dir: Path, load_seconds: dict, restart: bool, loaded: dict
) -> Path:
    from ._stages import STAGES

    fingerprint = config.fingerprint()
    # under the lock: keep only the stages whose markers still stand (another process may
    # have restarted this run id between the check and the lock); nothing is read twice
    still = {}
    for stage, payload in loaded.items():  # in stage order: keep the prefix that stands
        if not _finished(run_dir, stage, fingerprint):
            break
        still[stage] = payload
    loaded = still
    if restart:
        kept = _keep_previous(run_dir)
        if kept is not None:
            logger.info("--restart: the earlier report and summaries are kept in %s", kept)
        for marker in (run_dir / "stages").glob("*.done.json"):
            marker.unlink()
    started = time.perf_counter()
    results, sections, done, resumed, stage_seconds = {}, {}, [], [], {}
    context = {"load_seconds": load_seconds}  # the first load happens in the preflight
    if len(loaded) < len(STAGES):  # a complete run reloaded changes no status on the way
        _status(run_dir, config, "running", done)
    try:
        for stage, fn in tqdm(STAGES, desc="msma run", unit="stage"):
            if stage in loaded:
                results[stage], sections[stage], context, typed = loaded[stage]
                if typed is not None:  # rendered again: the report follows the renderers
                    sections[stage] = _render(stage, config, typed)
                config.n_texts = len(context.get("texts", ()))
                resumed.append(stage)
                stage_seconds[stage] = _stage_seconds(run_dir, stage)
                logger.info("Stage %s: finished earlier, loaded", stage)
            else:
                logger.info("Stage %s", stage)
                t0 = time.perf_counter()
                results[stage], output = fn(config, run_dir, context)
                sections[stage] = _render(stage, config, output)
                stage_seconds[stage] = round(time.perf_counter() - t0, 1)
                typed = None if isinstance(output, str) else output
                _save_stage(
                    run_dir,
                    stage,
                    fingerprint,
                    (results[stage], sections[stage], context, typed),
                    stage_seconds[stage],
                )
            done.append(stage)
            if len(loaded) < len(STAGES):
                _status(run_dir, config, "running", done)
    except BaseException as exc:
        interrupted = isinstance(exc, KeyboardInterrupt | _Terminated)
        _status(
            run_dir,
            config,
            "interrupted" if interrupted else "failed",
            done,
            error=f"{type(exc).__name__}: {exc}",
        )
        raise
    _write_outputs(
        run_dir,
        config,
        results,
        sections,
        time.perf_counter() - started,
        resumed,
        stage_seconds,
    )
    _status(run_dir, config, "complete", done, resumed=resumed)
    return run_dir


def _timing_phrase(meta) -> str:
    """This invocation's wall time and each stage's, loaded stages' from the run that
    computed them (so a resumed run still says what the study cost)."""
    stages = meta.get("stage_seconds", {})
    parts = [
        f"{stage} {'?' if s is None else f'{s:,.0f}'} s"
        + (" (earlier run)" if stage in meta["resumed_stages"] else "")
        for stage, s in stages.items()
    ]
    return f"{meta['seconds']} s" + (f"; stages: {', '.join(parts)}" if parts else "")


def _write_outputs(
    run_dir, config, results, sections, seconds, resumed, stage_seconds=None
) -> None:
    import yaml

    from ..report import write_csvs, write_report

    meta = {
        "config": config.as_yaml_dict(),
        "fingerprint": config.fingerprint(),
        "python": platform.python_version(),
        "seconds": round(seconds, 1),
        "resumed_stages": resumed,
        "stage_seconds": dict(stage_seconds or {}),
    }
    atomic_write_text(
        run_dir / "config.yaml", yaml.safe_dump(config.as_yaml_dict(), sort_keys=False)
    )
    atomic_write_text(run_dir / "config.json", json.dumps(meta, indent=2))
    atomic_write_text(run_dir / "summary.json", json.dumps(results, indent=2))
    write_csvs(run_dir, results)
    for stage, name in TABLE_FILES.items():
        atomic_write_text(run_dir / name, sections[stage])
    from ._stages import corpus_description

    source = corpus_description(config)
    resumed_s = f" (stages {', '.join(resumed)} loaded from an earlier run)" if resumed else ""
    header = (
        f"# msma run `{config.run_id}`\n\n{config.n_texts} texts from {source}"
        f"{' (quick subset)' if config.quick else ''}, pooling `{config.pooling}`, "
        f"max_length {config.max_length}, seed {config.random_state}; "
        f"{_timing_phrase(meta)}{resumed_s}. Settings: `config.yaml`.\n"
    )
    from ..report import summary_section

    markdown = "\n".join([header, summary_section(results), *sections.values()])
    atomic_write_text(run_dir / "summary.md", markdown)
    write_report(run_dir, markdown, title=f"msma run {config.run_id}")
    atomic_write_text(run_dir / "reproduction.md", _reproduction(config, meta, sections))


#: where ``make reproduce`` copies the run's phase cards, relative to docs/
REPRODUCTION_FIGURES = "figures/reproduction"


def _reproduction(config, meta, sections) -> str:
    """The layer probes and the original project's three tables as this run measured them
    (docs/reproduction.md)."""
    import re

    from .. import __version__
    from ._stages import corpus_description

    body = "\n".join(sections[stage] for stage in ("extract", *TABLE_FILES))
    # figures are in the report; the phase cards are also copied next to the docs
    # (make reproduce: docs/figures/reproduction/), so their links are kept there
    body = re.sub(
        r"^!\[([^\]]*)\]\((phase_card_[^)/]*\.png)\)$",
        rf"![\1]({REPRODUCTION_FIGURES}/\2)",
        body,
        flags=re.MULTILINE,
    )
    body = re.sub(
        rf"^!\[[^\]]*\]\((?!{re.escape(REPRODUCTION_FIGURES)}/)[^)]*\)\n?",
        "",
        body,
        flags=re.MULTILINE,
    )
    return (
        "# Reproduction: the layer probes and the original three tables, re-measured\n\n"
        f"Generated by `msma run` (msma_sklearn {__version__}, run `{config.run_id}`, "
        f"{_dt.datetime.now():%Y-%m-%d}, {_timing_phrase(meta)} on this machine"
        + (
            f" with stages {', '.join(meta['resumed_stages'])} loaded from an earlier run"
            if meta["resumed_stages"]
            else ""
        )
        + ", settings "
        f"fingerprint `{meta['fingerprint'][:12]}`); regenerate with `make reproduce`, which "
        "runs the default study and copies this file here, and the phase cards to "
        f"docs/{REPRODUCTION_FIGURES}/. Not edited by hand. The other figures are in the "
        "run's `report.html`. Models: "
        + ", ".join(
            f"`{m}`" + (f" ({OFFLINE_MODELS[m]})" if m in OFFLINE_MODELS else "")
            for m in config.models
        )
        + f"; texts: {config.n_texts} from "
        + corpus_description(config)
        + ".\n\n"
        + body
    )

"""One process per run id, and a run that records how it ended (issue #17, item 2)."""

import json
import os
import signal
import subprocess
import sys
import textwrap

import pytest

from msma_sklearn.cli._run import RunLockedError, run_lock

HOLDER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from msma_sklearn.cli._run import run_lock, _signals_raise, _status
    from msma_sklearn.cli._config import load_config

    run_dir = Path(sys.argv[1])
    config = load_config(**{"output.run_id": run_dir.name})
    with run_lock(run_dir), _signals_raise():
        try:
            _status(run_dir, config, "running", [])
            print("ready", flush=True)
            time.sleep(60)
        except BaseException as exc:
            _status(run_dir, config, "interrupted", [], error=type(exc).__name__)
            raise
    """
)


def _start_holder(run_dir):
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(run_dir)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    assert proc.stdout.readline().strip() == "ready"
    return proc


def test_a_second_process_is_refused_then_a_stale_lock_is_taken_over(tmp_path):
    run_dir = tmp_path / "run1"
    run_dir.mkdir()
    holder = _start_holder(run_dir)
    try:
        lock = json.loads((run_dir / "run.lock").read_text())
        assert lock["pid"] == holder.pid and lock["host"]
        with pytest.raises(RunLockedError, match=rf"in use by pid {holder.pid} on "):
            with run_lock(run_dir):
                pass
    finally:
        holder.kill()  # SIGKILL: no cleanup, the lock stays behind
        holder.wait()
    assert (run_dir / "run.lock").exists()
    with pytest.warns(UserWarning, match=f"stale lock of pid {holder.pid}"):
        with run_lock(run_dir):
            assert json.loads((run_dir / "run.lock").read_text())["pid"] == os.getpid()
    assert not (run_dir / "run.lock").exists()  # released


def test_sigterm_leaves_status_interrupted_and_releases_the_lock(tmp_path):
    run_dir = tmp_path / "run2"
    run_dir.mkdir()
    holder = _start_holder(run_dir)
    assert json.loads((run_dir / "status.json").read_text())["state"] == "running"
    holder.send_signal(signal.SIGTERM)
    holder.wait(timeout=30)
    status = json.loads((run_dir / "status.json").read_text())
    assert status["state"] == "interrupted" and status["error"] == "_Terminated"
    assert not (run_dir / "run.lock").exists()
    with run_lock(run_dir):  # free again, without a warning
        pass


def test_a_lock_from_another_host_is_respected(tmp_path):
    (tmp_path / "run.lock").write_text(
        json.dumps({"pid": 1, "host": "elsewhere.example", "started": "2026-01-01T00:00:00"})
    )
    with pytest.raises(RunLockedError, match="pid 1 on elsewhere.example .*delete"):
        with run_lock(tmp_path):
            pass
    assert (tmp_path / "run.lock").exists()

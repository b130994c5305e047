"""A rerun never loses a finished run: refused or failed reruns leave the report, the
summaries and the status as they were; unreadable checkpoints name the file and
--restart; run ids stay inside --out-dir."""

import json

import pytest

from msma_sklearn.cli import _run, _stages, main
from msma_sklearn.cli._config import ConfigError, load_config
from msma_sklearn.cli._run import CheckpointError, run_study

CALLS: list = []


def _stage(name, fail=False):
    """A cheap stage; its context flows into the next, as in the real study."""

    def fn(config, run_dir, context):
        CALLS.append(name)
        if fail:
            raise RuntimeError(f"stage {name} broke")
        context.update(texts=["a", "b", "c"])
        return {}, f"## {name}\n"

    return fn


@pytest.fixture
def fake_study(monkeypatch):
    """Four cheap stages in place of the study's, and a preflight that loads nothing."""
    CALLS.clear()
    stages = [(n, _stage(n)) for n in ("extract", "segment", "align", "intervene")]
    monkeypatch.setattr(_stages, "STAGES", stages)
    monkeypatch.setattr(_run, "_preflight", lambda config: {})
    return stages


def _config(tmp_path, run_id="r", **overrides):
    return load_config(**{"output.dir": str(tmp_path), "output.run_id": run_id, **overrides})


def _snapshot(run_dir):
    return {
        p.name: p.read_bytes() for p in run_dir.iterdir() if p.is_file() and p.name != "run.lock"
    }


def test_a_complete_rerun_with_other_settings_is_refused_and_changes_nothing(tmp_path, fake_study):
    run_dir = run_study(_config(tmp_path))
    assert json.loads((run_dir / "status.json").read_text())["state"] == "complete"
    before = _snapshot(run_dir)
    assert {"report.html", "summary.md", "summary.json", "status.json"} <= set(before)
    CALLS.clear()
    with pytest.raises(ConfigError, match=r"different settings.*Nothing in that folder"):
        run_study(_config(tmp_path, seed=1))
    assert CALLS == [] and _snapshot(run_dir) == before  # report, summary, status intact


def test_a_complete_rerun_with_the_same_settings_loads_every_stage(tmp_path, fake_study):
    run_dir = run_study(_config(tmp_path))
    CALLS.clear()
    run_study(_config(tmp_path))
    status = json.loads((run_dir / "status.json").read_text())
    assert CALLS == [] and status["state"] == "complete"
    assert status["resumed"] == ["extract", "segment", "align", "intervene"]


def test_a_truncated_checkpoint_names_the_file_and_restart(tmp_path, fake_study):
    run_dir = run_study(_config(tmp_path))
    ckpt = run_dir / "stages" / "segment.joblib"
    ckpt.write_bytes(ckpt.read_bytes()[: len(ckpt.read_bytes()) // 2])
    before = _snapshot(run_dir)
    with pytest.raises(CheckpointError, match=r"segment.joblib.*cannot be read.*--restart"):
        run_study(_config(tmp_path))
    assert _snapshot(run_dir) == before
    # through the command: exit 2 and the same message, not a traceback
    code = main(["run", "--out-dir", str(tmp_path), "--run-id", "r"])
    assert code == 2 and _snapshot(run_dir) == before


def test_restart_keeps_the_earlier_report_under_previous(tmp_path, fake_study):
    run_dir = run_study(_config(tmp_path))
    report = (run_dir / "report.html").read_bytes()
    (run_dir / "figure.png").write_bytes(b"a figure the earlier run drew")
    CALLS.clear()
    run_study(_config(tmp_path), restart=True)
    assert CALLS == ["extract", "segment", "align", "intervene"]
    assert (run_dir / "previous" / "report.html").read_bytes() == report
    assert (run_dir / "previous" / "figure.png").is_file()  # every earlier file kept
    assert json.loads((run_dir / "status.json").read_text())["state"] == "complete"


def test_a_failed_resume_leaves_the_finished_stages(tmp_path, fake_study, monkeypatch):
    stages = list(fake_study)
    stages[2] = ("align", _stage("align", fail=True))
    monkeypatch.setattr(_stages, "STAGES", stages)
    with pytest.raises(RuntimeError, match="stage align broke"):
        run_study(_config(tmp_path))
    run_dir = tmp_path / "r"
    status = json.loads((run_dir / "status.json").read_text())
    assert status["state"] == "failed" and status["stages_done"] == ["extract", "segment"]
    monkeypatch.setattr(_stages, "STAGES", fake_study)
    CALLS.clear()
    run_study(_config(tmp_path))
    assert CALLS == ["align", "intervene"]  # the finished stages were loaded


@pytest.mark.parametrize("run_id", ["../x", "a/b", "..", ".hidden", "a\\b", "x" * 200, "/abs"])
def test_run_ids_that_leave_the_output_folder_are_refused(tmp_path, run_id, capsys):
    with pytest.raises(ConfigError, match=r"'output.run_id' must be one folder name"):
        _config(tmp_path / "out", run_id=run_id)
    code = main(["run", "--out-dir", str(tmp_path / "out"), "--run-id", run_id])
    assert code == 2 and "one folder name" in capsys.readouterr().err
    assert not (tmp_path / "x").exists() and not (tmp_path / "out").exists()


def test_an_out_dir_that_is_a_file_is_refused_before_any_work(tmp_path, fake_study):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(OSError, match="is a file, not a directory"):
        run_study(_config(blocker))
    assert CALLS == []

"""The msma command line."""

import json
import subprocess
import sys

import numpy as np
import pytest

from msma_sklearn import HiddenStateExtractor
from msma_sklearn.cli import main


def test_extract_writes_npz_equal_to_estimator(tmp_path, texts, capsys):
    src = tmp_path / "texts.txt"
    src.write_text("\n".join(texts) + "\n")
    out = tmp_path / "out.npz"
    code = main(
        [
            "extract",
            "--model",
            "tiny-gpt2",
            "--texts",
            str(src),
            "--out",
            str(out),
            "--layers",
            "0,2",
        ]
    )
    assert code == 0
    assert "Wrote" in capsys.readouterr().out
    with np.load(out) as data:
        X = data["X"]
        assert data["layers"].tolist() == [0, 2]
        assert str(data["feature_names"][0]) == "layer0__0"
    ref = HiddenStateExtractor("tiny-gpt2", layers=[0, 2]).fit(texts).transform(texts)
    np.testing.assert_array_equal(X, ref)


@pytest.mark.parametrize(
    "setup,match",
    [
        ("missing", "not found"),
        ("empty", "is empty"),
        ("badmodel", "Unknown offline model 'tiny-nope'"),
        ("badout", "must name a .npz"),
    ],
)
def test_extract_errors_exit_nonzero(tmp_path, capsys, setup, match):
    src = tmp_path / "t.txt"
    src.write_text("" if setup == "empty" else "a text\n")
    args = [
        "extract",
        "--model",
        "tiny-nope" if setup == "badmodel" else "tiny-gpt2",
        "--texts",
        str(tmp_path / "nope.txt") if setup == "missing" else str(src),
        "--out",
        str(tmp_path / ("o.csv" if setup == "badout" else "o.npz")),
    ]
    assert main(args) == 2
    assert match in capsys.readouterr().err
    assert not (tmp_path / "o.npz").exists()


def test_bad_layers_argument(capsys):
    with pytest.raises(SystemExit):
        main(["extract", "--texts", "x.txt", "--out", "x.npz", "--layers", "a,b"])
    assert "comma-separated integers" in capsys.readouterr().err


def test_run_quick_on_tiny_models(tmp_path):
    code = main(
        [
            "run",
            "--quick",
            "--models",
            "tiny-gpt2,tiny-bert",
            "--out-dir",
            str(tmp_path),
            "--run-id",
            "t",
        ]
    )
    assert code == 0
    run_dir = tmp_path / "t"
    summary = json.loads((run_dir / "summary.json").read_text())["extract"]
    assert set(summary) == {"tiny-gpt2", "tiny-bert"}
    for r in summary.values():
        assert r["n_texts"] == 64
        for accs in r["probe_accuracy"].values():
            assert len(accs) == r["n_layers"] + 1
            assert all(0.0 <= a <= 1.0 for a in accs)
    md = (run_dir / "summary.md").read_text()
    assert "| tiny-gpt2 | gpt2 | 4 | 64 | 64 |" in md
    config = json.loads((run_dir / "config.json").read_text())
    assert config["config"]["quick"] is True
    with np.load(run_dir / "hidden_states_tiny-bert.npz") as data:
        assert data["X"].shape == (64, 5 * 64)
    assert not list(run_dir.glob(".*tmp"))
    # the segmentation stage: every model, every method, a heatmap each
    segment = json.loads((run_dir / "summary.json").read_text())["segment"]
    assert set(segment) == {"tiny-gpt2", "tiny-bert", "tiny-roberta", "tiny-t5"}
    gpt2 = segment["tiny-gpt2"]
    assert set(gpt2["methods"]) == {
        "cka",
        "mi",
        "attention_span",
        "preset: readme",
        "preset: uniform",
        "preset: msma_code",
    }
    readme = gpt2["methods"]["preset: readme"]["scale_layers"]
    assert readme == {"local": [0], "intermediate": [1, 2], "global": [3, 4]}
    vs = gpt2["vs_readme"]
    assert "preset: readme" not in vs and set(vs) >= {"cka", "mi", "preset: uniform"}
    for c in vs.values():
        assert 0 <= c["p_ari"] <= 1 and -1 <= c["ari"] <= 1 and c["n_random"] == 6  # C(4, 2)
    assert gpt2["random_weights_model"] and "(random weights: a test model" in md
    assert gpt2["scale_count"]["this model"]["best_k"] >= 1
    assert len(gpt2["attention_spans"]) == 4 and len(gpt2["adjacent_mi"]) == 4
    for name in segment:
        png = run_dir / f"layer_similarity_{name}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "| GPT-2 (README) | 0-2 (25%) | 3-8 (50%) | 9-12 (25%) |" in md
    assert "| tiny-gpt2 · preset: readme | 0 (20%) | 1-2 (40%) | 3-4 (40%) |" in md
    # the alignment stage: the README's four MSMA rows beside the six baselines, the three
    # claims in both forms, the search
    align = json.loads((run_dir / "summary.json").read_text())["align"]
    assert set(align) == {"tiny-gpt2", "tiny-bert"}
    for r in align.values():
        assert list(r["table"]) == [
            "no map",
            "mean and scale",
            "procrustes",
            "least squares",
            "ridge",
            "cca",
            "Full MSMA",
            "No Geometry",
            "No Information",
            "No Curvature",
        ]
        assert [c["claim"][:9] for c in r["claims"]] == [
            "Full MSMA",
            "Full MSMA",
            "No curvat",
            "No geomet",
        ]
        assert {c["verdict"] for c in r["claims"]} <= {"supported", "contradicted", "inconclusive"}
        assert len(r["grid_search"]) == 2 and r["n_splits"] == 2
        assert len(r["scale_layers"]) == 2  # the scales refitted on every split
        assert r["pairs"] == ["global->intermediate", "intermediate->local"]  # f_GI, f_IL
    assert (run_dir / "ablation_tiny-gpt2.csv").stat().st_size > 0
    assert "## Alignment ablation" in md and "The original README's claims on this model" in md
    assert "2 random splits of the 64 texts" in md
    # the intervention experiment needs SmolLM2, which this run left out: said, not hidden
    intervene = json.loads((run_dir / "summary.json").read_text())["intervene"]
    assert "none of the defaults (smollm2-135m, gemma3-270m)" in intervene["skipped"]
    assert "## Interventions" in md and "Skipped" in md


def test_run_unwritable_output(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    assert main(["run", "--quick", "--models", "tiny-gpt2", "--out-dir", str(blocker)]) == 2
    assert "is a file, not a directory" in capsys.readouterr().err


@pytest.mark.slow
def test_run_quick_default_models(tmp_path):
    """`msma run --quick` with the two real models, as a user runs it."""
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "msma_sklearn",
            "run",
            "--quick",
            "--out-dir",
            str(tmp_path),
            "--run-id",
            "q",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    full = json.loads((tmp_path / "q" / "summary.json").read_text())
    summary = full["extract"]
    assert summary["minilm"]["n_layers"] == 6 and summary["smollm2-135m"]["n_layers"] == 30
    intervene = full["intervene"]
    assert set(intervene["models"]) == {"smollm2-135m"}
    smol = intervene["models"]["smollm2-135m"]
    assert len(smol["claims"]) == 5 and len(smol["prompts"]) == 8
    assert len(smol["calibration_prompts"]) == 4
    assert not set(smol["prompts"]) & set(smol["calibration_prompts"])
    assert all(len(p.split()) == 24 for p in smol["prompts"])  # natural prompts of 24 words
    # every scale x operator of the quick profile calibrated; its dose is stated as strength,
    # layers and KL
    assert len(smol["conditions"]) == 3 * 1  # amplify only
    assert all("next-token KL" in c["dose"] for c in smol["conditions"])
    # 8 prompts are fewer than the 20 defined prompt pairs a verdict needs: no claim can be
    # supported or contradicted, and no effect is reported
    for claim in smol["claims"]:
        assert claim["verdict"] == "inconclusive" and claim["n_prompts"] == 8
        assert claim["measured_percent"] is None and "fewer than 20" in claim["reason"]
    # the exploratory grid is per prompt too: no effect below 20 defined prompt pairs
    assert all(r["n_prompts"] == 8 and r["percent_change"] is None for r in intervene["effects"])
    assert {r["kind"] for r in intervene["effects"]} == {"scaling"}
    for name in ("interventions", "intervention_fluency", "intervention_calibration"):
        assert (tmp_path / "q" / f"{name}.csv").exists()
    for png in ("intervention_forest_smollm2-135m.png", "dose_response_smollm2-135m.png"):
        assert (tmp_path / "q" / png).read_bytes()[:4] == b"\x89PNG"


def test_import_is_cheap():
    code = "import sys, msma_sklearn; print('torch' in sys.modules, msma_sklearn.__version__)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split()[0] == "False"

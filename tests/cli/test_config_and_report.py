"""`msma run --config`: validation, init-config, outputs, report, resume, bad input."""

import json
import re

import pytest
import yaml

from msma_sklearn.cli import main
from msma_sklearn.cli._config import FIELDS, ConfigError, default_config_text, load_config
from msma_sklearn.datasets import load_corpus


def test_defaults_and_the_quick_profile():
    full = load_config()
    assert full.models == ["minilm", "smollm2-135m", "gemma3-270m"] and full.n_bootstrap == 20
    assert full.intervention_models == ["smollm2-135m", "gemma3-270m"]
    quick = load_config(quick=True)
    assert quick.n_bootstrap == 5 and quick.n_prompts == 8 and quick.n_samples == 1
    assert quick.models == ["minilm", "smollm2-135m"] and quick.intervention_models == [
        "smollm2-135m"
    ]
    # steered models left out follow the run's models; named ones must be among them
    assert load_config(models=["tiny-gpt2"]).intervention_models == []
    with pytest.raises(ConfigError, match=r"'interventions.models' \['gemma3-270m'\] must be"):
        load_config(models=["smollm2-135m"], **{"interventions.models": ["gemma3-270m"]})
    # the dose-response: on SmolLM2 by default, only where that model is steered
    assert full.dose_response_models == ["smollm2-135m"]
    gemma_only = {"interventions.models": ["gemma3-270m"]}
    assert load_config(**gemma_only).dose_response_models == []
    with pytest.raises(ConfigError, match=r"'interventions.dose_response_models' \['minilm'\]"):
        load_config(**{"interventions.dose_response_models": ["minilm"]})
    from msma_sklearn.cli._stages import intervention_design

    assert intervention_design(full, "smollm2-135m").dose_response_kinds == ("scaling",)
    assert intervention_design(full, "gemma3-270m").dose_response_kinds == ()
    # the models without the dose-response get their own sample count (one by default)
    assert intervention_design(full, "smollm2-135m").n_samples == 2
    assert intervention_design(full, "gemma3-270m").n_samples == 1
    more = load_config(**{"interventions.samples_without_dose_response": 3})
    assert intervention_design(more, "gemma3-270m").n_samples == 3
    with pytest.raises(ConfigError, match="'interventions.primary_kl' .0.5. must be one of"):
        load_config(**{"interventions.primary_kl": 0.5})
    assert full.fingerprint() != quick.fingerprint()
    # where results go does not change the fingerprint (so a moved run still resumes)
    assert load_config(**{"output.dir": "elsewhere"}).fingerprint() == full.fingerprint()


def test_fingerprint_names_the_package_version(monkeypatch):
    import msma_sklearn

    before = load_config().fingerprint()
    monkeypatch.setattr(msma_sklearn, "__version__", "0.0.0-other")
    assert load_config().fingerprint() != before  # checkpoints of other code are not resumed


def test_init_config_round_trips_to_the_defaults(tmp_path, capsys):
    path = tmp_path / "msma.yaml"
    assert main(["init-config", str(path)]) == 0
    text = path.read_text()
    assert text == default_config_text()
    assert text.count("\n# ") + text.count("\n  # ") >= len(FIELDS)  # a comment per setting
    assert load_config(path) == load_config()
    assert main(["init-config", str(path)]) == 2  # no silent overwrite
    assert "--force" in capsys.readouterr().err
    assert main(["init-config", str(path), "--force"]) == 0


@pytest.mark.parametrize(
    "content,match",
    [
        ("modles: [minilm]\n", r"unknown key 'modles' \(valid keys: models, tiny_models"),
        ("extraction:\n  pooling: median\n", r"'extraction.pooling' must be one of \['mean'"),
        ("alignment:\n  lambda_geo: [-1]\n", r"non-empty list of finite numbers >= 0"),
        ("interventions:\n  kinds: [teleport]\n", r"drawn from \['translation', 'amplify'"),
        ("segmentation: cka\n", "must be a section"),
        ("seed: yes\n", r"'seed' must be an integer >= 0, got True"),
        ("- a\n- b\n", "must hold a mapping"),
        ("models: [\n", "not valid YAML"),
    ],
)
def test_bad_config_is_rejected_before_any_work(tmp_path, capsys, content, match):
    path = tmp_path / "c.yaml"
    path.write_text(content)
    with pytest.raises(ConfigError, match=match):
        load_config(path)
    out = tmp_path / "out"
    assert main(["run", "--config", str(path), "--out-dir", str(out)]) == 2
    assert "error" in capsys.readouterr().err
    assert not out.exists()  # nothing started


def test_every_problem_is_listed_at_once(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("quick: 1\nprobes:\n  cv_folds: 1\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert "'quick' must be true or false" in str(info.value)
    assert "'probes.cv_folds' must be an integer >= 2" in str(info.value)


def _small_config(tmp_path, **extra):
    corpus = load_corpus()
    # 32 texts, every topic, both negation classes (a one-class label is not probed)
    idx = [i + 4 * ((i // 8) % 2) for i in range(0, 256, 8)]
    rows = ["text,topic,negation"] + [
        f'"{corpus.texts[i]}",{corpus.targets["global"][i]},{corpus.targets["local"][i]}'
        for i in idx
    ]
    texts = tmp_path / "texts.csv"
    texts.write_text("\n".join(rows) + "\n")
    config = {
        "models": ["tiny-gpt2"],
        "tiny_models": [],
        "texts": str(texts),
        "label_columns": {"global": "topic", "local": "negation"},
        "output": {"dir": str(tmp_path / "results"), "run_id": "r"},
        "probes": {"cv_folds": 2},
        "segmentation": {"n_bootstrap": 0},
        "alignment": {
            "n_splits": 2,
            "full_ablation": False,
            "lambda_geo": [0.1, 1.0],
            "lambda_info": [0.1],
            "lambda_curv": [0.0],
            "cv_folds": 2,
        },
        "interventions": {
            "models": ["tiny-gpt2"],
            "kinds": ["amplify"],
            "target_kl": [0.001],
            "primary_kl": 0.001,
            "dose_response": [],
            "window": 1,
            "n_prompts": 3,
            "n_calibration": 2,
            "samples": 1,
            "max_new_tokens": 4,
        },
        **extra,
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path, tmp_path / "results" / "r"


def test_run_from_config_writes_every_output_and_resumes(tmp_path, monkeypatch):
    from msma_sklearn.cli import _stages

    path, run_dir = _small_config(tmp_path)
    # interrupted in the alignment stage: finished stages are kept, nothing looks complete
    original = dict(_stages.STAGES)

    def crash(*args, **kwargs):
        raise RuntimeError("killed mid-alignment")

    monkeypatch.setattr(
        _stages, "STAGES", [(k, crash if k == "align" else f) for k, f in original.items()]
    )
    with pytest.raises(RuntimeError, match="killed mid-alignment"):
        from msma_sklearn.cli._run import run_study

        run_study(load_config(path))
    status = json.loads((run_dir / "status.json").read_text())
    assert status["state"] == "failed" and status["stages_done"] == ["extract", "segment"]
    assert "killed mid-alignment" in status["error"]
    for final in ("report.html", "summary.md", "summary.json"):
        assert not (run_dir / final).exists()
    assert not list(run_dir.rglob("*.tmp"))

    # resumed: the two finished stages are loaded, not recomputed
    calls = []

    def counting(stage, fn):
        def wrapped(*args):
            calls.append(stage)
            return fn(*args)

        return wrapped

    monkeypatch.setattr(_stages, "STAGES", [(k, counting(k, f)) for k, f in original.items()])
    assert main(["run", "--config", str(path)]) == 0
    assert calls == ["align", "intervene"]
    status = json.loads((run_dir / "status.json").read_text())
    assert status["state"] == "complete" and status["resumed"] == ["extract", "segment"]
    page = (run_dir / "reproduction.md").read_text()
    assert "with stages extract, segment loaded from an earlier run" in page
    # each stage's wall time, the loaded ones' from the run that computed them
    meta = json.loads((run_dir / "config.json").read_text())
    assert list(meta["stage_seconds"]) == ["extract", "segment", "align", "intervene"]
    assert all(s is not None and s >= 0 for s in meta["stage_seconds"].values())
    extract_s = json.loads((run_dir / "stages" / "extract.done.json").read_text())["seconds"]
    assert meta["stage_seconds"]["extract"] == extract_s
    assert f"extract {extract_s:,.0f} s (earlier run)" in page
    assert "## Linear-probe accuracy per hidden state" in page  # the probes, with intervals
    # one figure kept, the phase card, linked where `make reproduce` copies it
    assert re.findall(r"!\[[^\]]*\]\(([^)]*)\)", page) == [
        "figures/reproduction/phase_card_tiny-gpt2.png"
    ]

    # every output the issue lists
    resolved = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert resolved["alignment"]["lambda_geo"] == [0.1, 1.0] and resolved["texts"].endswith(".csv")
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["extract"]["tiny-gpt2"]["n_texts"] == 32
    assert set(summary["extract"]["tiny-gpt2"]["probe_accuracy"]) == {"global", "local"}
    for csv in (
        "probes",
        "segmentation",
        "alignment_ablation",
        "lambda_search",
        "interventions",
        "intervention_fluency",
        "intervention_calibration",
    ):
        assert len((run_dir / f"{csv}.csv").read_text().splitlines()) > 1, csv
    tables = {
        "layer_distribution.md": "## Layer distribution",
        "alignment_ablation.md": "## Alignment ablation",
        "intervention_effects.md": "| scale | operator | hidden states | target KL |",
    }
    for name, heading in tables.items():
        assert heading in (run_dir / name).read_text()
    # a random-weight test model gets no verdict against the README preset
    layers_md = (run_dir / "layer_distribution.md").read_text()
    assert "No verdict against the README preset on tiny-gpt2" in layers_md
    assert "The CKA segmentation" not in layers_md
    pngs = [
        "layer_similarity_tiny-gpt2.png",
        "scale_count_tiny-gpt2.png",
        "phase_card_tiny-gpt2.png",
        "scale_projection_tiny-gpt2.png",
        "ablation_tiny-gpt2.png",
        "lambda_search_tiny-gpt2.png",
        "dose_response_tiny-gpt2.png",
        "intervention_forest_tiny-gpt2.png",
    ]
    for png in pngs:
        assert (run_dir / png).read_bytes()[:4] == b"\x89PNG", png
    report = (run_dir / "report.html").read_text()
    # every figure embedded, and the summary opens with the first model's layer similarity
    assert report.count('src="data:image/png;base64,') == len(pngs) + 1
    assert report.index('alt="layer similarity"') < report.index('id="extraction"')
    assert "<table>" in report and "msma run r" in report

    # a second re-run recomputes nothing, but renders every section again from the typed
    # results in the checkpoints (the report follows the renderers); a changed setting is
    # refused, --restart redoes it
    calls.clear()
    section = (run_dir / "alignment_ablation.md").read_text()
    monkeypatch.setitem(
        _stages.RENDERERS, "align", lambda config, studies: f"## Re-rendered {list(studies)}\n"
    )
    assert main(["run", "--config", str(path)]) == 0
    assert calls == []
    assert (run_dir / "alignment_ablation.md").read_text() == "## Re-rendered ['tiny-gpt2']\n"
    assert "## Re-rendered ['tiny-gpt2']" in (run_dir / "summary.md").read_text()
    monkeypatch.undo()
    assert main(["run", "--config", str(path)]) == 0
    assert (run_dir / "alignment_ablation.md").read_text() == section
    changed = yaml.safe_load(path.read_text())
    changed["seed"] = 1
    path.write_text(yaml.safe_dump(changed))
    before = (run_dir / "report.html").read_bytes(), (run_dir / "status.json").read_bytes()
    assert main(["run", "--config", str(path)]) == 2
    # refused before any write: the finished run's report and status stand as they were
    after = (run_dir / "report.html").read_bytes(), (run_dir / "status.json").read_bytes()
    assert after == before


@pytest.mark.parametrize(
    "flags,match",
    [
        (["--texts", "missing.txt"], "missing.txt"),
        (["--texts", "EMPTY"], "empty"),
        (["--models", "no-such-org/no-such-model"], "cannot be loaded"),
    ],
)
def test_bad_inputs_exit_nonzero_before_writing(tmp_path, capsys, flags, match):
    empty = tmp_path / "empty.txt"
    empty.write_text("\n")
    flags = [str(empty) if f == "EMPTY" else f for f in flags]
    out = tmp_path / "out"
    code = main(["run", "--quick", "--models", "tiny-gpt2", "--out-dir", str(out), *flags])
    assert code == 2
    assert match in capsys.readouterr().err
    assert not out.exists()


def test_a_local_checkpoint_runs_with_safe_names_every_figure_embedded_and_its_family(tmp_path):
    """A checkpoint path as model: figures used to land in nested folders, the report embedded
    1 of 5, and segmentation.method 'readme' died with KeyError 'preset: readme'."""

    from msma_sklearn.extraction import load_model
    from msma_sklearn.report import file_stem

    model, tok = load_model("tiny-gpt2")
    checkpoint = tmp_path / "ckpts" / "my model"
    model.save_pretrained(checkpoint)
    tok.save_pretrained(checkpoint)
    spec = str(checkpoint)
    path, run_dir = _small_config(
        tmp_path,
        models=[spec],
        segmentation={"n_bootstrap": 0, "method": "readme"},
    )
    config = yaml.safe_load(path.read_text())
    config["interventions"]["models"] = [spec]
    path.write_text(yaml.safe_dump(config))
    assert main(["run", "--config", str(path)]) == 0
    stem = file_stem(spec)
    assert re.fullmatch(r"my-model-[0-9a-f]{8}", stem)
    pngs = sorted(p.name for p in run_dir.glob("*.png"))
    assert pngs and all(stem in p for p in pngs)
    assert not [p for p in run_dir.rglob("*.png") if p.parent != run_dir]  # no nested folders
    report = (run_dir / "report.html").read_text()
    # every figure embedded, and the summary opens with the first model's layer similarity
    assert report.count('src="data:image/png;base64,') == len(pngs) + 1
    assert report.index('alt="layer similarity"') < report.index('id="extraction"')
    assert not re.search(r'<img [^>]*src="(?!data:)', report)  # no link to a missing file
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["segment"][spec]["family"] == "gpt2"  # from the checkpoint's config
    # the load happens in the preflight: its time is reported, not the cache hit's 0.0
    assert summary["extract"][spec]["load_seconds"] > 0


def test_readme_preset_on_a_model_without_a_row_is_refused_up_front(monkeypatch):
    from msma_sklearn.cli import _stages
    from msma_sklearn.cli._run import _preflight

    config = load_config(models=["tiny-gpt2"], **{"segmentation.method": "readme"})
    assert _preflight(config)["tiny-gpt2"] >= 0  # GPT-2 has its row
    monkeypatch.setattr(_stages, "model_family", lambda name, model=None: None)
    with pytest.raises(ValueError, match=r"'readme' uses the original README's rows .*'cka'"):
        _preflight(config)


def test_model_family_from_the_config():
    from transformers import BartConfig, BartForConditionalGeneration, BertConfig, BertModel

    from msma_sklearn.cli._stages import model_family
    from msma_sklearn.extraction import load_model

    assert model_family("smollm2-135m") == "gpt2"  # the table
    assert model_family("/ckpt/x", load_model("tiny-t5")[0]) == "t5"
    assert model_family("/ckpt/x", load_model("tiny-roberta")[0]) == "roberta"
    small = dict(d_model=16, encoder_layers=1, decoder_layers=1, vocab_size=50)
    bart = BartForConditionalGeneration(
        BartConfig(encoder_attention_heads=2, decoder_attention_heads=2, **small)
    )
    assert model_family("/ckpt/bart", bart) is None  # encoder-decoder without a row
    bert = BertModel(BertConfig(hidden_size=16, num_hidden_layers=1, num_attention_heads=2))
    assert model_family("/ckpt/bert", bert) == "bert"
    assert model_family("/ckpt/unknown") is None


def test_the_report_says_how_many_samples_each_steered_model_had():
    from types import SimpleNamespace

    from msma_sklearn.report import samples_phrase as _samples_phrase

    def study(n):
        return SimpleNamespace(design=SimpleNamespace(n_samples=n))

    assert _samples_phrase({"a": study(2), "b": study(2)}) == "2 time(s)"
    assert (
        _samples_phrase({"a": study(2), "b": study(1)}) == "2 time(s) on `a` and 1 time(s) on `b`"
    )

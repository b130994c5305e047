"""The preflight: every problem of a run found in one pass, before the run folder
exists, with the stage and the setting that need what is missing."""

import pytest
import yaml

from msma_sklearn import load_corpus
from msma_sklearn.cli import main
from msma_sklearn.cli._config import ConfigError, load_config
from msma_sklearn.cli._run import _preflight, run_study, text_requirements


def _texts_file(tmp_path, n):
    texts = load_corpus().texts[:n]
    path = tmp_path / f"texts{n}.txt"
    path.write_text("\n".join(texts) + "\n")
    return path


def _config(tmp_path, n, **overrides):
    return load_config(
        **{
            "models": ["tiny-gpt2"],
            "tiny_models": [],
            "texts": str(_texts_file(tmp_path, n)),
            "output.dir": str(tmp_path / "results"),
            "output.run_id": "r",
            **overrides,
        }
    )


def test_the_minimum_is_derived_from_the_stages():
    config = load_config()
    need = dict((why.split(":")[0], n) for n, why in text_requirements(config))
    # ceil(4 / 0.2) held-out for CKA; the profile: 10 held-out texts, at most half
    assert need == {"segmentation": 20, "alignment": 16}  # the last segmentation entry
    off = load_config(**{"segmentation.profile_texts": 0})
    assert dict((why.split(":")[0], n) for n, why in text_requirements(off)) == {
        "segmentation": 4,
        "alignment": 16,
    }
    steered = load_config(**{"interventions.prompts": "texts"})
    assert max(n for n, _ in text_requirements(steered)) == 32 + 32


@pytest.mark.parametrize(
    "n,quick,match",
    [
        (10, False, r"gives 10 texts; alignment: .*holds out 20%.* needs at least 16"),
        (40, True, r"gives 10 texts \(after quick: true keeps every 4th text\).*set quick: false"),
    ],
)
def test_too_few_texts_are_refused_before_the_run_folder_exists(tmp_path, n, quick, match):
    config = _config(tmp_path, n, quick=quick, models=["tiny-gpt2"])
    with pytest.raises(ConfigError, match=match):
        run_study(config)
    assert not (tmp_path / "results").exists()


def test_every_preflight_problem_is_listed_at_once(tmp_path):
    config = _config(
        tmp_path,
        10,
        models=["tiny-gpt2", "tiny-bert", "no-such-org/no-such-model"],
        **{"interventions.models": ["tiny-bert"], "extraction.max_length": 100000},
    )
    with pytest.raises(ConfigError) as info:
        _preflight(config)
    message = str(info.value)
    assert "cannot start (6 problems)" in message
    assert "needs at least 16" in message
    assert "needs at least 20" in message  # the layer profile's held-out texts
    assert "'no-such-org/no-such-model' cannot be loaded" in message
    assert message.count("'extraction.max_length' is 100000") == 2  # each model that loads
    assert "names 'tiny-bert', a bert model that does not generate text" in message


def test_every_config_problem_is_listed_at_once():
    with pytest.raises(ConfigError) as info:
        load_config(
            **{
                "alignment.lambda_geo": "big",
                "interventions.models": ["gemma3-270m", "tiny-gpt2"],
                "interventions.dose_response_models": ["minilm"],
                "interventions.primary_kl": 0.5,
                "models": ["tiny-gpt2"],
            }
        )
    message = str(info.value)
    for part in (
        "'alignment.lambda_geo' must be",
        "'interventions.models' ['gemma3-270m'] must be among 'models'",
        "'interventions.dose_response_models' ['minilm'] must be among",
        "'interventions.primary_kl' (0.5) must be one of",
    ):
        assert part in message


def test_the_derived_minimum_is_enough(tmp_path):
    """20 texts, the derived minimum, run through every stage (19 are refused)."""
    config = {
        "models": ["tiny-gpt2"],
        "tiny_models": [],
        "texts": str(_texts_file(tmp_path, 20)),
        "output": {"dir": str(tmp_path / "results"), "run_id": "r20"},
        "segmentation": {"n_bootstrap": 2},
        "alignment": {
            "n_splits": 2,
            "full_ablation": False,
            "lambda_geo": [1.0],
            "lambda_info": [0.1],
            "lambda_curv": [0.0],
            "cv_folds": 2,
        },
    }
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(config))
    assert main(["run", "--config", str(path)]) == 0
    assert (tmp_path / "results" / "r20" / "report.html").is_file()
    config["texts"] = str(_texts_file(tmp_path, 19))
    path.write_text(yaml.safe_dump(config))
    assert main(["run", "--config", str(path)]) == 2

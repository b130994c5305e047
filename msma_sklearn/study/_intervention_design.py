"""The intervention study's design: the claims it tests, the metrics it measures and
:class:`InterventionDesign`, every setting of a run."""

from __future__ import annotations

import math
from dataclasses import dataclass

from .._registry import operator_kinds
from ..metrics.text import TextMetrics
from ..stats import minimum_detectable_effect

__all__ = ["ABSOLUTE_METRICS", "INTERVENTION_CLAIMS", "TEXT_METRICS", "InterventionDesign"]

#: The original README's GPT-2 claims: (scale, operator, metric, claimed % change, wording).
#: "amplify" is scaling with alpha > 1; each claim has one pre-registered metric.
INTERVENTION_CLAIMS = (
    ("global", "scaling", "mtld", 7.4, "+7.4% lexical diversity"),
    ("global", "scaling", "coherence", -24.0, "-24% coherence"),
    ("intermediate", "scaling", "sentence_count", 25.0, "+25% sentence count"),
    ("intermediate", "scaling", "mean_sentence_length", -19.0, "-19% mean sentence length"),
    # measured as the moving-average TTR: the plain TTR falls with length, and amplify
    # changes length
    ("local", "scaling", "mattr", 34.0, "+34% lexical variation"),
)

#: signed metrics whose mean sits near zero: reported as a difference of means, never as
#: a percent of the baseline mean (sentiment's prompt mean was 0.063)
ABSOLUTE_METRICS = ("sentiment",)

#: every text metric except the distinct-n counts (TTR and MTLD already cover diversity;
#: distinct-2 is part of the fluency check)
TEXT_METRICS = tuple(m for m in TextMetrics.ALL if m not in ("distinct_1", "distinct_2"))


@dataclass(frozen=True)
class InterventionDesign:
    """The settings of one intervention study; every number the report states comes from here.

    Parameters
    ----------
    kinds : tuple of str
        Operators, each at its calibrated strength: ``translation`` (a
        random unit direction per layer times ``norm`` x the layer's median
        token norm, sinks left out), ``scaling`` (alpha > 1: "amplify"),
        ``noise`` (Gaussian, sigma x each token's RMS), ``attention``
        (temperature > 1 on the attention logits).
    target_kl : tuple of float
        Mean next-token KL (nats) each scale x operator is calibrated to.
    primary_kl : float
        The dose of the exploratory grid and of the claims (one of ``target_kl``).
    dose_response_kinds : tuple of str
        Operators also generated at every other target dose.
    window : int
        Hidden states per scale the operators act on (the centre of the scale).
    n_prompts, n_calibration : int
        Evaluation and (disjoint) calibration prompts.
    prompt_words : int
        Words per prompt.
    n_samples : int
        Sampled continuations per prompt (nucleus ``top_p``), baseline and
        treated sharing their seeds; averaged within the prompt before any test.
    max_new_tokens : int
        Tokens generated per continuation.
    top_p : float
        Nucleus mass of sampling.
    calibration_tol : float
        Relative tolerance of the calibrated KL; a condition whose KL on the
        evaluation prompts is further than this from its target is flagged.
    calibration_tokens : int
        Positions the dose is measured over: the KL of each prompt is averaged
        over the first ``calibration_tokens`` tokens of the unmodified model's
        continuation, teacher-forced (the positions that are generated and
        scored); 0: the prompt's next token only (the earlier measure).
    calibration_max_evals : int
        Most strengths the calibration evaluates per condition.
    fluency_threshold : float
        The fluency guard's perplexity multiple.
    alpha : float
        Level of every test.
    batch_size : int
        Prompts per forward pass.
    random_state : int
        Seeds prompts, directions, noise and sampling.
    """

    kinds: tuple = ("translation", "scaling", "noise", "attention")
    target_kl: tuple = (0.1, 0.3, 1.0)
    primary_kl: float = 0.3
    dose_response_kinds: tuple = ("scaling",)
    window: int = 3
    n_prompts: int = 32
    n_calibration: int = 32
    prompt_words: int = 24
    n_samples: int = 2
    max_new_tokens: int = 128
    top_p: float = 0.95
    calibration_tol: float = 0.15
    calibration_tokens: int = 32
    calibration_max_evals: int = 8
    fluency_threshold: float = 2.0
    alpha: float = 0.05
    batch_size: int = 32
    random_state: int = 0

    def __post_init__(self):
        kinds = operator_kinds()
        bad = [k for k in self.kinds if k not in kinds]
        if bad or not self.kinds:
            raise ValueError(f"kinds must be among {sorted(kinds)}, got {list(self.kinds)}.")
        if self.primary_kl not in self.target_kl:
            raise ValueError(
                f"primary_kl={self.primary_kl} must be one of target_kl={list(self.target_kl)}."
            )
        if min(self.target_kl) <= 0:
            raise ValueError(f"target_kl must be positive, got {list(self.target_kl)}.")
        for name in ("window", "n_prompts", "n_calibration", "n_samples", "max_new_tokens"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}.")
        if int(self.calibration_tokens) < 0:
            raise ValueError(
                f"calibration_tokens must be 0 (next token only) or more, got "
                f"{self.calibration_tokens}."
            )

    def power(self, n_claims: int = len(INTERVENTION_CLAIMS)) -> dict:
        """The design's sensitivity: the smallest d_z detected with 80% power, one-sided,
        at alpha (one test) and at alpha / n_claims (Holm's first step).

        Parameters
        ----------
        n_claims : int, default=len(INTERVENTION_CLAIMS)
            The family Holm corrects over (0: no claim ran, so no Holm step: NaN).

        Returns
        -------
        dict
        """
        return {
            "n_prompts": self.n_prompts,
            "mde_d_z": minimum_detectable_effect(self.n_prompts, self.alpha),
            "mde_d_z_holm": minimum_detectable_effect(self.n_prompts, self.alpha / n_claims)
            if n_claims > 0
            else math.nan,
            "alpha": self.alpha,
            "n_claims": n_claims,
            "power": 0.8,
        }

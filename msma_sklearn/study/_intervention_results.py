"""The intervention study's typed results: every condition at its calibrated dose, the
claims as judged, and their tables (the design is in ``_intervention_design``)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np

from ..interventions import FluencyCheck, PromptEffect
from ..stats import benjamini_hochberg
from ._intervention_design import (
    InterventionDesign,
)

__all__ = ["ClaimResult", "Condition", "ConditionResult", "InterventionStudy"]


@dataclass(frozen=True)
class Condition:
    """One scale x operator at one calibrated dose.

    Parameters
    ----------
    scale, kind : str
        Where and which operator.
    target_kl : float
        The dose aimed at, in nats.
    parameter : str
        The operator's strength parameter.
    strength : float
        Its calibrated value.
    calibrated_kl : float
        The mean next-token KL it gave.
    converged : bool
        Whether that is within the tolerance of the target.
    layers : tuple of int
        The hidden states it acts on.
    """

    scale: str
    kind: str
    target_kl: float
    parameter: str
    strength: float
    calibrated_kl: float
    converged: bool
    layers: tuple

    @property
    def dose(self) -> str:
        """The dose in words: the operator's setting, the KL it gave and where it acts."""
        span = f"{self.layers[0]}-{self.layers[-1]}" if len(self.layers) > 1 else self.layers[0]
        reached = "" if self.converged else f", target {self.target_kl:g} not reached"
        return (
            f"{self.kind} {self.parameter}={self.strength:.3g} on hidden states {span} "
            f"(next-token KL {self.calibrated_kl:.2g} nats{reached})"
        )


@dataclass(frozen=True)
class ConditionResult:
    """A condition's generations measured against the baseline.

    Parameters
    ----------
    condition : Condition
        The condition.
    effects : dict
        Metric -> PromptEffect.
    fluency : FluencyCheck
        The fluency guard.
    realised_kl : float
        Mean next-token KL on the evaluation prompts (the dose where it is
        scored; the calibration reached ``condition.calibrated_kl`` on others).
    dose_matched : bool
        ``realised_kl`` within the calibration tolerance of the target.
    effective_strength : float
        The strength over the window: ``alpha ** k`` for scaling on ``k``
        hidden states (the scaling compounds through the residual stream),
        the strength itself for the other operators.
    control_temperature : float
        The sampling temperature whose unmodified next-token entropy on the
        calibration prompts equals this condition's (NaN: no control run).
    control_entropy : float
        That entropy, in nats.
    """

    condition: Condition
    effects: dict
    fluency: FluencyCheck
    realised_kl: float = math.nan
    dose_matched: bool = True
    effective_strength: float = math.nan
    control_temperature: float = math.nan
    control_entropy: float = math.nan


@dataclass(frozen=True)
class ClaimResult:
    """One of the original's claims judged at the primary dose (Holm over the claims).

    Parameters
    ----------
    claim : str
        The claim in words.
    scale, kind, metric : str
        Where, which operator, which text metric.
    claimed_percent : float
        The claimed percent change.
    condition : Condition
        The condition it is judged on.
    effect : PromptEffect
        The effect and its verdict.
    p_holm : float
        The claimed direction, Holm over the claims.
    p_holm_opposite : float
        An effect opposite to the claim, Holm over the claims.
    p_holm_smaller : float
        An effect smaller than half the claim, Holm over the claims.
    judgement : Judgement or None
        The one judge's verdict (:func:`~msma_sklearn.stats.judge_claims`), with
        the power at Holm's first step and the chance of "contradicted" at zero.
    control_judgement : Judgement or None
        The same claim judged against the temperature control instead of the
        baseline (treated minus control, the claimed size in the baseline's
        units, Holm over the claims): "supported" there is what makes the
        effect scale-specific rather than a change of temperature.
    control_temperature : float
        The control's sampling temperature.
    """

    claim: str
    scale: str
    kind: str
    metric: str
    claimed_percent: float
    condition: Condition
    effect: PromptEffect
    p_holm: float  # the claimed direction, Holm over the claims
    p_holm_opposite: float = math.nan  # effect opposite to the claim
    p_holm_smaller: float = math.nan  # effect smaller than half the claim
    judgement: object = None  # stats.Judgement
    control_judgement: object = None  # stats.Judgement against the temperature control
    control_temperature: float = math.nan

    @property
    def scale_specific(self) -> str:
        """ "yes" when the claim is supported against the baseline and against the
        temperature control, "no" when supported against the baseline only, "" otherwise.

        Returns
        -------
        str
        """
        if self.effect.verdict != "supported":
            return ""
        if self.control_judgement is None:
            return ""
        return "yes" if self.control_judgement.verdict == "supported" else "no"


@dataclass(frozen=True)
class InterventionStudy:
    """Everything :func:`run_intervention_study` measured, for one model.

    Parameters
    ----------
    model : str
        The model's name.
    design : InterventionDesign
        The settings.
    scale_layers : dict
        Scale -> hidden-state indices.
    prompts, calibration_prompts : list of str
        Evaluation and calibration prompts.
    calibrations : dict
        ``(scale, kind)`` -> list of DoseCalibration, one per dose generated:
        every target KL for the dose-response's operators, the primary one for
        the rest.
    baseline_fluency : dict
        Median perplexity, distinct-2 and non-alpha share of the baseline.
    conditions : list of ConditionResult
        Every condition generated.
    claims : list of ClaimResult
        The original's claims, judged.
    power : dict
        The design's sensitivity (:meth:`InterventionDesign.power`).
    calibration_continuations : list of str or None
        The unmodified model's continuation of each calibration prompt, whose
        first ``design.calibration_tokens`` tokens the doses were measured over
        (None with ``calibration_tokens=0``).
    """

    model: str
    design: InterventionDesign
    scale_layers: dict
    prompts: list
    calibration_prompts: list
    calibrations: dict  # (scale, kind) -> list[DoseCalibration], one per dose generated
    baseline_fluency: dict  # median perplexity, distinct-2, non-alpha share of the baseline
    conditions: list  # list[ConditionResult]
    claims: list  # list[ClaimResult]
    power: dict = field(default_factory=dict)
    calibration_continuations: list | None = None

    def to_dict(self) -> dict:
        """A JSON-able summary: design, power, calibrations, fluency and claims.

        Returns
        -------
        dict
        """

        def num(v, digits=4):
            v = float(v)
            return round(v, digits) if math.isfinite(v) else None

        return {
            "model": self.model,
            "design": asdict(self.design),
            "power": {k: num(v) if isinstance(v, float) else v for k, v in self.power.items()},
            "scales": self.scale_layers,
            "prompts": self.prompts,
            "calibration_prompts": self.calibration_prompts,
            "baseline_fluency": {k: num(v) for k, v in self.baseline_fluency.items()},
            "conditions": [
                {
                    **{k: v for k, v in asdict(r.condition).items()},
                    "dose": r.condition.dose,
                    "fluency_ppl_ratio": num(r.fluency.ppl_ratio),
                    "fluency_flagged": r.fluency.flagged,
                    "fluency_reason": r.fluency.reason,
                    "realised_kl": num(r.realised_kl),
                    "dose_matched": r.dose_matched,
                    "effective_strength": num(r.effective_strength),
                    "control_temperature": num(r.control_temperature),
                }
                for r in self.conditions
            ],
            "claims": [
                {
                    "claim": c.claim,
                    "metric": c.metric,
                    "dose": c.condition.dose,
                    "verdict": c.effect.verdict,
                    "reason": c.effect.reason,
                    "n_prompts": c.effect.n_prompts,
                    "n_pairs": c.effect.n_pairs,
                    "measured_percent": num(c.effect.percent_change, 2),
                    "ci": [num(c.effect.ci_low, 2), num(c.effect.ci_high, 2)],
                    "d_z": num(c.effect.d_z, 3),
                    "p_holm": num(c.p_holm),
                    "p_holm_opposite": num(c.p_holm_opposite),
                    "p_holm_smaller": num(c.p_holm_smaller),
                    "power": num(c.effect.power, 3),
                    "power_level": num(c.judgement.level, 4) if c.judgement else None,
                    "control_temperature": num(c.control_temperature),
                    "control_verdict": (
                        c.control_judgement.verdict if c.control_judgement else None
                    ),
                    "control_reason": c.control_judgement.reason if c.control_judgement else None,
                    "scale_specific": c.scale_specific,
                    "false_contradiction": (
                        num(c.judgement.false_contradiction, 3) if c.judgement else None
                    ),
                    "fluency_flagged": next(
                        r.fluency.flagged for r in self.conditions if r.condition == c.condition
                    ),
                }
                for c in self.claims
            ],
        }

    def effects_frame(self):
        """One row per condition x metric, with Benjamini-Hochberg q over the whole grid.

        Returns
        -------
        DataFrame
        """
        import pandas as pd

        rows = []
        for result in self.conditions:
            c = result.condition
            for metric, e in result.effects.items():
                rows.append(
                    {
                        "scale": c.scale,
                        "kind": c.kind,
                        "target_kl": c.target_kl,
                        "strength": c.strength,
                        "calibrated_kl": c.calibrated_kl,
                        "converged": c.converged,
                        "metric": metric,
                        "n_prompts": e.n_prompts,
                        "n_pairs": e.n_pairs,
                        "defined_baseline": e.defined_baseline,
                        "defined_treated": e.defined_treated,
                        "baseline_mean": e.baseline_mean,
                        "treated_mean": e.treated_mean,
                        "difference": e.treated_mean - e.baseline_mean,
                        "percent_change": e.percent_change,
                        "ci_low": e.ci_low,
                        "ci_high": e.ci_high,
                        "d_z": e.d_z,
                        "p": e.p_claimed,
                        "ppl_ratio": result.fluency.ppl_ratio,
                        "fluency_flagged": result.fluency.flagged,
                    }
                )
        frame = pd.DataFrame(rows)  # never empty: every design has a condition
        valid = frame["p"].notna()
        frame["q_bh"] = np.nan
        if valid.any():
            frame.loc[valid, "q_bh"] = benjamini_hochberg(frame.loc[valid, "p"])
        return frame

    def fluency_frame(self):
        """One row per condition: the fluency guard's measurements.

        Returns
        -------
        DataFrame
        """
        import pandas as pd

        return pd.DataFrame(
            [
                {
                    "scale": r.condition.scale,
                    "kind": r.condition.kind,
                    "target_kl": r.condition.target_kl,
                    "strength": r.condition.strength,
                    **asdict(r.fluency),
                }
                for r in self.conditions
            ]
        )

    def calibration_frame(self):
        """Every (strength, mean KL) the calibration measured, per scale x operator.

        Returns
        -------
        DataFrame
        """
        import pandas as pd

        rows = []
        for (scale, kind), cals in self.calibrations.items():
            seen = set()
            for cal in cals:
                for strength, kl in cal.evaluations:
                    if strength not in seen:
                        seen.add(strength)
                        rows.append(
                            {
                                "scale": scale,
                                "kind": kind,
                                "parameter": cal.parameter,
                                "strength": strength,
                                "mean_kl": kl,
                            }
                        )
        return pd.DataFrame(rows).sort_values(["scale", "kind", "strength"], ignore_index=True)

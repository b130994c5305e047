"""The intervention study as a library function: every scale x operator at calibrated,
matched doses, with a fluency guard and prompt-level statistics.

One call, :func:`run_intervention_study`, takes a causal LM, its scales and two
disjoint prompt sets (calibration and evaluation) and returns an
:class:`InterventionStudy`: the calibration of every scale x operator to the
target next-token KLs, the generations' effects on every text metric (the
prompt as the unit, Benjamini-Hochberg over the grid), the fluency check of
every condition, and the original README's claims judged with Holm over them.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np
from tqdm.auto import tqdm

from .._registry import OPERATORS
from ..interventions import (
    FluencyCheck,
    Intervener,
    PromptEffect,
    calibrate_doses,
    centred_window,
    fluency_summary,
    holm_over_claims,
    prompt_effect,
    rejudge,
)
from ..metrics.text import TextMetrics, perplexity
from ..stats import benjamini_hochberg, minimum_detectable_effect

__all__ = [
    "INTERVENTION_CLAIMS",
    "ClaimResult",
    "Condition",
    "ConditionResult",
    "InterventionDesign",
    "InterventionStudy",
    "centred_window",
    "prompt_sets",
    "run_intervention_study",
]

#: The original README's GPT-2 claims: (scale, operator, metric, claimed % change, wording).
#: "amplify" is scaling with alpha > 1; each claim has one pre-registered metric.
INTERVENTION_CLAIMS = (
    ("global", "scaling", "mtld", 7.4, "+7.4% lexical diversity"),
    ("global", "scaling", "coherence", -24.0, "-24% coherence"),
    ("intermediate", "scaling", "sentence_count", 25.0, "+25% sentence count"),
    ("intermediate", "scaling", "mean_sentence_length", -19.0, "-19% mean sentence length"),
    ("local", "scaling", "ttr", 34.0, "+34% lexical variation"),
)

#: the strongest setting the calibration considers, per operator (its own parameter)
UPPER = {o.kind: o.upper for o in OPERATORS.values()}

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
        Relative tolerance of the calibrated KL.
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
    n_calibration: int = 16
    prompt_words: int = 24
    n_samples: int = 2
    max_new_tokens: int = 64
    top_p: float = 0.95
    calibration_tol: float = 0.15
    calibration_max_evals: int = 8
    fluency_threshold: float = 2.0
    alpha: float = 0.05
    batch_size: int = 32
    random_state: int = 0

    def __post_init__(self):
        kinds = {o.kind for o in OPERATORS.values()}
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

    def power(self, n_claims: int = len(INTERVENTION_CLAIMS)) -> dict:
        """The design's sensitivity: the smallest d_z detected with 80% power, one-sided,
        at alpha (one test) and at alpha / n_claims (Holm's first step).

        Parameters
        ----------
        n_claims : int, default=len(INTERVENTION_CLAIMS)
            The family Holm corrects over.

        Returns
        -------
        dict
        """
        return {
            "n_prompts": self.n_prompts,
            "mde_d_z": minimum_detectable_effect(self.n_prompts, self.alpha),
            "mde_d_z_holm": minimum_detectable_effect(self.n_prompts, self.alpha / n_claims),
            "alpha": self.alpha,
            "n_claims": n_claims,
            "power": 0.8,
        }


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
    """

    condition: Condition
    effects: dict
    fluency: FluencyCheck


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
        ``(scale, kind)`` -> list of DoseCalibration, one per target KL.
    baseline_fluency : dict
        Median perplexity, distinct-2 and non-alpha share of the baseline.
    conditions : list of ConditionResult
        Every condition generated.
    claims : list of ClaimResult
        The original's claims, judged.
    power : dict
        The design's sensitivity (:meth:`InterventionDesign.power`).
    """

    model: str
    design: InterventionDesign
    scale_layers: dict
    prompts: list
    calibration_prompts: list
    calibrations: dict  # (scale, kind) -> list[DoseCalibration], one per target KL
    baseline_fluency: dict  # median perplexity, distinct-2, non-alpha share of the baseline
    conditions: list  # list[ConditionResult]
    claims: list  # list[ClaimResult]
    power: dict = field(default_factory=dict)

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


def prompt_sets(texts, n_prompts: int, n_calibration: int, words: int, *, random_state=0):
    """Disjoint evaluation and calibration prompts: the first ``words`` words of texts
    longer than that, drawn without replacement in a seeded order (each text used once).

    Parameters
    ----------
    texts : sequence of str
        The pool.
    n_prompts, n_calibration : int
        Evaluation and calibration prompts.
    words : int
        Words per prompt.
    random_state : int, default=0
        Seeds the order.

    Returns
    -------
    (prompts, calibration_prompts) : tuple of lists of str
    """
    from sklearn.utils import check_random_state

    long_enough = [t for t in dict.fromkeys(texts) if len(t.split()) > words]
    need = n_prompts + n_calibration
    if len(long_enough) < need:
        raise ValueError(
            f"Need {need} distinct texts longer than {words} words for {n_prompts} evaluation "
            f"and {n_calibration} calibration prompts, got {len(long_enough)} of "
            f"{len(list(texts))}; pass more or longer texts, fewer prompts or fewer words."
        )
    order = check_random_state(random_state).permutation(len(long_enough))[:need]
    prompts = [" ".join(long_enough[i].split()[:words]) for i in order]
    return prompts[:n_prompts], prompts[n_prompts:]


def _acting_layers(layers, kind: str, window: int) -> list[int]:
    chosen = centred_window(layers, window)
    if kind == "attention":  # hidden state 0 has no attention block
        chosen = [j for j in chosen if j > 0] or centred_window([j for j in layers if j > 0], 1)
    return chosen


def run_intervention_study(
    model: str,
    scale_layers: dict,
    prompts,
    calibration_prompts,
    design: InterventionDesign | None = None,
    *,
    claims=INTERVENTION_CLAIMS,
    verbose: bool = True,
) -> InterventionStudy:
    """Calibrate, generate and judge every scale x operator on one causal LM.

    Parameters
    ----------
    model : str
        A causal LM spec (e.g. ``"smollm2-135m"``).
    scale_layers : dict or fitted ScaleSegmenter
        Scale name -> hidden-state indices, fitted on other texts than ``prompts``.
    prompts, calibration_prompts : sequence of str
        Evaluation prompts and the disjoint prompts the doses are calibrated on.
    design : InterventionDesign, default=None
        The settings (None: the defaults).
    claims : sequence of (scale, kind, metric, claimed %, wording)
        Judged at ``design.primary_kl`` with Holm over those whose scale and kind ran.
    verbose : bool, default=True
        Progress bars.

    Returns
    -------
    InterventionStudy
    """
    design = design or InterventionDesign()
    table = dict(getattr(scale_layers, "scale_layers_", scale_layers))
    prompts, calibration_prompts = list(prompts), list(calibration_prompts)
    overlap = set(prompts) & set(calibration_prompts)
    if overlap:
        raise ValueError(
            f"{len(overlap)} prompts are in both the evaluation and the calibration set; the "
            "doses must be calibrated on other prompts than they are judged on."
        )
    k = design.n_samples
    common = dict(
        max_new_tokens=design.max_new_tokens,
        do_sample=True,
        top_p=design.top_p,
        num_return_sequences=k,
        batch_size=design.batch_size,
        random_state=design.random_state,
        metrics=list(TEXT_METRICS),
    )
    base = Intervener(model, layers=[1], **common).fit()
    baseline_texts = base.generate_baseline(prompts)
    repeated = [p for p in prompts for _ in range(k)]
    metrics = TextMetrics(list(TEXT_METRICS))
    baseline_values = metrics.compute(baseline_texts).to_numpy(dtype=float)
    baseline_ppl = perplexity(baseline_texts, model, prompts=repeated, batch_size=design.batch_size)
    prompt_ids = np.repeat(np.arange(len(prompts)), k)

    # 1. calibration: every scale x operator to every target KL, on the calibration prompts
    calibrations, conditions = {}, []
    pairs = [(s, kind) for s in table for kind in design.kinds]
    for scale, kind in tqdm(
        pairs, desc=f"Calibrating {model}", unit="operator", disable=not verbose
    ):
        layers = _acting_layers(table[scale], kind, design.window)
        iv = Intervener(model, layers=layers, kind=kind, **common, **_fixed(kind))
        cals = calibrate_doses(
            iv,
            calibration_prompts,
            design.target_kl,
            upper=UPPER[kind],
            tol=design.calibration_tol,
            max_evals=design.calibration_max_evals,
            fit_texts=calibration_prompts,
        )
        calibrations[(scale, kind)] = cals
        for cal in cals:
            if cal.target_kl == design.primary_kl or kind in design.dose_response_kinds:
                conditions.append(
                    Condition(
                        scale,
                        kind,
                        cal.target_kl,
                        cal.parameter,
                        cal.strength,
                        cal.mean_kl,
                        cal.converged,
                        tuple(layers),
                    )
                )

    # 2. generation at each condition, measured against the shared-seed baseline
    results, treated_by_condition = [], {}
    for c in tqdm(conditions, desc=f"Generating {model}", unit="condition", disable=not verbose):
        iv = Intervener(
            model,
            layers=list(c.layers),
            kind=c.kind,
            **common,
            **{**_fixed(c.kind), c.parameter: c.strength},
        ).fit(calibration_prompts if c.kind == "translation" else None)
        texts = iv.generate(prompts)
        values = metrics.compute(texts).to_numpy(dtype=float)
        ppl = perplexity(texts, model, prompts=repeated, batch_size=design.batch_size)
        fluency = fluency_summary(
            baseline_texts, texts, baseline_ppl, ppl, threshold=design.fluency_threshold
        )
        effects = {
            metric: prompt_effect(
                prompt_ids,
                baseline_values[:, j],
                values[:, j],
                alpha=design.alpha,
                random_state=design.random_state,
            )
            for j, metric in enumerate(TEXT_METRICS)
        }
        treated_by_condition[c] = values
        results.append(ConditionResult(c, effects, fluency))

    # 3. the claims at the primary dose, Holm over those that ran
    primary = {(c.scale, c.kind): c for c in conditions if c.target_kl == design.primary_kl}
    tested = [claim for claim in claims if (claim[0], claim[1]) in primary]
    args = []
    for scale, kind, metric, claimed, _ in tested:
        j = TEXT_METRICS.index(metric)
        c = primary[(scale, kind)]
        args.append((c, j, claimed))
    raw = [
        prompt_effect(
            prompt_ids,
            baseline_values[:, j],
            treated_by_condition[c][:, j],
            claimed_percent=claimed,
            alpha=design.alpha,
            random_state=design.random_state,
        )
        for c, j, claimed in args
    ]
    # Holm over the claims for each question the verdict asks (in the claimed
    # direction? opposite? smaller than half the claim?), so "contradicted" is
    # corrected like "supported"
    adjusted = holm_over_claims(raw)
    claim_results = []
    for (scale, kind, metric, claimed, text), (c, _, _), measured, adj in zip(
        tested, args, raw, adjusted, strict=True
    ):
        effect = rejudge(measured, alpha=design.alpha, **adj) if adj else measured
        claim_results.append(
            ClaimResult(
                f"{scale} amplify: {text}" if kind == "scaling" else f"{scale} {kind}: {text}",
                scale,
                kind,
                metric,
                claimed,
                c,
                effect,
                adj.get("p_adjusted", math.nan),
                adj.get("p_adjusted_opposite", math.nan),
                adj.get("p_adjusted_smaller", math.nan),
            )
        )
    finite_ppl = baseline_ppl[np.isfinite(baseline_ppl)]
    return InterventionStudy(
        model=model,
        design=design,
        scale_layers={s: [int(j) for j in v] for s, v in table.items()},
        prompts=prompts,
        calibration_prompts=calibration_prompts,
        calibrations=calibrations,
        baseline_fluency={
            "median_perplexity": float(np.median(finite_ppl)) if finite_ppl.size else math.nan,
            "n_texts": len(baseline_texts),
        },
        conditions=results,
        claims=claim_results,
        power=design.power(len(tested)),
    )


def _fixed(kind: str) -> dict:
    """The operator's other settings (its strength is calibrated)."""
    return {"direction": "random"} if kind == "translation" else {}

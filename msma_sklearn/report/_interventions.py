"""The report's intervention section: doses, the claims with their verdicts, the fluency guard."""

from __future__ import annotations

from .._registry import OPERATORS, operator_for
from ..interventions import MIN_PAIRS
from ..study import ABSOLUTE_METRICS
from ._format import file_stem, fmt_optional, layer_span, rounded

__all__ = ["interventions_section"]


def samples_phrase(studies) -> str:
    """'2 time(s)' or, when the models differ, '2 time(s) on `a` and 1 on `b`'.

    Parameters
    ----------
    studies : dict
        Model -> ``InterventionStudy``.

    Returns
    -------
    str
    """
    counts = {m: st.design.n_samples for m, st in studies.items()}
    if len(set(counts.values())) == 1:
        return f"{next(iter(counts.values()))} time(s)"
    parts = [f"{n} time(s) on `{m}`" for m, n in counts.items()]
    return ", ".join(parts[:-1]) + " and " + parts[-1]


def _claim_line(c, model: str, flagged: bool) -> str:
    """One claim's verdict, against the baseline and the temperature control."""
    fmt = fmt_optional
    e, j = c.effect, c.judgement
    measured = (
        f"measured {fmt(rounded(e.percent_change, 2), '+.1f')}% [{fmt(rounded(e.ci_low, 2), '+.1f')}, "
        f"{fmt(rounded(e.ci_high, 2), '+.1f')}], d_z {fmt(rounded(e.d_z, 3), '+.2f')}, Holm p "
        f"{fmt(rounded(c.p_holm), '.3g')}, power {fmt(rounded(e.power, 3), '.0%')} at level "
        f"{fmt(rounded(j.level) if j else None, '.3g')}, false contradiction at zero "
        f"{fmt(rounded(j.false_contradiction, 3) if j else None, '.0%')}; "
        if rounded(e.percent_change, 2) is not None
        else ""
    )
    guard = " (fluency guard flagged this dose)" if flagged else ""
    control = ""
    if c.control_judgement is not None and c.control_judgement.verdict:
        control = (
            f" Against the temperature control (sampling at T = "
            f"{fmt(rounded(c.control_temperature), '.3g')}, the unmodified model's next-token "
            f"entropy matched to the condition's): **{c.control_judgement.verdict}** "
            f"({c.control_judgement.reason})"
            + (
                "; scale-specific."
                if c.scale_specific == "yes"
                else "; not shown to differ from a temperature change."
                if c.scale_specific == "no"
                else "."
            )
        )
    return (
        f"- {c.claim} — on {model} at {c.condition.dose}: {measured}**{e.verdict}** "
        f"({e.reason}; {e.n_pairs} of {e.n_prompts} prompts defined){guard}.{control}"
    )


def interventions_section(studies, *, prompt_source: str = "the run's texts") -> str:
    """The intervention section: calibrated doses, the claims and their verdicts, fluency.

    Parameters
    ----------
    studies : dict of str -> InterventionStudy
        Per model, :func:`~msma_sklearn.study.run_intervention_study`'s result;
        every number and setting in the prose is read from it.
    prompt_source : str, default="the run's texts"
        Where the prompts come from, in words.

    Returns
    -------
    str
        The section's Markdown.
    """
    swept = {m: st for m, st in studies.items() if st.design.dose_response_kinds}
    first = next(iter(studies.values()))
    design = next(iter(swept.values())).design if swept else first.design
    power = first.power
    names = {o.kind: o.name for o in OPERATORS.values()}
    lines = [
        "## Interventions",
        "",
        f"Causal LMs: {', '.join(f'`{m}`' for m in studies)}. Prompts: {design.n_prompts} "
        f"evaluation and {design.n_calibration} other calibration prompts, the first "
        f"{design.prompt_words} words of {prompt_source}. Each prompt is continued "
        f"{samples_phrase(studies)} by nucleus sampling (top-p {design.top_p}, "
        f"{design.max_new_tokens} new tokens), the baseline and every condition sharing the "
        "seeds; the samples of a prompt are averaged before any test, so the prompt is the "
        "unit.",
        "",
        f"Doses. Every operator acts on the {design.window} hidden states at the centre of "
        "each scale (attention: the blocks producing them, hidden state 0 having none), and "
        "its strength is calibrated on the calibration prompts to a mean next-token KL "
        f"(baseline ‖ intervened) of {design.primary_kl:g} nats"
        + (
            f" ({', '.join(names[k] for k in design.dose_response_kinds)} also to "
            f"{', '.join(f'{t:g}' for t in design.target_kl if t != design.primary_kl)})"
            if design.dose_response_kinds and len(design.target_kl) > 1
            else ""
        )
        + f" (within {design.calibration_tol:.0%}), "
        + (
            f"each prompt's KL averaged over the first {design.calibration_tokens} tokens of "
            "the unmodified model's continuation, teacher-forced (the positions that are "
            "generated and scored, not only the prompt's last token); the same measure on the "
            "evaluation prompts' baseline continuations is the 'KL on the evaluation prompts' "
            f"column, flagged 'off target' beyond {design.calibration_tol:.0%}"
            if design.calibration_tokens
            else "at the prompt's last position"
        )
        + f", so scales are compared at matched disruption. The exploratory grid and the claims are at {design.primary_kl:g} nats"
        + (
            f"; on {', '.join(f'`{m}`' for m in swept)}, "
            f"{', '.join(names[k] for k in design.dose_response_kinds)} also at every other "
            "dose (the dose-response)"
            + (
                f"; {', '.join(f'`{m}`' for m in studies if m not in swept)} at "
                f"{design.primary_kl:g} nats only ('interventions.dose_response_models')."
                if len(swept) < len(studies)
                else "."
            )
            if swept and len(design.target_kl) > 1
            else "; no operator is generated at other doses in this run."
        ),
        "",
        f"Design power: with {power['n_prompts']} prompts a one-sided paired t-test detects "
        f"d_z ≥ {power['mde_d_z']:.2f} with {power['power']:.0%} power at α = {power['alpha']} "
        "and d_z ≥ "
        f"{power['mde_d_z_holm']:.2f} at Holm's strictest step over {power['n_claims']} "
        "claims; smaller effects can come out inconclusive.",
        "",
    ]
    for model, study in studies.items():
        model_effects = study.effects_frame()
        lines += [f"### {model}", ""]
        lines += [
            "| scale | operator | hidden states | target KL | strength (over the window) "
            "| KL reached (calibration) | KL on the evaluation prompts "
            "| median ppl vs baseline | fluency |",
            "|---|---|---|---:|---:|---:|---:|---:|---|",
        ]
        for r in study.conditions:
            c = r.condition
            window = (
                f" ({c.parameter}^{len(c.layers)} = {r.effective_strength:.3g})"
                if operator_for(c.kind).compounds and len(c.layers) > 1
                else ""
            )
            realised = fmt_optional(r.realised_kl, ".2g") if r.realised_kl == r.realised_kl else "–"
            off = "" if r.dose_matched else " (off target)"
            lines.append(
                f"| {c.scale} | {names[c.kind]} | {layer_span(list(c.layers))} | {c.target_kl:g} | "
                f"{c.parameter} {c.strength:.3g}{window} | {c.calibrated_kl:.2g}"
                f"{'' if c.converged else ' (not reached)'} | {realised}{off} | "
                f"{r.fluency.ppl_ratio:.2f}× | "
                f"{'flagged: ' + r.fluency.reason if r.fluency.flagged else 'ok'} |"
            )
        lines += [
            "",
            f"Baseline median perplexity {study.baseline_fluency['median_perplexity']:.1f} "
            "(continuation given prompt, under the unmodified model). The guard is two-sided: "
            f"gibberish when the median perplexity exceeds {design.fluency_threshold:g}× the "
            "baseline's, collapse when it falls below the baseline's lower quartile, "
            "repetition when the median share of repeated word 4-grams exceeds the "
            "baseline's upper quartile. A flagged condition's text metrics describe degraded "
            "text.",
            "",
            f"Effects at next-token KL {design.primary_kl:g} nats, Benjamini-Hochberg "
            f"q < {design.alpha:g} over every condition x metric of this model (exploratory); "
            "percent change of the prompt means [95% bootstrap CI over prompts]; how often "
            "each metric is defined (with / without the operator) is an outcome of its own, "
            f"and below {MIN_PAIRS} defined prompt pairs no effect is given.",
            "",
            f"| scale | operator | effects at FDR {design.alpha:.0%} | metrics with "
            f"≥ {MIN_PAIRS} defined pairs "
            "| defined share (baseline → treated), sentence metrics |",
            "|---|---|---|---:|---|",
        ]
        frame = model_effects
        frame = frame[frame["target_kl"] == design.primary_kl]
        for (scale, kind), sub in frame.groupby(["scale", "kind"], sort=False):
            measured = sub.dropna(subset=["percent_change"])
            found = measured[measured["q_bh"] < design.alpha]
            cells = "; ".join(
                f"{r['metric']} {r['difference']:+.3f} (difference of means), q {r['q_bh']:.2g}"
                if r["metric"] in ABSOLUTE_METRICS
                else f"{r['metric']} {r['percent_change']:+.1f}% [{r['ci_low']:+.1f}, "
                f"{r['ci_high']:+.1f}], q {r['q_bh']:.2g}"
                for _, r in found.iterrows()
            )
            defined = "; ".join(
                f"{r['metric']} {r['defined_baseline']:.0%} → {r['defined_treated']:.0%}"
                for _, r in sub.iterrows()
                if r["metric"] in ("coherence", "sentiment_spread")
            )
            lines.append(
                f"| {scale} | {names[kind]} | {cells or 'none'} | {len(measured)} of "
                f"{len(sub)} | {defined} |"
            )
        lines += [
            "",
            f"The original README's GPT-2 claims, tested on {model} at the calibrated dose "
            "(amplify = scaling with alpha > 1): one pre-registered metric per claim, "
            "one-sided paired t-tests (in the claimed direction; opposite to it; smaller "
            "than half of it), each Holm-adjusted over the claims; 'supported' when the "
            "first rejects, 'contradicted' when the effect is shown opposite to the claim or "
            f"smaller than half of it, 'inconclusive' otherwise or below {MIN_PAIRS} defined "
            "prompt pairs (the one judge, `msma_sklearn.stats.judge_claims`); beside each, "
            "the power to detect the claimed size at Holm's first step (the strictest level "
            "a claim faces) and the chance of 'contradicted' if the true effect were zero.",
            "",
        ]
        flagged = {r.condition: r.fluency.flagged for r in study.conditions}
        for c in study.claims:
            lines.append(_claim_line(c, model, flagged.get(c.condition, False)))
        lines += [
            "",
            f"![{model} dose-response](dose_response_{file_stem(model)}.png)",
            "",
            f"![{model} intervention effects](intervention_forest_{file_stem(model)}.png)",
            "",
        ]
    lines += [
        "Every condition x metric is in `interventions.csv`, the fluency guard in "
        "`intervention_fluency.csv`, every calibration measurement in "
        "`intervention_calibration.csv`. These verdicts are about these models at these "
        "doses only.",
    ]
    return "\n".join(lines) + "\n"

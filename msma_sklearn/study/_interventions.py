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
import warnings
from dataclasses import replace

import numpy as np
import torch
from tqdm.auto import tqdm

from .._registry import operator_for
from ..interventions import (
    MIN_PAIRS,
    Intervener,
    calibrate_doses,
    centred_window,
    collapse_to_prompts,
    fluency_summary,
    next_token_entropy,
    prompt_effect,
    temperature_for_entropy,
)
from ..metrics.text import TextMetrics, perplexity
from ..stats import decide, judge_claims, paired_claim_test
from ._intervention_design import INTERVENTION_CLAIMS, TEXT_METRICS, InterventionDesign
from ._intervention_results import ClaimResult, Condition, ConditionResult, InterventionStudy

__all__ = ["centred_window", "prompt_sets", "run_intervention_study"]


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
    # doses are measured over the positions that are generated: each prompt's KL is the
    # mean over its baseline continuation's first tokens, teacher-forced
    read = {"max_tokens": design.calibration_tokens or None}
    cal_continuations = eval_continuations = None
    if design.calibration_tokens:
        cal_base = Intervener(
            model,
            layers=[1],
            **{**common, "num_return_sequences": 1, "max_new_tokens": design.calibration_tokens},
        ).fit()
        cal_continuations = cal_base.generate_baseline(calibration_prompts)
        eval_continuations = baseline_texts[::k]  # each prompt's first sample
    # the unmodified model's rows at the read positions, computed once per prompt set and
    # shared by every operator (a forward pass through a 262k-token head saved each time)
    cal_rows, cal_counts = base._position_logprobs(
        calibration_prompts, cal_continuations, intervene=False, **read
    )
    cal_baseline = [part.numpy() for part in torch.split(cal_rows, cal_counts)]
    eval_baseline = (
        base.continuation_logprobs(prompts, eval_continuations, intervene=False, **read)
        if eval_continuations is not None
        else None
    )

    # 1. calibration: every scale x operator to every target KL, on the calibration prompts
    calibrations, conditions = {}, []
    pairs = [(s, kind) for s in table for kind in design.kinds]
    for scale, kind in tqdm(
        pairs, desc=f"Calibrating {model}", unit="operator", disable=not verbose
    ):
        op = operator_for(kind)
        # the estimator resolves the window (one rule for the study and for users); a
        # window wider than a small scale is that whole scale
        window = Intervener(
            model,
            scale=scale,
            scale_layers=table,
            window=min(design.window, len(set(table[scale]))),
            kind=kind,
            **op.fixed,
        )
        with warnings.catch_warnings():  # the table is this model's own (from the caller)
            warnings.filterwarnings("ignore", message="scale_layers is a plain")
            layers = window.fit(calibration_prompts).layers_.tolist()
        iv = Intervener(model, layers=layers, kind=kind, **common, **op.fixed)
        # only the doses that are generated: every target for the dose-response's
        # operators, the primary dose for the rest
        targets = design.target_kl if kind in design.dose_response_kinds else (design.primary_kl,)
        cals = calibrate_doses(
            iv,
            calibration_prompts,
            targets,
            upper=op.upper,
            tol=design.calibration_tol,
            max_evals=design.calibration_max_evals,
            fit_texts=calibration_prompts,
            continuations=cal_continuations,
            baseline=cal_baseline,
            **read,
        )
        calibrations[(scale, kind)] = cals
        for cal in cals:
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

    # 2. generation at each condition, measured against the shared-seed baseline; the
    # conditions the claims are judged on also get a temperature control
    claimed = {(scale, kind) for scale, kind, *_ in claims}
    results, treated_by_condition, control_by_condition = [], {}, {}
    for c in tqdm(conditions, desc=f"Generating {model}", unit="condition", disable=not verbose):
        iv = Intervener(
            model,
            layers=list(c.layers),
            kind=c.kind,
            **common,
            **{**operator_for(c.kind).fixed, c.parameter: c.strength},
        ).fit(calibration_prompts)
        realised = float(
            np.mean(
                iv.continuation_kl(prompts, eval_continuations, baseline=eval_baseline, **read)
                if eval_continuations is not None
                else iv.next_token_kl(prompts)
            )
        )
        control_t = control_h = math.nan
        if c.target_kl == design.primary_kl and (c.scale, c.kind) in claimed:
            # the temperature whose unmodified entropy over the same read positions of
            # the calibration prompts matches the condition's
            treated_rows = iv._position_logprobs(
                calibration_prompts, cal_continuations, intervene=True, **read
            )[0]
            control_h = float(next_token_entropy(treated_rows).mean())
            control_t = temperature_for_entropy(cal_rows, control_h)
            control = Intervener(model, layers=[1], **common, sampling_temperature=control_t).fit()
            control_by_condition[c] = metrics.compute(control.generate_baseline(prompts)).to_numpy(
                dtype=float
            )
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
        results.append(
            ConditionResult(
                c,
                effects,
                fluency,
                realised_kl=realised,
                dose_matched=abs(realised / c.target_kl - 1) <= design.calibration_tol,
                effective_strength=operator_for(c.kind).effective_strength(
                    c.strength, len(c.layers)
                ),
                control_temperature=control_t,
                control_entropy=control_h,
            )
        )

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
    # the one judge: per claim the prompt-level paired differences against the claimed
    # size in the outcome's units, each question Holm-adjusted over the claims (so
    # "contradicted" is corrected like "supported"), the power at Holm's first step
    tests = [
        _claim_test(prompt_ids, baseline_values[:, j], treated_by_condition[c][:, j], claimed)
        for c, j, claimed in args
    ]
    judgements = judge_claims(tests, alpha=design.alpha)
    # the same claims against the temperature control: treated minus control, the claimed
    # size in the baseline's units (Holm over the claims that have a control)
    with_control = [i for i, (c, _, _) in enumerate(args) if c in control_by_condition]
    control_judged = dict(
        zip(
            with_control,
            judge_claims(
                [
                    _claim_test(
                        prompt_ids,
                        control_by_condition[args[i][0]][:, args[i][1]],
                        treated_by_condition[args[i][0]][:, args[i][1]],
                        args[i][2],
                        baseline=baseline_values[:, args[i][1]],
                    )
                    for i in with_control
                ],
                alpha=design.alpha,
            ),
            strict=True,
        )
    )
    temperatures = {r.condition: r.control_temperature for r in results}
    claim_results = []
    for (scale, kind, metric, claimed, text), (c, _, _), measured, jd in zip(
        tested, args, raw, judgements, strict=True
    ):
        effect = measured
        if np.isfinite(jd.test.p_claimed):
            _, reason = decide(
                jd.p_claimed_holm,
                jd.p_opposite_holm,
                jd.p_smaller_holm,
                jd.p_equivalence_holm,
                alpha=design.alpha,
                half=abs(claimed) / 2,
                unit="%",
            )
            if jd.verdict == "inconclusive":
                reason += f"; power {jd.power:.0%} at the claimed size (level {jd.level:.3g})"
            effect = replace(measured, verdict=jd.verdict, reason=reason, power=jd.power)
        claim_results.append(
            ClaimResult(
                f"{scale} amplify: {text}" if kind == "scaling" else f"{scale} {kind}: {text}",
                scale,
                kind,
                metric,
                claimed,
                c,
                effect,
                jd.p_claimed_holm,
                jd.p_opposite_holm,
                jd.p_smaller_holm,
                jd,
                control_judged.get(len(claim_results)),
                temperatures.get(c, math.nan),
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
        calibration_continuations=cal_continuations,
    )


def _claim_test(prompt_ids, reference, treated, claimed_percent: float, *, baseline=None):
    """The judge's tests of a claim on prompt-level differences ``treated - reference``
    (each prompt's samples averaged first), the claimed percent turned into the units of
    the baseline's mean (``baseline``; None: ``reference`` itself is the baseline)."""
    _, r, _ = collapse_to_prompts(prompt_ids, reference)
    _, t, _ = collapse_to_prompts(prompt_ids, treated)
    both = np.isfinite(r) & np.isfinite(t)
    d = (t - r)[both]
    if both.sum() < MIN_PAIRS:
        d = d[:1]  # too few pairs: no test (the effect says why)
    if baseline is None:
        base = r[both].mean() if both.any() else float("nan")
    else:
        _, b, _ = collapse_to_prompts(prompt_ids, baseline)
        base = np.nanmean(b) if np.isfinite(b).any() else float("nan")
    claimed = claimed_percent / 100.0 * abs(base)
    if not np.isfinite(claimed) or claimed == 0:
        return paired_claim_test(d[:1], math.copysign(1.0, claimed_percent))
    return paired_claim_test(d, claimed)

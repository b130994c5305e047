"""Do the Intervener's sampled continuations come from the same distribution as
transformers' top-p sampling?  A check on a real model, beside the unit tests'
chi-square on synthetic logits.

On the intervention study's evaluation prompts (the first 24 words of 32
paragraphs of the Python Language Reference, ``prompt_sets``), both samplers
continue every prompt by ``--tokens`` new tokens under nucleus top-p 0.95, no
intervention, for ``--seeds`` seeds each:

  transformers   ``generate(do_sample=True, top_p=0.95, top_k=0)``, seeded by
                 ``torch.manual_seed``;
  Intervener     ``Intervener(do_sample=True, top_p=0.95).generate_baseline``
                 (``NucleusSampler``: one uniform per row, inverting the
                 nucleus' distribution), ``random_state`` = the seed.

Each continuation's perplexity given its prompt is scored under the same model
(``metrics.text.perplexity``, the study's fluency measure). Printed per seed: the
median perplexity (what the study's fluency guard compares with) and the mean log
perplexity; then, over all seeds, the mean log perplexity with its standard error
and Welch's t-test between the samplers. The same distribution predicts no
difference beyond the seed-to-seed spread.

Run:  python benchmarks/sampling_draws.py [--model smollm2-135m] [--tokens 64] [--seeds 3]
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from scipy import stats  # noqa: E402

from msma_sklearn import Intervener  # noqa: E402
from msma_sklearn.datasets import load_reference_prose  # noqa: E402
from msma_sklearn.extraction import load_model  # noqa: E402
from msma_sklearn.metrics.text import perplexity  # noqa: E402
from msma_sklearn.study._interventions import prompt_sets  # noqa: E402

BATCH = 8


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()

    prompts, _ = prompt_sets(load_reference_prose().texts, 32, 32, 24)
    model, tokenizer = load_model(args.model)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id

    def transformers_top_p(seed):
        out = []
        for start in range(0, len(prompts), BATCH):
            enc = tokenizer(
                prompts[start : start + BATCH],
                return_tensors="pt",
                padding=True,
                padding_side="left",
            )
            torch.manual_seed(1000 * seed + start)
            with torch.inference_mode():
                generated = model.generate(
                    **enc,
                    max_new_tokens=args.tokens,
                    do_sample=True,
                    top_p=0.95,
                    top_k=0,
                    temperature=1.0,
                    pad_token_id=pad,
                )
            new = generated[:, enc["input_ids"].shape[1] :]
            out += tokenizer.batch_decode(new, skip_special_tokens=True)
        return out

    def intervener(seed):
        iv = Intervener(
            args.model,
            layers=[1],
            max_new_tokens=args.tokens,
            do_sample=True,
            top_p=0.95,
            batch_size=BATCH,
            random_state=seed,
        ).fit()
        return iv.generate_baseline(prompts)

    print(
        f"{args.model}: {len(prompts)} prompts x {args.tokens} new tokens, top-p 0.95, "
        f"{args.seeds} seeds per sampler, interleaved"
    )
    logs = {"transformers": [], "Intervener": []}
    for seed in range(args.seeds):
        for name, sample in (("transformers", transformers_top_p), ("Intervener", intervener)):
            ppl = perplexity(sample(seed), args.model, prompts=prompts)
            logs[name].append(np.log(ppl[np.isfinite(ppl)]))
            print(
                f"  {name:<13} seed {seed}: median perplexity {np.median(ppl):6.2f}, "
                f"mean log perplexity {logs[name][-1].mean():.3f}",
                flush=True,
            )
    pooled = {name: np.concatenate(v) for name, v in logs.items()}
    for name, v in pooled.items():
        print(
            f"{name:<13} all seeds: mean log perplexity {v.mean():.3f} "
            f"(s.e. {v.std(ddof=1) / np.sqrt(v.size):.3f}, sd {v.std(ddof=1):.3f}, "
            f"{v.size} texts)"
        )
    t = stats.ttest_ind(pooled["transformers"], pooled["Intervener"], equal_var=False)
    print(f"Welch's t = {t.statistic:.2f}, p = {t.pvalue:.3f}")


if __name__ == "__main__":
    main()

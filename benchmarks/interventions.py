"""Generation with an intervention against plain `generate`, on SmolLM2-135M.

Both generate the same greedy continuations of the same prompts, interleaved
(plain, intervened, plain, ...). The intervention is a scaling of the
hidden states of 10 layers (every step, every position): an operator that
changes the text, so the hooks do real work.

Then sampled generation as the intervention study runs it (nucleus top-p 0.95, no
intervention), plain ``generate(do_sample=True, top_p=0.95, top_k=0)`` (transformers'
own top-p: a full sort of the vocabulary and ``torch.multinomial`` over it at every
step) against ``Intervener``'s baseline path (its ``NucleusSampler``: the nucleus found
among the 1,024 most likely tokens, one uniform per row inverting its CDF), with greedy
``generate`` as the ceiling (a sampler that costs nothing), on SmolLM2-135M (49k
vocabulary) and Gemma-3-270M (262k), interleaved.

Also prints the text metrics' throughput (texts/s) on the bundled corpus.

Run:  python benchmarks/interventions.py [--repeats 5] [--new-tokens 20]
          [--sampled-prompts 8] [--sampled-tokens 64] [--sampled-repeats 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402

from msma_sklearn import Intervener, load_corpus  # noqa: E402
from msma_sklearn.extraction import load_model  # noqa: E402


def plain_generate(model, tokenizer, prompts, new_tokens):
    enc = tokenizer(prompts, return_tensors="pt", padding=True, padding_side="left")
    with torch.inference_mode():
        out = model.generate(
            **enc, max_new_tokens=new_tokens, do_sample=False, pad_token_id=tokenizer.pad_token_id
        )
    return tokenizer.batch_decode(out[:, enc["input_ids"].shape[1] :], skip_special_tokens=True)


def sampled(spec, args):
    """Nucleus sampling: transformers' top-p against the Intervener's, interleaved."""
    prompts = [
        " ".join(t.split()[:12]) for t in load_corpus().texts[:: 256 // args.sampled_prompts]
    ]
    model, tokenizer = load_model(spec)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    iv = Intervener(
        spec,
        layers=[1],
        max_new_tokens=args.sampled_tokens,
        do_sample=True,
        top_p=0.95,
        batch_size=len(prompts),
        random_state=0,
    ).fit()

    def plain():
        enc = tokenizer(prompts, return_tensors="pt", padding=True, padding_side="left")
        torch.manual_seed(0)
        with torch.inference_mode():
            model.generate(
                **enc,
                max_new_tokens=args.sampled_tokens,
                do_sample=True,
                top_p=0.95,
                top_k=0,
                pad_token_id=pad,
            )

    def greedy():
        enc = tokenizer(prompts, return_tensors="pt", padding=True, padding_side="left")
        with torch.inference_mode():
            model.generate(
                **enc, max_new_tokens=args.sampled_tokens, do_sample=False, pad_token_id=pad
            )

    runs = {
        "generate(top_p=0.95)": plain,
        "Intervener baseline": lambda: iv.generate_baseline(prompts),
        "greedy generate": greedy,
    }
    for fn in runs.values():
        fn()  # warm-up
    times = {name: [] for name in runs}
    for _ in range(args.sampled_repeats):
        for name, fn in runs.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    tokens = len(prompts) * args.sampled_tokens
    print(
        f"\n{spec}: {len(prompts)} prompts x {args.sampled_tokens} new tokens, nucleus "
        f"sampling (top-p 0.95), median [min, max] of {args.sampled_repeats} interleaved runs"
    )
    for name, t in times.items():
        med = statistics.median(t)
        print(f"{name:<24}{med:>8.3f} s [{min(t):.3f}, {max(t):.3f}] {tokens / med:>8.1f} tokens/s")
    ratio = statistics.median(times["generate(top_p=0.95)"]) / statistics.median(
        times["Intervener baseline"]
    )
    print(f"speed-up of the Intervener's sampling over generate's top-p: {ratio:.2f}x")
    ceiling = statistics.median(times["greedy generate"]) / statistics.median(
        times["Intervener baseline"]
    )
    print(
        f"greedy generate's time over the Intervener's (1.0: sampling costs nothing): {ceiling:.2f}"
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--new-tokens", type=int, default=20)
    parser.add_argument("--prompts", type=int, default=8)
    parser.add_argument("--sampled-prompts", type=int, default=8)
    parser.add_argument("--sampled-tokens", type=int, default=64)
    parser.add_argument("--sampled-repeats", type=int, default=3)
    args = parser.parse_args()
    prompts = [" ".join(t.split()[:6]) for t in load_corpus().texts[:: 256 // args.prompts]]
    model, tokenizer = load_model("smollm2-135m")
    iv = Intervener(
        "smollm2-135m",
        layers=list(range(10, 20)),
        kind="scaling",
        alpha=1.5,
        max_new_tokens=args.new_tokens,
        batch_size=len(prompts),
        device="cpu",
    ).fit()
    identity = iv.generate_baseline(prompts) == plain_generate(
        model, tokenizer, prompts, args.new_tokens
    )
    runs = {
        "plain generate": lambda: plain_generate(model, tokenizer, prompts, args.new_tokens),
        "Intervener.generate": lambda: iv.generate(prompts),
    }
    for fn in runs.values():
        fn()  # warm-up
    times = {name: [] for name in runs}
    for _ in range(args.repeats):
        for name, fn in runs.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    med = {name: statistics.median(t) for name, t in times.items()}
    tokens = len(prompts) * args.new_tokens
    print(
        f"SmolLM2-135M, {len(prompts)} prompts x {args.new_tokens} new tokens, greedy, "
        f"median of {args.repeats} interleaved runs, {torch.get_num_threads()} threads\n"
    )
    for name, t in med.items():
        print(f"{name:<22}{t:>8.3f} s {tokens / t:>9.1f} tokens/s")
    overhead = 100 * (med["Intervener.generate"] / med["plain generate"] - 1)
    print(
        f"\noverhead: {overhead:+.1f}% (target <= 10%); Intervener's baseline path gives the "
        f"same text as plain generate: {identity}"
    )

    for spec in ("smollm2-135m", "gemma3-270m"):
        sampled(spec, args)

    # text metrics throughput, on the bundled corpus (resources loaded before timing)
    from msma_sklearn.metrics.text import TextMetrics

    texts = load_corpus().texts
    print(f"\ntext metrics on {len(texts)} bundled texts (resources loaded first, then timed):")
    for label, names in [
        ("all but perplexity", None),
        ("lexical only", ["mtld", "ttr", "distinct_2"]),
    ]:
        tm = TextMetrics(names)
        tm.compute(texts[:4])  # loads spaCy / VADER / MiniLM
        t0 = time.perf_counter()
        tm.compute(texts)
        seconds = time.perf_counter() - t0
        print(f"  {label:<20}{len(texts) / seconds:>8.1f} texts/s")


if __name__ == "__main__":
    main()

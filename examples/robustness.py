"""Robustness: how stable generation stays under Gaussian noise at each scale.

For each scale (hidden states split into thirds; use a fitted ScaleSegmenter
for data-driven scales) and noise level sigma (x the states' RMS), the share
of generated tokens identical to the noise-free generation, position by
position.

Run:  python examples/robustness.py [--model smollm2-135m] [--quick]
"""

import argparse

import numpy as np

from msma_sklearn import Intervener


def token_agreement(a: str, b: str) -> float:
    x, y = a.split(), b.split()
    if not x and not y:
        return 1.0
    same = sum(p == q for p, q in zip(x, y, strict=False))  # the shorter text ends early
    return same / max(len(x), len(y))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    prompts = [
        "The history of the city",
        "To bake good bread you",
        "The scientists found",
        "Our team won because",
    ][: 2 if args.quick else 4]
    sigmas = [0.1, 0.5] if args.quick else [0.05, 0.1, 0.25, 0.5, 1.0]
    n_blocks = Intervener(args.model, layers=[1]).fit().n_layers_
    scales = np.array_split(np.arange(1, n_blocks + 1), 3)
    results = {}
    for name, layers in zip(("local", "intermediate", "global"), scales, strict=True):
        row = []
        for sigma in sigmas:
            iv = Intervener(
                args.model,
                layers=layers.tolist(),
                kind="noise",
                sigma=sigma,
                max_new_tokens=6 if args.quick else 20,
                random_state=0,
            ).fit()
            noisy, clean = iv.generate(prompts), iv.generate_baseline(prompts)
            row.append(
                float(np.mean([token_agreement(a, b) for a, b in zip(noisy, clean, strict=True)]))
            )
        results[name] = row
        print(
            f"{name:>12}: "
            + "  ".join(f"sigma {s}: {v:.2f}" for s, v in zip(sigmas, row, strict=True))
        )
    return results


if __name__ == "__main__":
    main()

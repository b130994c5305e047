"""Bias detection: how far apart counterfactual prompt pairs sit at each scale.

Pairs differ only in a gendered word. For each scale (hidden states split
into thirds here; use a fitted ScaleSegmenter for data-driven scales), the
script reports the mean cosine distance between the two members of a pair,
then projects out the learned "gender direction" (difference of the two
groups' means, fitted on half the pairs) and measures the distance again on
the other half.

Run:  python examples/bias_detection.py [--model minilm] [--quick]
"""

import argparse

import numpy as np

from msma_sklearn import HiddenStateExtractor

TEMPLATES = [
    "{} is a nurse at the hospital.",
    "{} works as an engineer.",
    "{} stayed home with the kids.",
    "{} leads the finance team.",
    "{} cried during the film.",
    "{} fixed the car engine.",
    "{} teaches primary school.",
    "{} is the company's new CEO.",
]


def cosine_distance(a, b):
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    return 1.0 - np.sum(a * b, axis=1)


def project_out(Z, direction):
    """Remove the component of each row along a unit direction."""
    return Z - np.outer(Z @ direction, direction)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="minilm")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    he = [t.format("He") for t in TEMPLATES]
    she = [t.format("She") for t in TEMPLATES]
    ext = HiddenStateExtractor(args.model).fit(he + she)
    states = ext.reshape_by_layer(ext.transform(he + she)).astype(np.float64)
    scales = np.array_split(np.arange(states.shape[1]), 3)
    half = len(TEMPLATES) // 2
    results = {}
    for name, layers in zip(("local", "intermediate", "global"), scales, strict=True):
        X = states[:, layers].mean(axis=1)
        a, b = X[: len(he)], X[len(he) :]
        before = cosine_distance(a[half:], b[half:]).mean()
        direction = (a[:half] - b[:half]).mean(axis=0)
        direction /= np.linalg.norm(direction)
        after = cosine_distance(
            project_out(a[half:], direction), project_out(b[half:], direction)
        ).mean()
        results[name] = (float(before), float(after))
        print(
            f"{name:>12} (hidden states {layers[0]}-{layers[-1]}): pair distance "
            f"{before:.4f} -> {after:.4f} after projecting out the direction"
        )
    return results


if __name__ == "__main__":
    main()

"""How much of the alignment ablation's pooled PCA basis one direction takes.

For each model: the run's CKA scales on the default study's 256 word-order documents,
each scale's largest single-unit share of variance, and the variance shares of the first
principal components of the scales pooled, raw (``paired_ablation(standardize=False)``)
and with each scale's units z-scored (its default).

Run:  python benchmarks/alignment_basis.py [--models gemma3-270m,smollm2-135m,minilm]
"""

from __future__ import annotations

import argparse
import os
import warnings

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from sklearn.decomposition import PCA  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

from msma_sklearn import HiddenStateExtractor, ScaleSegmenter  # noqa: E402
from msma_sklearn.datasets import load_word_order  # noqa: E402


def basis_shares(states: pd.DataFrame, n_components: int = 40) -> dict:
    """Per scale: the top unit's share of variance; pooled: the first components' shares."""
    seg = ScaleSegmenter("cka").fit(states)
    Z = np.asarray(seg.set_output(transform="default").transform(states))
    names = list(seg.scale_layers_)
    width = Z.shape[1] // len(names)
    blocks = [Z[:, i * width : (i + 1) * width] for i in range(len(names))]
    top = {s: float(b.var(0).max() / b.var(0).sum()) for s, b in zip(names, blocks, strict=True)}
    k = min(n_components, width, len(Z) - 1)
    pooled = PCA(k).fit(np.vstack(blocks)).explained_variance_ratio_[:3]
    zscored = [StandardScaler().fit_transform(b) for b in blocks]  # paired_ablation's default
    pooled_z = PCA(k).fit(np.vstack(zscored)).explained_variance_ratio_[:3]
    return {
        "top_unit": top,
        "pooled_first": [float(v) for v in pooled],
        "pooled_first_zscored": [float(v) for v in pooled_z],
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", default="gemma3-270m,smollm2-135m,minilm")
    args = parser.parse_args()
    texts = load_word_order(256).texts
    for name in args.models.split(","):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ext = HiddenStateExtractor(name).fit(texts)
            states = pd.DataFrame(ext.transform(texts), columns=ext.get_feature_names_out())
            r = basis_shares(states)
        tops = ", ".join(f"{s} {v:.3f}" for s, v in r["top_unit"].items())
        firsts = ", ".join(f"{v:.3f}" for v in r["pooled_first"])
        firsts_z = ", ".join(f"{v:.3f}" for v in r["pooled_first_zscored"])
        print(
            f"{name}: top unit's share of variance per scale: {tops}; pooled PCA, raw: "
            f"{firsts}; each scale's units z-scored: {firsts_z}"
        )


if __name__ == "__main__":
    main()

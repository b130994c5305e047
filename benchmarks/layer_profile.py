"""The layer profile of real models, their phase cards, and what a profile costs.

For each model (bundled corpus; the first ``--texts`` texts): pooled states at the
extractor's defaults, the default CKA segmentation (fitted on the other texts of the
corpus, so the profile's texts are held out), ``layer_profile`` (logit lens and block
deletion for causal LMs; angular distances, TwoNN intrinsic dimension and the largest
unit's share for every model), the boundaries tested against each signal over
admissible random splits, and the phase card written to ``docs/figures/``. Timings are
the wall time of each part on this machine, with nothing else running.

Run:  HF_HUB_OFFLINE=1 python benchmarks/layer_profile.py [--models minilm smollm2-135m
          gemma3-270m] [--texts 64] [--stride 4]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from msma_sklearn import HiddenStateExtractor, ScaleSegmenter, load_corpus
from msma_sklearn.plotting import plot_phase_card, save_figure
from msma_sklearn.profile import boundaries_against_profile, layer_profile, reference_shapes

FIGURES = Path("docs/figures")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["minilm", "smollm2-135m", "gemma3-270m"])
    parser.add_argument("--texts", type=int, default=64)
    parser.add_argument(
        "--stride", type=int, default=4, help="logit lens and deletion read every k-th token"
    )
    args = parser.parse_args()
    corpus = list(load_corpus().texts)
    held, rest = corpus[: args.texts], corpus[args.texts :]
    FIGURES.mkdir(parents=True, exist_ok=True)
    for model in args.models:
        t0 = time.perf_counter()
        ext = HiddenStateExtractor(model).set_output(transform="pandas").fit(corpus)
        seg = ScaleSegmenter(random_state=0).fit(ext.transform(rest))
        states = ext.reshape_by_layer(ext.transform(held).to_numpy())
        t_states = time.perf_counter() - t0
        t0 = time.perf_counter()
        profile = layer_profile(
            model,
            held,
            states=states,
            stride=args.stride,
            sink_tokens=ext.sink_tokens_,  # as the pooled states leave them out
            verbose=False,
        )
        t_profile = time.perf_counter() - t0
        tests = boundaries_against_profile(
            profile, seg.boundaries_, min_size=seg.min_scale_size_, random_state=0
        )
        fig = plot_phase_card(
            profile,
            scale_layers=seg.scale_layers_,
            boundaries={"cka": seg.boundaries_},
            title=f"{model}: layer profile ({len(held)} held-out texts, stride {args.stride}), "
            "CKA scales shaded",
        )
        path = FIGURES / f"phase_card_{model.replace('/', '_')}.png"
        save_figure(fig, path)
        print(f"\n## {model}: {profile.n_states} hidden states, CKA boundaries {seg.boundaries_}")
        print(
            f"states (corpus) {t_states:.0f} s; profile of {len(held)} texts at stride "
            f"{args.stride}: {t_profile:.0f} s"
        )
        print(
            "| signal | peak (state) | change at the boundaries | random splits | p | own split |"
        )
        print("|---|---|---:|---:|---:|---|")
        for t in tests:
            v = profile.values[t.signal]
            peak = int(np.nanargmax(v)) if np.isfinite(v).any() else -1
            print(
                f"| {t.signal} | {np.nanmax(v):.3g} ({peak}) | {t.change_at_boundaries:.3g} "
                f"| {t.null_mean:.3g} | {t.p:.3f} | {t.own_boundaries} |"
            )
        for name, v in profile.values.items():
            print(f"{name}: " + ", ".join("nan" if not np.isfinite(x) else f"{x:.3g}" for x in v))
        print("\n| signal | published shape | holds here | measured |\n|---|---|---|---|")
        for c in reference_shapes(profile):
            print(f"| {c.signal} | {c.expected} | {c.holds} | {c.observed} |")
        print(f"figure: {path}", flush=True)


if __name__ == "__main__":
    main()

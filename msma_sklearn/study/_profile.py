"""The segmentation stage's test of the scales against the layer profile, on texts the
scales were not fitted on."""

from __future__ import annotations

import numpy as np

__all__ = ["profile_boundaries"]


def profile_boundaries(
    model: str, extractor, states, texts, segmenter, *, n_texts=64, stride=4, random_state=0
) -> dict:
    """The layer profile on held-out texts, and ``segmenter``'s boundaries against it.

    ``n_texts`` texts (at most half of them) are drawn with ``random_state``; the
    segmenter is refitted (same settings, no bootstrap) on the other texts'
    states, so the boundaries tested were fitted without the profile's texts;
    :func:`~msma_sklearn.profile.layer_profile` runs on the drawn ones (their
    pooled states as extracted, the model for the logit lens and deletion).

    Parameters
    ----------
    model : str
        The model spec.
    extractor : HiddenStateExtractor
        Fitted; its ``max_length`` is the profile's.
    states : DataFrame
        The extractor's states of ``texts``.
    texts : list of str
        The texts behind the rows.
    segmenter : ScaleSegmenter
        Fitted; its settings are refitted.
    n_texts : int, default=64
        Texts of the profile.
    stride : int, default=4
        The logit lens and block deletion read every ``stride``-th token (their
        cost is the LM head per position and per layer: 290 s for 64 texts of
        Gemma-3-270M at stride 1 on 2 CPU cores).
    random_state : int, default=0
        Draws the texts; seeds the profile's intervals and the random splits.

    Returns
    -------
    dict
        ``profile`` (LayerProfile), ``boundaries`` (the refit's), ``tests``
        (list of ProfileTest), ``shapes`` (list of ShapeCheck), ``seconds``.
    """
    import time

    from sklearn.base import clone

    from ..profile import boundaries_against_profile, layer_profile, reference_shapes

    t0 = time.perf_counter()
    n = len(texts)
    size = min(int(n_texts), n // 2)
    if size < 10:
        raise ValueError(
            f"A layer profile needs at least 10 held-out texts (TwoNN's intrinsic dimension); "
            f"{n} texts with n_texts={n_texts} give {size}. Use more texts or turn the "
            "profile off (segmentation.profile_texts: 0)."
        )
    rng = np.random.default_rng(random_state)
    held = np.sort(rng.choice(n, size=size, replace=False))
    rest = np.setdiff1d(np.arange(n), held)
    params = {"n_bootstrap": 0} if "n_bootstrap" in segmenter.get_params() else {}
    refit = clone(segmenter).set_params(**params).fit(states.iloc[rest])
    cube = extractor.reshape_by_layer(states.iloc[held].to_numpy())
    profile = layer_profile(
        model,
        [texts[i] for i in held],
        states=cube,
        max_length=extractor.max_length,
        stride=stride,
        sink_tokens=extractor.sink_tokens_,
        random_state=random_state,
        verbose=False,
    )
    tests = boundaries_against_profile(
        profile,
        refit.boundaries_,
        min_size=getattr(refit, "min_scale_size_", 1),
        random_state=random_state,
    )
    return {
        "profile": profile,
        "boundaries": [int(b) for b in refit.boundaries_],
        "tests": tests,
        "shapes": reference_shapes(profile),
        "seconds": time.perf_counter() - t0,
    }

"""The study's segmentation methods and intervention operators, each declared once.

``msma run``'s config choices, the report's names, the calibration's strength
parameters and the segmenters the study fits are all read from these two
tables, so adding a segmentation method or an operator is one entry here (plus
the method or operator itself, and its tests). Light on purpose: importing it
imports no model code.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = [
    "OPERATORS",
    "SEGMENTATION_METHODS",
    "Operator",
    "SegmentationMethod",
    "build_segmenter",
]


@dataclass(frozen=True)
class SegmentationMethod:
    """One way the study segments a model's layers into scales.

    ``name`` is the config value (``segmentation.method``; ``selectable=False``
    for a row of the tables only), ``label`` its row in the report's tables,
    ``described`` how the prose names its scales, ``params`` the
    :class:`ScaleSegmenter` parameters. ``data_driven`` methods take the run's
    bootstrap count and seed; ``families`` restricts a preset to the model
    families it has rows for (``()``: any model with a family).
    """

    name: str
    label: str
    described: str
    params: dict = field(default_factory=dict)
    data_driven: bool = False
    attention: bool = False  # needs the model's attention spans
    families: tuple | None = None
    selectable: bool = True

    def applies(self, family: str | None) -> bool:
        """Whether this method can segment a model of ``family`` (None: unknown)."""
        if self.families is None:
            return True
        return family is not None and (not self.families or family in self.families)


SEGMENTATION_METHODS: dict[str, SegmentationMethod] = {
    m.name: m
    for m in (
        SegmentationMethod("cka", "cka", "CKA", {"method": "cka"}, data_driven=True),
        SegmentationMethod("mi", "mi", "adjacent-MI", {"method": "mi"}, data_driven=True),
        SegmentationMethod(
            "attention_span",
            "attention_span",
            "attention-span",
            {"method": "attention_span"},
            attention=True,
        ),
        SegmentationMethod(
            "readme",
            "preset: readme",
            "README-preset",
            {"method": "preset", "preset": "readme"},
            families=(),
        ),
        SegmentationMethod(
            "uniform", "preset: uniform", "uniform", {"method": "preset", "preset": "uniform"}
        ),
        SegmentationMethod(
            "msma_code",
            "preset: msma_code",
            "original-code-preset",
            {"method": "preset", "preset": "msma_code"},
            families=("bert", "gpt2"),
            selectable=False,
        ),
    )
}


def build_segmenter(
    method: SegmentationMethod, *, n_bootstrap=0, random_state=0, family=None, spans=None
):
    """An unfitted :class:`ScaleSegmenter` for ``method`` with the run's settings."""
    from .segmentation import ScaleSegmenter

    params = dict(method.params)
    if method.data_driven:
        params.update(n_bootstrap=n_bootstrap, random_state=random_state)
    if method.attention:
        params["attention_spans"] = spans
    if method.families is not None:
        params["family"] = family
    return ScaleSegmenter(**params)


@dataclass(frozen=True)
class Operator:
    """One intervention operator the study calibrates and applies.

    ``name`` is the config value (``interventions.kinds``), ``kind`` the
    :class:`Intervener` kind, ``parameter`` its strength parameter and
    ``identity`` the value that changes nothing, ``upper`` the strongest
    setting the calibration considers, ``described`` the config's comment.
    """

    name: str
    kind: str
    parameter: str
    identity: float
    upper: float
    described: str


OPERATORS: dict[str, Operator] = {
    o.name: o
    for o in (
        Operator("translation", "translation", "norm", 0.0, 8.0, "random direction"),
        Operator("amplify", "scaling", "alpha", 1.0, 4.0, "scaling, alpha > 1"),
        Operator("noise", "noise", "sigma", 0.0, 4.0, "Gaussian, x each token's rms"),
        Operator("attention", "attention", "temperature", 1.0, 64.0, "temperature > 1"),
    )
}

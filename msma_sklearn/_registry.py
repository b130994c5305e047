"""The study's segmentation methods and intervention operators, each declared once.

``msma run``'s config choices, the report's names, the calibration's strength
parameters, the segmenters the study fits and what :class:`Intervener` does to
a hidden state are all read from these two tables, so adding a segmentation
method or an operator is one entry here (plus its tests and its doc). Light on
purpose: importing it imports no model code (an operator's ``apply`` works on
the tensor it is given).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = [
    "OPERATORS",
    "SEGMENTATION_METHODS",
    "Operator",
    "SegmentationMethod",
    "build_segmenter",
    "operator_for",
    "operator_kinds",
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


def _scale(iv, h, j, state):
    return h * iv.alpha


def _translate(iv, h, j, state):
    return h + h.new_tensor(iv.steering_vectors_[j])  # h's dtype and device


def _add_noise(iv, h, j, state):
    rms = h.pow(2).mean(dim=-1, keepdim=True).sqrt()
    return h + iv.sigma * rms * iv._standard_noise(h, j, state)


@dataclass(frozen=True)
class Operator:
    """One intervention operator: what :class:`Intervener` does and how the study doses it.

    Parameters
    ----------
    name : str
        The config value (``interventions.kinds``) and the report's name.
    kind : str
        The :class:`Intervener` ``kind`` that runs it. Entries that share a kind
        share ``parameter``, ``identity``, ``apply`` and ``site`` (a test checks).
    parameter : str
        The Intervener's strength parameter (``alpha``, ``norm``, ``sigma``,
        ``temperature``), the one the calibration sets.
    identity : float
        The strength that changes nothing.
    upper : float
        The strongest setting the calibration considers.
    described : str
        The config's comment.
    apply : callable or None, default=None
        ``apply(intervener, h, j, state) -> h'``: the change to hidden state ``j``
        (a ``(batch, positions, hidden)`` tensor) at the fitted ``intervener``'s
        settings; ``state`` is the forward pass's bookkeeping (prompts, step,
        mask). None for operators that act inside attention (``site="attention"``).
    site : {"state", "attention"}, default="state"
        ``"state"``: ``apply`` changes the hidden state entering block ``j``
        (or the stack's output); ``"attention"``: the operator acts inside the
        block that produces state ``j``, so hidden state 0 (the embeddings) has
        none and a centred window leaves it out.
    fixed : dict, default={}
        The Intervener's other settings the study passes (its strength is
        calibrated).
    compounds : bool, default=False
        Whether the strength compounds over a window of k states (scaling: the
        residual is multiplied by ``alpha**k``); the report's effective strength.
    """

    name: str
    kind: str
    parameter: str
    identity: float
    upper: float
    described: str
    apply: Callable | None = None
    site: str = "state"
    fixed: dict = field(default_factory=dict)
    compounds: bool = False

    def effective_strength(self, strength: float, n_states: int) -> float:
        """The strength over a window of ``n_states`` states (``strength**k`` if it compounds)."""
        return float(strength**n_states if self.compounds else strength)


OPERATORS: dict[str, Operator] = {
    o.name: o
    for o in (
        Operator(
            "translation",
            "translation",
            "norm",
            0.0,
            8.0,
            "random direction",
            _translate,
            fixed={"direction": "random"},
        ),
        Operator(
            "amplify", "scaling", "alpha", 1.0, 4.0, "scaling, alpha > 1", _scale, compounds=True
        ),
        Operator("noise", "noise", "sigma", 0.0, 4.0, "Gaussian, x each token's rms", _add_noise),
        Operator(
            "attention", "attention", "temperature", 1.0, 64.0, "temperature > 1", site="attention"
        ),
    )
}


def operator_kinds() -> list[str]:
    """The :class:`Intervener` kinds the table declares, in table order."""
    return list(dict.fromkeys(o.kind for o in OPERATORS.values()))


def operator_for(kind: str) -> Operator:
    """The table's (first) entry for Intervener ``kind``; a clear error for an unknown one."""
    for o in OPERATORS.values():
        if o.kind == kind:
            return o
    raise ValueError(
        f"Unknown operator kind {kind!r}; the operator table (msma_sklearn._registry.OPERATORS) "
        f"declares {operator_kinds()}."
    )

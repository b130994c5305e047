"""Cross-scale alignment: the MSMA objective and ManifoldAligner."""

from ._ablation import ABLATION_CONFIGS, METRICS, alignment_ablation, summarise_ablation
from ._aligner import ManifoldAligner
from ._objective import (
    BilinearCritic,
    curvature_loss,
    geometry_loss,
    infonce_bound,
    ot_loss,
    procrustes_rotation,
)

__all__ = [
    "ABLATION_CONFIGS",
    "METRICS",
    "BilinearCritic",
    "alignment_ablation",
    "summarise_ablation",
    "ManifoldAligner",
    "curvature_loss",
    "geometry_loss",
    "infonce_bound",
    "ot_loss",
    "procrustes_rotation",
]

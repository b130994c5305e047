"""Cross-scale alignment: the MSMA objective and ManifoldAligner."""

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
    "BilinearCritic",
    "ManifoldAligner",
    "curvature_loss",
    "geometry_loss",
    "infonce_bound",
    "ot_loss",
    "procrustes_rotation",
]

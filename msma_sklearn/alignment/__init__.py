"""Cross-scale alignment: the MSMA objective and ManifoldAligner."""

from ._ablation import ABLATION_CONFIGS, METRICS, alignment_ablation, summarise_ablation
from ._aligner import ManifoldAligner
from ._evaluation import (
    BASELINES,
    corrected_resampled_ttest,
    fit_baseline,
    paired_r2,
    retrieval_top1,
)
from ._objective import (
    BilinearCritic,
    geometry_loss,
    infonce_bound,
    information_loss,
    knn_graph,
    mean_curvature_loss,
    ot_loss,
    procrustes_rotation,
    rotation_from_cross,
)

__all__ = [
    "BASELINES",
    "fit_baseline",
    "corrected_resampled_ttest",
    "paired_r2",
    "retrieval_top1",
    "ABLATION_CONFIGS",
    "METRICS",
    "BilinearCritic",
    "alignment_ablation",
    "summarise_ablation",
    "ManifoldAligner",
    "geometry_loss",
    "infonce_bound",
    "information_loss",
    "knn_graph",
    "mean_curvature_loss",
    "ot_loss",
    "procrustes_rotation",
    "rotation_from_cross",
]

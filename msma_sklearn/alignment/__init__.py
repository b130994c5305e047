"""Cross-scale alignment: the MSMA objective and ManifoldAligner."""

from ._ablation import METRICS, alignment_ablation, summarise_ablation
from ._aligner import ManifoldAligner
from ._effects import term_effects
from ._evaluation import (
    PAIRED_METRICS,
    compare_methods,
    default_pairs,
    paired_ablation,
    paired_r2,
    per_split_scores,
    retrieval_top1,
)
from ._methods import ABLATION_CONFIGS, BASELINES, fit_baseline, register_baseline
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
from ._scoring import ALIGNMENT_METRICS, AlignmentScorer, alignment_score, get_alignment_scorer
from ._solver import INITS, MapFit, SolverSettings, fit_map, fit_map_batches, start_matrix

__all__ = [
    "ALIGNMENT_METRICS",
    "AlignmentScorer",
    "alignment_score",
    "get_alignment_scorer",
    "INITS",
    "MapFit",
    "SolverSettings",
    "fit_map",
    "fit_map_batches",
    "start_matrix",
    "term_effects",
    "BASELINES",
    "PAIRED_METRICS",
    "compare_methods",
    "default_pairs",
    "paired_ablation",
    "per_split_scores",
    "fit_baseline",
    "register_baseline",
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

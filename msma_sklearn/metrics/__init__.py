"""Metrics on representations (similarity, mutual information, alignment) and on
generated text."""

from ._alignment import (
    cca_similarity_original,
    covariance_distance,
    distance_correlation,
    gaussian_kl,
    histogram_mi_original,
    procrustes_disparity,
)
from ._mutual_info import ksg_mutual_information
from ._probes import (
    LayerProbes,
    ScaleNameTest,
    control_labels,
    probe_layers,
    scale_name_tests,
)
from ._similarity import cka_matrix, linear_cka

__all__ = [
    "LayerProbes",
    "ScaleNameTest",
    "control_labels",
    "probe_layers",
    "scale_name_tests",
    "cca_similarity_original",
    "cka_matrix",
    "covariance_distance",
    "distance_correlation",
    "gaussian_kl",
    "histogram_mi_original",
    "ksg_mutual_information",
    "linear_cka",
    "procrustes_disparity",
]

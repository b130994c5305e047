"""Per-layer signals from outside layer similarity (logit lens, block deletion,
angular distance, intrinsic dimension, massive activations), and a test of a
segmentation's boundaries against them."""

from ._model import deletion_kl, logit_lens_kl
from ._profile import (
    SIGNALS,
    LayerProfile,
    ProfileTest,
    ShapeCheck,
    boundaries_against_profile,
    layer_profile,
    reference_shapes,
)
from ._signals import angular_distance, largest_unit_share, mean_interval, twonn_dimension

__all__ = [
    "SIGNALS",
    "LayerProfile",
    "ProfileTest",
    "ShapeCheck",
    "angular_distance",
    "boundaries_against_profile",
    "deletion_kl",
    "largest_unit_share",
    "layer_profile",
    "logit_lens_kl",
    "mean_interval",
    "reference_shapes",
    "twonn_dimension",
]

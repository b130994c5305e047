"""Metrics on representations: similarity (CKA) and mutual information.

Issue #4 adds the alignment metrics (KL, dCor, Procrustes, CCA); issue #5 the
text metrics.
"""

from ._mutual_info import ksg_mutual_information
from ._similarity import cka_matrix, linear_cka

__all__ = ["cka_matrix", "ksg_mutual_information", "linear_cka"]

"""numba as every footfit kernel uses it: parallel loops run on OpenMP.

open3d bundles an older TBB, which numba would try first and reject with a warning on every run, so each kernel
module imports numba from here instead of setting the threading layer itself.
"""

import numba
from numba import njit, prange

numba.config.THREADING_LAYER = "omp"

__all__ = ["numba", "njit", "prange"]

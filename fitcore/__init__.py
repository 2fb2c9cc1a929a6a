"""The core of footfit: shared settings and errors, then calibration, reconstruction, measurement, matching."""

import os

# numba's parallel kernels run on OpenMP: open3d bundles an older TBB, which numba would try first and reject
# with a warning on every run.
os.environ.setdefault("NUMBA_THREADING_LAYER", "omp")

"""The printed artwork calibration relies on: the marks on the plate and the chessboard target.

Both are part of the product (the plate is printed, the target ships with the rig); the simulator draws them
from these values and `fitcore/scan/calibrate.py` measures them. Plate frame, mm (docs/frames.md): the centre cross
defines the origin, the extra dot on +x the toe side.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

CROSS_ARM_MM = 20.0  # half length of each bar of the centre cross (40 mm arms tip to tip)
CROSS_HALF_WIDTH_MM = 1.5
# White dots (x, y, radius) printed on the plate: four around the centre, one more toward the toes (+x) so the
# plate's orientation is unambiguous.
PLATE_MARKS_MM = ((100.0, 0.0, 5.0), (-100.0, 0.0, 5.0), (0.0, 100.0, 5.0), (0.0, -100.0, 5.0), (130.0, 0.0, 3.0))

# The target: a chessboard that staff put at the plate's centre in TARGET_POSES poses: pose 0 flat, poses 1-4 on
# a WEDGE_DEG wedge, turned 90 deg further each time so that the board faces each side of the rig once.
TARGET_INNER_CORNERS = (9, 6)  # (columns, rows) of inner corners
TARGET_SQUARE_MM = 15.0
TARGET_POSES = 5
WEDGE_DEG = 30.0


@dataclass(frozen=True)
class TargetSpec:
    """The chessboard in its own frame (OpenCV object points): origin at the first inner corner, x along the
    columns, y along the rows, z into the board, so the printed face is z = 0."""

    inner_corners: tuple[int, int] = TARGET_INNER_CORNERS
    square_mm: float = TARGET_SQUARE_MM
    poses: int = TARGET_POSES

    def corners_mm(self) -> np.ndarray:
        """(cols * rows, 3) inner corners, row by row, as `cv2.findChessboardCorners` lists them."""
        cols, rows = self.inner_corners
        grid = np.mgrid[0:cols, 0:rows].T.reshape(-1, 2) * self.square_mm
        return np.hstack([grid, np.zeros((len(grid), 1))])

    def extent_mm(self) -> tuple[float, float, float, float]:
        """(x0, x1, y0, y1) of the white board, one square of border around the outer squares."""
        cols, rows = self.inner_corners
        s = self.square_mm
        return -2 * s, (cols + 1) * s, -2 * s, (rows + 1) * s


def mark_points_mm() -> np.ndarray:
    """(6, 3) centres of the plate marks in the plate frame: the cross (index 0), then the dots in order."""
    dots = [(x, y, 0.0) for x, y, _ in PLATE_MARKS_MM]
    return np.array([(0.0, 0.0, 0.0), *dots])


def mark_area_samples_mm(index: int, spacing_mm: float = 0.25) -> np.ndarray:
    """(N, 3) points evenly covering mark `index` (as in `mark_points_mm`), for its image-area centroid."""
    if index == 0:
        half, reach = CROSS_HALF_WIDTH_MM, CROSS_ARM_MM
    else:
        x, y, r = PLATE_MARKS_MM[index - 1]
        half = reach = r
    s = np.arange(-reach, reach, spacing_mm) + spacing_mm / 2
    gx, gy = np.meshgrid(s, s)
    gx, gy = gx.ravel(), gy.ravel()
    if index == 0:
        inside = (np.abs(gx) <= half) | (np.abs(gy) <= half)
        centre = (0.0, 0.0)
    else:
        inside = np.hypot(gx, gy) <= half
        centre = (x, y)
    return np.stack([gx[inside] + centre[0], gy[inside] + centre[1], np.zeros(inside.sum())], axis=1)

"""Triangle meshes in millimetres, and reading/writing them (PLY, OBJ, STL)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Mesh:
    """A triangle mesh in millimetres."""

    vertices_mm: np.ndarray  # (N, 3) float64
    triangles: np.ndarray  # (M, 3) int32, counter-clockwise seen from outside

    def transformed(self, pose: np.ndarray) -> "Mesh":
        """The mesh moved by a 4x4 pose (rotation + translation, mm)."""
        v = self.vertices_mm @ pose[:3, :3].T + pose[:3, 3]
        return Mesh(v, self.triangles)

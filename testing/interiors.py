"""Interior scans for tests: spoiled the ways real ones go wrong (the importer's refusals), and cut directly."""

from __future__ import annotations

import numpy as np

from core.mesh import Mesh

DEFECTS = ("open", "metres", "mirrored")


def spoiled(mesh: Mesh, defect: str) -> Mesh:
    """The cavity with a hole (open), in metres, or mirrored (a right shoe where a left one was expected)."""
    if defect == "open":
        return Mesh(mesh.vertices_mm, mesh.triangles[5:])
    if defect == "metres":
        return Mesh(mesh.vertices_mm / 1000.0, mesh.triangles)
    if defect == "mirrored":
        return Mesh(mesh.vertices_mm * [1.0, -1.0, 1.0], mesh.triangles[:, ::-1])
    raise ValueError(f"unknown defect {defect!r}: use one of {', '.join(DEFECTS)}")


def mesh_section(mesh: Mesh, x_mm: float) -> np.ndarray:
    """(y, z) where the mesh's edges cross the plane at x: a direct cut of a cavity, no sections involved (the
    tests' independent measurement of an interior)."""
    v = mesh.vertices_mm
    edges = mesh.triangles[:, [0, 1, 1, 2, 2, 0]].reshape(-1, 2)
    a, b = v[edges[:, 0]], v[edges[:, 1]]
    crossing = (a[:, 0] < x_mm) != (b[:, 0] < x_mm)
    a, b = a[crossing], b[crossing]
    t = (x_mm - a[:, 0]) / (b[:, 0] - a[:, 0])
    return (a + t[:, None] * (b - a))[:, 1:]

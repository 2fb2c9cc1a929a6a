"""Interior scans spoiled the ways real ones go wrong, for tests of the importer's refusals."""

from __future__ import annotations

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

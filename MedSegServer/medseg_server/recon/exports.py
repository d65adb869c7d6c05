"""Mesh and centreline files: STL, OBJ, VTP per structure; centrelines as VTP polylines."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import vtk
from vtk.util import numpy_support

from ..atomic import atomic_write
from ..vessels.graph import VesselTree


def _writer(kind: str) -> vtk.vtkWriter:
    if kind == "stl":
        w = vtk.vtkSTLWriter()
        w.SetFileTypeToBinary()
        return w
    if kind == "obj":
        return vtk.vtkOBJWriter()
    if kind == "vtp":
        w = vtk.vtkXMLPolyDataWriter()
        w.SetDataModeToBinary()
        return w
    raise ValueError(f"unknown mesh format {kind!r}")


def write_mesh(poly: vtk.vtkPolyData, path: Path) -> Path:
    """Write a surface; the format follows the suffix (.stl, .obj, .vtp). Atomic."""
    path = Path(path)
    kind = path.suffix.lower().lstrip(".")

    def write(tmp: Path) -> None:
        w = _writer(kind)
        w.SetFileName(str(tmp))
        w.SetInputData(poly)
        if not w.Write():
            raise OSError(f"VTK could not write {path.name}")

    return atomic_write(path, write, suffix=path.suffix)


def centerline_polydata(trees: dict[str, VesselTree], tree_values: dict[str, int]) -> vtk.vtkPolyData:
    """One polyline per branch; point data ``Radius`` (mm), cell data ``BranchId``, ``ParentId``
    (-1 for roots), ``Generation``, ``Tree`` (label value), ``LengthMm``; field data ``TreeNames``."""
    pts, radius, lines = [], [], []
    cells: dict[str, list] = {"BranchId": [], "ParentId": [], "Generation": [], "Tree": [], "LengthMm": []}
    n = 0
    for name, tree in trees.items():
        for b in tree.branches:
            k = len(b.points_mm)
            pts.append(b.points_mm)
            radius.append(b.radius_mm)
            lines.append(np.concatenate([[k], np.arange(n, n + k)]))
            n += k
            cells["BranchId"].append(b.id)
            cells["ParentId"].append(-1 if b.parent_id is None else b.parent_id)
            cells["Generation"].append(b.generation)
            cells["Tree"].append(tree_values.get(name, 0))
            cells["LengthMm"].append(b.length_mm)
    poly = vtk.vtkPolyData()
    vp = vtk.vtkPoints()
    vp.SetData(numpy_support.numpy_to_vtk(np.concatenate(pts) if pts else np.zeros((0, 3)), deep=1))
    poly.SetPoints(vp)
    ca = vtk.vtkCellArray()
    if lines:
        ca.ImportLegacyFormat(numpy_support.numpy_to_vtkIdTypeArray(np.concatenate(lines).astype(np.int64), deep=1))
    poly.SetLines(ca)
    r = numpy_support.numpy_to_vtk(np.concatenate(radius) if radius else np.zeros(0), deep=1)
    r.SetName("Radius")
    poly.GetPointData().AddArray(r)
    poly.GetPointData().SetActiveScalars("Radius")
    for key, values in cells.items():
        arr = numpy_support.numpy_to_vtk(np.asarray(values, float if key == "LengthMm" else np.int32), deep=1)
        arr.SetName(key)
        poly.GetCellData().AddArray(arr)
    names = vtk.vtkStringArray()
    names.SetName("TreeNames")
    for name in trees:
        names.InsertNextValue(f"{tree_values.get(name, 0)}={name}")
    poly.GetFieldData().AddArray(names)
    return poly


def centerline_tubes(poly: vtk.vtkPolyData, sides: int = 10) -> vtk.vtkPolyData:
    """Tubes around the centrelines whose radius follows the ``Radius`` array (for rendering)."""
    tube = vtk.vtkTubeFilter()
    tube.SetInputData(poly)
    tube.SetVaryRadiusToVaryRadiusByAbsoluteScalar()
    tube.SetNumberOfSides(sides)
    tube.CappingOn()
    tube.Update()
    return tube.GetOutput()

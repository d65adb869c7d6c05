"""Measures (structure, measure, value) rows <-> a table node."""

from __future__ import annotations

import vtk

COLUMNS = ("Structure", "Measure", "Value")


def measures_table(scene, rows, name: str = "MedSeg measures", node=None):
    """A table node (new, or ``node`` refilled) with the three string columns of ``rows``."""
    if node is None:
        node = scene.AddNewNodeByClass("vtkMRMLTableNode", name)
    table = vtk.vtkTable()
    arrays = []
    for title in COLUMNS:
        array = vtk.vtkStringArray()
        array.SetName(title)
        table.AddColumn(array)
        arrays.append(array)
    for row in rows:
        for array, value in zip(arrays, row, strict=True):
            array.InsertNextValue(str(value))
    node.SetAndObserveTable(table)
    return node


def table_rows(node) -> list[tuple[str, ...]]:
    """The rows of a table node as string tuples."""
    table = node.GetTable()
    return [
        tuple(table.GetValue(r, c).ToString() for c in range(table.GetNumberOfColumns()))
        for r in range(table.GetNumberOfRows())
    ]

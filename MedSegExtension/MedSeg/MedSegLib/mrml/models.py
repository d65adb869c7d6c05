"""Meshes (reconstruction) <-> model nodes, and exports to STL/OBJ/VTP/PLY/glTF."""

from __future__ import annotations

import re
from pathlib import Path

import vtk

from ..recon import MeshEntry, ReconBundle

EXPORT_FORMATS = ("stl", "obj", "vtp", "ply", "gltf")


def read_mesh(path: str | Path) -> vtk.vtkPolyData:
    """Read a mesh file with VTK (vtp, vtk, stl, obj, ply, gltf/glb) into one polydata."""
    path = Path(path)
    suffix = path.suffix.lower()
    readers = {
        ".vtp": vtk.vtkXMLPolyDataReader,
        ".vtk": vtk.vtkPolyDataReader,
        ".stl": vtk.vtkSTLReader,
        ".obj": vtk.vtkOBJReader,
        ".ply": vtk.vtkPLYReader,
    }
    if suffix in (".gltf", ".glb"):
        return _read_gltf(path)
    if suffix not in readers:
        raise ValueError(f"unsupported mesh format {suffix!r} ({path.name})")
    reader = readers[suffix]()
    reader.SetFileName(str(path))
    reader.Update()
    output = reader.GetOutput()
    if output is None or output.GetNumberOfPoints() == 0:
        raise ValueError(f"{path.name} holds no mesh")
    out = vtk.vtkPolyData()
    out.DeepCopy(output)
    return out


def _read_gltf(path: Path) -> vtk.vtkPolyData:
    reader = vtk.vtkGLTFReader()
    reader.SetFileName(str(path))
    reader.Update()
    append = vtk.vtkAppendPolyData()
    iterator = reader.GetOutput().NewIterator()
    iterator.InitTraversal()
    while not iterator.IsDoneWithTraversal():
        block = iterator.GetCurrentDataObject()
        if isinstance(block, vtk.vtkPolyData) and block.GetNumberOfPoints():
            append.AddInputData(block)
        iterator.GoToNextItem()
    if append.GetNumberOfInputConnections(0) == 0:
        raise ValueError(f"{path.name} holds no mesh")
    append.Update()
    out = vtk.vtkPolyData()
    out.DeepCopy(append.GetOutput())
    return out


def add_model(scene, polydata: vtk.vtkPolyData, name: str, color=(0.8, 0.8, 0.8), opacity: float = 1.0):
    """A model node with a display node (colour, opacity, visible in slice views as an outline)."""
    node = scene.AddNewNodeByClass("vtkMRMLModelNode", name)
    node.SetAndObservePolyData(polydata)
    node.CreateDefaultDisplayNodes()
    display = node.GetDisplayNode()
    display.SetColor(*color)
    display.SetOpacity(float(opacity))
    display.SetVisibility2D(True)
    if polydata.GetNumberOfPolys() == 0 and polydata.GetNumberOfLines() > 0:
        display.SetLineWidth(3)  # centerlines
    return node


def flip_lps_ras(polydata: vtk.vtkPolyData) -> vtk.vtkPolyData:
    """The mesh with x and y negated (LPS <-> RAS; a rotation, so triangle winding is kept)."""
    transform = vtk.vtkTransform()
    transform.Scale(-1.0, -1.0, 1.0)
    flt = vtk.vtkTransformPolyDataFilter()
    flt.SetTransform(transform)
    flt.SetInputData(polydata)
    flt.Update()
    out = vtk.vtkPolyData()
    out.DeepCopy(flt.GetOutput())
    return out


def load_bundle_models(scene, bundle: ReconBundle, prefix: str = "") -> list:
    """One model node per mesh of a bundle (in RAS), named and coloured like the segments."""
    nodes = []
    for entry in bundle.meshes:
        polydata = read_mesh(entry.path)
        if bundle.coordinate_system != "RAS":
            polydata = flip_lps_ras(polydata)
        nodes.append(add_model(scene, polydata, f"{prefix}{entry.display}", _color(entry), entry.opacity))
    return nodes


def _color(entry: MeshEntry) -> tuple[float, float, float]:
    if entry.structure is None:
        return (0.8, 0.8, 0.8)
    if entry.centerline:
        return tuple(min(1.0, c * 0.6 + 0.4) for c in entry.structure.color)  # lighter than the surface
    return entry.structure.color


def _safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_") or "model"


def export_models(nodes, folder: str | Path, fmt: str = "stl", lps: bool = True) -> list[Path]:
    """Write model nodes to ``folder``, one file per model (glTF: one scene file).

    Coordinates are LPS by default, as Slicer itself saves models and as the server writes them.
    """
    fmt = fmt.lower()
    if fmt not in EXPORT_FORMATS:
        raise ValueError(f"export format must be one of {', '.join(EXPORT_FORMATS)}")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    meshes = [(node.GetName(), flip_lps_ras(node.GetPolyData()) if lps else node.GetPolyData()) for node in nodes]
    if fmt == "gltf":
        return [_write_gltf(meshes, folder / "scene.gltf")]
    paths = []
    for name, polydata in meshes:
        path = folder / f"{_safe_name(name)}.{fmt}"
        if fmt == "obj":
            writer = vtk.vtkOBJWriter()
        elif fmt == "vtp":
            writer = vtk.vtkXMLPolyDataWriter()
        elif fmt == "ply":
            writer = vtk.vtkPLYWriter()
        else:
            writer = vtk.vtkSTLWriter()
            writer.SetFileTypeToBinary()
            triangles = vtk.vtkTriangleFilter()
            triangles.SetInputData(polydata)
            triangles.Update()
            polydata = triangles.GetOutput()
        writer.SetFileName(str(path))
        writer.SetInputData(polydata)
        if not writer.Write():
            raise OSError(f"could not write {path}")
        paths.append(path)
    return paths


def _write_gltf(meshes, path: Path) -> Path:
    # vtkGLTFWriter wants a multiblock of multiblocks (one glTF node per inner block)
    blocks = vtk.vtkMultiBlockDataSet()
    for index, (name, polydata) in enumerate(meshes):
        inner = vtk.vtkMultiBlockDataSet()
        inner.SetBlock(0, polydata)
        blocks.SetBlock(index, inner)
        blocks.GetMetaData(index).Set(vtk.vtkCompositeDataSet.NAME(), name)
    writer = vtk.vtkGLTFWriter()
    writer.SetFileName(str(path))
    writer.SetInlineData(True)  # one self-contained file
    writer.SetInputData(blocks)
    writer.Write()
    if not path.exists():
        raise OSError(f"could not write {path}")
    return path

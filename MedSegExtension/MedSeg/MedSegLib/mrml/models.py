"""Meshes (reconstruction) <-> model nodes, and exports to STL/OBJ/VTP/PLY/glTF."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import vtk
from vtk.util import numpy_support

from ..labels import BY_VALUE, fallback_color
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
    """One model node per mesh of a bundle (in RAS), named and coloured like the segments.

    A centerline file holding several trees (cell array ``Tree`` = label value, as the server's
    ``centerlines.vtp``) becomes one model per tree: "Portal vein centerlines", ...
    """
    nodes = []
    for entry in bundle.meshes:
        polydata = read_mesh(entry.path)
        if bundle.coordinate_system != "RAS":
            polydata = flip_lps_ras(polydata)
        parts = split_trees(polydata) if entry.centerline else {}
        if len(parts) > 1 or (parts and entry.structure is None):
            for value, part in parts.items():
                structure = BY_VALUE.get(value)
                name = f"{structure.display} centerlines" if structure else f"Tree {value} centerlines"
                color = _lighter(structure.color) if structure else fallback_color(value)
                nodes.append(add_model(scene, part, f"{prefix}{name}", color, 1.0))
            continue
        nodes.append(add_model(scene, polydata, f"{prefix}{entry.display}", _color(entry), entry.opacity))
    return nodes


def split_trees(polydata: vtk.vtkPolyData, array: str = "Tree") -> dict[int, vtk.vtkPolyData]:
    """The lines of each tree (cell data ``array``) as separate polydata, by label value; {} without it."""
    values = polydata.GetCellData().GetArray(array)
    if values is None or polydata.GetNumberOfCells() == 0:
        return {}
    tree_of_cell = numpy_support.vtk_to_numpy(values).astype(int).ravel()
    parts = {}
    for value in sorted(set(tree_of_cell.tolist())):
        ids = vtk.vtkIdTypeArray()
        for cell in np.flatnonzero(tree_of_cell == value):
            ids.InsertNextValue(int(cell))
        selection_node = vtk.vtkSelectionNode()
        selection_node.SetFieldType(vtk.vtkSelectionNode.CELL)
        selection_node.SetContentType(vtk.vtkSelectionNode.INDICES)
        selection_node.SetSelectionList(ids)
        selection = vtk.vtkSelection()
        selection.AddNode(selection_node)
        extract = vtk.vtkExtractSelection()
        extract.SetInputData(0, polydata)
        extract.SetInputData(1, selection)
        geometry = vtk.vtkGeometryFilter()
        geometry.SetInputConnection(extract.GetOutputPort())
        geometry.Update()
        part = vtk.vtkPolyData()
        part.DeepCopy(geometry.GetOutput())
        parts[int(value)] = part
    return parts


def _lighter(color) -> tuple[float, float, float]:
    return tuple(min(1.0, c * 0.6 + 0.4) for c in color)


def _color(entry: MeshEntry) -> tuple[float, float, float]:
    if entry.structure is None:
        return (0.8, 0.8, 0.8)
    if entry.centerline:
        return _lighter(entry.structure.color)  # lighter than the surface
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
        return [_write_gltf(meshes, [_display_of(node) for node in nodes], folder / "scene.gltf")]
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


def _display_of(node) -> tuple[tuple[float, float, float], float]:
    display = node.GetDisplayNode()
    if display is None:
        return (0.8, 0.8, 0.8), 1.0
    return tuple(float(c) for c in display.GetColor()), float(display.GetOpacity())


def _write_gltf(meshes, looks, path: Path) -> Path:
    """One self-contained glTF scene: a node per model, each with a material of the model's colour
    and opacity (``baseColorFactor``; ``alphaMode`` BLEND when see-through)."""
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
    doc = json.loads(path.read_text(encoding="utf-8"))
    add_gltf_materials(doc, [name for name, _ in meshes], looks)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(doc), encoding="utf-8")
    tmp.replace(path)
    return path


def add_gltf_materials(doc: dict, names: list[str], looks) -> None:
    """Give the i-th mesh of a glTF document (``vtkGLTFWriter`` writes them in block order) the name
    ``names[i]`` and a PBR material of colour/opacity ``looks[i]``."""
    meshes = doc.get("meshes") or []
    if len(meshes) != len(names):
        raise ValueError(f"the glTF holds {len(meshes)} meshes for {len(names)} models")
    materials = doc.setdefault("materials", [])
    for mesh, name, (color, opacity) in zip(meshes, names, looks, strict=True):
        material = {
            "name": name,
            "pbrMetallicRoughness": {"baseColorFactor": [*map(float, color), float(opacity)],
                                     "metallicFactor": 0.0, "roughnessFactor": 0.8},
            "doubleSided": True,
        }
        if opacity < 1.0:
            material["alphaMode"] = "BLEND"
        mesh["name"] = name
        for primitive in mesh.get("primitives", []):
            index = primitive.get("material")
            if isinstance(index, int) and 0 <= index < len(materials):
                materials[index] = dict(material)  # replace the writer's plain white material
            else:
                materials.append(dict(material))
                primitive["material"] = len(materials) - 1
    for node in doc.get("nodes") or []:
        if "mesh" in node and node["mesh"] < len(names):
            node["name"] = names[node["mesh"]]

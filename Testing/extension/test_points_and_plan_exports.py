"""Shift-click exclude points, per-tree centerline models and coloured glTF export (slicer-core, VTK)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import vtk
from vtk.util import numpy_support

from MedSegLib.interactions import annotated_slices, click_is_negative, scribble_payload


def test_shift_click_in_the_include_list_is_an_exclude_point():
    assert click_is_negative("include", shift=True)
    assert not click_is_negative("include", shift=False)
    assert click_is_negative("exclude", shift=False)
    with pytest.raises(ValueError):
        click_is_negative("other", shift=True)


def test_moving_the_placed_point_to_the_exclude_list(scene):
    from MedSegLib.mrml.markups import control_points_ras, move_last_point

    include = scene.AddNewNodeByClass("vtkMRMLMarkupsFiducialNode", "include")
    exclude = scene.AddNewNodeByClass("vtkMRMLMarkupsFiducialNode", "exclude")
    include.AddControlPoint(1.0, 2.0, 3.0)
    include.AddControlPoint(-4.5, 5.25, 6.0)
    assert move_last_point(include, exclude)
    assert np.allclose(control_points_ras(include), [[1, 2, 3]])
    assert np.allclose(control_points_ras(exclude), [[-4.5, 5.25, 6.0]])
    include.RemoveAllControlPoints()
    assert not move_last_point(include, exclude)


def test_scribble_and_slice_parameters_are_in_server_voxel_order():
    fg = np.zeros((4, 5, 6), bool)
    fg[1, 2, 3] = True  # [k, j, i]
    bg = np.zeros_like(fg)
    bg[1, 2, 3] = bg[0, 0, 5] = True
    assert scribble_payload(fg, bg) == {"foreground": [[3, 2, 1]], "background": [[5, 0, 0]]}
    with pytest.raises(ValueError, match="thinner"):
        scribble_payload(np.ones((4, 5, 6), bool), bg, max_voxels=10)
    mask = np.zeros((20, 30, 30), bool)
    mask[[3, 9, 15], 5:25, 5:25] = True
    assert annotated_slices(mask) == {"axis": "z", "indices": [3, 9, 15]}
    sagittal = np.zeros((20, 30, 30), bool)
    sagittal[2:18, 4:20, [4, 12, 20]] = True
    assert annotated_slices(sagittal) == {"axis": "x", "indices": [4, 12, 20]}


def _trees_polydata() -> vtk.vtkPolyData:
    """Branches of three trees in one polydata, as the server's centerlines.vtp (cell data ``Tree``)."""
    points, lines, trees = [], [], []
    for tree, offset in ((2, 0.0), (2, 10.0), (3, 30.0), (4, 60.0)):
        start = len(points)
        points += [(offset, 0.0, 0.0), (offset + 5.0, 2.0, 1.0), (offset + 8.0, 5.0, 2.0)]
        lines.append([3, start, start + 1, start + 2])
        trees.append(tree)
    poly = vtk.vtkPolyData()
    vtk_points = vtk.vtkPoints()
    vtk_points.SetData(numpy_support.numpy_to_vtk(np.asarray(points, float), deep=1))
    poly.SetPoints(vtk_points)
    cells = vtk.vtkCellArray()
    cells.ImportLegacyFormat(numpy_support.numpy_to_vtkIdTypeArray(np.asarray(lines, np.int64).ravel(), deep=1))
    poly.SetLines(cells)
    tree_array = numpy_support.numpy_to_vtk(np.asarray(trees, np.int32), deep=1)
    tree_array.SetName("Tree")
    poly.GetCellData().AddArray(tree_array)
    return poly


def test_centerlines_split_per_tree_and_gltf_keeps_colours(scene, tmp_path):
    from MedSegLib.labels import BY_NAME
    from MedSegLib.mrml.controller import MedSegController
    from MedSegLib.recon import read_bundle

    folder = tmp_path / "bundle"
    folder.mkdir()
    writer = vtk.vtkXMLPolyDataWriter()
    writer.SetFileName(str(folder / "centerlines.vtp"))
    writer.SetInputData(_trees_polydata())
    assert writer.Write()
    sphere = vtk.vtkSphereSource()
    sphere.SetRadius(30)
    sphere.Update()
    writer = vtk.vtkXMLPolyDataWriter()
    writer.SetFileName(str(folder / "liver.vtp"))
    writer.SetInputData(sphere.GetOutput())
    assert writer.Write()
    (folder / "report.json").write_text(json.dumps({"liver": {"volume_ml": 1000}}))

    controller = MedSegController(scene, tmp_path / "work")
    plan = controller.apply_recon(read_bundle(folder))
    models = {n.GetName(): n for n in plan.models}
    assert set(models) == {"Liver", "Portal vein centerlines", "Hepatic veins centerlines",
                           "Inferior vena cava centerlines"}
    portal = models["Portal vein centerlines"]
    assert portal.GetPolyData().GetNumberOfLines() == 2 and portal.GetPolyData().GetNumberOfPoints() == 6
    assert models["Hepatic veins centerlines"].GetPolyData().GetNumberOfLines() == 1
    x_range = models["Inferior vena cava centerlines"].GetPolyData().GetBounds()[:2]
    assert x_range == pytest.approx((-68.0, -60.0))  # LPS -> RAS
    portal_colour = np.asarray(portal.GetDisplayNode().GetColor())
    assert np.allclose(portal_colour, np.asarray(BY_NAME["portal_vein"].color) * 0.6 + 0.4)
    assert not np.allclose(portal_colour, models["Hepatic veins centerlines"].GetDisplayNode().GetColor())

    path = controller.export_plan(tmp_path / "gltf", "gltf")[0]
    doc = json.loads(path.read_text())
    by_name = {}
    for node in doc["nodes"]:
        if "mesh" in node:
            primitive = doc["meshes"][node["mesh"]]["primitives"][0]
            by_name[node["name"]] = doc["materials"][primitive["material"]]
    assert set(by_name) == set(models)
    liver = by_name["Liver"]
    assert liver["pbrMetallicRoughness"]["baseColorFactor"] == pytest.approx([*BY_NAME["liver"].color, 0.35])
    assert liver["alphaMode"] == "BLEND"
    assert by_name["Portal vein centerlines"]["pbrMetallicRoughness"]["baseColorFactor"][:3] == pytest.approx(portal_colour)
    assert "alphaMode" not in by_name["Portal vein centerlines"]
    reader = vtk.vtkGLTFReader()
    reader.SetFileName(str(path))
    reader.Update()
    assert reader.GetOutput().GetNumberOfBlocks() >= 1

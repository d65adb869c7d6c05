"""A reconstruction bundle (zip of VTK meshes + report + territories) becomes model nodes and a table."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest
import SimpleITK as sitk
import vtk

from MedSegLib.recon import BundleError, measure_rows, read_bundle
from mrml_testdata import oblique_image


def _sphere(center, radius) -> vtk.vtkPolyData:
    source = vtk.vtkSphereSource()
    source.SetCenter(*center)
    source.SetRadius(radius)
    source.SetThetaResolution(16)
    source.SetPhiResolution(16)
    source.Update()
    return source.GetOutput()


def _line(points) -> vtk.vtkPolyData:
    source = vtk.vtkPolyLineSource()
    source.SetNumberOfPoints(len(points))
    for i, p in enumerate(points):
        source.SetPoint(i, *p)
    source.Update()
    return source.GetOutput()


def _write(writer_cls, polydata, path):
    writer = writer_cls()
    writer.SetFileName(str(path))
    writer.SetInputData(polydata)
    assert writer.Write()


REPORT = {
    "liver": {"volume_ml": 1523.4},
    "tumour": [{"volume_ml": 12.5, "distance_to_portal_vein_mm": 8.25, "nearest_branch": "P4"}],
    "flr": {"remnant_ml": 900.0, "flr_percent": 59.1},
    "territories": {"generation": 2, "labels": {"1": {"name": "P2a"}, "2": {"voxels": 10}}},
    "structures": {"portal_vein": {"display": "Portal vein", "volume_ml": 20.5, "files": ["meshes/portal_vein.vtp"]}},
    "coordinate_system": "LPS",
    "units": "mm",
}


@pytest.fixture
def bundle_zip(tmp_path):
    folder = tmp_path / "made"
    folder.mkdir()
    _write(vtk.vtkXMLPolyDataWriter, _sphere((0, 0, 0), 40), folder / "liver.vtp")
    _write(vtk.vtkSTLWriter, _sphere((10, 5, 0), 4), folder / "tumour.stl")
    _write(vtk.vtkXMLPolyDataWriter, _line([(0, 0, 0), (5, 5, 5), (9, 12, 3)]), folder / "portal_vein_centerlines.vtp")
    _write(vtk.vtkOBJWriter, _sphere((-10, 0, 0), 3), folder / "hepatic_veins.obj")
    (folder / "report.json").write_text(json.dumps(REPORT))
    image = oblique_image()
    territories = np.zeros(sitk.GetArrayViewFromImage(image).shape, np.uint8)
    territories[:4] = 1
    territories[4:] = 2
    label = sitk.GetImageFromArray(territories)
    label.CopyInformation(image)
    sitk.WriteImage(label, str(folder / "territories.nii.gz"))
    path = tmp_path / "recon.zip"
    with zipfile.ZipFile(path, "w") as archive:
        for file in folder.iterdir():
            archive.write(file, f"case/{file.name}")
    return path, image


def test_bundle_reader_finds_meshes_report_and_territories(bundle_zip, tmp_path):
    path, _ = bundle_zip
    bundle = read_bundle(path.read_bytes(), tmp_path / "out")
    names = {m.name: m for m in bundle.meshes}
    assert set(names) == {"liver", "tumour", "portal_vein_centerlines", "hepatic_veins"}
    assert names["portal_vein_centerlines"].centerline and names["portal_vein_centerlines"].structure.name == "portal_vein"
    assert names["liver"].opacity < 1 and names["tumour"].opacity == 1
    assert bundle.territories.name == "territories.nii.gz"
    rows = bundle.measure_rows()
    assert ("Liver", "volume_ml", "1523") in rows
    assert ("Liver tumour", "1/distance_to_portal_vein_mm", "8.25") in rows
    assert ("flr", "flr_percent", "59.1") in rows
    assert ("Portal vein", "volume_ml", "20.5") in rows
    assert not [r for r in rows if r[1] in ("units", "files", "display", "coordinate_system")]


def test_reconstruction_becomes_model_nodes_table_and_territories(scene, bundle_zip, tmp_path):
    from MedSegLib.mrml import tables, volumes
    from MedSegLib.mrml.controller import MedSegController

    path, image = bundle_zip
    volume = volumes.add_volume(scene, image, "ct")
    controller = MedSegController(scene, tmp_path / "work")
    plan = controller.apply_recon(read_bundle(path, tmp_path / "unzipped"), volume)
    models = {n.GetName(): n for n in plan.models}
    assert set(models) == {"Liver", "Liver tumour", "Portal vein centerlines", "Hepatic veins"}
    liver = models["Liver"]
    assert liver.GetPolyData().GetNumberOfPoints() == _sphere((0, 0, 0), 40).GetNumberOfPoints()
    assert liver.GetDisplayNode().GetOpacity() == pytest.approx(0.35)
    assert np.allclose(models["Liver tumour"].GetDisplayNode().GetColor(), (0.93, 0.82, 0.25))
    assert models["Portal vein centerlines"].GetPolyData().GetNumberOfLines() == 1
    tumour_bounds = models["Liver tumour"].GetPolyData().GetBounds()  # written at LPS (10, 5, 0)
    assert np.allclose([(tumour_bounds[0] + tumour_bounds[1]) / 2, (tumour_bounds[2] + tumour_bounds[3]) / 2], [-10, -5], atol=0.1)
    bounds = [0.0] * 6
    liver.GetPolyData().GetBounds(bounds)
    assert bounds[1] == pytest.approx(40, abs=0.5)
    assert ("Liver", "volume_ml", "1523") in tables.table_rows(plan.table)
    territories = plan.territories.GetSegmentation()
    assert territories.GetNumberOfSegments() == 2 and territories.GetSegment("P2a") is not None
    assert territories.GetSegment("territory_2") is not None

    exported = controller.export_plan(tmp_path / "export", "stl")
    assert {p.name for p in exported} >= {"Liver.stl", "Liver_tumour.stl", "measures.csv"}
    reader = vtk.vtkSTLReader()
    reader.SetFileName(str(tmp_path / "export" / "Liver.stl"))
    reader.Update()
    assert reader.GetOutput().GetNumberOfPoints() > 100
    assert '"Liver","volume_ml","1523"' in (tmp_path / "export" / "measures.csv").read_text()
    obj = controller.export_plan(tmp_path / "obj", "obj")
    assert (tmp_path / "obj" / "Hepatic_veins.obj").exists() and len(obj) == 5
    gltf = controller.export_plan(tmp_path / "gltf", "gltf")
    from MedSegLib.mrml.models import read_mesh

    scene_mesh = read_mesh(gltf[0])
    assert scene_mesh.GetNumberOfPoints() >= sum(n.GetPolyData().GetNumberOfPoints() for n in plan.models if n.GetPolyData().GetNumberOfPolys())

    controller.clear_plan()
    assert scene.GetNodesByClass("vtkMRMLModelNode").GetNumberOfItems() == 0


def test_bad_bundles_are_refused(tmp_path):
    with pytest.raises(BundleError, match="not a zip"):
        read_bundle(b"not a zip", tmp_path / "a")
    evil = tmp_path / "evil.zip"
    with zipfile.ZipFile(evil, "w") as archive:
        archive.writestr("../escape.vtp", "x")
    with pytest.raises(BundleError, match="unsafe"):
        read_bundle(evil, tmp_path / "b")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(BundleError, match="no meshes"):
        read_bundle(empty)
    assert measure_rows({"liver": {"centerline_points": list(range(100))}}) == []

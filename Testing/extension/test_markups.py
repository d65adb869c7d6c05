"""Markups control points and ROI nodes become server clicks / boxes at the right voxels."""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk

from MedSegLib.geometry import grid_of
from MedSegLib.interactions import interaction_params
from mrml_testdata import oblique_image

LPS = np.array([-1.0, -1.0, 1.0])


def _ras(image, index):
    return np.asarray(image.TransformContinuousIndexToPhysicalPoint([float(v) for v in index])) * LPS


def test_markups_points_become_clicks_at_the_right_voxels(scene, tmp_path):
    from MedSegLib.mrml import markups, volumes

    image = oblique_image()
    volume = volumes.add_volume(scene, image, "v")
    positive = scene.AddNewNodeByClass("vtkMRMLMarkupsFiducialNode", "include")
    negative = scene.AddNewNodeByClass("vtkMRMLMarkupsFiducialNode", "exclude")
    for index in [(2, 3, 4), (10, 9, 7)]:
        positive.AddControlPoint(*_ras(image, np.add(index, 0.3)))
    negative.AddControlPoint(*_ras(image, (6, 1, 0)))

    interaction = markups.interaction_from_markups("liver", positive, negative, volume)
    params = interaction_params(interaction, volumes.volume_grid(volume))
    assert params["foreground"] == [[2, 3, 4], [10, 9, 7]]
    assert params["background"] == [[6, 1, 0]]

    # the file the server reads puts the same voxels at those physical points
    path = volumes.write_volume(volume, tmp_path / "v.nii.gz")
    server_image = sitk.ReadImage(str(path))
    for (i, j, k), ras in zip(params["foreground"], markups.control_points_ras(positive), strict=True):
        assert server_image.TransformPhysicalPointToIndex((ras * LPS).tolist()) == (i, j, k)


def test_points_under_a_transformed_volume(scene):
    """Points are in world RAS; a volume under a linear transform is reached through its inverse."""
    import vtk

    from MedSegLib.mrml import markups, volumes

    image = oblique_image()
    volume = volumes.add_volume(scene, image, "v")
    transform = scene.AddNewNodeByClass("vtkMRMLLinearTransformNode")
    matrix = vtk.vtkMatrix4x4()
    matrix.SetElement(0, 3, 25.0)
    matrix.SetElement(2, 3, -4.0)
    transform.SetMatrixTransformToParent(matrix)
    volume.SetAndObserveTransformNodeID(transform.GetID())
    points = scene.AddNewNodeByClass("vtkMRMLMarkupsFiducialNode")
    local = _ras(image, (5, 5, 5))
    points.AddControlPoint(*(local + [25.0, 0.0, -4.0]))  # where the voxel is shown in world space
    params = interaction_params(markups.interaction_from_markups("liver", points, None, volume), volumes.volume_grid(volume))
    assert params["foreground"] == [[5, 5, 5]]


def test_roi_node_becomes_a_voxel_box(scene):
    from MedSegLib.mrml import markups, volumes

    image = oblique_image(shape_zyx=(20, 20, 20), spacing=(1.0, 1.0, 1.0))
    image.SetDirection((1, 0, 0, 0, 1, 0, 0, 0, 1))
    volume = volumes.add_volume(scene, image, "v")
    roi = scene.AddNewNodeByClass("vtkMRMLMarkupsROINode")
    center = _ras(image, (10, 8, 6))
    roi.SetCenter(*center)
    roi.SetSize(6.0, 4.0, 2.0)
    corners = markups.roi_corners_ras(roi, volume)
    assert corners.shape == (8, 3)
    box = grid_of(image).box(corners)
    assert box == [7, 13, 6, 10, 5, 7]
    assert markups.roi_corners_ras(scene.AddNewNodeByClass("vtkMRMLMarkupsROINode"), volume) is None

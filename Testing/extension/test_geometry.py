"""RAS <-> IJK of clicks and boxes on an oblique, non-unit-spacing volume (SimpleITK is the judge)."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from MedSegLib.geometry import Grid, OutsideVolume, grid_of, image_from_array, itk_from_ijk_to_ras
from MedSegLib.interactions import Interaction, interaction_params
from mrml_testdata import oblique_image

LPS = np.array([-1.0, -1.0, 1.0])


def _ras_of_index(image: sitk.Image, index) -> np.ndarray:
    """RAS of a (continuous) ITK index, computed by SimpleITK in LPS then flipped."""
    return np.asarray(image.TransformContinuousIndexToPhysicalPoint([float(v) for v in index])) * LPS


def test_grid_matches_simpleitk_on_an_oblique_volume():
    image = oblique_image()
    grid = grid_of(image)
    rng = np.random.default_rng(1)
    index = rng.uniform(0, 8, (20, 3))
    ras = np.array([_ras_of_index(image, i) for i in index])
    assert np.allclose(grid.to_ras(index), ras, atol=1e-6)
    assert np.allclose(grid.to_ijk(ras), index, atol=1e-6)
    assert np.allclose(grid.spacing, image.GetSpacing())
    origin, spacing, direction = itk_from_ijk_to_ras(grid.ijk_to_ras)
    assert np.allclose(origin, image.GetOrigin()) and np.allclose(spacing, image.GetSpacing())
    assert np.allclose(direction, image.GetDirection())


def test_array_image_round_trip_keeps_voxels_at_their_index():
    image = oblique_image()
    array = sitk.GetArrayFromImage(image)
    back = image_from_array(array, grid_of(image).ijk_to_ras)
    assert np.array_equal(sitk.GetArrayFromImage(back), array)
    assert np.allclose(back.GetDirection(), image.GetDirection()) and np.allclose(back.GetOrigin(), image.GetOrigin())
    i, j, k = 3, 7, 5
    assert back.GetPixel(i, j, k) == array[k, j, i]


def test_clicks_become_the_voxel_indices_the_server_reads(tmp_path):
    image = oblique_image()
    path = tmp_path / "img.nii.gz"
    sitk.WriteImage(image, str(path))
    on_disk = sitk.ReadImage(str(path))  # what the server sees
    grid = grid_of(image)
    wanted = [(1, 2, 3), (12, 10, 8), (0, 0, 0)]
    # a click anywhere inside the voxel (within +-0.4 voxel) maps to it
    ras = np.array([_ras_of_index(image, np.add(w, (0.4, -0.3, 0.2))) for w in wanted])
    params = interaction_params(Interaction("liver", ras[:2], ras[2:]), grid, session_id="s1")
    assert params["foreground"] == [[1, 2, 3], [12, 10, 8]]
    assert params["background"] == [[0, 0, 0]]
    assert params["label"] == "liver" and params["session_id"] == "s1"
    for (i, j, k), point in zip(wanted, ras, strict=True):
        lps = point * LPS
        assert on_disk.TransformPhysicalPointToIndex(lps.tolist()) == (i, j, k)


def test_click_outside_is_refused_and_empty_interaction_too():
    grid = grid_of(oblique_image())
    outside = grid.to_ras([[20.0, 0.0, 0.0]])
    with pytest.raises(OutsideVolume, match="outside the volume"):
        interaction_params(Interaction("liver", outside), grid)
    with pytest.raises(ValueError, match="point"):
        interaction_params(Interaction("liver"), grid)
    with pytest.raises(ValueError, match="segment"):
        interaction_params(Interaction("", grid.to_ras([[1, 1, 1]])), grid)
    assert grid.voxels(np.vstack([outside, grid.to_ras([[1, 1, 1]])]), clip=True).tolist() == [[1, 1, 1]]


def test_box_from_ras_corners_is_clipped_voxel_bounds():
    grid = grid_of(oblique_image())
    corners_ijk = np.array([[i, j, k] for i in (2.2, 5.7) for j in (-3.0, 4.4) for k in (1.0, 30.0)])
    box = grid.box(grid.to_ras(corners_ijk))
    assert box == [2, 6, 0, 4, 1, 8]
    with pytest.raises(OutsideVolume):
        grid.box(grid.to_ras(corners_ijk + 100))
    params = interaction_params(Interaction("tumour", box_corners_ras=grid.to_ras(corners_ijk)), grid)
    assert params["roi"] == box and params["foreground"] == []


def test_slicer_volume_node_agrees(scene):
    """A slicer-core volume node given the image's geometry has the same RAS->IJK."""
    from MedSegLib.mrml import volumes

    image = oblique_image()
    node = volumes.add_volume(scene, image, "oblique")
    grid = volumes.volume_grid(node)
    assert grid.same_as(grid_of(image), 1e-9)
    import vtk

    ras_to_ijk = vtk.vtkMatrix4x4()
    node.GetRASToIJKMatrix(ras_to_ijk)
    point = _ras_of_index(image, (4.0, 5.0, 6.0))
    ijk = ras_to_ijk.MultiplyPoint([*point, 1.0])[:3]
    assert np.allclose(ijk, (4, 5, 6), atol=1e-6)
    assert np.allclose(node.GetSpacing(), image.GetSpacing())
    back = volumes.volume_to_image(node)
    assert np.array_equal(sitk.GetArrayFromImage(back), sitk.GetArrayFromImage(image))
    assert Grid(grid.ijk_to_ras, grid.dims).same_as(grid_of(back))

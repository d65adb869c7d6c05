"""Scalar and labelmap volume nodes <-> SimpleITK images and files (geometry preserved)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import SimpleITK as sitk
import slicer
import slicer.util
import vtk

from ..geometry import Grid, array_from_image, image_from_array

WRITABLE_SUFFIXES = (".nii.gz", ".nii", ".nrrd", ".mha")


def matrix_to_numpy(matrix: vtk.vtkMatrix4x4) -> np.ndarray:
    return np.array([[matrix.GetElement(r, c) for c in range(4)] for r in range(4)])


def numpy_to_matrix(array: np.ndarray) -> vtk.vtkMatrix4x4:
    matrix = vtk.vtkMatrix4x4()
    for r in range(4):
        for c in range(4):
            matrix.SetElement(r, c, float(array[r, c]))
    return matrix


def volume_grid(node) -> Grid:
    """The node's voxel grid (IJKToRAS and dimensions), ignoring any parent transform."""
    image = node.GetImageData()
    if image is None:
        raise ValueError(f"volume {node.GetName()!r} holds no image data")
    matrix = vtk.vtkMatrix4x4()
    node.GetIJKToRASMatrix(matrix)
    return Grid(matrix_to_numpy(matrix), tuple(int(d) for d in image.GetDimensions()))


def world_to_volume(node) -> np.ndarray:
    """4x4 matrix from world RAS to the volume's own RAS (identity without a parent transform).

    Raises:
        ValueError: the volume is under a non-linear transform (harden it first).
    """
    parent = node.GetParentTransformNode()
    if parent is None:
        return np.eye(4)
    if not parent.IsTransformToWorldLinear():
        raise ValueError(f"volume {node.GetName()!r} is under a non-linear transform: harden it first")
    matrix = vtk.vtkMatrix4x4()
    parent.GetMatrixTransformFromWorld(matrix)
    return matrix_to_numpy(matrix)


def volume_to_image(node) -> sitk.Image:
    """A SimpleITK image (LPS) with the node's voxels and geometry."""
    grid = volume_grid(node)
    return image_from_array(slicer.util.arrayFromVolume(node).copy(), grid.ijk_to_ras)


def write_volume(node, path: str | Path, compress: bool = True) -> Path:
    """Write a volume node to NIfTI/NRRD/MHA atomically (temporary file then rename)."""
    path = Path(path)
    if not path.name.lower().endswith(WRITABLE_SUFFIXES):
        raise ValueError(f"write volumes as one of {', '.join(WRITABLE_SUFFIXES)} (got {path.name})")
    write_image(volume_to_image(node), path, compress)
    return path


def write_image(image: sitk.Image, path: Path, compress: bool = True) -> None:
    """Atomic ``sitk.WriteImage``: a same-folder temporary file renamed over ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = next(s for s in WRITABLE_SUFFIXES if path.name.lower().endswith(s))
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=suffix, dir=path.parent)
    os.close(fd)
    try:
        sitk.WriteImage(image, tmp, compress)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def update_volume(node, image: sitk.Image) -> None:
    """Replace the node's voxels and geometry with those of ``image``."""
    array, ijk_to_ras = array_from_image(image)
    slicer.util.updateVolumeFromArray(node, array)
    node.SetIJKToRASMatrix(numpy_to_matrix(ijk_to_ras))
    node.Modified()


def add_volume(scene, image: sitk.Image, name: str, labelmap: bool = False):
    """A new scalar (or labelmap) volume node holding ``image``."""
    cls = "vtkMRMLLabelMapVolumeNode" if labelmap else "vtkMRMLScalarVolumeNode"
    node = scene.AddNewNodeByClass(cls, name)
    update_volume(node, image)
    node.CreateDefaultDisplayNodes()
    return node


def load_volume(scene, path: str | Path, name: str | None = None, labelmap: bool = False):
    """Read a volume file with SimpleITK into a new node (named after the file by default)."""
    path = Path(path)
    image = sitk.ReadImage(str(path))
    if image.GetDimension() != 3 or image.GetNumberOfComponentsPerPixel() != 1:
        raise ValueError(f"{path.name} is not a 3D single-component volume")
    stem = path.name.split(".")[0]
    return add_volume(scene, image, name or stem, labelmap)

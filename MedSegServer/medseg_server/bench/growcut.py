"""Slicer's own GrowCut (``vtkImageGrowCutSegment`` from slicer-core), the benchmark's baseline.

Seeds come from the same clicks as the engine gets: every positive click paints label 1 and
every negative click label 2, each as a 3x3x3 voxel cube (the size of the engine's own click
stamp). GrowCut needs a background seed from the first click on, and a click sequence starts
with a single positive click, so the outer faces of the volume are always background seeds
(no ground truth is used). With a box interaction, everything outside the box is background.
"""

from __future__ import annotations

import numpy as np
from vtkmodules.util import numpy_support


def _vtk_image(array: np.ndarray, vtk_type: int):
    import vtk

    img = vtk.vtkImageData()
    nz, ny, nx = array.shape
    img.SetDimensions(nx, ny, nz)
    flat = numpy_support.numpy_to_vtk(np.ascontiguousarray(array).ravel(), deep=True, array_type=vtk_type)
    img.GetPointData().SetScalars(flat)
    return img


class GrowCut:
    """Runs GrowCut from scratch on the current seeds of one target."""

    def __init__(self, image_zyx: np.ndarray) -> None:
        import slicer  # noqa: F401 - registers the Slicer VTK classes
        import vtk

        self._vtk = vtk
        self.shape = image_zyx.shape
        self.intensity = _vtk_image(image_zyx.astype(np.int16), vtk.VTK_SHORT)
        self.seeds = np.zeros(self.shape, dtype=np.uint8)
        for axis in range(3):  # volume border = background
            idx = [slice(None)] * 3
            idx[axis] = 0
            self.seeds[tuple(idx)] = 2
            idx[axis] = -1
            self.seeds[tuple(idx)] = 2

    def add_click(self, zyx: tuple[int, int, int], positive: bool) -> None:
        """Paint a 3x3x3 seed cube."""
        lo = np.clip(np.array(zyx) - 1, 0, None)
        hi = np.minimum(np.array(zyx) + 2, self.shape)
        self.seeds[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]] = 1 if positive else 2

    def add_box(self, start: tuple[int, int, int], stop: tuple[int, int, int]) -> None:
        """Everything outside the box becomes background seed."""
        inside = np.zeros(self.shape, dtype=bool)
        inside[tuple(slice(a, b) for a, b in zip(start, stop, strict=True))] = True
        self.seeds[~inside & (self.seeds == 0)] = 2

    def segment(self) -> np.ndarray:
        """Foreground mask (z, y, x)."""
        import slicer

        seg = slicer.vtkImageGrowCutSegment()
        seg.SetIntensityVolume(self.intensity)
        seg.SetSeedLabelVolume(_vtk_image(self.seeds, self._vtk.VTK_UNSIGNED_CHAR))
        seg.Update()
        out = numpy_support.vtk_to_numpy(seg.GetOutput().GetPointData().GetScalars())
        return out.reshape(self.shape) == 1

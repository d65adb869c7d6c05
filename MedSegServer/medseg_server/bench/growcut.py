"""Slicer's own GrowCut (``vtkImageGrowCutSegment`` from slicer-core), the benchmark's baseline.

Seeds come from the same clicks as the engine gets: every positive click paints label 1 and
every negative click label 2, each as a 3x3x3 voxel cube (the size of the engine's own click
stamp). GrowCut needs a background seed from the first click on, and a click sequence starts
with a single positive click, so the outer faces of the volume are always background seeds
(no ground truth is used). With a box interaction, everything outside the box is background.

Run as Slicer's "Grow from seeds" effect runs it: one filter per segmentation, kept between
updates, so that after the first full computation each new seed only re-propagates where it
wins (the filter's incremental update); the filter works on the extent of all seeds grown by
a fifth of their size on each side (at least 3 voxels), and starts again from scratch only when
the seeds come closer than 3 voxels to the edge of that extent. With the volume faces as
background seeds that extent is the whole volume.
"""

from __future__ import annotations

import numpy as np
from vtkmodules.util import numpy_support

GROWTH_RATIO = 0.2  # Slicer: margin around the seeds' extent, relative to its size, without a mask
MIN_MARGIN = 3  # voxels


def _vtk_image(array: np.ndarray, vtk_type: int):
    import vtk

    img = vtk.vtkImageData()
    nz, ny, nx = array.shape
    img.SetDimensions(nx, ny, nz)
    flat = numpy_support.numpy_to_vtk(np.ascontiguousarray(array).ravel(), deep=True, array_type=vtk_type)
    img.GetPointData().SetScalars(flat)
    return img


def seed_extent(seeds: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """(start, stop) zyx of the bounding box of all seed voxels, None without seeds."""
    hits = [np.flatnonzero(seeds.any(axis=tuple(a for a in range(3) if a != axis))) for axis in range(3)]
    if any(not h.size for h in hits):
        return None
    return np.array([h[0] for h in hits]), np.array([h[-1] + 1 for h in hits])


def working_extent(seeds: tuple[np.ndarray, np.ndarray], shape: tuple[int, int, int]) -> tuple[np.ndarray, np.ndarray]:
    """The seeds' extent grown as Slicer grows it, clipped to the volume."""
    start, stop = seeds
    margin = np.maximum(MIN_MARGIN, (GROWTH_RATIO * (stop - start)).astype(int))
    return np.maximum(start - margin, 0), np.minimum(stop + margin, np.array(shape))


def needs_new_extent(current: tuple[np.ndarray, np.ndarray], seeds: tuple[np.ndarray, np.ndarray],
                     shape: tuple[int, int, int]) -> bool:
    """True when the seeds come within ``MIN_MARGIN`` voxels of an edge of ``current`` that is not the volume's."""
    (lo, hi), (s_lo, s_hi) = current, seeds
    low_short = (lo > 0) & (lo > s_lo - MIN_MARGIN)
    high_short = (hi < np.array(shape)) & (hi < s_hi + MIN_MARGIN)
    return bool(low_short.any() or high_short.any())


class GrowCut:
    """GrowCut on the current seeds of one target, updated incrementally like Slicer's effect."""

    def __init__(self, image_zyx: np.ndarray, incremental: bool = True) -> None:
        import slicer  # noqa: F401 - registers the Slicer VTK classes
        import vtk

        self._vtk = vtk
        self.image = np.asarray(image_zyx).astype(np.int16)
        self.shape = self.image.shape
        self.incremental = incremental
        self.resets = 0  # how many times the filter started from scratch
        self._filter = None
        self._extent: tuple[np.ndarray, np.ndarray] | None = None
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

    def _slices(self) -> tuple[slice, slice, slice]:
        lo, hi = self._extent
        return tuple(slice(int(a), int(b)) for a, b in zip(lo, hi, strict=True))

    def segment(self) -> np.ndarray:
        """Foreground mask (z, y, x)."""
        import slicer

        extent = seed_extent(self.seeds)
        if extent is None:
            return np.zeros(self.shape, dtype=bool)
        if (not self.incremental or self._filter is None
                or needs_new_extent(self._extent, extent, self.shape)):
            self._extent = working_extent(extent, self.shape)
            self._filter = slicer.vtkImageGrowCutSegment()
            self._filter.SetIntensityVolume(_vtk_image(self.image[self._slices()], self._vtk.VTK_SHORT))
            self.resets += 1
        crop = self._slices()
        self._filter.SetSeedLabelVolume(_vtk_image(self.seeds[crop], self._vtk.VTK_UNSIGNED_CHAR))
        self._filter.Update()
        out = numpy_support.vtk_to_numpy(self._filter.GetOutput().GetPointData().GetScalars())
        mask = np.zeros(self.shape, dtype=bool)
        mask[crop] = out.reshape(tuple(s.stop - s.start for s in crop)) == 1
        return mask

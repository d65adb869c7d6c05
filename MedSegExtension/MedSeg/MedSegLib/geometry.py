"""Voxel grids between Slicer (RAS) and ITK files (LPS), without Slicer.

Slicer describes a volume by its 4x4 ``IJKToRAS`` matrix and a numpy array indexed ``[k, j, i]``.
ITK (and therefore the server, which reads the uploaded NIfTI/NRRD with SimpleITK) describes the
same grid by origin, spacing and direction in LPS. The voxel index is the same on both sides:
Slicer's IJK ``(i, j, k)`` is SimpleITK's index ``(i, j, k)`` of the file the volume was written
to, so a click only needs RAS -> IJK with the volume's own matrix. Only physical coordinates
change sign on their first two axes (RAS = diag(-1, -1, 1) * LPS).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import SimpleITK as sitk

#: RAS <-> LPS (its own inverse).
LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0])


class OutsideVolume(ValueError):
    """A point or a box that falls outside the volume."""


@dataclass(frozen=True)
class Grid:
    """A voxel grid: ``ijk_to_ras`` (4x4) and ``dims`` ``(ni, nj, nk)``."""

    ijk_to_ras: np.ndarray
    dims: tuple[int, int, int]

    @property
    def spacing(self) -> np.ndarray:
        return np.linalg.norm(self.ijk_to_ras[:3, :3], axis=0)

    @property
    def ras_to_ijk(self) -> np.ndarray:
        return np.linalg.inv(self.ijk_to_ras)

    def to_ijk(self, points_ras) -> np.ndarray:
        """Continuous IJK of (N, 3) RAS points."""
        return apply(self.ras_to_ijk, points_ras)

    def to_ras(self, points_ijk) -> np.ndarray:
        """RAS of (N, 3) IJK points."""
        return apply(self.ijk_to_ras, points_ijk)

    def voxels(self, points_ras, *, clip: bool = False) -> np.ndarray:
        """Integer voxel indices ``(i, j, k)`` of RAS points (nearest voxel centre).

        Raises:
            OutsideVolume: a point outside the grid (unless ``clip``, which drops those points).
        """
        ijk = np.rint(self.to_ijk(points_ras)).astype(int)
        inside = ((ijk >= 0) & (ijk < np.asarray(self.dims))).all(axis=1)
        if not inside.all():
            if clip:
                return ijk[inside]
            bad = np.asarray(points_ras, float).reshape(-1, 3)[~inside][0]
            raise OutsideVolume(
                f"point R={bad[0]:.1f} A={bad[1]:.1f} S={bad[2]:.1f} is outside the volume; place it on the image"
            )
        return ijk

    def box(self, corners_ras) -> list[int]:
        """Voxel bounding box ``[imin, imax, jmin, jmax, kmin, kmax]`` (inclusive) of RAS corners, clipped.

        Raises:
            OutsideVolume: the box does not overlap the volume.
        """
        ijk = self.to_ijk(corners_ras)
        # every voxel whose extent (centre +- 0.5) overlaps the box
        low = np.maximum(np.floor(ijk.min(axis=0) + 0.5), 0).astype(int)
        high = np.minimum(np.ceil(ijk.max(axis=0) - 0.5), np.asarray(self.dims) - 1).astype(int)
        if (low > high).any():
            raise OutsideVolume("the box does not overlap the volume")
        return [int(v) for pair in zip(low, high, strict=True) for v in pair]

    def same_as(self, other: Grid, tolerance: float = 1e-3) -> bool:
        """Same dims and matrix (within ``tolerance`` mm/ratio)."""
        return tuple(self.dims) == tuple(other.dims) and np.allclose(
            self.ijk_to_ras, other.ijk_to_ras, atol=tolerance
        )


def apply(matrix: np.ndarray, points) -> np.ndarray:
    """Apply a 4x4 matrix to (N, 3) points."""
    pts = np.asarray(points, dtype=float).reshape(-1, 3)
    return pts @ matrix[:3, :3].T + matrix[:3, 3]


def ijk_to_ras_from_itk(origin, spacing, direction) -> np.ndarray:
    """Slicer's IJKToRAS from an ITK (LPS) origin, spacing and 3x3 direction (row-major flat or 3x3)."""
    direction = np.asarray(direction, float).reshape(3, 3)
    matrix = np.eye(4)
    matrix[:3, :3] = LPS_TO_RAS @ direction @ np.diag(np.asarray(spacing, float))
    matrix[:3, 3] = LPS_TO_RAS @ np.asarray(origin, float)
    return matrix


def itk_from_ijk_to_ras(ijk_to_ras: np.ndarray) -> tuple[tuple, tuple, tuple]:
    """ITK ``(origin, spacing, direction)`` in LPS of a Slicer IJKToRAS matrix."""
    ijk_to_ras = np.asarray(ijk_to_ras, float)
    spacing = np.linalg.norm(ijk_to_ras[:3, :3], axis=0)
    if (spacing <= 0).any():
        raise ValueError("IJKToRAS matrix has a zero column")
    direction = LPS_TO_RAS @ (ijk_to_ras[:3, :3] / spacing)
    origin = LPS_TO_RAS @ ijk_to_ras[:3, 3]
    return tuple(origin.tolist()), tuple(spacing.tolist()), tuple(direction.ravel().tolist())


def grid_of(image: sitk.Image) -> Grid:
    """The Slicer grid of a SimpleITK image."""
    return Grid(ijk_to_ras_from_itk(image.GetOrigin(), image.GetSpacing(), image.GetDirection()), tuple(image.GetSize()))


def image_from_array(array_kji: np.ndarray, ijk_to_ras: np.ndarray) -> sitk.Image:
    """A SimpleITK image (LPS geometry) from a Slicer-ordered ``[k, j, i]`` array and IJKToRAS."""
    image = sitk.GetImageFromArray(np.ascontiguousarray(array_kji))
    origin, spacing, direction = itk_from_ijk_to_ras(ijk_to_ras)
    image.SetOrigin(origin)
    image.SetSpacing(spacing)
    image.SetDirection(direction)
    return image


def array_from_image(image: sitk.Image) -> tuple[np.ndarray, np.ndarray]:
    """``([k, j, i] array, IJKToRAS)`` of a SimpleITK image."""
    return sitk.GetArrayFromImage(image), grid_of(image).ijk_to_ras


def check_same_grid(image: sitk.Image, grid: Grid, what: str = "label") -> None:
    """Raise ``ValueError`` with a readable message when ``image`` is not on ``grid``."""
    other = grid_of(image)
    if tuple(other.dims) != tuple(grid.dims):
        raise ValueError(f"{what} has size {other.dims}, the volume {tuple(grid.dims)}")
    if not np.allclose(other.ijk_to_ras, grid.ijk_to_ras, atol=1e-3):
        raise ValueError(f"{what} is not on the volume's grid (origin, spacing or orientation differ)")

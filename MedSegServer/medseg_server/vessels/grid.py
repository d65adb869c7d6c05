"""Voxel grid geometry of a SimpleITK image: index <-> physical (LPS mm) and spacing in numpy order."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import SimpleITK as sitk


class VesselError(ValueError):
    """A mask, label map or point that cannot be processed; the message says why (a 4xx answer)."""


@dataclass(frozen=True)
class Grid:
    """Geometry of a 3D image; arrays are (z, y, x) like ``sitk.GetArrayFromImage``."""

    size: tuple[int, int, int]  # (x, y, z)
    spacing: tuple[float, float, float]  # (x, y, z) mm
    origin: tuple[float, float, float]
    direction: tuple[float, ...]  # 9 values, row-major

    @classmethod
    def of(cls, image: sitk.Image) -> Grid:
        if image.GetDimension() != 3:
            raise VesselError(f"expected a 3D image, got {image.GetDimension()}D")
        return cls(tuple(image.GetSize()), tuple(image.GetSpacing()), tuple(image.GetOrigin()),
                   tuple(image.GetDirection()))

    @property
    def shape_zyx(self) -> tuple[int, int, int]:
        return (self.size[2], self.size[1], self.size[0])

    @property
    def spacing_zyx(self) -> tuple[float, float, float]:
        return (self.spacing[2], self.spacing[1], self.spacing[0])

    @property
    def voxel_ml(self) -> float:
        """Volume of one voxel in millilitres."""
        return float(np.prod(self.spacing)) / 1000.0

    @property
    def matrix(self) -> np.ndarray:
        """4x4 matrix from continuous (i, j, k) index to LPS mm."""
        m = np.eye(4)
        m[:3, :3] = np.asarray(self.direction, float).reshape(3, 3) * np.asarray(self.spacing, float)
        m[:3, 3] = self.origin
        return m

    def zyx_to_mm(self, zyx: np.ndarray) -> np.ndarray:
        """(N, 3) voxel indices in array order -> (N, 3) physical points (x, y, z mm)."""
        ijk = np.asarray(zyx, float).reshape(-1, 3)[:, ::-1]
        m = self.matrix
        return ijk @ m[:3, :3].T + m[:3, 3]

    def mm_to_zyx(self, points: np.ndarray) -> np.ndarray:
        """(N, 3) physical points -> continuous voxel indices in array order."""
        m = self.matrix
        ijk = (np.asarray(points, float).reshape(-1, 3) - m[:3, 3]) @ np.linalg.inv(m[:3, :3]).T
        return ijk[:, ::-1]

    def ijk_to_mm(self, ijk: np.ndarray) -> np.ndarray:
        return self.zyx_to_mm(np.asarray(ijk, float).reshape(-1, 3)[:, ::-1])

    def image(self, array_zyx: np.ndarray) -> sitk.Image:
        """A SimpleITK image of this geometry holding ``array_zyx``."""
        img = sitk.GetImageFromArray(array_zyx)
        img.SetSpacing(self.spacing)
        img.SetOrigin(self.origin)
        img.SetDirection(self.direction)
        return img


def bbox(mask: np.ndarray, pad: int = 1) -> tuple[slice, ...]:
    """Bounding box of the True voxels of ``mask`` grown by ``pad`` (clipped to the array)."""
    out = []
    for axis, n in enumerate(mask.shape):
        hit = np.flatnonzero(np.any(mask, axis=tuple(a for a in range(mask.ndim) if a != axis)))
        if not len(hit):
            raise VesselError("empty mask")
        out.append(slice(max(0, int(hit[0]) - pad), min(n, int(hit[-1]) + pad + 1)))
    return tuple(out)


def ball(radius_mm: float, spacing_zyx: tuple[float, float, float]) -> np.ndarray:
    """Boolean ellipsoidal structuring element of ``radius_mm`` in an anisotropic grid."""
    half = [max(0, int(np.floor(radius_mm / s))) for s in spacing_zyx]
    zz, yy, xx = np.ogrid[tuple(slice(-h, h + 1) for h in half)]
    d2 = (zz * spacing_zyx[0]) ** 2 + (yy * spacing_zyx[1]) ** 2 + (xx * spacing_zyx[2]) ** 2
    return d2 <= radius_mm**2 + 1e-9

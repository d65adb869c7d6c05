"""Voxel grid of a phantom and the coordinate conventions shared by the synth modules.

Conventions (same as SimpleITK):

* physical points are LPS millimetres ``(x, y, z)``: x grows towards the patient's left,
  y towards posterior, z towards superior; the direction matrix is the identity;
* ``index`` (``ijk``) is the SimpleITK continuous index ``(i, j, k)`` along ``(x, y, z)``;
  ``physical = origin + index * spacing``;
* numpy arrays are ``(z, y, x)``, as returned by ``sitk.GetArrayFromImage``: the voxel with
  index ``(i, j, k)`` is ``array[k, j, i]``.

The origin is chosen so that the volume centre is the physical point ``(0, 0, 0)``; the
anatomy is laid out around it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Field of view (mm, x y z) the anatomy is designed for; smaller grids get a scaled-down body.
REFERENCE_FOV_MM = (384.0, 384.0, 240.0)

Slices = tuple[slice, slice, slice]


@dataclass(frozen=True)
class Grid:
    """Geometry of a phantom volume (sizes and spacings in x, y, z order)."""

    size: tuple[int, int, int]
    spacing: tuple[float, float, float]
    origin: tuple[float, float, float]

    @classmethod
    def centred(cls, size: tuple[int, int, int], spacing: tuple[float, float, float]) -> Grid:
        """A grid whose centre is the physical origin."""
        if len(size) != 3 or len(spacing) != 3 or min(size) < 8 or min(spacing) <= 0:
            raise ValueError(f"invalid grid size={size} spacing={spacing}")
        size_t = (int(size[0]), int(size[1]), int(size[2]))
        spacing_t = (float(spacing[0]), float(spacing[1]), float(spacing[2]))
        origin = tuple(-0.5 * (n - 1) * s for n, s in zip(size_t, spacing_t, strict=True))
        return cls(size_t, spacing_t, (origin[0], origin[1], origin[2]))

    @property
    def shape_zyx(self) -> tuple[int, int, int]:
        """numpy array shape."""
        return (self.size[2], self.size[1], self.size[0])

    @property
    def scale(self) -> float:
        """Isotropic scale of the anatomy so that the reference body fits the field of view."""
        fov = [n * s for n, s in zip(self.size, self.spacing, strict=True)]
        return float(min(1.0, min(f / r for f, r in zip(fov, REFERENCE_FOV_MM, strict=True))))

    def to_index(self, points: np.ndarray) -> np.ndarray:
        """Physical points ``(..., 3)`` -> continuous indices ``(..., 3)`` (i, j, k)."""
        return (np.asarray(points, float) - np.asarray(self.origin)) / np.asarray(self.spacing)

    def to_physical(self, index: np.ndarray) -> np.ndarray:
        """Continuous indices ``(..., 3)`` -> physical points ``(..., 3)``."""
        return np.asarray(index, float) * np.asarray(self.spacing) + np.asarray(self.origin)

    def box(self, lo_mm: np.ndarray, hi_mm: np.ndarray) -> Slices | None:
        """numpy ``(z, y, x)`` slices covering the physical box ``[lo, hi]``; None when outside."""
        lo = np.floor(self.to_index(lo_mm)).astype(int)
        hi = np.ceil(self.to_index(hi_mm)).astype(int) + 1
        lo = np.clip(lo, 0, self.size)
        hi = np.clip(hi, 0, self.size)
        if np.any(hi <= lo):
            return None
        return (slice(lo[2], hi[2]), slice(lo[1], hi[1]), slice(lo[0], hi[0]))

    def coords(self, sl: Slices | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Broadcastable physical coordinates ``(Z, Y, X)`` of the voxel centres in ``sl``."""
        sl = sl or (slice(0, self.size[2]), slice(0, self.size[1]), slice(0, self.size[0]))
        axes = []
        for axis, s in zip((2, 1, 0), sl, strict=True):
            idx = np.arange(s.start, s.stop, dtype=np.float32)
            axes.append(np.float32(self.origin[axis]) + idx * np.float32(self.spacing[axis]))
        z, y, x = axes
        return z[:, None, None], y[None, :, None], x[None, None, :]


def rotation(rx: float = 0.0, ry: float = 0.0, rz: float = 0.0) -> np.ndarray:
    """Rotation matrix ``Rz @ Ry @ Rx`` (radians)."""
    cx, sx, cy, sy, cz, sz = np.cos(rx), np.sin(rx), np.cos(ry), np.sin(ry), np.cos(rz), np.sin(rz)
    mx = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    my = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    mz = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    return mz @ my @ mx


def ellipsoid_q(
    zyx: tuple[np.ndarray, np.ndarray, np.ndarray],
    centre: np.ndarray,
    semi: np.ndarray,
    rot: np.ndarray | None = None,
) -> np.ndarray:
    """Normalised squared radius of an (optionally rotated) ellipsoid; < 1 inside.

    ``zyx`` are broadcastable physical coordinate arrays, ``centre``/``semi`` are x, y, z.
    """
    z, y, x = zyx
    dx, dy, dz = x - np.float32(centre[0]), y - np.float32(centre[1]), z - np.float32(centre[2])
    if rot is None:
        locs = (dx, dy, dz)
    else:
        r = rot.astype(np.float32)
        locs = tuple(r[0, a] * dx + r[1, a] * dy + r[2, a] * dz for a in range(3))
    q = (locs[0] / np.float32(semi[0])) ** 2
    q = q + (locs[1] / np.float32(semi[1])) ** 2
    return q + (locs[2] / np.float32(semi[2])) ** 2


def ellipsoid_box(grid: Grid, centre: np.ndarray, semi: np.ndarray, pad_mm: float = 0.0) -> Slices | None:
    """Slices bounding an ellipsoid of any orientation (uses its largest semi-axis)."""
    r = float(np.max(semi)) + pad_mm
    c = np.asarray(centre, float)
    return grid.box(c - r, c + r)


def upsample_linear(coarse: np.ndarray, shape: tuple[int, ...], factors: tuple[float, ...]) -> np.ndarray:
    """Separable linear interpolation: output index ``n`` on an axis reads coarse position ``n / factor``."""
    out = coarse
    for axis, (n, f) in enumerate(zip(shape, factors, strict=True)):
        if out.shape[axis] == 1:
            out = np.repeat(out, n, axis=axis)
            continue
        pos = np.arange(n, dtype=np.float32) / np.float32(f)
        i0 = np.clip(np.floor(pos).astype(int), 0, out.shape[axis] - 2)
        w = np.clip(pos - i0, 0, 1).astype(np.float32)
        a = np.take(out, i0, axis=axis)
        b = np.take(out, i0 + 1, axis=axis)
        wshape = [1] * out.ndim
        wshape[axis] = n
        out = a + (b - a) * w.reshape(wshape)
    return out

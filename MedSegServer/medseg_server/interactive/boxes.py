"""Axis-aligned boxes on (z, y, x) voxel grids: [start, stop) per axis."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Box:
    """A half-open voxel box ``start <= index < stop`` in (z, y, x) order."""

    start: tuple[int, int, int]
    stop: tuple[int, int, int]

    @staticmethod
    def around(points: np.ndarray, margin: np.ndarray | int = 0) -> Box:
        """Bounding box of (N, 3) zyx points, grown by ``margin`` voxels per axis."""
        pts = np.asarray(points, dtype=int).reshape(-1, 3)
        m = np.broadcast_to(np.asarray(margin, dtype=int), (3,))
        return Box(tuple(int(v) for v in pts.min(0) - m), tuple(int(v) for v in pts.max(0) + 1 + m))

    @staticmethod
    def of_mask(mask: np.ndarray, offset: tuple[int, int, int] = (0, 0, 0)) -> Box | None:
        """Bounding box of the true voxels of ``mask`` (None when empty), shifted by ``offset``."""
        bounds = []
        for axis in range(3):
            other = tuple(a for a in range(3) if a != axis)
            hit = np.flatnonzero(mask.any(axis=other))
            if hit.size == 0:
                return None
            bounds.append((int(hit[0]) + offset[axis], int(hit[-1]) + 1 + offset[axis]))
        return Box(tuple(b[0] for b in bounds), tuple(b[1] for b in bounds))

    @property
    def slices(self) -> tuple[slice, slice, slice]:
        """Index with ``array[box.slices]``."""
        return tuple(slice(a, b) for a, b in zip(self.start, self.stop, strict=True))

    @property
    def shape(self) -> tuple[int, int, int]:
        """Size per axis."""
        return tuple(b - a for a, b in zip(self.start, self.stop, strict=True))

    @property
    def size(self) -> int:
        """Number of voxels."""
        return int(np.prod(self.shape))

    def empty(self) -> bool:
        """True when the box holds no voxel."""
        return any(b <= a for a, b in zip(self.start, self.stop, strict=True))

    def grow(self, margin: np.ndarray | int) -> Box:
        """The box widened by ``margin`` voxels on every side."""
        m = np.broadcast_to(np.asarray(margin, dtype=int), (3,))
        return Box(tuple(int(a - d) for a, d in zip(self.start, m, strict=True)),
                   tuple(int(b + d) for b, d in zip(self.stop, m, strict=True)))

    def clip(self, shape: tuple[int, ...]) -> Box:
        """The part of the box inside an array of ``shape``."""
        start = tuple(int(min(max(a, 0), n)) for a, n in zip(self.start, shape, strict=True))
        stop = tuple(int(min(max(b, 0), n)) for b, n in zip(self.stop, shape, strict=True))
        return Box(start, stop)

    def union(self, other: Box | None) -> Box:
        """The smallest box holding both."""
        if other is None or other.empty():
            return self
        if self.empty():
            return other
        return Box(tuple(min(a, b) for a, b in zip(self.start, other.start, strict=True)),
                   tuple(max(a, b) for a, b in zip(self.stop, other.stop, strict=True)))

    def intersect(self, other: Box) -> Box:
        """The common part (possibly empty)."""
        return Box(tuple(max(a, b) for a, b in zip(self.start, other.start, strict=True)),
                   tuple(min(a, b) for a, b in zip(self.stop, other.stop, strict=True)))

    def scaled(self, factors: tuple[int, int, int]) -> Box:
        """This level box expressed on the grid ``factors`` times finer."""
        return Box(tuple(a * f for a, f in zip(self.start, factors, strict=True)),
                   tuple(b * f for b, f in zip(self.stop, factors, strict=True)))

    def coarsened(self, factors: tuple[int, int, int]) -> Box:
        """The box on the grid ``factors`` times coarser that covers this one."""
        return Box(tuple(a // f for a, f in zip(self.start, factors, strict=True)),
                   tuple(-(-b // f) for b, f in zip(self.stop, factors, strict=True)))

    def relative(self, inner: Box) -> tuple[slice, slice, slice]:
        """Slices of ``inner`` inside an array cropped to this box."""
        return tuple(slice(a - o, b - o) for a, b, o in zip(inner.start, inner.stop, self.start, strict=True))

    def contains(self, zyx: np.ndarray) -> np.ndarray:
        """Which of the (N, 3) points lie inside."""
        p = np.asarray(zyx).reshape(-1, 3)
        return ((p >= np.array(self.start)) & (p < np.array(self.stop))).all(axis=1)

    def as_xyz(self) -> dict[str, list[int]]:
        """JSON form in MONAI Label (x, y, z) index order: inclusive ``min`` and exclusive ``max``."""
        return {"min": list(self.start[::-1]), "max": list(self.stop[::-1])}

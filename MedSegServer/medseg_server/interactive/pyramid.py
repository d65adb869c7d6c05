"""The multi-resolution copy of an image a session works on (built once when it opens)."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import numpy as np
import SimpleITK as sitk

from .boxes import Box
from .fields import LazyField, gradient, smoothed, vesselness

LEVEL_SPACINGS_MM = (0.0, 1.4, 2.8, 5.6)  # level 0 = native, then about 1.4, 2.8, 5.6 mm
VESSEL_RADII_MM = (1.0, 2.0, 4.0)


@dataclass
class Level:
    """One resolution: ``factors`` native voxels per level voxel along (z, y, x)."""

    factors: tuple[int, int, int]
    spacing: np.ndarray  # (z, y, x) mm
    image: np.ndarray  # float32 block means of the native HU
    noise: float  # robust estimate of the noise standard deviation (HU)
    _fields: dict[str, LazyField] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)  # fields are made by interactions and the warm-up

    @property
    def shape(self) -> tuple[int, int, int]:
        """Level grid size (z, y, x)."""
        return self.image.shape

    def to_level(self, zyx: np.ndarray) -> np.ndarray:
        """Native voxel indices -> level voxel indices (clipped to the grid)."""
        p = np.asarray(zyx, dtype=int).reshape(-1, 3) // np.array(self.factors)
        return np.clip(p, 0, np.array(self.shape) - 1)

    def field(self, name: str) -> LazyField:
        """``smooth``, ``gradient`` or ``vesselness`` over this level, computed lazily per tile."""
        with self._lock:
            return self._field_locked(name)

    def _field_locked(self, name: str) -> LazyField:
        if name not in self._fields:
            if name == "smooth":
                fn = smoothed(self.image, self.spacing, 0.6 * float(self.spacing.min()))
            elif name == "gradient":
                fn = gradient(self.image, self.spacing, 0.8 * float(self.spacing.min()))
            elif name == "vesselness":
                fn = vesselness(self.image, self.spacing, VESSEL_RADII_MM)
            else:
                raise KeyError(name)
            self._fields[name] = LazyField(self.shape, fn)
        return self._fields[name]


def shrink_factors(spacing_zyx: np.ndarray, target_mm: float, previous: tuple[int, int, int]) -> tuple[int, int, int]:
    """Power-of-two factors (multiples of ``previous``) bringing the spacing near ``target_mm``."""
    out = []
    for s, p in zip(spacing_zyx, previous, strict=True):
        f = p
        while s * f * 2 <= target_mm * 1.2:
            f *= 2
        out.append(f)
    return tuple(out)


def estimate_noise(image: np.ndarray) -> float:
    """Noise std from the median absolute difference of neighbouring voxels along x."""
    sample = image[:: max(1, image.shape[0] // 16)]
    diff = np.diff(sample, axis=2)
    mad = float(np.median(np.abs(diff - np.median(diff))))
    return max(1.4826 * mad / np.sqrt(2.0), 1.0)


@dataclass
class Pyramid:
    """Native image plus coarser block-averaged levels, all (z, y, x) float32."""

    levels: list[Level]
    native_shape: tuple[int, int, int]

    @staticmethod
    def build(image: sitk.Image) -> Pyramid:
        """Cast, then block-average repeatedly (SimpleITK BinShrink) into the coarser levels."""
        spacing = np.array(image.GetSpacing()[::-1], dtype=float)
        current = sitk.Cast(image, sitk.sitkFloat32)
        native = sitk.GetArrayFromImage(current)
        levels = [Level((1, 1, 1), spacing, native, estimate_noise(native))]
        for target in LEVEL_SPACINGS_MM[1:]:
            previous = levels[-1].factors
            factors = shrink_factors(spacing, target, previous)
            if factors == previous:
                continue
            ratio = [f // p for f, p in zip(factors, previous, strict=True)]
            if any(n // r < 8 for n, r in zip(levels[-1].shape, ratio, strict=True)):
                break
            current = sitk.BinShrink(current, ratio[::-1])
            arr = sitk.GetArrayFromImage(current)
            levels.append(Level(factors, spacing * np.array(factors), arr, estimate_noise(arr)))
        return Pyramid(levels, tuple(native.shape))

    @property
    def native(self) -> np.ndarray:
        """The native float32 intensities."""
        return self.levels[0].image

    def level_for(self, min_spacing_mm: float, roi_mm: np.ndarray, budget: int) -> int:
        """Finest level at least ``min_spacing_mm`` coarse whose ``roi_mm`` box stays under ``budget`` voxels."""
        chosen = len(self.levels) - 1
        for i, lev in enumerate(self.levels):
            if lev.spacing.min() * 1.25 < min_spacing_mm and i < len(self.levels) - 1:
                continue
            if np.prod(np.minimum(roi_mm / lev.spacing, lev.shape)) <= budget or i == len(self.levels) - 1:
                chosen = i
                break
        return chosen

    def nbytes(self) -> int:
        """Memory held by the levels and the computed feature fields."""
        total = 0
        for lev in self.levels:
            total += lev.image.nbytes + sum(int(f.computed_fraction() * f.data.nbytes) for f in lev._fields.values())
        return total


def full_box(shape: tuple[int, int, int]) -> Box:
    """The box of a whole grid."""
    return Box((0, 0, 0), tuple(shape))

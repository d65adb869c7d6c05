"""Moving masks between the native grid and a coarser pyramid level."""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk

from .boxes import Box


def block_fraction(native: np.ndarray, factors: tuple[int, int, int], level_shape: tuple[int, int, int]) -> np.ndarray:
    """Fraction of true voxels of a native crop in each level voxel (crop starts on a block edge)."""
    if factors == (1, 1, 1):
        return native.astype(np.float32)
    padded = np.zeros(tuple(n * f for n, f in zip(level_shape, factors, strict=True)), dtype=np.float32)
    src = native[tuple(slice(0, min(a, b)) for a, b in zip(native.shape, padded.shape, strict=True))]
    padded[tuple(slice(0, s) for s in src.shape)] = src
    nz, ny, nx = level_shape
    fz, fy, fx = factors
    return padded.reshape(nz, fz, ny, fy, nx, fx).mean(axis=(1, 3, 5))


def to_level(native_full: np.ndarray, level_box: Box, factors: tuple[int, int, int]) -> np.ndarray:
    """Majority (>= half) of a whole-image native mask over each voxel of ``level_box``."""
    native_box = level_box.scaled(factors).clip(native_full.shape)
    return block_fraction(native_full[native_box.slices], factors, level_box.shape) >= 0.5


def interpolate(level_crop: np.ndarray, level_box: Box, factors: tuple[int, int, int], box: Box) -> np.ndarray:
    """Linear interpolation (float32, 0..1) of a level mask crop onto ``box`` of a grid ``factors`` finer."""
    if factors == (1, 1, 1):
        return level_crop[level_box.relative(box)].astype(np.float32)
    img = sitk.GetImageFromArray(level_crop.astype(np.float32))
    f = np.array(factors, dtype=float)
    origin = np.array(level_box.start) * f + (f - 1) / 2.0
    img.SetOrigin(origin[::-1].tolist())
    img.SetSpacing(f[::-1].tolist())
    ref = sitk.Image([int(s) for s in box.shape[::-1]], sitk.sitkFloat32)
    ref.SetOrigin([float(v) for v in box.start[::-1]])
    out = sitk.Resample(img, ref, sitk.Transform(), sitk.sitkLinear, 0.0, sitk.sitkFloat32)
    return sitk.GetArrayFromImage(out)


def to_native(level_crop: np.ndarray, level_box: Box, factors: tuple[int, int, int], native_box: Box) -> np.ndarray:
    """Linear interpolation of a level mask crop onto ``native_box``, thresholded at one half."""
    if factors == (1, 1, 1):
        return level_crop[level_box.relative(native_box)].copy()
    return interpolate(level_crop, level_box, factors, native_box) > 0.5

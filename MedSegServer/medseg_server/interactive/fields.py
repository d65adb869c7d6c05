"""Lazily computed, tile-cached feature volumes (smoothed image, gradient, vesselness).

A session computes a feature only where an interaction needs it and keeps it: the second click
in the same region costs nothing. A session may also fill a whole field in the background when it
opens (``LazyField.fill``); an interaction then waits at most for the slab being computed.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import numpy as np
import SimpleITK as sitk

from .boxes import Box

TILE = 32


class LazyField:
    """A float32 volume filled tile by tile by ``compute(box) -> array of box.shape``."""

    def __init__(self, shape: tuple[int, int, int], compute: Callable[[Box], np.ndarray], tile: int = TILE) -> None:
        self.shape = tuple(shape)
        self.tile = tile
        self._compute = compute
        self.data = np.zeros(self.shape, dtype=np.float32)  # calloc: pages are touched only when filled
        self._done = np.zeros(tuple(-(-n // tile) for n in self.shape), dtype=bool)
        self._lock = threading.Lock()  # one writer at a time (an interaction and the background fill)

    def get(self, box: Box) -> np.ndarray:
        """The field over ``box`` (computed now for the tiles not yet known)."""
        box = box.clip(self.shape)
        tiles = box.coarsened((self.tile,) * 3)
        with self._lock:
            missing = ~self._done[tiles.slices]
            if missing.any():
                todo = Box.of_mask(missing, tiles.start)
                voxels = todo.scaled((self.tile,) * 3).clip(self.shape)
                self.data[voxels.slices] = self._compute(voxels)
                self._done[todo.slices] = True
        return self.data[box.slices]

    def fill(self, stop: threading.Event | None = None) -> None:
        """Compute the whole field, one slab of tiles (along the first axis) at a time, so that a
        concurrent ``get`` waits for one slab at most; returns early when ``stop`` is set."""
        for z in range(self._done.shape[0]):
            if stop is not None and stop.is_set():
                return
            self.get(Box((z * self.tile, 0, 0), (min((z + 1) * self.tile, self.shape[0]),) + self.shape[1:]))

    def complete(self) -> bool:
        """True when every tile is computed."""
        return bool(self._done.all())

    def get_where(self, box: Box, mask: np.ndarray) -> np.ndarray:
        """The field over ``box``, computed now only for the missing tiles that ``mask`` (of box's
        shape) touches, one tile at a time; elsewhere it may hold zeros."""
        box = box.clip(self.shape)
        tiles = box.coarsened((self.tile,) * 3)
        offset = np.array(box.start) - np.array(tiles.start) * self.tile
        touched = np.zeros(tiles.shape, dtype=bool)
        zyx = (np.argwhere(mask) + offset) // self.tile
        touched[tuple(zyx.T)] = True
        with self._lock:
            for t in np.argwhere(touched & ~self._done[tiles.slices]) + np.array(tiles.start):
                one = Box(tuple(int(v) for v in t), tuple(int(v) + 1 for v in t))
                voxels = one.scaled((self.tile,) * 3).clip(self.shape)
                self.data[voxels.slices] = self._compute(voxels)
                self._done[one.slices] = True
        return self.data[box.slices]

    def computed_fraction(self) -> float:
        """Share of tiles already computed."""
        return float(self._done.mean())


def crop_with_halo(volume: np.ndarray, box: Box, halo: int) -> tuple[np.ndarray, tuple[slice, slice, slice]]:
    """``volume`` cropped to ``box`` plus ``halo`` voxels (clipped), and the slices of ``box`` in it."""
    outer = box.grow(halo).clip(volume.shape)
    return volume[outer.slices], outer.relative(box)


def to_sitk(array: np.ndarray, spacing_zyx: np.ndarray) -> sitk.Image:
    """A (z, y, x) float array as a SimpleITK image with the given spacing."""
    img = sitk.GetImageFromArray(np.ascontiguousarray(array, dtype=np.float32))
    img.SetSpacing([float(s) for s in spacing_zyx[::-1]])
    return img


def smoothed(volume: np.ndarray, spacing: np.ndarray, sigma_mm: float) -> Callable[[Box], np.ndarray]:
    """Compute function: gaussian-smoothed intensities."""
    halo = int(np.ceil(3 * sigma_mm / spacing.min())) + 1

    def compute(box: Box) -> np.ndarray:
        crop, inner = crop_with_halo(volume, box, halo)
        if sigma_mm <= 0:
            return crop[inner]
        out = sitk.SmoothingRecursiveGaussian(to_sitk(crop, spacing), sigma_mm)
        return sitk.GetArrayFromImage(out)[inner]

    return compute


def gradient(volume: np.ndarray, spacing: np.ndarray, sigma_mm: float) -> Callable[[Box], np.ndarray]:
    """Compute function: gradient magnitude (HU/mm) at scale ``sigma_mm``."""
    halo = int(np.ceil(3 * sigma_mm / spacing.min())) + 1

    def compute(box: Box) -> np.ndarray:
        crop, inner = crop_with_halo(volume, box, halo)
        out = sitk.GradientMagnitudeRecursiveGaussian(to_sitk(crop, spacing), sigma_mm)
        return sitk.GetArrayFromImage(out)[inner]

    return compute


def vesselness(volume: np.ndarray, spacing: np.ndarray, radii_mm: tuple[float, ...]) -> Callable[[Box], np.ndarray]:
    """Compute function: multi-scale Hessian (Frangi) vesselness of bright tubes, max over scales.

    Each scale smooths with sigma = radius / sqrt(2) and measures the Hessian objectness of
    1-dimensional (tubular) bright structures; the measure is scale-normalised by sigma^2 so
    thick and thin vessels answer alike.
    """
    sigmas = [max(r / np.sqrt(2.0), 0.5 * float(spacing.min())) for r in radii_mm]
    halo = int(np.ceil(3 * max(sigmas) / spacing.min())) + 2

    def compute(box: Box) -> np.ndarray:
        crop, inner = crop_with_halo(volume, box, halo)
        img = to_sitk(crop / 100.0, spacing)  # HU / 100 keeps the Frangi structureness term well scaled
        best = None
        for sigma in sigmas:
            smooth = sitk.SmoothingRecursiveGaussian(img, sigma)
            measure = sitk.ObjectnessMeasure(smooth, alpha=0.5, beta=0.5, gamma=0.5 / sigma**2,
                                             scaleObjectnessMeasure=False, objectDimension=1, brightObject=True)
            best = measure if best is None else sitk.Maximum(best, measure)
        return sitk.GetArrayFromImage(best)[inner]

    return compute

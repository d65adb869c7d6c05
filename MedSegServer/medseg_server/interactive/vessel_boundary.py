"""Where a vessel's boundary lies on the native grid: the partial-volume edge, corrected for curvature.

A voxel belongs to a vessel when its centre is inside the lumen. On a blurred image, a voxel whose
centre sits exactly on a flat wall reads half way between lumen and surroundings; on the wall of a
tube of radius ``r`` it reads less, because the convex lumen fills less than half of the blur
around it: about ``1/2 - sigma / (2 sqrt(2 pi) r)`` of the contrast for a point-spread ``sigma``.
The band of voxels just outside the grown region is therefore tested against that radius-aware
fraction of the contrast between the vessel's lumen (its interior, unsmoothed) and its local
surroundings (a few voxels further out), so thin branches keep their partial-volume rim.
"""

from __future__ import annotations

import math

import edt
import numpy as np

from .boxes import Box

SHELL_STEP = 3  # the surroundings: read this many voxels further out than the band, along each axis
PSF_VOXELS = 0.5  # assumed point-spread sigma of the scanner, in voxels of the finest axis
MIN_FRACTION = 0.4  # never accept a voxel with less than this share of the contrast
MIN_INTERIOR = 10  # voxels needed to read the lumen from the interior
STEPS = [(axis, step) for axis in range(3) for step in (-1, 1)]


def edge_fraction(radius_mm: np.ndarray, psf_mm: float) -> np.ndarray:
    """Share of the lumen-surroundings contrast read at a voxel centred on the wall of a tube."""
    r = np.maximum(np.asarray(radius_mm, dtype=np.float32), 1e-3)
    return np.clip(0.5 - psf_mm / (2.0 * math.sqrt(2.0 * math.pi) * r), MIN_FRACTION, 0.5)


def _shifted(where: tuple[np.ndarray, ...], axis: int, step: int, shape: tuple[int, ...]) -> tuple[np.ndarray, ...]:
    idx = list(where)
    idx[axis] = np.clip(where[axis] + step, 0, shape[axis] - 1)
    return tuple(idx)


def neighbour_max(values: np.ndarray, where: tuple[np.ndarray, ...]) -> np.ndarray:
    """Largest of ``values`` over the 6 face neighbours of each voxel in ``where`` (the local radius
    of the region next to a band voxel)."""
    best = np.zeros(len(where[0]), dtype=np.float32)
    for axis, step in STEPS:
        best = np.maximum(best, values[_shifted(where, axis, step, values.shape)])
    return best


def face_band(region: np.ndarray) -> np.ndarray:
    """The voxels outside ``region`` sharing a face with it (touching only its voxels, not the whole grid)."""
    where = np.nonzero(region)
    band = np.zeros_like(region)
    for axis, step in STEPS:
        band[_shifted(where, axis, step, region.shape)] = True
    return band & ~region


def lumen_and_surroundings(image: np.ndarray, region: np.ndarray, depth_mm: np.ndarray, band: np.ndarray,
                           spacing: np.ndarray) -> tuple[float, float] | None:
    """Median intensity of the region's interior, and of the voxels ``SHELL_STEP`` further out than
    its band along each axis (those neither in the region nor in the band)."""
    where = np.nonzero(band)
    outer = []
    for axis, step in STEPS:
        q = _shifted(where, axis, SHELL_STEP * step, region.shape)
        keep = ~region[q] & ~band[q]
        outer.append(image[tuple(c[keep] for c in q)])
    shell = np.concatenate(outer)
    if not shell.size:
        return None
    for depth in (3.0, 2.0):
        interior = depth_mm >= depth * float(np.min(spacing))
        if int(interior.sum()) >= MIN_INTERIOR:
            return float(np.median(image[interior])), float(np.median(shell))
    return float(np.percentile(image[region], 75)), float(np.median(shell))


def snap_vessel_boundary(image: np.ndarray, region: np.ndarray, spacing: np.ndarray,
                         forbidden: np.ndarray | None = None) -> np.ndarray:
    """``region`` plus the voxels of its face-neighbour band that read at least the edge fraction
    of the contrast (bright or dark vessels alike); ``forbidden`` voxels never join."""
    box = bounding_box(region, SHELL_STEP + 1)
    if box is None:
        return region
    out = region.copy()
    forbid = forbidden[box] if forbidden is not None else None
    out[box] = _snap(image[box], np.ascontiguousarray(region[box]), spacing, forbid)
    return out


def bounding_box(mask: np.ndarray, margin: int) -> tuple[slice, ...] | None:
    """Slices of the box around ``mask``'s voxels grown by ``margin`` (None: empty mask)."""
    box = Box.of_mask(mask)
    return None if box is None else box.grow(margin).clip(mask.shape).slices


def _snap(image: np.ndarray, region: np.ndarray, spacing: np.ndarray, forbidden: np.ndarray | None) -> np.ndarray:
    band = face_band(region)
    if not band.any():
        return region
    depth_mm = edt.edt(np.ascontiguousarray(region), anisotropy=tuple(float(s) for s in spacing),
                       black_border=False, parallel=1)
    levels = lumen_and_surroundings(image, region, depth_mm, band, spacing)
    if forbidden is not None:
        band &= ~forbidden
    if levels is None or levels[0] == levels[1]:
        return region
    lumen, around = levels
    where = np.nonzero(band)
    frac = edge_fraction(neighbour_max(depth_mm, where), PSF_VOXELS * float(np.min(spacing)))
    share = (image[where].astype(np.float32) - around) / (lumen - around)  # dark vessels: both signs flip
    out = region.copy()
    out[tuple(w[share >= frac] for w in where)] = True
    return out

"""Small synthetic volumes for the interactive engine tests (shapes with known answers)."""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk

SHAPE = (40, 64, 64)  # z, y, x
SPACING = (2.0, 2.0, 2.0)  # x, y, z mm


def _ball(centre: tuple[float, float, float], radius: float) -> np.ndarray:
    z, y, x = np.indices(SHAPE)
    return (z - centre[0]) ** 2 + (y - centre[1]) ** 2 + (x - centre[2]) ** 2 <= radius**2


def two_blobs(seed: int = 0) -> tuple[sitk.Image, np.ndarray, np.ndarray, np.ndarray]:
    """Blob A (60 HU, radius 11) joined to blob B (60 HU, radius 8) by a thick bridge, in fat.

    Returns the image and the masks of A, B and the bridge. The bridge is too thick for the
    opening to cut, so one click in A leaks into B.
    """
    a = _ball((20, 32, 20), 11)
    b = _ball((20, 32, 48), 8)
    z, y, x = np.indices(SHAPE)
    bridge = (np.abs(z - 20) <= 4) & (np.abs(y - 32) <= 4) & (x > 20) & (x < 48) & ~a & ~b
    hu = np.full(SHAPE, -100.0)
    hu[a | b | bridge] = 60.0
    hu += np.random.default_rng(seed).normal(0, 8, SHAPE)
    img = sitk.GetImageFromArray(hu.astype(np.int16))
    img.SetSpacing(SPACING)
    return img, a, b, bridge


def blob_with_leak(seed: int = 0) -> tuple[sitk.Image, np.ndarray, np.ndarray]:
    """A big blob (60 HU, radius 14) with a small ball (radius 7) attached by a thick bridge, in fat.

    The blob's centre holds a small darker spot (30 HU, radius 2): a click there sits in a ring of
    strong gradient, so a watershed seeded with that click alone loses the whole blob to a
    negative click placed in the leak. Returns the image, the blob and the leak ball.
    """
    blob = _ball((20, 32, 24), 14)
    leak = _ball((20, 32, 47), 7)
    z, y, x = np.indices(SHAPE)
    bridge = (np.abs(z - 20) <= 4) & (np.abs(y - 32) <= 4) & (x > 30) & (x < 47) & ~blob & ~leak
    hu = np.full(SHAPE, -100.0)
    hu[blob | leak | bridge] = 60.0
    hu[_ball((20, 32, 24), 2)] = 30.0
    hu += np.random.default_rng(seed).normal(0, 8, SHAPE)
    img = sitk.GetImageFromArray(hu.astype(np.int16))
    img.SetSpacing(SPACING)
    return img, blob, leak


def tree(seed: int = 0) -> tuple[sitk.Image, np.ndarray, np.ndarray]:
    """A bright Y-shaped tube (180 HU, radius 2 voxels) inside a 60 HU organ inside fat; and a separate bright blob."""
    z, y, x = np.indices(SHAPE)
    organ = ((z - 20) / 18) ** 2 + ((y - 32) / 28) ** 2 + ((x - 32) / 28) ** 2 <= 1
    tube = np.zeros(SHAPE, dtype=bool)
    for (z0, y0, x0), (z1, y1, x1) in (((20, 32, 8), (20, 32, 32)), ((20, 32, 32), (20, 12, 52)),
                                        ((20, 32, 32), (20, 52, 52))):
        for t in np.linspace(0, 1, 80):
            c = np.array([z0 + t * (z1 - z0), y0 + t * (y1 - y0), x0 + t * (x1 - x0)])
            lo = np.maximum(np.floor(c - 3).astype(int), 0)
            hi = np.minimum(np.ceil(c + 4).astype(int), SHAPE)
            sub = tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))
            zz, yy, xx = np.ogrid[sub]
            tube[sub] |= (zz - c[0]) ** 2 + (yy - c[1]) ** 2 + (xx - c[2]) ** 2 <= 2.2**2
    blob = _ball((8, 32, 32), 4) & organ & ~tube
    hu = np.full(SHAPE, -100.0)
    hu[organ] = 60.0
    hu[tube] = 180.0
    hu[blob] = 180.0
    hu += np.random.default_rng(seed).normal(0, 8, SHAPE)
    img = sitk.GetImageFromArray(hu.astype(np.int16))
    img.SetSpacing(SPACING)
    return img, tube, blob


def dice(a: np.ndarray, b: np.ndarray) -> float:
    return 2.0 * float((a & b).sum()) / max(float(a.sum() + b.sum()), 1.0)


def tube_touching_ball(dark: bool = False, seed: int = 0) -> tuple[sitk.Image, np.ndarray, np.ndarray]:
    """A straight tube (radius 2 voxels) along x inside a 60 HU organ, ending in a thick ball (radius 9)
    of the same intensity: like a hepatic vein running into the IVC. Bright (180 HU) or, with
    ``dark``, non-contrast (35 HU in the 60 HU organ). Returns the image, the tube and the ball."""
    z, y, x = np.indices(SHAPE)
    organ = ((z - 20) / 18) ** 2 + ((y - 32) / 30) ** 2 + ((x - 32) / 30) ** 2 <= 1
    ball = _ball((20, 32, 48), 9)
    tube = ((z - 20) ** 2 + (y - 32) ** 2 <= 2.2**2) & (x >= 8) & ~ball
    hu = np.full(SHAPE, -100.0)
    hu[organ] = 60.0
    hu[tube | ball] = 35.0 if dark else 180.0
    hu += np.random.default_rng(seed).normal(0, 4 if dark else 8, SHAPE)
    img = sitk.GetImageFromArray(hu.astype(np.int16))
    img.SetSpacing(SPACING)
    return img, tube, ball

"""Tissue classes, their portal-venous-phase HU values, and the CT image formation.

The phantom is first built as a ``uint8`` tissue map; the image is the per-tissue HU value,
plus a faint low-frequency texture, blurred (partial volume, sigma in voxels) and then
corrupted by white gaussian noise, rounded to ``int16``.
"""

from __future__ import annotations

from enum import IntEnum

import numpy as np
from scipy import ndimage

from .geometry import upsample_linear


class Tissue(IntEnum):
    """Tissue codes of the internal tissue map (not the label map)."""

    AIR = 0
    SUBCUT_FAT = 1
    MUSCLE = 2
    VISCERAL_FAT = 3
    BOWEL = 4
    GAS = 5
    BONE_CORTEX = 6
    BONE_CANCELLOUS = 7
    DISC = 8
    CSF = 9
    RIB = 10
    AORTA = 11
    KIDNEY = 12
    SPLEEN = 13
    LUNG = 14
    HEART = 15
    GALLBLADDER = 16
    STOMACH_WALL = 17
    STOMACH_FLUID = 18
    LIVER = 19
    PORTAL_VEIN = 20
    HEPATIC_VEIN = 21
    IVC = 22
    TUMOUR = 23  # tumour n (0-based) has code TUMOUR + n


MAX_TUMOURS = 3
N_CODES = Tissue.TUMOUR + MAX_TUMOURS

# (low, high) HU ranges; each phantom draws one value per tissue from its range.
HU_RANGES: dict[Tissue, tuple[float, float]] = {
    Tissue.AIR: (-1000, -1000),
    Tissue.SUBCUT_FAT: (-110, -90),
    Tissue.MUSCLE: (45, 58),
    Tissue.VISCERAL_FAT: (-100, -80),
    Tissue.BOWEL: (25, 45),
    Tissue.GAS: (-950, -850),
    Tissue.BONE_CORTEX: (650, 750),
    Tissue.BONE_CANCELLOUS: (300, 420),
    Tissue.DISC: (80, 100),
    Tissue.CSF: (5, 20),
    Tissue.RIB: (450, 600),
    Tissue.AORTA: (160, 190),
    Tissue.KIDNEY: (150, 190),
    Tissue.SPLEEN: (105, 125),
    Tissue.LUNG: (-870, -820),
    Tissue.HEART: (120, 150),
    Tissue.GALLBLADDER: (0, 20),
    Tissue.STOMACH_WALL: (40, 60),
    Tissue.STOMACH_FLUID: (5, 20),
    Tissue.LIVER: (52, 68),
    Tissue.PORTAL_VEIN: (175, 205),
    Tissue.HEPATIC_VEIN: (160, 190),
    Tissue.IVC: (150, 175),
}

TUMOUR_HU = {"hypo": (20.0, 40.0), "hyper": (100.0, 130.0)}


def sample_hu(rng: np.random.Generator, ranges: dict[Tissue, tuple[float, float]] | None = None) -> dict[Tissue, float]:
    """One HU value per tissue (tumours excluded), rounded to 0.1 HU, from ``ranges`` (default :data:`HU_RANGES`)."""
    return {t: round(float(rng.uniform(lo, hi)), 1) for t, (lo, hi) in (ranges or HU_RANGES).items()}


def smooth_noise(
    rng: np.random.Generator, shape: tuple[int, int, int], cell: int = 4, sigma: float = 1.2
) -> np.ndarray:
    """Unit-variance low-frequency random field of ``shape`` (made coarse, smoothed, upsampled)."""
    coarse_shape = tuple(max(2, -(-n // cell) + 1) for n in shape)
    coarse = ndimage.gaussian_filter(rng.standard_normal(coarse_shape).astype(np.float32), sigma, mode="wrap")
    coarse /= max(float(coarse.std()), 1e-6)
    factors = tuple((n - 1) / (c - 1) for n, c in zip(shape, coarse_shape, strict=True))
    return upsample_linear(coarse, shape, factors)


def form_image(
    tissue: np.ndarray,
    hu: np.ndarray,
    rng: np.random.Generator,
    noise_std: float,
    blur_sigma: float = 0.7,
    texture_hu: float = 4.0,
) -> np.ndarray:
    """HU image (int16, same shape as ``tissue``) from the tissue map and a HU lookup table."""
    img = hu.astype(np.float32)[tissue]
    if texture_hu > 0:
        texture = smooth_noise(rng, tissue.shape)
        texture *= np.float32(texture_hu)
        texture[tissue == Tissue.AIR] = 0
        img += texture
    if blur_sigma > 0:
        img = ndimage.gaussian_filter(img, blur_sigma, truncate=3.0)
    img += rng.standard_normal(img.shape, dtype=np.float32) * np.float32(noise_std)
    np.clip(img, -1024, 3071, out=img)
    return np.rint(img).astype(np.int16)

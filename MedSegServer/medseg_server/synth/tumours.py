"""Liver tumours: slightly deformed ellipsoids placed inside the liver away from large vessels."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import cc3d
import numpy as np

from .geometry import Grid, ellipsoid_box, rotation
from .intensity import TUMOUR_HU

MIN_CONTRAST = 25.0  # HU between a tumour and the liver parenchyma


@dataclass
class Tumour:
    """One tumour (physical mm)."""

    centre: np.ndarray
    semi: np.ndarray
    rot: np.ndarray
    kind: str  # "hypo" | "hyper"
    hu: float
    bumps: list[tuple[np.ndarray, float, float, float]]

    @property
    def bound(self) -> float:
        """Radius of a sphere containing the tumour."""
        return float(self.semi.max()) * (1 + sum(abs(b[1]) for b in self.bumps))


def sample_tumour(rng: np.random.Generator, centre: np.ndarray, radius: float, liver_hu: float,
                  tumour_hu: dict[str, tuple[float, float]] | None = None) -> Tumour:
    """A tumour of mean radius ``radius`` at ``centre`` with random shape and enhancement.

    Its HU is drawn from ``tumour_hu`` (default :data:`TUMOUR_HU`) but kept at least ``MIN_CONTRAST`` HU from the liver.
    """
    semi = radius * rng.uniform(0.8, 1.2, size=3)
    bumps = []
    for _ in range(3):
        v = rng.normal(size=3)
        bumps.append(
            (
                v / np.linalg.norm(v),
                float(rng.uniform(0.03, 0.07)),
                float(rng.uniform(2, 5)),
                float(rng.uniform(0, 6.3)),
            )
        )
    kind = "hypo" if rng.uniform() < 0.65 else "hyper"
    low, high = (tumour_hu or TUMOUR_HU)[kind]
    if kind == "hypo":
        high = max(low, min(high, liver_hu - MIN_CONTRAST))
    else:
        low = min(high, max(low, liver_hu + MIN_CONTRAST))
    hu = round(float(rng.uniform(low, high)), 1)
    return Tumour(centre, semi, rotation(*rng.uniform(-np.pi, np.pi, size=3)), kind, hu, bumps)


def rasterise_tumour(
    grid: Grid, tumour: Tumour, liver: np.ndarray
) -> tuple[tuple[slice, ...], np.ndarray] | None:
    """Tumour voxels (inside the liver, largest connected part) as (slices, mask in the slices)."""
    sl = ellipsoid_box(grid, tumour.centre, tumour.semi * 1.25)
    if sl is None:
        return None
    z, y, x = grid.coords(sl)
    d = (x - np.float32(tumour.centre[0]), y - np.float32(tumour.centre[1]), z - np.float32(tumour.centre[2]))
    r = tumour.rot.astype(np.float32)
    loc = [r[0, a] * d[0] + r[1, a] * d[1] + r[2, a] * d[2] for a in range(3)]
    q = np.sqrt(sum((loc[a] / np.float32(tumour.semi[a])) ** 2 for a in range(3)))
    norm = np.sqrt(loc[0] ** 2 + loc[1] ** 2 + loc[2] ** 2) + np.float32(1e-6)
    f = np.float32(1.0)
    for v, amp, freq, phase in tumour.bumps:
        cosang = (np.float32(v[0]) * loc[0] + np.float32(v[1]) * loc[1] + np.float32(v[2]) * loc[2]) / norm
        f = f + np.float32(amp) * np.sin(np.float32(freq) * cosang + np.float32(phase))
    mask = (q < f) & liver[sl]
    if not mask.any():
        return None
    return sl, cc3d.largest_k(mask, k=1, connectivity=6).astype(bool)


def place_tumours(
    rng: np.random.Generator,
    grid: Grid,
    liver: np.ndarray,
    depth: Callable[[np.ndarray], float],
    count: int,
    liver_hu: float,
    keep_out: tuple[np.ndarray, np.ndarray],
    scale: float,
    tumour_hu: dict[str, tuple[float, float]] | None = None,
) -> list[Tumour]:
    """Place up to ``count`` tumours; ``depth(p)`` is the depth (mm) of ``p`` inside the liver.

    ``keep_out`` is ``(points (n, 3), clearances (n,))``: a tumour surface keeps that far from
    each point (large vessels, hilum, hepatic vein confluence).
    """
    zz, yy, xx = np.nonzero(liver)
    if len(zz) == 0:
        return []
    tumours: list[Tumour] = []
    rmin = max(6.0 * scale, 2.0 * max(grid.spacing))
    rmax = max(24.0 * scale, rmin + 1)
    for _ in range(count):
        for _attempt in range(60):
            radius = float(np.exp(rng.uniform(np.log(rmin), np.log(rmax))))
            n = int(rng.integers(len(zz)))
            c = (
                grid.to_physical(np.array([xx[n], yy[n], zz[n]], float))
                + rng.uniform(-0.5, 0.5, 3) * grid.spacing
            )
            t = sample_tumour(rng, c, radius, liver_hu, tumour_hu)
            b = t.bound
            if depth(c) < 0.8 * radius:
                continue
            if len(keep_out[0]) and np.any(np.linalg.norm(keep_out[0] - c, axis=1) < b + keep_out[1]):
                continue
            if any(
                np.linalg.norm(o.centre - c) < b + o.bound + 3 * scale + max(grid.spacing) for o in tumours
            ):
                continue
            tumours.append(t)
            break
    return tumours

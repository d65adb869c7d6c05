"""Intensity models learned from the user's clicks and scribbles (no training data)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Interval:
    """An accepted intensity range learned around one seed."""

    centre: float
    low: float
    high: float
    near: tuple[int, int, int] | None = None  # only valid within ``radius_mm`` of this voxel (outlier seeds)
    radius_mm: float = 0.0


def seed_samples(image: np.ndarray, zyx: np.ndarray, radius: int = 1) -> list[np.ndarray]:
    """Intensities in a (2r+1)^3 neighbourhood of each (z, y, x) point of ``image``."""
    out = []
    hi = np.array(image.shape) - 1
    for p in np.asarray(zyx, dtype=int).reshape(-1, 3):
        lo_ = np.clip(p - radius, 0, hi)
        up = np.clip(p + radius, 0, hi) + 1
        out.append(image[lo_[0]:up[0], lo_[1]:up[1], lo_[2]:up[2]].ravel())
    return out


def interval(samples: np.ndarray, noise: float, k_sigma: float, min_halfwidth: float) -> Interval:
    """Robust (median, MAD) range of ``samples``, at least ``k_sigma`` noise wide and ``min_halfwidth`` wide."""
    centre = float(np.median(samples))
    spread = 1.4826 * float(np.median(np.abs(samples - centre))) if samples.size > 1 else 0.0
    half = max(k_sigma * max(spread, noise), min_halfwidth)
    return Interval(centre, centre - half, centre + half)


def merge(intervals: list[Interval]) -> list[Interval]:
    """Union of overlapping intervals (fewer comparisons per voxel)."""
    out: list[Interval] = []
    for iv in sorted(intervals, key=lambda i: i.low):
        if out and iv.low <= out[-1].high and iv.near is None and out[-1].near is None:
            last = out[-1]
            out[-1] = Interval(last.centre, last.low, max(last.high, iv.high))
        else:
            out.append(iv)
    return out


def exclude(intervals: list[Interval], background: list[float], noise: float) -> list[Interval]:
    """Shrink each foreground interval away from background intensities it wrongly accepts.

    A negative seed whose intensity lies inside a foreground interval but clearly apart from its
    centre (more than two noise deviations) moves the near bound to the midpoint.
    """
    out = []
    for iv in intervals:
        low, high = iv.low, iv.high
        for b in background:
            if low < b < high and abs(b - iv.centre) > 2.0 * noise:
                if b > iv.centre:
                    high = min(high, (b + iv.centre) / 2)
                else:
                    low = max(low, (b + iv.centre) / 2)
        out.append(Interval(iv.centre, low, high, iv.near, iv.radius_mm))
    return out


def localise(intervals: list[Interval], seeds: np.ndarray, radius_mm: float) -> list[Interval]:
    """Keep the first seed's interval global; a later seed whose range is not inside a global
    interval only adds its range near itself (a click on an unusual part of the object must not
    open the whole image to that intensity)."""
    out: list[Interval] = []
    for iv, seed in zip(intervals, seeds, strict=False):
        inside = any(g.low <= iv.low and iv.high <= g.high for g in out if g.near is None)
        if out and not inside:
            iv = Interval(iv.centre, iv.low, iv.high, tuple(int(v) for v in seed), radius_mm)
        out.append(iv)
    return out + intervals[len(out):]


def in_intervals(image: np.ndarray, intervals: list[Interval], spacing: np.ndarray | None = None) -> np.ndarray:
    """Voxels of ``image`` inside any of the intervals (local ones only near their seed)."""
    mask = np.zeros(image.shape, dtype=bool)
    for iv in merge(intervals):
        if iv.near is None:
            mask |= (image >= iv.low) & (image <= iv.high)
            continue
        sp = np.ones(3) if spacing is None else spacing
        r = np.ceil(iv.radius_mm / sp).astype(int)
        lo = np.maximum(np.array(iv.near) - r, 0)
        hi = np.minimum(np.array(iv.near) + r + 1, image.shape)
        box = tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))
        grids = np.ogrid[box]
        ball = sum(((g - c) * s) ** 2 for g, c, s in zip(grids, iv.near, sp, strict=True)) <= iv.radius_mm**2
        sub = image[box]
        mask[box] |= ball & (sub >= iv.low) & (sub <= iv.high)
    return mask

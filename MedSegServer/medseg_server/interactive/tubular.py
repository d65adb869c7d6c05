"""Tubular targets (vessels): an intensity range learned against the surroundings, and a leak guard.

* Intensity: each positive click's value is compared with its surroundings (the median of a
  shell 5-12 mm around it); the accepted range stops half way to the surroundings, so a bright
  contrast-filled vessel and a dark non-contrast one are handled alike ("half maximum" edge).
* Leak guard: vessels are thin. The radius of the clicked vessel is read from the distance map
  of the candidate voxels; parts of the candidate much thicker than that (the IVC next to a
  hepatic vein, the liver when the range is too loose) are removed with their rim before the
  connected growth from the clicks. When the clicked voxel itself sits in something far too
  thick for a vessel, or the connected result swells past a vessel tree's volume, the range is
  tightened towards the clicked value and the step repeated.
"""

from __future__ import annotations

from collections.abc import Callable

import cc3d
import edt
import numpy as np

from .intensity import Interval, in_intervals
from .profiles import TargetProfile

SHELL_MM = (5.0, 12.0)
LUMEN_MIN_HU = -100.0  # lumen (with its partial-volume rim beside fat) reads above this; gas never does
TIGHTEN_STEPS = 3
POLARITY_DEVIATIONS = 4.0  # a first click standing out by this many noise deviations sets the tree's side ...
STAND_OUT_DEVIATIONS = 3.0  # ... and a later click standing out less on that side takes the first click's range


def surroundings(smooth: np.ndarray, seed: np.ndarray, spacing: np.ndarray, centre: float,
                 noise: float, bright: bool | None = None) -> float | None:
    """The intensity the vessel at ``seed`` stands out from, read in the shell ``SHELL_MM`` around it.

    Bright or dark is decided by the shell's median (unless ``bright`` says); the background is
    then the upper quartile of the shell values clearly darker than the vessel (for a bright one:
    the liver rather than the fat that also lies around a vessel at the hilum), or the lower
    quartile of the clearly brighter ones. None when the shell is outside the crop.
    """
    r = np.ceil(SHELL_MM[1] / spacing).astype(int)
    lo = np.maximum(seed - r, 0)
    hi = np.minimum(seed + r + 1, smooth.shape)
    box = tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))
    grids = np.ogrid[box]
    d2 = sum(((g - c) * s) ** 2 for g, c, s in zip(grids, seed, spacing, strict=True))
    shell = (d2 >= SHELL_MM[0] ** 2) & (d2 <= SHELL_MM[1] ** 2)
    values = smooth[box][shell]
    if not values.size:
        return None
    if bright if bright is not None else centre >= float(np.median(values)):
        others = values[values < centre - 2.0 * noise]
        return float(np.percentile(others, 75)) if others.size else float(np.median(values))
    others = values[values > centre + 2.0 * noise]
    return float(np.percentile(others, 25)) if others.size else float(np.median(values))


def seed_levels(smooth: np.ndarray, seed: np.ndarray, spacing: np.ndarray, noise: float,
                bright: bool | None = None) -> tuple[float, float | None, bool]:
    """(value, surroundings, bright) of the vessel at ``seed``.

    The value is the voxel of the seed's 3x3x3 neighbourhood that stands out most from the
    surroundings on the vessel's side (a click on a thin vessel is rarely on its brightest voxel),
    among those that can be lumen (``LUMEN_MIN_HU``: a click on a vessel's rim beside gas does not
    learn "darker than the liver" down to air). The side is the clicked voxel's (brighter or
    darker than the surroundings) unless ``bright`` gives the tree's.
    """
    lo_ = np.maximum(seed - 1, 0)
    values = smooth[lo_[0]:seed[0] + 2, lo_[1]:seed[1] + 2, lo_[2]:seed[2] + 2].ravel()
    values = values[values >= LUMEN_MIN_HU] if (values >= LUMEN_MIN_HU).any() else values
    centre = float(smooth[tuple(seed)])
    if bright is not None:
        centre = float(values.max() if bright else values.min())
    around = surroundings(smooth, seed, spacing, centre, noise, bright)
    if around is None:
        return centre, None, True if bright is None else bright
    if bright is None:
        bright = centre >= around
        centre = float(values.max() if bright else values.min())
    return centre, around, bright


def contrast_interval(smooth: np.ndarray, seed: np.ndarray, spacing: np.ndarray, noise: float,
                      profile: TargetProfile, bright: bool | None = None) -> Interval:
    """Accepted range around one seed: ``profile.range_share`` of the way (half way by default)
    towards its surroundings, at least 1.5 noise wide (the seed's value and side:
    :func:`seed_levels`, ``bright`` the tree's side when known); the range never reaches below
    ``LUMEN_MIN_HU``."""
    return _interval(*seed_levels(smooth, seed, spacing, noise, bright), noise, profile)


def _interval(centre: float, around: float | None, bright: bool, noise: float, profile: TargetProfile) -> Interval:
    contrast = profile.min_halfwidth_hu * 2 if around is None else abs(centre - around)
    near_side = max(contrast * profile.range_share, 1.5 * noise)
    far_side = max(near_side, profile.min_halfwidth_hu)
    if bright:  # bright vessel: the surroundings are below
        return Interval(centre, max(centre - near_side, LUMEN_MIN_HU), centre + far_side)
    return Interval(centre, max(centre - far_side, LUMEN_MIN_HU), centre + near_side)


def localise_all(intervals: list[Interval], seeds: np.ndarray, radius_mm: float) -> list[Interval]:
    """The first seed's range holds everywhere; every later seed's range only near that seed (a
    click on a dim thin branch must not lower the threshold of the whole tree)."""
    out = intervals[:1]
    for iv, seed in zip(intervals[1:], seeds[1:], strict=False):
        out.append(Interval(iv.centre, iv.low, iv.high, tuple(int(v) for v in seed), radius_mm))
    return out


def tighten(intervals: list[Interval], factor: float = 0.6) -> list[Interval]:
    """Every range narrowed towards its centre."""
    return [Interval(iv.centre, iv.centre - factor * (iv.centre - iv.low), iv.centre + factor * (iv.high - iv.centre),
                     iv.near, iv.radius_mm) for iv in intervals]


def coarse_factors(spacing: np.ndarray, finest_mm: float = 2.4) -> tuple[int, int, int]:
    """Per-axis factors 1 or 2 bringing the grid near ``finest_mm`` (thickness needs no fine grid)."""
    return tuple(2 if s * 2 <= finest_mm * 1.25 else 1 for s in spacing)


def distance_inside(cand: np.ndarray, spacing: np.ndarray, factors: tuple[int, int, int]) -> np.ndarray:
    """Distance (mm) from each voxel of ``cand`` to the outside, computed on a grid ``factors`` coarser."""
    if factors == (1, 1, 1):
        return edt_mm(cand, spacing)
    coarse = _shrink(cand, factors)
    return _grow(edt_mm(coarse, spacing * np.array(factors)), factors, cand.shape)


def edt_mm(mask: np.ndarray, spacing: np.ndarray) -> np.ndarray:
    """Euclidean distance (mm, float32) from each voxel of ``mask`` to the nearest voxel outside it.

    Same values as ``scipy.ndimage.distance_transform_edt`` (the array border is not outside),
    several times faster on the sparse candidates of vessels (the ``edt`` package skips empty runs).
    """
    return edt.edt(np.ascontiguousarray(mask, dtype=bool), anisotropy=tuple(float(s) for s in spacing),
                   black_border=False, parallel=1)


def remove_thick(cand: np.ndarray, dist: np.ndarray, r_max_mm: float, spacing: np.ndarray,
                 factors: tuple[int, int, int]) -> np.ndarray:
    """``cand`` without its parts thicker than ``r_max_mm`` (their cores grown back by that radius)."""
    core = dist > r_max_mm
    if not core.any():
        return cand
    # only the box around the cores (whole coarse blocks, plus the reach) can change
    f = np.array(factors)
    coarse_spacing = spacing * f
    limit = r_max_mm + float(spacing.max())
    reach_blocks = int(np.ceil(limit / coarse_spacing.min())) + 1
    where = np.nonzero(core)
    lo = np.array([int(w.min()) for w in where]) // f
    hi = -(-np.array([int(w.max()) + 1 for w in where]) // f)
    lo = np.maximum(lo - reach_blocks, 0) * f
    hi = np.minimum((hi + reach_blocks) * f, cand.shape)
    box = tuple(slice(int(a), int(b)) for a, b in zip(lo, hi, strict=True))
    coarse = _shrink(core[box], factors, any_voxel=True)
    reach = _grow(edt_mm(~coarse, coarse_spacing), factors, core[box].shape)
    out = cand.copy()
    out[box] &= reach > limit
    return out


def _shrink(mask: np.ndarray, factors: tuple[int, int, int], any_voxel: bool = False) -> np.ndarray:
    """Block mean >= 1/2 (or any) over blocks of ``factors``, padding the last partial block."""
    if factors == (1, 1, 1):
        return mask
    shape = tuple(-(-n // f) * f for n, f in zip(mask.shape, factors, strict=True))
    padded = np.zeros(shape, dtype=np.float32)
    padded[tuple(slice(0, n) for n in mask.shape)] = mask
    blocks = padded.reshape(shape[0] // factors[0], factors[0], shape[1] // factors[1], factors[1],
                            shape[2] // factors[2], factors[2])
    return blocks.max(axis=(1, 3, 5)) > 0 if any_voxel else blocks.mean(axis=(1, 3, 5)) >= 0.5


def _grow(coarse: np.ndarray, factors: tuple[int, int, int], shape: tuple[int, ...]) -> np.ndarray:
    """Nearest-neighbour upsampling of a coarse grid back to ``shape``."""
    out = coarse
    for axis, f in enumerate(factors):
        if f > 1:
            out = np.repeat(out, f, axis=axis)
    return out[tuple(slice(0, n) for n in shape)]


def seed_radius(dist: np.ndarray, seeds: np.ndarray) -> float:
    """Largest candidate radius (mm) at the seeds and their 26 neighbours."""
    best = 0.0
    hi = np.array(dist.shape)
    for p in seeds:
        lo_ = np.clip(p - 1, 0, hi)
        up = np.clip(p + 2, 0, hi)
        best = max(best, float(dist[lo_[0]:up[0], lo_[1]:up[1], lo_[2]:up[2]].max()))
    return best


def tubular_region(cand_of: Callable[[list[Interval]], np.ndarray], seeds: np.ndarray, seed_mask: np.ndarray,
                   negatives: np.ndarray, spacing: np.ndarray, intervals: list[Interval],
                   profile: TargetProfile, joined: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Thin candidate voxels connected to the seeds, with the range tightened on explosion.

    ``joined`` (optional): a mask whose thin candidate voxels seed the growth as well (a vessel's
    last result, when a later click re-traces near itself): unlike ``seed_mask`` it is neither
    forced into the candidate nor kept where it is too thick (the thickness allowed comes from the
    clicks in ``seeds`` alone).

    ``cand_of(intervals)`` gives the candidate mask for a list of ranges. A negative click cuts
    the vessel it sits in (a ball as wide as the vessel): what lies beyond it is no longer
    connected to a positive click. Returns the region and the candidate it was grown in.
    """
    voxel_ml = float(np.prod(spacing)) / 1000.0
    factors = coarse_factors(spacing)
    for step in range(TIGHTEN_STEPS + 1):
        cand = cand_of(intervals)
        if not len(seeds):
            return np.zeros_like(cand), cand
        dist = distance_inside(cand, spacing, (1, 1, 1))
        radius = seed_radius(dist, seeds)
        last = step == TIGHTEN_STEPS
        if radius > profile.max_radius_mm and not last:
            intervals = tighten(intervals)
            continue
        r_max = min(max(1.5 * radius + float(spacing.min()), 2.0 * float(spacing.max())), 1.5 * profile.max_radius_mm)
        thin = remove_thick(cand, dist, r_max, spacing, factors) | (seed_mask & cand)
        labels = cc3d.connected_components(thin, connectivity=26)
        starts = seed_mask | joined if joined is not None else seed_mask
        picked = np.unique(labels[starts & thin])
        picked = picked[picked > 0]
        region = np.isin(labels, picked) if picked.size else np.zeros_like(thin)
        if region.sum() * voxel_ml > profile.max_volume_ml and not last:
            intervals = tighten(intervals)
            continue
        return region, cand
    raise AssertionError("unreachable")


def learn(smooth: np.ndarray, seeds: np.ndarray, spacing: np.ndarray, noise: float,
          profile: TargetProfile) -> list[Interval]:
    """One contrast range per seed (see :func:`contrast_interval`).

    When the first seed stands out clearly (``POLARITY_DEVIATIONS`` noise deviations: a contrast
    scan), its side (brighter or darker than the surroundings) is the tree's: a later seed learns
    its range on that side, and one that does not stand out that way (``STAND_OUT_DEVIATIONS``: a
    dim partial-volume spot of a bright tree, darker than the liver) takes the first seed's range
    (near itself, once localised) instead of a dark range that would fill the liver's noise.
    """
    pts = np.asarray(seeds, dtype=int).reshape(-1, 3)
    if not len(pts):
        return []
    centre, around, bright = seed_levels(smooth, pts[0], spacing, noise)
    first = _interval(centre, around, bright, noise, profile)
    if around is None or abs(centre - around) < POLARITY_DEVIATIONS * noise:
        return [first] + [contrast_interval(smooth, p, spacing, noise, profile) for p in pts[1:]]
    out = [first]
    for p in pts[1:]:
        centre, around, _ = seed_levels(smooth, p, spacing, noise, bright)
        stands_out = around is None or (centre - around) * (1 if bright else -1) >= STAND_OUT_DEVIATIONS * noise
        out.append(_interval(centre, around, bright, noise, profile) if stands_out else first)
    return out


def candidate_mask(smooth: np.ndarray, intervals: list[Interval], spacing: np.ndarray,
                   forced_bg: np.ndarray | None, forced_fg: np.ndarray | None) -> np.ndarray:
    """Voxels in a range, minus the forbidden ones, plus the painted ones."""
    cand = in_intervals(smooth, intervals, spacing)
    if forced_bg is not None:
        cand &= ~forced_bg
    if forced_fg is not None:
        cand |= forced_fg
    return cand

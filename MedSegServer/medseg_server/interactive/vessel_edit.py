"""Later clicks on a vessel edit its last result where they act instead of replacing it.

Replacing the result by a fresh trace on every click made it swing: a positive click whose
range (or thickness test) tightened the ranges dropped half the tree, and a negative click
flooded its watershed along the weak edges of a non-contrast vessel far beyond the leak it sat
in, while earlier negatives re-competed for the whole tree on every click.

* A positive click only adds: the new part of the tree traced from the new clicks within
  ``LOCAL_MM`` of them (:func:`trace_near`: a crop of the region, widened while what it adds runs
  into the crop's faces; earlier negatives in it competing, as before), checked by
  :func:`checked_growth` (a large addition must stand out from its surroundings like the vessel
  does; none adds more than half the vessel or ``GROW_FLOOR_ML``, whichever is more, nearest the
  click). The crop's trace starts from the click and from the last result there (thin candidate
  parts touching it), so what an earlier cap left out near the click still comes in; re-tracing
  the whole tree from every click cost 0.2-0.5 s a click.
* A negative click takes back only a piece around itself (:func:`take_back`): what it wins in a
  marker watershed of the gradient within a few local radii of the click (the rest of the result
  is positive evidence), then what that cut leaves unconnected to any positive click (the branch
  beyond it), unless that is a large share of the tree or looks like the kept vessel rather than
  the removed piece. (A wide cut, within ``contest_mm`` when it runs along an edge, was tried: on
  the benchmarks it fired once and changed nothing.) When the click sits on a part of the result
  joined to the rest by a clear neck (a contact with another vessel the trace ran through), all of
  that part goes too (:func:`neck_split.beyond_neck`).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING

import cc3d
import numpy as np
from scipy import ndimage
from skimage.graph import MCP_Geometric
from skimage.segmentation import watershed

from .boxes import Box
from .foreign_vessel import drop_foreign
from .intensity import Interval
from .neck_split import beyond_neck
from .tubular import edt_mm

if TYPE_CHECKING:
    from .profiles import TargetProfile
    from .propagate import RoiInputs

GROW_MIN_ML = 8.0  # a later positive click adding more than this (ml) ...
GROW_SHARE = 0.5  # ... and more than this share of the vessel must stand out like the vessel ...
GROW_CONTRAST = 0.4  # ... by at least this share of its contrast
GROW_MAX_SHARE = 0.5  # no click adds more than this share of the vessel ...
GROW_FLOOR_ML = 3.0  # ... or than this volume (ml), whichever is more (a small first trace grows faster)
CUT_RADII = 3.0  # a negative click contests the last result within this many local radii of itself ...
CUT_MIN_MM = 6.0  # ... and at least this far
DROP_SHARE = 0.15  # a cut may drop the branch beyond it when that is at most this share of the tree ...
DROP_SMALL = 0.03  # ... and, above this share, only when it looks like the clicked voxels
LOCAL_MM = 30.0  # a later positive click traces within this distance of itself ...
LOCAL_WIDEN = 2  # ... doubled up to this many times while what it adds reaches the crop's faces


def components_with(mask: np.ndarray, seeds: np.ndarray) -> np.ndarray:
    """Union of the 26-connected components of ``mask`` holding a voxel of ``seeds``."""
    labels = cc3d.connected_components(mask, connectivity=26)
    picked = np.unique(labels[seeds & mask])
    picked = picked[picked > 0]
    return np.isin(labels, picked) if picked.size else np.zeros(mask.shape, dtype=bool)


def trace_near(inp: RoiInputs, profile: TargetProfile, points: np.ndarray,
               trace: Callable[[RoiInputs, TargetProfile], np.ndarray]) -> np.ndarray:
    """The tree ``trace`` finds from the (N, 3) ``points`` alone, within ``LOCAL_MM`` of them (region mask).

    The crop is widened (``LOCAL_WIDEN`` times, doubling) while the traced voxels outside
    ``inp.previous`` (beyond its rim) reach one of its faces inside the region (a branch the click
    joined runs on). The tree's volume outside the crop counts against ``max_volume_ml`` (the leak
    guard of :func:`tubular.tubular_region` tightens the ranges as it did on the whole tree).
    """
    out = np.zeros(inp.smooth.shape, dtype=bool)
    previous = inp.previous if inp.previous is not None else out
    voxel_ml = float(np.prod(inp.spacing)) / 1000.0
    for step in range(LOCAL_WIDEN + 1):
        box = points_box(points, LOCAL_MM * 2**step, inp.spacing, inp.smooth.shape)
        outside_ml = float(previous.sum() - previous[box].sum()) * voxel_ml  # the tree's volume counts whole
        key = _memo_key(inp, box, points, outside_ml)
        local = inp.memo.get(key) if inp.memo is not None else None
        if local is None:
            local = trace(crop_inputs(inp, box, inp.positive),
                          replace(profile, max_volume_ml=profile.max_volume_ml - outside_ml))
            if inp.memo is not None:
                inp.memo[key] = local
        out[:] = False
        out[box] = local
        added = local & ~dilate26(previous[box])  # (not the rim re-snapped)
        if step == LOCAL_WIDEN or not _reaches_faces(added, box, inp.smooth.shape):
            return out
    return out


def _memo_key(inp: RoiInputs, box: tuple[slice, ...], points: np.ndarray, outside_ml: float) -> tuple:
    """The same trace in the same level box (the session's region widened around it) is the same result."""
    origin = np.asarray(inp.origin)
    return ("trace", round(outside_ml, 6),
            tuple((int(s.start + o), int(s.stop + o)) for s, o in zip(box, origin, strict=True)),
            (np.asarray(points, dtype=int).reshape(-1, 3) + origin).tobytes(),
            (np.asarray(inp.positive, dtype=int).reshape(-1, 3) + origin).tobytes())


def points_box(points: np.ndarray, radius_mm: float, spacing: np.ndarray,
               shape: tuple[int, ...]) -> tuple[slice, ...]:
    """Slices of the box holding the balls of ``radius_mm`` around all (N, 3) ``points``."""
    boxes = [ball_box(p, radius_mm, spacing, shape) for p in np.asarray(points, dtype=int).reshape(-1, 3)]
    return tuple(slice(min(b[a].start for b in boxes), max(b[a].stop for b in boxes)) for a in range(3))


def _reaches_faces(mask: np.ndarray, box: tuple[slice, ...], shape: tuple[int, ...]) -> bool:
    """True when ``mask`` (a crop ``box`` of an array of ``shape``) touches a face of the crop
    that is not a face of the array."""
    for axis in range(3):
        if box[axis].start > 0 and np.take(mask, 0, axis=axis).any():
            return True
        if box[axis].stop < shape[axis] and np.take(mask, -1, axis=axis).any():
            return True
    return False


def crop_inputs(inp: RoiInputs, box: tuple[slice, ...], positive: np.ndarray) -> RoiInputs:
    """``inp`` cropped to ``box``, seeded by the (N, 3) region points ``positive`` (those inside it)
    and the last result there (``joined``: the tree is joined, not re-found from far-away clicks),
    as a fresh trace (no update of a last result); negatives, ranges and masks moved along."""
    origin = np.array([s.start for s in box])
    shape = np.array([s.stop - s.start for s in box])

    def inside(points: np.ndarray) -> np.ndarray:
        pts = np.asarray(points, dtype=int).reshape(-1, 3)
        return pts[np.all((pts >= origin) & (pts < origin + shape), axis=1)] - origin

    def cut(array: np.ndarray | None) -> np.ndarray | None:
        return None if array is None else array[box]

    def gradient_of(mask: np.ndarray | None) -> np.ndarray:
        full = np.zeros(inp.smooth.shape, dtype=bool)
        full[box] = True if mask is None else mask
        return inp.gradient_of(full)[box]

    return replace(inp, smooth=inp.smooth[box], gradient_of=gradient_of, origin=tuple(int(o) for o in np.asarray(inp.origin) + origin), positive=inside(positive),
                   negative=inside(inp.negative), intervals=_moved(inp.intervals, origin, shape, inp.spacing),
                   joined=cut(inp.previous), forced_fg=cut(inp.forced_fg), forced_bg=cut(inp.forced_bg), base=cut(inp.base),
                   base_limit=cut(inp.base_limit), vesselness=cut(inp.vesselness), prior=cut(inp.prior),
                   raw=cut(inp.raw), previous=cut(inp.previous), fresh_positive=None, fresh_negative=None,
                   narrowed=None if inp.narrowed is None else _moved(inp.narrowed, origin, shape, inp.spacing),
                   narrow_near=cut(inp.narrow_near))


def _moved(intervals: list[Interval], origin: np.ndarray, shape: np.ndarray, spacing: np.ndarray) -> list[Interval]:
    """Ranges in the coordinates of a crop at ``origin``; local ones whose ball misses it dropped."""
    out = []
    for iv in intervals:
        if iv.near is None:
            out.append(iv)
            continue
        near = np.array(iv.near) - origin
        reach = np.ceil(iv.radius_mm / spacing).astype(int)
        if np.all(near + reach >= 0) and np.all(near - reach < shape):
            out.append(Interval(iv.centre, iv.low, iv.high, tuple(int(v) for v in near), iv.radius_mm))
    return out


def checked_growth(growth: np.ndarray, previous: np.ndarray, traced: np.ndarray, fresh: np.ndarray,
                   clicks: np.ndarray, smooth: np.ndarray, spacing: np.ndarray, max_radius_mm: float) -> np.ndarray:
    """``growth`` as a later positive click may add it to the vessel ``previous``.

    First, a neighbouring vessel that the clicked branch touches and the trace ran into (thicker
    and brighter than the branch at the click) is cut off at the neck (:func:`foreign_vessel.drop_foreign`).
    A large addition (over ``GROW_MIN_ML`` and ``GROW_SHARE`` of the vessel) must stand out from
    its surroundings like the vessel does (:func:`stands_out`); a sponge of organ voxels that fall
    in the range by noise does not, and only its part near the click (``cut_zone``) is added. Any
    addition is capped at ``GROW_MAX_SHARE`` of the vessel (at least ``GROW_FLOOR_ML``: a small
    first trace, e.g. 1 ml of a 30 ml portal vein, otherwise takes ten clicks to grow), nearest the
    click first.
    """
    growth = drop_foreign(growth, previous, clicks, smooth, spacing, lambda: _contrast(previous, smooth))
    n, size = int(growth.sum()), max(int(previous.sum()), 1)
    voxel_ml = float(np.prod(spacing)) / 1000.0
    if n * voxel_ml > GROW_MIN_ML and n > GROW_SHARE * size and not stands_out(growth, previous, smooth):
        near = cut_zone(traced, clicks, spacing, max_radius_mm) & growth
        return components_with(near, fresh)
    return nearest_part(growth, fresh, spacing, int(max(GROW_MAX_SHARE * size, GROW_FLOOR_ML / voxel_ml)))


def stands_out(part: np.ndarray, vessel: np.ndarray, smooth: np.ndarray) -> bool:
    """True when ``part`` differs from its surroundings (a shell two voxels out) in the same
    direction as ``vessel`` from its own, by at least ``GROW_CONTRAST`` of that difference."""
    mine = _contrast(vessel, smooth)
    if mine is None or not part.any():
        return True
    theirs = _contrast(part, smooth, vessel)
    return theirs is not None and theirs * np.sign(mine) >= GROW_CONTRAST * abs(mine)


def _contrast(mask: np.ndarray, smooth: np.ndarray, other: np.ndarray | None = None) -> float | None:
    sub = tuple(slice(max(s.start - 3, 0), s.stop + 3) for s in _bbox(mask))
    m = mask[sub]
    near = dilate26(m)
    shell = dilate26(near) & ~near
    if other is not None:
        shell &= ~dilate26(other[sub])
    if not shell.any():
        return None
    values = smooth[sub]
    return float(np.median(values[m])) - float(np.median(values[shell]))


def nearest_part(growth: np.ndarray, fresh: np.ndarray, spacing: np.ndarray, budget: int) -> np.ndarray:
    """The ``budget`` voxels of ``growth`` nearest (path length inside it) to ``fresh``."""
    if int(growth.sum()) <= budget:
        return growth
    sub = _bbox(growth)
    inside = growth[sub]
    starts = np.argwhere(fresh[sub] & inside)
    if not len(starts) or budget <= 0:
        return fresh & growth
    cost = np.where(inside, 1.0, np.inf)
    dist, _ = MCP_Geometric(cost, sampling=tuple(float(v) for v in spacing)).find_costs(starts.tolist())
    finite = dist[inside & np.isfinite(dist)]
    limit = np.partition(finite, budget - 1)[budget - 1] if finite.size > budget else np.inf
    out = np.zeros_like(growth)
    out[sub] = inside & np.isfinite(dist) & (dist <= limit)
    return out


def local_radius_mm(mask: np.ndarray, point: np.ndarray, spacing: np.ndarray, reach_mm: float) -> float:
    """Distance (mm) from ``point`` to the outside of ``mask``, read in a box of ``reach_mm``."""
    box = ball_box(point, reach_mm, spacing, mask.shape)
    local = tuple(int(p - s.start) for p, s in zip(point, box, strict=True))
    sub = mask[box]
    return float(edt_mm(sub, spacing)[local]) if sub[local] else 0.0


def ball_box(point: np.ndarray, radius_mm: float, spacing: np.ndarray,
             shape: tuple[int, ...]) -> tuple[slice, slice, slice]:
    """Slices of the box around ``point`` holding the ball of ``radius_mm``."""
    r = np.ceil(radius_mm / spacing).astype(int)
    lo = np.maximum(np.asarray(point) - r, 0)
    hi = np.minimum(np.asarray(point) + r + 1, shape)
    return tuple(slice(int(a), int(b)) for a, b in zip(lo, hi, strict=True))


def cut_zone(current: np.ndarray, clicks: np.ndarray, spacing: np.ndarray, max_radius_mm: float) -> np.ndarray:
    """Voxels within ``CUT_RADII`` local radii (at least ``CUT_MIN_MM``) of each negative click."""
    zone = np.zeros(current.shape, dtype=bool)
    for p in np.asarray(clicks, dtype=int).reshape(-1, 3):
        radius = local_radius_mm(current, p, spacing, 2.0 * max_radius_mm)
        reach = max(CUT_RADII * radius, CUT_MIN_MM)
        box = ball_box(p, reach, spacing, current.shape)
        grids = np.ogrid[box]
        zone[box] |= sum(((g - c) * s) ** 2 for g, c, s in zip(grids, p, spacing, strict=True)) <= reach**2
    return zone


def take_back(current: np.ndarray, pos: np.ndarray, neg: np.ndarray, clicks: np.ndarray, spacing: np.ndarray,
              gradient_on: Callable[[np.ndarray], np.ndarray], smooth: np.ndarray, max_radius_mm: float) -> np.ndarray:
    """``current`` minus the piece the negative markers ``neg`` (of ``clicks``) cut off (see module doc).

    ``pos``: positive evidence (click stamps, painted voxels) inside ``current``.
    """
    zone = cut_zone(current, clicks, spacing, max_radius_mm) & current
    markers = np.zeros(current.shape, dtype=np.int32)
    markers[(pos | ~zone) & current] = 1
    markers[neg & current & ~pos] = 2
    if not (markers == 2).any():
        return current
    sub = _bbox(zone | (markers == 2))
    won = np.zeros_like(current)
    won[sub] = watershed(gradient_on(zone)[sub], markers[sub], mask=current[sub]) == 2
    removed = components_with(won, neg) | beyond_neck(current, pos, clicks, spacing)
    return drop_cut_off(current & ~removed, pos, removed, smooth)


def drop_cut_off(rest: np.ndarray, pos: np.ndarray, removed: np.ndarray, smooth: np.ndarray) -> np.ndarray:
    """``rest`` (a vessel from which ``removed`` was just taken) without the pieces the removal cut
    off from every positive click in ``pos``, unless they are a large share of the vessel or look
    like the kept vessel rather than the removed piece (``_may_drop``)."""
    if not pos.any() or not removed.any():
        return rest
    beyond = rest & ~components_with(rest, pos)
    if beyond.any() and _may_drop(beyond, rest & ~beyond, removed, rest | removed, smooth):
        return rest & ~beyond
    return rest


def _may_drop(beyond: np.ndarray, kept: np.ndarray, removed: np.ndarray, current: np.ndarray,
              smooth: np.ndarray) -> bool:
    size = int(current.sum())
    n = int(beyond.sum())
    if n > DROP_SHARE * size:
        return False
    if n <= DROP_SMALL * size or not kept.any() or not removed.any():
        return True
    value = float(np.median(smooth[beyond]))
    return abs(value - float(np.median(smooth[removed]))) <= abs(value - float(np.median(smooth[kept])))


def dilate26(mask: np.ndarray) -> np.ndarray:
    """Binary dilation by the 3x3x3 cube (as ``binary_dilation`` with a full 3x3x3 structure, about twice as fast)."""
    return ndimage.maximum_filter(mask, size=3)


def _bbox(mask: np.ndarray) -> tuple[slice, ...]:
    """Slices of the bounding box of ``mask`` (empty slices when it is empty)."""
    box = Box.of_mask(mask)
    return box.slices if box is not None else (slice(0, 0),) * 3

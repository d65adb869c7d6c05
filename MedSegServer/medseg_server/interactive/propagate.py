"""One segmentation step on a region of interest of one pyramid level.

Image-driven, no training: voxels whose (smoothed) intensity falls in the ranges learned around
the positive seeds, optionally gated by vesselness for tubular targets, with thin bridges cut
by an opening, connected to a positive seed; negative seeds inside that region compete with the
positive ones in a marker-controlled watershed of the gradient magnitude (each voxel goes to the
seed it reaches with the lowest highest edge on the way), so a negative click removes the leak
it sits in and the cut follows the strongest edge in between.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import cc3d
import numpy as np
from scipy import ndimage
from skimage.morphology import remove_small_holes
from skimage.segmentation import watershed

from .boxes import Box
from .contest import protected
from .intensity import Interval, in_intervals
from .profiles import TargetProfile
from .thin_branches import grow_thin_branches
from .tubular import tubular_region
from .vessel_boundary import snap_vessel_boundary

FAR_REMOVAL = 0.10  # negative clicks may remove at most this share of the object outside their contest zones
TINY_REMOVAL = 0.01  # ... and more than this only when it looks like what they were placed on
EDGE_CUT = 1.5  # ... or when the cut runs along an edge this much stronger than the object's median gradient
SAME_DEVIATIONS = 2.0  # object and clicked voxels whose medians are closer than this many of the object's robust
# deviations cannot be told apart by intensity: then only an edge lets a click take more than its contest zones


@dataclass
class RoiInputs:
    """Everything a step needs, cropped to the region (level voxels, region coordinates)."""

    smooth: np.ndarray
    gradient_of: Callable[[np.ndarray | None], np.ndarray]  # gradient magnitude over the region (valid at
    # least on the tiles a given mask touches; None: everywhere), computed on first use
    spacing: np.ndarray
    positive: np.ndarray  # (N, 3) zyx
    negative: np.ndarray  # (M, 3) zyx
    intervals: list[Interval]
    forced_fg: np.ndarray | None = None  # foreground scribbles, mask slices: always in
    forced_bg: np.ndarray | None = None  # background scribbles, other targets, outside the box: never in
    base: np.ndarray | None = None  # a mask to refine (initial mask, sparse-slice fill)
    base_limit: np.ndarray | None = None  # how far growth from ``base`` may go
    vesselness: np.ndarray | None = None
    prior: np.ndarray | None = None  # optional foreground probability from a learned model
    raw: np.ndarray | None = None  # unsmoothed intensities (boundary snapping)
    previous: np.ndarray | None = None  # the target's last result over the region
    fresh_positive: np.ndarray | None = None  # positives of this interaction (None: no last result to update)
    fresh_negative: np.ndarray | None = None  # negatives of this interaction (None: no last result to update)
    narrowed: list[Interval] | None = None  # ``intervals`` shrunk away from the negatives' intensities ...
    narrow_near: np.ndarray | None = None  # ... which apply only here (near the negatives)
    joined: np.ndarray | None = None  # vessels: thin candidate parts touching this (the last result) count as seeded
    origin: tuple[int, int, int] = (0, 0, 0)  # the region's first voxel in level coordinates
    memo: dict | None = None  # one interaction's local results by level box, kept while its region is widened

    @property
    def gradient(self) -> np.ndarray:
        """Gradient magnitude over the region; only watersheds and contest zones (negative clicks) need it."""
        return self.gradient_of(None)

    def gradient_on(self, mask: np.ndarray) -> np.ndarray:
        """Gradient magnitude over the region, valid (computed) at least where ``mask`` is."""
        return self.gradient_of(mask)


def ellipsoid(radius_mm: float, spacing: np.ndarray) -> np.ndarray:
    """Boolean ellipsoid structuring element of ``radius_mm`` on an anisotropic grid."""
    r = np.maximum(np.floor(radius_mm / spacing + 1e-6).astype(int), 0)
    grids = np.ogrid[tuple(slice(-n, n + 1) for n in r)]
    return sum((g * s / max(radius_mm, 1e-6)) ** 2 for g, s in zip(grids, spacing, strict=True)) <= 1.0


def stamp(shape: tuple[int, ...], points: np.ndarray, radius: int = 1) -> np.ndarray:
    """Mask of small cubes of ``radius`` voxels around (N, 3) points."""
    out = np.zeros(shape, dtype=bool)
    hi = np.array(shape)
    for p in np.asarray(points, dtype=int).reshape(-1, 3):
        lo_ = np.clip(p - radius, 0, hi)
        up = np.clip(p + radius + 1, 0, hi)
        out[lo_[0]:up[0], lo_[1]:up[1], lo_[2]:up[2]] = True
    return out


def candidate(inp: RoiInputs, profile: TargetProfile) -> np.ndarray:
    """Voxels that could belong to the target on intensity (and vesselness) alone."""
    cand = in_intervals(inp.smooth, inp.intervals, inp.spacing)
    if inp.narrowed is not None and inp.narrow_near is not None:
        cand &= ~inp.narrow_near | in_intervals(inp.smooth, inp.narrowed, inp.spacing)
    if inp.vesselness is not None and len(inp.positive):
        at_seeds = inp.vesselness[tuple(inp.positive.T)]
        level = 0.05 * float(np.max(at_seeds)) if at_seeds.size else 0.0
        tube = inp.vesselness >= level
        # keep the full lumen: the vesselness is low at the wall, so grow the tube mask by one voxel
        cand &= ndimage.binary_dilation(tube, iterations=1)
    if inp.prior is not None:
        cand = (cand & (inp.prior >= 0.05)) | (inp.prior >= 0.5)
    if inp.forced_bg is not None:
        cand &= ~inp.forced_bg
    if inp.forced_fg is not None:
        cand |= inp.forced_fg
    return cand


def segment(inp: RoiInputs, profile: TargetProfile) -> np.ndarray:
    """The target's mask over the region."""
    if profile.tubular and inp.previous is not None and inp.fresh_negative is not None:
        return _update_vessel(inp, profile)
    shape = inp.smooth.shape
    cand = candidate(inp, profile)
    seeds = stamp(shape, inp.positive, 1) & cand
    base_seeds = inp.base & cand if inp.base is not None else np.zeros(shape, dtype=bool)
    if inp.forced_fg is not None:  # painted voxels grow freely, unless they annotate a mask to refine
        if inp.base is None:
            seeds |= inp.forced_fg
        else:
            base_seeds |= inp.forced_fg
    if profile.tubular:
        seed_mask = seeds | stamp(shape, inp.positive, 1)
        region, cand = tubular_region(lambda ivs: candidate(replace(inp, intervals=ivs), profile), inp.positive,
                                      seed_mask, inp.negative, inp.spacing, inp.intervals, profile, inp.joined)
        base_seeds = base_seeds & cand
        labels = cc3d.connected_components(cand, connectivity=26) if inp.base is not None else None
    else:
        region = cand
        if profile.open_mm > 0:
            opened = open_extended(cand, ellipsoid(profile.open_mm, inp.spacing))
            region = opened | seeds | base_seeds
        labels = cc3d.connected_components(region, connectivity=6)
        region = _components_with(labels, seeds)
    if inp.base is not None:
        grown = _components_with(labels, base_seeds)
        if inp.base_limit is not None:
            grown &= inp.base_limit
        region |= grown | inp.base
        if inp.forced_bg is not None:
            region &= ~inp.forced_bg
    if not profile.tubular and inp.previous is not None and inp.fresh_negative is not None:
        return _update(inp, region, profile)
    region = _compete(inp, region, profile)
    region = snap_boundary(inp, region, profile.tubular)
    if profile.tubular and inp.joined is None:  # a whole trace (not vessel_edit's local re-trace): its thin branches
        region = grow_thin_branches(inp.smooth, region, inp.spacing, cand, _blocked(inp))
    if profile.tubular and len(inp.positive):  # a click on a vessel's partial-volume rim still counts
        region[tuple(inp.positive.T)] = True
    return _fill_holes(inp, region, profile)


def open_extended(mask: np.ndarray, structure: np.ndarray) -> np.ndarray:
    """Morphological opening of ``mask`` as if it went on unchanged past the array's faces.

    An object cut by the image's field of view (or by the region's faces) is not eroded there
    (``binary_opening`` alone treats the outside as background and eats the object's cut faces),
    while a thin bridge touching a face stays thin beyond it and is still cut.
    """
    pad = [(n - 1, n - 1) for n in structure.shape]  # twice the radius: exact for the erosion and the dilation
    out = ndimage.binary_opening(np.pad(mask, pad, mode="edge"), structure=structure)
    return out[tuple(slice(p, p + n) for (p, _), n in zip(pad, mask.shape, strict=True))]


def _fill_holes(inp: RoiInputs, region: np.ndarray, profile: TargetProfile) -> np.ndarray:
    if profile.hole_mm > 0 and region.any():
        max_size = int(np.prod(np.maximum(profile.hole_mm / inp.spacing, 1)))
        region = remove_small_holes(region, max_size=max_size)
        if inp.forced_bg is not None:
            region &= ~inp.forced_bg
    return region


def _update(inp: RoiInputs, region: np.ndarray, profile: TargetProfile) -> np.ndarray:
    """A later interaction on a blob changes the last result only where it acts.

    The last result grows only by the parts of the candidate ``region`` outside it that a new
    positive click or painted voxel lies in (leaks removed earlier do not come back with the next
    click; old negative clicks compete for those parts), and a new negative click only takes back
    the error it sits in (``_take_back``).
    """
    previous = inp.previous if inp.forced_bg is None else inp.previous & ~inp.forced_bg
    painted = inp.forced_fg if inp.forced_fg is not None else np.zeros_like(region)
    fresh = stamp(region.shape, inp.fresh_positive, 1) | painted
    outside = region & ~previous
    growth = _components_with(cc3d.connected_components(outside, connectivity=6), fresh & outside)
    result = previous | growth
    pos = (stamp(region.shape, inp.positive, 1) | painted) & result
    neg_radius = _neg_radius(inp.spacing)
    if growth.any():
        old = stamp(region.shape, inp.negative, neg_radius) & growth & ~pos
        if old.any():
            result = previous | _split(inp.gradient, result, pos | previous, old)
    neg = stamp(region.shape, inp.fresh_negative, neg_radius) & result & ~pos
    if neg.any() and pos.any():
        result = _take_back(inp, result, pos, neg, inp.fresh_negative, profile)
    new = result & ~previous
    if new.any():  # only the new part's boundary is snapped (the kept one was, when it was new)
        result |= snap_boundary(inp, result) & ndimage.binary_dilation(new)
    return _fill_holes(inp, result, profile)


def _update_vessel(inp: RoiInputs, profile: TargetProfile) -> np.ndarray:
    """A later interaction on a vessel edits its last result (``vessel_edit.py``): new positive
    clicks only add (the checked new part of the re-traced tree), new negative clicks and
    background strokes only take away (the piece they cut, and what that cuts off)."""
    from .vessel_edit import checked_growth, drop_cut_off, take_back, trace_near

    shape = inp.previous.shape
    painted = inp.forced_fg if inp.forced_fg is not None else np.zeros(shape, dtype=bool)
    result = inp.previous
    if inp.forced_bg is not None:  # background strokes: what they cut off goes with them
        removed = inp.previous & inp.forced_bg
        result = drop_cut_off(inp.previous & ~removed, (stamp(shape, inp.positive, 1) | painted) & inp.previous,
                              removed, inp.smooth)
    fresh = stamp(shape, inp.fresh_positive, 1) | painted
    if fresh.any():  # the tree traced near the new clicks (earlier negatives competing); only its new part is added
        traced = (trace_near(inp, profile, inp.fresh_positive, segment) if len(inp.fresh_positive)
                  else segment(replace(inp, fresh_positive=None, fresh_negative=None), profile))  # painted only
        growth = checked_growth(traced & ~result, result, traced, fresh, inp.fresh_positive, inp.smooth,
                                inp.spacing, profile.max_radius_mm)
        result = result | growth
        if growth.any():  # the thin branches of what the clicks added
            result = grow_thin_branches(inp.smooth, result, inp.spacing, candidate(inp, profile), _blocked(inp), growth)
    clicked = stamp(shape, inp.fresh_negative, 0)  # a negative click next to a positive one holds its own voxel
    pos = ((stamp(shape, inp.positive, _held_radius(inp.spacing)) & ~clicked) | painted) & result
    neg = stamp(shape, inp.fresh_negative, _neg_radius(inp.spacing)) & result & ~pos
    if neg.any():
        result = take_back(result, pos, neg, inp.fresh_negative, inp.spacing, inp.gradient_on, inp.smooth,
                           profile.max_radius_mm)
    return result


def _blocked(inp: RoiInputs) -> np.ndarray | None:
    """Voxels growth past the traced tree may not take: painted background, other targets, negative clicks."""
    neg = stamp(inp.smooth.shape, inp.negative, _neg_radius(inp.spacing)) if len(inp.negative) else None
    if neg is None or inp.forced_bg is None:
        return inp.forced_bg if neg is None else neg
    return neg | inp.forced_bg


def _held_radius(spacing: np.ndarray) -> int:
    """Voxels around a positive click that a later negative click on a vessel may not take: one
    (a click on a thin vessel's rim keeps the voxels beside it), none on grids coarser than 2 mm,
    where one voxel around is a 9 mm cube that a negative click beside the click could not touch."""
    return 1 if float(spacing.min()) < 2.0 else 0


def _neg_radius(spacing: np.ndarray) -> int:
    return max(1, int(round(3.0 / float(spacing.min()))))


def _split(gradient: np.ndarray, area: np.ndarray, pos: np.ndarray, neg: np.ndarray) -> np.ndarray:
    """The positive side of a marker watershed of the gradient over ``area``."""
    markers = np.zeros(area.shape, dtype=np.int32)
    markers[pos & area] = 1
    markers[neg & area & ~pos] = 2
    sub = bbox_slices(area)
    out = np.zeros_like(area)
    out[sub] = watershed(gradient[sub], markers[sub], mask=area[sub]) == 1
    return out


def _take_back(inp: RoiInputs, current: np.ndarray, pos: np.ndarray, neg: np.ndarray, clicks: np.ndarray,
               profile: TargetProfile) -> np.ndarray:
    """``current`` minus the error the negative markers ``neg`` (of ``clicks``) sit in.

    The error is what the clicks win in a watershed against the positive evidence, as far as it
    is connected to them. Guard: the part of it outside the clicks' contest zones (``contest.py``)
    must be small (``FAR_REMOVAL`` of the object) and, when it is not tiny, look like the clicked
    voxels rather than the object (``_like_click``: only when the clicked tissue differs from the
    object by intensity) or be cut from the object along an edge (``_cut_on_edge``: object and
    leak may have the same intensity, e.g. liver and aorta without contrast); otherwise the flood
    went through a weak edge into the object and only the contest zones are open to the clicks.
    """
    removed = current & ~_split(inp.gradient, current, pos, neg)
    removed = _components_with(cc3d.connected_components(removed | neg, connectivity=26), neg) & current
    size = int(current.sum())
    plausible = size * float(np.prod(inp.spacing)) / 1000.0 <= profile.max_volume_ml  # else it is mostly leak
    if plausible and removed.sum() > TINY_REMOVAL * size:
        zone = current & ~protected(current, current, inp.gradient, inp.spacing, clicks, pos, profile.contest_mm)
        far = removed & ~zone
        kept = current & ~removed
        if far.sum() > FAR_REMOVAL * size or (far.sum() > TINY_REMOVAL * size
                                               and not _like_click(inp.smooth, far, kept, neg)
                                               and not _cut_on_edge(inp.gradient, removed, kept)):
            removed = current & ~_split(inp.gradient, current, pos | (current & ~zone), neg)
    return current & ~removed


def _cut_on_edge(gradient: np.ndarray, removed: np.ndarray, kept: np.ndarray) -> bool:
    """True when the removed part meets the kept object where the gradient is strong: the median
    gradient on its side of the contact is at least ``EDGE_CUT`` times the kept object's median."""
    if not removed.any() or not kept.any():
        return False
    sub = tuple(slice(max(s.start - 1, 0), s.stop + 1) for s in bbox_slices(removed))
    contact = removed[sub] & ndimage.binary_dilation(kept[sub])
    if not contact.any():
        return False
    return float(np.median(gradient[sub][contact])) >= EDGE_CUT * float(np.median(gradient[kept]))


def _like_click(image: np.ndarray, part: np.ndarray, kept: np.ndarray, clicked: np.ndarray) -> bool:
    """True when ``part`` looks like the ``clicked`` voxels rather than the ``kept`` object: its median
    intensity is nearer theirs, and theirs differs from the object's by at least ``SAME_DEVIATIONS``
    robust deviations of the object (else which one it is nearer is a coin toss)."""
    if not kept.any() or not clicked.any():
        return True
    object_values = image[kept]
    centre, click = float(np.median(object_values)), float(np.median(image[clicked]))
    deviation = 1.4826 * float(np.median(np.abs(object_values - centre)))
    if abs(click - centre) < SAME_DEVIATIONS * deviation:
        return False
    value = float(np.median(image[part]))
    return abs(value - click) <= abs(value - centre)


def snap_boundary(inp: RoiInputs, region: np.ndarray, tubular: bool = False) -> np.ndarray:
    """Move the boundary outwards onto the edge: smoothing and the intensity interval put it about
    half a voxel inside, so a voxel just outside joins when its unsmoothed intensity is nearer the
    object's than that of the voxels one step further out. Vessels: the partial-volume edge between
    lumen and surroundings, corrected for the tube's curvature (``vessel_boundary.py``)."""
    if not region.any() or not inp.intervals:
        return region
    image = inp.raw if inp.raw is not None else inp.smooth
    if tubular:
        return snap_vessel_boundary(image, region, inp.spacing, inp.forced_bg)
    centre = inp.intervals[0].centre
    once = ndimage.binary_dilation(region)
    ring = once & ~region
    if inp.forced_bg is not None:
        ring &= ~inp.forced_bg
    further = ndimage.binary_dilation(once) & ~once
    if not ring.any() or not further.any():
        return region
    outside = float(np.median(image[further]))
    values = image[ring]
    grown = region.copy()
    grown[ring] = np.abs(values - centre) < np.abs(values - outside)
    return grown


def _components_with(labels: np.ndarray, seeds: np.ndarray) -> np.ndarray:
    """Union of the connected components of ``labels`` that hold a seed voxel."""
    picked = np.unique(labels[seeds])
    picked = picked[picked > 0]
    return np.isin(labels, picked) if picked.size else np.zeros(labels.shape, dtype=bool)


def _compete(inp: RoiInputs, region: np.ndarray, profile: TargetProfile) -> np.ndarray:
    """Split ``region`` between positive and negative seeds by a marker watershed of the gradient."""
    if not len(inp.negative):
        return region
    neg = stamp(region.shape, inp.negative, _neg_radius(inp.spacing))
    if not (neg & region).any():
        return region
    pos = stamp(region.shape, inp.positive, 1)
    if inp.forced_fg is not None:
        pos |= inp.forced_fg
    if inp.previous is not None and profile.tubular:  # vessels: only the part of the last result near the click is contested
        pos |= inp.previous & ~near_points(region.shape, inp.negative, inp.spacing, profile.contest_mm)
    if inp.base is not None:
        pos |= ndimage.binary_erosion(inp.base, iterations=2)
    pos &= region & ~neg
    if not pos.any():
        return np.zeros_like(region)
    if not profile.tubular:  # blobs: each negative click only takes back the error it sits in
        return _take_back(inp, region, pos, neg & region, inp.negative, profile)
    return _split(inp.gradient_on(region), region, pos, neg)  # sparse vessels: their tiles only


def near_points(shape: tuple[int, int, int], points: np.ndarray, spacing: np.ndarray, radius_mm: float) -> np.ndarray:
    """Voxels within ``radius_mm`` of any of the (N, 3) points."""
    out = np.zeros(shape, dtype=bool)
    for p in np.asarray(points, dtype=int).reshape(-1, 3):
        r = np.ceil(radius_mm / spacing).astype(int)
        lo = np.maximum(p - r, 0)
        hi = np.minimum(p + r + 1, shape)
        box = tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))
        grids = np.ogrid[box]
        out[box] |= sum(((g - c) * s) ** 2 for g, c, s in zip(grids, p, spacing, strict=True)) <= radius_mm**2
    return out


def bbox_slices(mask: np.ndarray) -> tuple[slice, slice, slice]:
    """Slices of the bounding box of ``mask`` (whole array when empty)."""
    box = Box.of_mask(mask)
    return box.slices if box is not None else (slice(None),) * 3

"""An interactive segmentation session on one image: targets, interactions, undo and reset.

Opening a session builds the image pyramid once and starts filling, in the background, the
feature fields its targets' first interactions will read (``warmup.py``); every interaction then recomputes only its
target, on a region around that target at a resolution chosen for it, and writes only the
voxels that changed. Several targets share one label map: a target only takes voxels that are
free or already its own (unless the interaction says ``overwrite``), so finished neighbours are
never eroded; a target nested in another (vessels and tumours in the liver, ``TargetProfile.inside``)
may take its container's voxels, and voxels it lets go of return to whoever held them before.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import edt
import numpy as np
import SimpleITK as sitk

from ..labels import LABELS
from . import tubular
from .boxes import Box
from .intensity import Interval, exclude, interval, localise, seed_samples
from .interactions import Interaction, InteractionError
from .leak import blocks_to_native, is_leak
from .model_prior import CLICK_REACH_MM, ZONE_MARGIN_MM, ModelPrior, extend_zone, grow_zone
from .profiles import TargetProfile, profile_for
from .propagate import RoiInputs, bbox_slices, near_points, segment, stamp
from .pyramid import Pyramid
from .refine import CONTEXT, snap_native, trim_rim
from .resample import block_fraction, to_native
from .sparse import interpolate_slices
from .warmup import Warmup, first_level, plan

# A learned model's hook: called once when a session opens, with its image; answers the model's
# prior for that image (computed in the background) or None when it has nothing to say.
PriorProvider = Callable[[sitk.Image], "ModelPrior | None"]

MAX_UNDO = 50
MAX_EXPANSIONS = 3
EXPLOSION = 2.0


def _empty() -> np.ndarray:
    return np.zeros((0, 3), dtype=int)


@dataclass
class TargetState:
    """Everything the user told the engine about one target."""

    name: str
    value: int
    profile: TargetProfile
    positive: np.ndarray = field(default_factory=_empty)
    negative: np.ndarray = field(default_factory=_empty)
    scribble_fg: np.ndarray = field(default_factory=_empty)
    scribble_bg: np.ndarray = field(default_factory=_empty)
    box: Box | None = None
    base: tuple[Box, np.ndarray] | None = None  # native mask to refine, cropped
    annotated: tuple[Box, np.ndarray, np.ndarray] | None = None  # annotated slices: box, fg, bg (native)
    overwrite: bool = False
    fresh_positive: np.ndarray = field(default_factory=_empty)  # positive clicks of the last interaction
    fresh_negative: np.ndarray = field(default_factory=_empty)  # negative clicks of the last interaction
    refit: bool = False  # the last interaction brought a mask or a box: the last result is not kept
    adds: bool = True  # the last interaction may add voxels (False: only negative clicks / background strokes)
    level: int | None = None
    level_box: Box | None = None  # bounding box of the last result on the level grid
    level_crop: np.ndarray | None = None  # the last result inside ``level_box``
    interactions: int = 0
    zone: tuple[Box, np.ndarray] | None = None  # native zone the target must stay in (from a model's answer)
    from_model: str | None = None  # the model whose answer gave ``zone``
    rough: bool = False  # blob past its plausible volume: written as level blocks, not refined (leak.py)

    def snapshot(self) -> TargetState:
        """A copy that later interactions do not change (results are replaced, never edited in place)."""
        return replace(self)

    def add(self, inter: Interaction) -> None:
        """Record an interaction (duplicated clicks, as sent by clients that resend all clicks, are skipped)."""
        known = len(self.positive), len(self.negative)
        self.positive = _append_new(self.positive, inter.positive)
        self.negative = _append_new(self.negative, inter.negative)
        self.fresh_positive, self.fresh_negative = self.positive[known[0]:], self.negative[known[1]:]
        self.refit = inter.mask is not None or inter.box is not None
        self.adds = bool(len(inter.positive) or len(inter.scribble_fg)) or self.refit
        if len(inter.scribble_fg):
            self.scribble_fg = np.concatenate([self.scribble_fg, inter.scribble_fg])
        if len(inter.scribble_bg):
            self.scribble_bg = np.concatenate([self.scribble_bg, inter.scribble_bg])
        if inter.box is not None:
            self.box = inter.box
        self.overwrite = inter.overwrite
        self.interactions += 1


def _append_new(have: np.ndarray, new: np.ndarray) -> np.ndarray:
    if not len(new):
        return have
    known = {tuple(p) for p in have.tolist()}
    fresh = [p for p in new.tolist() if tuple(p) not in known]
    return np.concatenate([have, np.asarray(fresh, dtype=int).reshape(-1, 3)]) if fresh else have


@dataclass
class Update:
    """What an interaction changed."""

    target: str
    value: int
    changed: Box | None  # native (z, y, x) box of changed voxels, None when nothing changed
    voxels: int  # voxels of the target now
    seconds: float
    level: int | None = None
    region: Box | None = None  # native region that was recomputed
    from_model: str | None = None  # the model whose answer the target started from, if any

    def as_json(self) -> dict:
        """JSON form; boxes in (x, y, z) index order."""
        return {
            "target": self.target, "value": self.value, "voxels": self.voxels, "seconds": round(self.seconds, 4),
            "changed": None if self.changed is None else self.changed.as_xyz(), "level": self.level,
            "from_model": self.from_model,
        }


@dataclass
class _UndoRecord:
    target: str
    state: TargetState | None  # None: the target did not exist
    box: Box | None
    labels: np.ndarray | None
    beneath: np.ndarray | None = None  # the session's ``_beneath`` over ``box`` before the change


class InteractiveSession:
    """Open once per image; then ``interact``, ``undo``, ``reset``; read ``labels``."""

    def __init__(self, image: sitk.Image, targets: dict[str, int] | None = None,
                 prior_provider: PriorProvider | None = None) -> None:
        t0 = time.perf_counter()
        if image.GetDimension() != 3 or image.GetNumberOfComponentsPerPixel() != 1:
            raise InteractionError("interactive sessions need a 3D scalar image")
        self.reference = sitk.Image([1, 1, 1], sitk.sitkUInt8)
        self.size = image.GetSize()
        self.geometry = (image.GetOrigin(), image.GetSpacing(), image.GetDirection())
        self.pyramid = Pyramid.build(image)
        self.labels = np.zeros(self.pyramid.native_shape, dtype=np.uint8)
        self._beneath: np.ndarray | None = None  # label a nested target's voxel had before it took it
        self.target_values = dict(targets or LABELS)
        self.targets: dict[str, TargetState] = {}
        self.warmup = Warmup(self.pyramid, plan(self.pyramid, [profile_for(n) for n in self.target_values]))
        self.prior = prior_provider(image) if prior_provider is not None else None
        self._undo: list[_UndoRecord] = []
        self.lock = threading.Lock()
        self.open_seconds = time.perf_counter() - t0

    # ---- public API -------------------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, int, int]:
        """Native (z, y, x) size."""
        return self.pyramid.native_shape

    def wait_ready(self, timeout: float | None = None) -> bool:
        """Block until the background warm-up is done (interactions do not need to wait for it)."""
        return self.warmup.wait(timeout)

    def close(self) -> None:
        """Stop background work (the session is no longer used)."""
        self.warmup.stop()

    def target(self, name: str) -> TargetState:
        """The state of target ``name`` (created on first use)."""
        if name not in self.targets:
            if name not in self.target_values:
                raise InteractionError(f"unknown target {name!r}; known: {', '.join(self.target_values)}")
            self.targets[name] = TargetState(name, int(self.target_values[name]), profile_for(name))
        return self.targets[name]

    def interact(self, name: str, inter: Interaction) -> Update:
        """Apply one interaction to target ``name`` and answer what changed."""
        t0 = time.perf_counter()
        if inter.is_empty():
            raise InteractionError("the interaction holds no click, scribble, box or mask")
        existed = name in self.targets
        state = self.target(name)
        before = state.snapshot() if existed else None
        first = state.interactions == 0
        state.add(inter)
        if inter.mask is not None:
            self._set_base(state, inter)
        elif first:
            self._start_from_model(state, inter)
        else:
            self._follow_positive_clicks(state)
        update = self._recompute(state, t0)
        update.from_model = state.from_model
        self._push(_UndoRecord(name, before, *self._last_change))
        return update

    def undo(self) -> Update | None:
        """Revert the last interaction or reset (None when there is nothing to undo)."""
        t0 = time.perf_counter()
        if not self._undo:
            return None
        rec = self._undo.pop()
        if rec.box is not None and rec.labels is not None:
            self.labels[rec.box.slices] = rec.labels
            if rec.beneath is not None and self._beneath is not None:
                self._beneath[rec.box.slices] = rec.beneath
        if rec.state is None:
            self.targets.pop(rec.target, None)
        else:
            self.targets[rec.target] = rec.state
        value = int(self.target_values[rec.target])
        return Update(rec.target, value, rec.box, self.count(rec.target), time.perf_counter() - t0)

    def reset(self, name: str) -> Update:
        """Clear target ``name`` (its voxels and interactions); undoable."""
        t0 = time.perf_counter()
        state = self.target(name)
        before = state.snapshot()
        box = self._target_box(state)
        rec = _UndoRecord(name, before, None, None)
        if box is not None:
            crop = self.labels[box.slices]
            rec.box, rec.labels = box, crop.copy()
            rec.beneath = None if self._beneath is None else self._beneath[box.slices].copy()
            mine = crop == state.value
            crop[mine] = self._released(box, mine)
            if self._beneath is not None:  # nothing returns to a reset target
                self._beneath[self._beneath == state.value] = 0
        self.targets[name] = TargetState(name, state.value, state.profile)
        self._push(rec)
        return Update(name, state.value, box, 0, time.perf_counter() - t0)

    def mask(self, name: str) -> np.ndarray:
        """Boolean native (z, y, x) mask of target ``name``."""
        return self.labels == int(self.target_values[name])

    def count(self, name: str) -> int:
        """Voxels of target ``name``."""
        state = self.targets.get(name)
        box = self._target_box(state) if state else None
        return 0 if box is None else int((self.labels[box.slices] == state.value).sum())

    def label_image(self, box: Box | None = None) -> sitk.Image:
        """The label map (or its crop to a native box) as a uint8 image with the right geometry."""
        arr = self.labels if box is None else self.labels[box.slices]
        out = sitk.GetImageFromArray(np.ascontiguousarray(arr))
        origin, spacing, direction = self.geometry
        out.SetSpacing(spacing)
        out.SetDirection(direction)
        start = (0, 0, 0) if box is None else box.start
        ref = sitk.Image(list(self.size), sitk.sitkUInt8)
        ref.SetOrigin(origin)
        ref.SetSpacing(spacing)
        ref.SetDirection(direction)
        out.SetOrigin(ref.TransformIndexToPhysicalPoint([int(v) for v in start[::-1]]))
        return out

    def memory_bytes(self) -> int:
        """Approximate memory held by the session."""
        masks = sum(s.level_crop.nbytes for s in self.targets.values() if s.level_crop is not None)
        undo = sum(r.labels.nbytes for r in self._undo if r.labels is not None)
        nested = 0 if self._beneath is None else self._beneath.nbytes
        return self.pyramid.nbytes() + self.labels.nbytes + masks + undo + nested

    # ---- internals ----------------------------------------------------------------------------
    def _push(self, rec: _UndoRecord) -> None:
        self._undo.append(rec)
        del self._undo[:-MAX_UNDO]

    def _target_box(self, state: TargetState) -> Box | None:
        if state.level_box is None or state.level is None:
            return None
        lev = self.pyramid.levels[state.level]
        return state.level_box.grow(1).scaled(lev.factors).clip(self.shape)

    def _set_base(self, state: TargetState, inter: Interaction) -> None:
        spacing = self.pyramid.levels[0].spacing
        if inter.slices:
            filled = interpolate_slices(inter.mask, inter.slices, spacing)
            if filled is None:
                raise InteractionError("the annotated slices hold no foreground")
            state.base = filled
            ann = np.zeros(self.shape, dtype=bool)
            for axis, index in inter.slices:
                ann[(slice(None),) * axis + (index,)] = True
            box = filled[0].grow(4).clip(self.shape)
            state.annotated = (box, (inter.mask & ann)[box.slices], (~inter.mask & ann)[box.slices])
        else:
            box = Box.of_mask(inter.mask)
            state.base = (box, inter.mask[box.slices].copy())
            state.annotated = None

    def _start_from_model(self, state: TargetState, inter: Interaction) -> None:
        """First click on a target inside the model's answer: the target stays within the model's
        component there (grown by ``ZONE_MARGIN_MM``); the image decides the boundary inside it."""
        if self.prior is None or not len(inter.positive) or inter.box is not None:
            return
        found = self.prior.component_at(state.name, inter.positive[0])
        if found is not None:
            spacing = self.pyramid.levels[0].spacing
            state.zone = grow_zone(found, ZONE_MARGIN_MM, spacing, self.shape)
            if len(inter.positive) > 1:  # clients that resend every click: the others open the zone too
                state.zone = extend_zone(state.zone, inter.positive[1:], CLICK_REACH_MM, spacing, self.shape)
            state.from_model = self.prior.source

    def _follow_positive_clicks(self, state: TargetState) -> None:
        """Positive clicks after the first open the model's zone around themselves: the model
        was too tight there, or missed that part of the target."""
        if state.zone is not None and len(state.fresh_positive):
            state.zone = extend_zone(state.zone, state.fresh_positive, CLICK_REACH_MM,
                                     self.pyramid.levels[0].spacing, self.shape)

    def _choose_level(self, state: TargetState) -> int:
        if state.level is None:
            state.level = first_level(self.pyramid, state.profile)
        return state.level

    def _seed_points(self, state: TargetState, factors: np.ndarray) -> np.ndarray:
        pts = [state.positive, state.scribble_fg]
        if state.box is not None and not len(state.positive) and not len(state.scribble_fg) and state.base is None:
            pts.append(np.array([[(a + b - 1) // 2 for a, b in zip(state.box.start, state.box.stop, strict=True)]]))
        return np.concatenate(pts) if any(len(p) for p in pts) else _empty()

    def _region(self, state: TargetState, lev_shape: tuple[int, int, int], factors: tuple[int, int, int],
                spacing: np.ndarray, seeds_lvl: np.ndarray) -> Box:
        prof = state.profile
        if state.box is not None:
            return state.box.coarsened(factors).grow(1).clip(lev_shape)
        region = None
        if state.level_box is not None:
            region = state.level_box.grow(np.ceil(prof.margin_mm / spacing))
        if state.base is not None:
            region = state.base[0].coarsened(factors).grow(np.ceil(prof.margin_mm / spacing)).union(region)
        if len(seeds_lvl):
            extent = prof.first_extent_mm if region is None else prof.margin_mm
            region = Box.around(seeds_lvl, np.ceil(extent / spacing)).union(region)
        neg = np.concatenate([state.negative, state.scribble_bg])
        if region is None and len(neg):
            region = Box.around(neg // np.array(factors), np.ceil(prof.margin_mm / spacing))
        return region.clip(lev_shape)

    def _recompute(self, state: TargetState, t0: float) -> Update:
        level = self._choose_level(state)
        lev = self.pyramid.levels[level]
        f = np.array(lev.factors)
        seeds_native = self._seed_points(state, f)
        seeds = lev.to_level(seeds_native) if len(seeds_native) else _empty()
        negatives = lev.to_level(state.negative) if len(state.negative) else _empty()
        region = self._region(state, lev.shape, lev.factors, lev.spacing, seeds)
        memo: dict = {}  # local traces a widened region does again in the same place
        result = self._segment_region(state, lev, region, seeds, negatives, memo)
        voxel_ml = float(np.prod(lev.spacing)) / 1000.0
        for _ in range(MAX_EXPANSIONS):
            if not state.profile.tubular and result.sum() * voxel_ml > state.profile.max_volume_ml:
                break  # a blob already past its plausible size is a leak: growing the region only feeds it
            grown = self._expand_if_touching(result, region, lev.shape, state)
            if grown is None:
                break
            bigger = self._segment_region(state, lev, grown, seeds, negatives, memo)
            if state.profile.tubular and bigger.sum() > EXPLOSION * max(int(result.sum()), 1):
                break  # leak guard: a vessel that more than doubles past the region's edge ran into a neighbour
            region, result = grown, bigger
        if state.profile.tubular or (len(state.fresh_positive) and not state.refit):
            result = self._guard_explosion(state, lev, region, result)
        return self._commit(state, lev, region, result, t0)

    def _expand_if_touching(self, result: np.ndarray, region: Box, shape: tuple[int, int, int],
                            state: TargetState) -> Box | None:
        if state.box is not None or not result.any():
            return None
        grow = np.zeros((2, 3), dtype=int)
        for axis in range(3):
            lo_face = np.take(result, 0, axis=axis).any() and region.start[axis] > 0
            hi_face = np.take(result, -1, axis=axis).any() and region.stop[axis] < shape[axis]
            step = max(region.shape[axis] // 2, 4)
            grow[0, axis] = step if lo_face else 0
            grow[1, axis] = step if hi_face else 0
        if not grow.any() or region.size > 8 * state.profile.voxel_budget:
            return None
        bigger = Box(tuple(int(a - g) for a, g in zip(region.start, grow[0], strict=True)),
                     tuple(int(b + g) for b, g in zip(region.stop, grow[1], strict=True)))
        return bigger.clip(shape)

    def _intervals(self, state: TargetState, smooth: np.ndarray, spacing: np.ndarray, seeds_roi: np.ndarray,
                   noise: float, base_roi: np.ndarray | None, fg_roi: np.ndarray | None) -> list[Interval]:
        prof = state.profile
        if prof.tubular:
            out = tubular.localise_all(tubular.learn(smooth, seeds_roi, spacing, noise, prof), seeds_roi, prof.margin_mm)
        else:
            out = [interval(s, noise, prof.k_sigma, prof.min_halfwidth_hu) for s in seed_samples(smooth, seeds_roi)]
            out = localise(out, seeds_roi, prof.margin_mm)
        for pool in (base_roi, fg_roi):
            if pool is not None and pool.any():
                values = smooth[pool]
                if values.size > 20000:
                    values = values[:: values.size // 20000]
                out.append(interval(values, noise, prof.k_sigma, prof.min_halfwidth_hu))
        return out

    def _segment_region(self, state: TargetState, lev, region: Box, seeds: np.ndarray,
                        negatives: np.ndarray, memo: dict | None = None) -> np.ndarray:
        f = lev.factors
        smooth = lev.field("smooth").get(region)
        gradient_field = lev.field("gradient")
        if not state.profile.tubular:  # blobs: every negative click needs it, compute it with the first click
            gradient_field.get(region)
        vessel = lev.field("vesselness").get(region) if state.profile.use_vesselness else None
        origin = np.array(region.start)
        seeds_roi = seeds[region.contains(seeds)] - origin if len(seeds) else _empty()
        neg_roi = negatives[region.contains(negatives)] - origin if len(negatives) else _empty()
        forced_bg = np.zeros(region.shape, dtype=bool)
        forced_fg = np.zeros(region.shape, dtype=bool)
        if not state.overwrite:
            native_box = region.scaled(f).clip(self.shape)
            crop = self.labels[native_box.slices]
            others = (crop != 0) & (crop != state.value) & ~self._containers(state, crop)
            if others.any():
                forced_bg |= block_fraction(others, f, region.shape) >= 0.5
        if len(state.scribble_bg):
            forced_bg |= stamp(region.shape, lev.to_level(state.scribble_bg) - origin, 0)
        if len(state.scribble_fg):
            pts = lev.to_level(state.scribble_fg)
            forced_fg |= stamp(region.shape, pts[region.contains(pts)] - origin, 0)
        if state.box is not None:
            inside = np.zeros(region.shape, dtype=bool)
            inside[region.relative(state.box.coarsened(f).intersect(region))] = True
            forced_bg |= ~inside
        if state.zone is not None:
            forced_bg |= ~self._native_to_region(state.zone, region, f)
        base = limit = None
        if state.base is not None:
            base = self._native_to_region(state.base, region, f)
            limit = _dilate_mm(base, 6.0, lev.spacing)
        if state.annotated is not None:
            forced_fg |= self._native_to_region(state.annotated[:2], region, f)
            forced_bg |= self._native_to_region((state.annotated[0], state.annotated[2]), region, f)
        forced_fg &= ~forced_bg
        noise = 0.6 * lev.noise
        intervals = self._intervals(state, smooth, lev.spacing, seeds_roi, noise, base, forced_fg)
        if not intervals:
            return np.zeros(region.shape, dtype=bool)
        background = [float(np.median(s)) for s in seed_samples(smooth, neg_roi)]
        if len(state.scribble_bg):
            pts = lev.to_level(state.scribble_bg)
            pts = pts[region.contains(pts)] - origin
            if len(pts):
                background.append(float(np.median(smooth[tuple(pts.T)])))
        narrowed = narrow_near = None
        if not state.profile.tubular and background:  # vessels of one kind and another overlap in intensity
            narrowed = exclude(intervals, background, noise)  # ... applied only near the negatives
            narrow_near = self._near_negatives(state, lev, region)
        previous = self._previous(state, region)
        fresh_pos = fresh_neg = None
        if previous is not None and not state.refit:
            fresh_pos, fresh_neg = (self._in_region(lev, region, p) for p in (state.fresh_positive,
                                                                               state.fresh_negative))
        elif not state.profile.tubular:
            previous = None
        def gradient_of(mask: np.ndarray | None) -> np.ndarray:  # computed only when a watershed needs it
            return gradient_field.get(region) if mask is None else gradient_field.get_where(region, mask)

        inp = RoiInputs(smooth=smooth, gradient_of=gradient_of, spacing=lev.spacing, positive=seeds_roi, negative=neg_roi,
                        intervals=intervals, forced_fg=forced_fg if forced_fg.any() else None,
                        forced_bg=forced_bg if forced_bg.any() else None, base=base, base_limit=limit,
                        vesselness=vessel, raw=lev.image[region.slices],
                        previous=previous, fresh_positive=fresh_pos, fresh_negative=fresh_neg, narrowed=narrowed, narrow_near=narrow_near,
                        origin=region.start, memo=memo)
        profile = state.profile
        if not profile.tubular and fresh_neg is not None and not len(fresh_pos) and inp.forced_fg is None:
            profile = replace(profile, open_mm=0.0)  # a blob update with nothing to add does not read the opened candidate
        return segment(inp, profile)

    @staticmethod
    def _in_region(lev, region: Box, native: np.ndarray) -> np.ndarray:
        """Native (z, y, x) points -> level points inside ``region``, in region coordinates."""
        if not len(native):
            return _empty()
        pts = lev.to_level(native)
        return pts[region.contains(pts)] - np.array(region.start)

    def _near_negatives(self, state: TargetState, lev, region: Box) -> np.ndarray:
        """Voxels of ``region`` within ``contest_mm`` of a negative click or background scribble."""
        pts = [state.negative]
        if len(state.scribble_bg):  # a sample of the painted voxels is enough to place the balls
            pts.append(state.scribble_bg[:: max(1, len(state.scribble_bg) // 32)])
        level_pts = lev.to_level(np.concatenate(pts)) - np.array(region.start)
        reach = np.ceil(state.profile.contest_mm / lev.spacing).astype(int)
        level_pts = level_pts[np.all((level_pts + reach >= 0) & (level_pts - reach < np.array(region.shape)), axis=1)]
        return near_points(region.shape, level_pts, lev.spacing, state.profile.contest_mm)

    def _guard_explosion(self, state: TargetState, lev, region: Box, result: np.ndarray) -> np.ndarray:
        """Leak guard (vessels, and blobs on a positive click): a click that more than doubles the
        object keeps, of what it adds, only the part near that click (the rest ran into a
        neighbouring structure). Near: ``contest_mm`` for a vessel; for a blob, its thickness
        (the radius of the largest ball inside it), as a missed part next to the object is not
        thicker than the object."""
        previous = self._previous(state, region)
        if previous is None or not len(state.positive) or result.sum() <= EXPLOSION * max(int(previous.sum()), 1):
            return result
        if state.profile.tubular:
            clicks, reach = state.positive[-1:], state.profile.contest_mm
        else:
            clicks, reach = state.fresh_positive, min(state.profile.contest_mm, _thickness_mm(previous, lev.spacing))
        click = lev.to_level(clicks) - np.array(region.start)
        return result & (previous | near_points(region.shape, click, lev.spacing, reach))

    def _previous(self, state: TargetState, region: Box) -> np.ndarray | None:
        """The target's last result (level grid) cropped to ``region``."""
        if state.level_box is None or state.level_crop is None:
            return None
        out = np.zeros(region.shape, dtype=bool)
        common = state.level_box.intersect(region)
        if not common.empty():
            out[region.relative(common)] = state.level_crop[state.level_box.relative(common)]
        return out

    def _native_to_region(self, native: tuple[Box, np.ndarray], region: Box, f: tuple[int, int, int]) -> np.ndarray:
        box, crop = native
        full_native = region.scaled(f).clip(self.shape)
        canvas = np.zeros(full_native.shape, dtype=bool)
        common = box.intersect(full_native)
        if not common.empty():
            canvas[full_native.relative(common)] = crop[box.relative(common)]
        return block_fraction(canvas, f, region.shape) >= 0.5

    def _commit(self, state: TargetState, lev, region: Box, result: np.ndarray, t0: float) -> Update:
        f = lev.factors
        old_box = state.level_box
        old_in_region = np.zeros(region.shape, dtype=bool)
        if old_box is not None:
            common = old_box.intersect(region)
            if not common.empty():
                old_in_region[region.relative(common)] = state.level_crop[old_box.relative(common)]
        diff_box = Box.of_mask(old_in_region != result, region.start)
        if old_box is not None and old_box.intersect(region) != old_box:
            diff_box = old_box.union(diff_box)
        new_box = Box.of_mask(result, region.start)
        state.level_box = new_box
        state.level_crop = None if new_box is None else result[region.relative(new_box)].copy()
        self._last_change = (None, None, None)
        if diff_box is None:
            return Update(state.name, state.value, None, self.count(state.name), time.perf_counter() - t0,
                          self.pyramid.levels.index(lev), region.scaled(f).clip(self.shape))
        rough = np.prod(f) > 1 and is_leak(int(result.sum()), lev.spacing, state.profile)  # (native: cheap anyway)
        if state.rough and not rough and new_box is not None:  # back from a leak: refine all of it
            diff_box = diff_box.union(new_box)
        state.rough = rough
        lvl_box = diff_box.grow(2 if state.profile.tubular else 2 + CONTEXT).clip(lev.shape)
        native_box = diff_box.grow(1).scaled(f).clip(self.shape)
        # native voxels past the last whole block belong to the last level voxel
        stop = list(native_box.stop)
        for axis in range(3):
            if diff_box.stop[axis] >= lev.shape[axis]:
                stop[axis] = self.shape[axis]
        native_box = Box(native_box.start, tuple(stop))
        new_crop = np.zeros(lvl_box.shape, dtype=bool)
        if new_box is not None:
            common = new_box.intersect(lvl_box)
            if not common.empty():
                new_crop[lvl_box.relative(common)] = state.level_crop[new_box.relative(common)]
        if rough:  # a leak, about to be cut: its level blocks as they are
            target_native = blocks_to_native(new_crop, lvl_box, f, native_box) & ~self._native_background(state, native_box)
        else:
            if not state.profile.tubular:  # blobs: their rim is checked against the local surroundings
                new_crop = trim_rim(new_crop, lev.field("smooth").get(lvl_box))
            target_native = to_native(new_crop, lvl_box, f, native_box)
            if not state.profile.tubular and np.prod(f) > 1:  # blobs from a coarser level: boundary on the native edge
                snapped = snap_native(target_native, self.pyramid.levels[0].image[native_box.slices])
                target_native = snapped & ~self._native_background(state, native_box)  # the snap never adds painted background
        crop = self.labels[native_box.slices]
        mine = crop == state.value
        if not state.adds and not state.profile.tubular:  # on a blob, negatives and background strokes only take
            target_native &= mine  # away (the rim trim and snap must not re-add elsewhere); vessels re-trace
        allowed = np.ones_like(mine) if state.overwrite else (crop == 0) | mine | self._containers(state, crop)
        updated = crop.copy()
        beneath_before = None if self._beneath is None else self._beneath[native_box.slices].copy()
        released = mine & ~target_native
        updated[released] = self._released(native_box, released)
        taken = target_native & allowed & ~mine
        if state.profile.inside and taken.any():
            if self._beneath is None:
                self._beneath = np.zeros_like(self.labels)
                beneath_before = np.zeros(native_box.shape, dtype=np.uint8)
            self._beneath[native_box.slices][taken] = crop[taken]
        updated[target_native & allowed] = state.value
        changed = Box.of_mask(updated != crop, native_box.start)
        if changed is not None:
            self._last_change = (changed, self.labels[changed.slices].copy(),
                                 None if beneath_before is None else beneath_before[native_box.relative(changed)])
            self.labels[changed.slices] = updated[native_box.relative(changed)]
        return Update(state.name, state.value, changed, self.count(state.name), time.perf_counter() - t0,
                      self.pyramid.levels.index(lev), region.scaled(f).clip(self.shape))

    def _containers(self, state: TargetState, crop: np.ndarray) -> np.ndarray:
        """Voxels of ``crop`` held by targets ``state``'s target lies inside (it may take them)."""
        values = [int(self.target_values[n]) for n in state.profile.inside if n in self.target_values]
        return np.isin(crop, values) if values else np.zeros(crop.shape, dtype=bool)

    def _released(self, box: Box, released: np.ndarray) -> np.ndarray | int:
        """What voxels ``released`` (in ``box``) become when their target lets go of them: the label
        they had before a nested target took them, else background."""
        if self._beneath is None:
            return 0
        beneath = self._beneath[box.slices]
        values = beneath[released]
        beneath[released] = 0
        return values

    def _native_background(self, state: TargetState, native_box: Box) -> np.ndarray:
        """Native voxels of ``native_box`` the target may not hold: background scribbles, outside its
        box, outside the model's zone."""
        out = np.zeros(native_box.shape, dtype=bool)
        if len(state.scribble_bg):
            pts = state.scribble_bg[native_box.contains(state.scribble_bg)] - np.array(native_box.start)
            out[tuple(pts.T)] = True
        for limit in ((state.box, None), state.zone):
            if limit is None or limit[0] is None:
                continue
            box, mask = limit
            inside = np.zeros(native_box.shape, dtype=bool)
            common = box.intersect(native_box)
            if not common.empty():
                inside[native_box.relative(common)] = True if mask is None else mask[box.relative(common)]
            out |= ~inside
        return out


def _thickness_mm(mask: np.ndarray, spacing: np.ndarray) -> float:
    """Radius (mm) of the largest ball inside ``mask`` (at least two voxels)."""
    sub = mask[bbox_slices(mask)]
    return max(float(edt.edt(sub, anisotropy=tuple(float(v) for v in spacing), black_border=True).max()),
               2.0 * float(spacing.max()))


def _dilate_mm(mask: np.ndarray, radius_mm: float, spacing: np.ndarray) -> np.ndarray:
    from scipy import ndimage

    from .propagate import ellipsoid

    return ndimage.binary_dilation(mask, structure=ellipsoid(radius_mm, spacing))



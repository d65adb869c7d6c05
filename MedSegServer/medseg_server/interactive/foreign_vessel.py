"""A later positive click on a thin vessel branch must not bring in the neighbouring vessel it touches.

A click on a thin, dim branch traces it within its crop; where that branch touches another vessel
of similar intensity (a hepatic vein against a portal branch, the splenic vein against the spleen),
the trace runs on through the contact and follows the neighbour, thickening and brightening away
from the click, for up to a hundred millimetres. A genuine missed branch does not do that: the
benchmark's clicks (and a radiologist's) land on its thick part, and what the click adds is about
as thick as the clicked spot, or thinner. So, in what the click would add:

* foreign cores: voxels much thicker than the vessel at the click (distance to the outside of the
  vessel, ``THICK_RATIO`` times the click's radius and ``THICK_MIN_MM`` more) that also stand out
  from their surroundings clearly more than the clicked branch does (``BRIGHT_SHARE`` of the
  vessel's contrast);
* when there are any, the addition is split between the click and those cores by a marker
  watershed flooded from where it is most unlike the clicked branch (how much brighter plus how
  much thicker than at the click, in shares of the contrast and of the radius; a tiny rise per mm
  from the click breaks the ties along an even branch): the boundary falls where the
  addition starts to brighten or thicken, the neck where the branch touches the neighbour, and
  the cores' side is dropped. (Flooding by intensity alone split an even branch half way between
  the click and the neighbour.)

What it cannot see: a neighbour no thicker than the clicked branch (two thin branches touching),
or one no brighter (a missed trunk of the same vessel is kept, as it should be, but so is a
same-brightness neighbour).
"""

from __future__ import annotations

from collections.abc import Callable

import cc3d
import numpy as np
from skimage.segmentation import watershed

from .boxes import Box
from .tubular import edt_mm

THICK_RATIO = 1.6  # a foreign core is thicker than this many times the radius at the click ...
THICK_MIN_MM = 1.5  # ... and than that radius plus this much ...
BRIGHT_SHARE = 0.3  # ... and stands out by this share of the vessel's contrast more than the clicked branch
TIE_PER_MM = 0.01  # along an even branch the split prefers the click's side by this much per mm of path
MIN_CORE_VOXELS = 4  # smaller cores are noise
PAD = 2  # voxels of context around the addition


def drop_foreign(growth: np.ndarray, previous: np.ndarray, clicks: np.ndarray, smooth: np.ndarray,
                 spacing: np.ndarray, contrast_of: Callable[[], float | None]) -> np.ndarray:
    """``growth`` (what a positive click would add to the vessel ``previous``) without the neighbour
    vessel it ran into past the clicked branch (module doc). ``clicks``: the click's (N, 3) region
    points; ``contrast_of()``: the vessel's median minus its surroundings' (None: unknown, nothing
    dropped), asked only when the addition is thick somewhere."""
    if not growth.any() or not len(clicks):
        return growth
    pts = np.asarray(clicks, dtype=int).reshape(-1, 3)
    box = Box.of_mask(growth)
    lo = np.maximum(np.minimum(np.array(box.start), pts.min(axis=0)) - PAD, 0)
    hi = np.minimum(np.maximum(np.array(box.stop), pts.max(axis=0) + 1) + PAD, growth.shape)
    sub = tuple(slice(int(a), int(b)) for a, b in zip(lo, hi, strict=True))
    grown, union = growth[sub], (growth | previous)[sub]
    depth = edt_mm(union, spacing)
    local = pts - lo
    radius = _radius_at(depth, union, local)
    if radius is None:
        return growth
    thick = grown & (depth > max(THICK_RATIO * radius, radius + THICK_MIN_MM))
    contrast = contrast_of() if thick.any() else None
    if not contrast:
        return growth
    level = float(np.sign(contrast)) * smooth[sub].astype(np.float32)  # "stands out" upwards, bright or dark vessel
    value = _value_near(level, union, local, radius, spacing)
    cores = thick & (level > value + BRIGHT_SHARE * abs(contrast))
    cores = cc3d.dust(cores, threshold=MIN_CORE_VOXELS, connectivity=26)
    if not cores.any():
        return growth
    markers = np.zeros(grown.shape, dtype=np.int32)
    for p in local:
        near = tuple(slice(max(c - 1, 0), c + 2) for c in p)
        markers[near][grown[near]] = 1
    markers[cores] = 2
    if not (markers == 1).any():
        return growth
    rise = (np.maximum(level - value, 0.0) / abs(contrast) + np.maximum(depth - radius, 0.0) / max(radius, 1e-3))
    split = watershed(_landscape(rise, local, spacing), markers, mask=grown)
    out = growth.copy()
    out[sub] = grown & (split != 2)
    return out


def _landscape(rise: np.ndarray, points: np.ndarray, spacing: np.ndarray) -> np.ndarray:
    """Flooded from where the addition is most unlike the clicked branch: ``-rise``, plus
    ``TIE_PER_MM`` for each mm from the nearest click, so that along an even branch the click's
    side floods up to where it starts to brighten or thicken (the neck)."""
    grids = np.ogrid[tuple(slice(0, n) for n in rise.shape)]
    far = np.full(rise.shape, np.inf, dtype=np.float32)
    for p in points:
        far = np.minimum(far, np.sqrt(sum(((g - c) * s) ** 2 for g, c, s in zip(grids, p, spacing, strict=True))))
    return -rise + TIE_PER_MM * far


def _radius_at(depth: np.ndarray, union: np.ndarray, points: np.ndarray) -> float | None:
    """Radius (mm) of the vessel at the clicks: the largest depth in their 3x3x3 neighbourhoods
    (None when no click touches the vessel)."""
    radius = None
    for p in points:
        near = tuple(slice(max(c - 1, 0), c + 2) for c in p)
        if union[near].any():
            radius = max(radius or 0.0, float(depth[near].max()))
    return radius


def _value_near(level: np.ndarray, union: np.ndarray, points: np.ndarray, radius: float,
                spacing: np.ndarray) -> float:
    """Median of ``level`` over the vessel within two radii (at least 2 voxels) of the clicks."""
    reach = np.maximum(np.ceil(2.0 * radius / spacing).astype(int), 2)
    values = [level[ball][union[ball]] for ball in
              (tuple(slice(max(c - n, 0), c + n + 1) for c, n in zip(p, reach, strict=True)) for p in points)]
    return float(np.median(np.concatenate(values)))

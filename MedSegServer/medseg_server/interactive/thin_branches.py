"""Thin branches of a traced vessel tree: grown from the tree at a lower intensity level.

A branch thinner than about one voxel reads, after partial volume and smoothing, well below half
way between the tree's lumen and its surroundings (on the phantoms a 1.1 mm branch's voxels read
about 0.4 of the contrast), so the half-way candidate of ``tubular.py`` loses it or breaks it into
fragments. Hysteresis from the traced tree: voxels at least ``LOW_SHARE`` of the tree's contrast
(and ``NOISE_DEVIATIONS`` deviations of its surroundings) beyond the surroundings, outside a band
of ``BAND_LAYERS`` voxels around the tree (its own partial-volume rim), form pieces; a piece that
starts next to the tree joins it (its voxels reading at least half of the brightest piece voxel
near them: the lower level also takes the branch's blurred rim), with the band voxels between,
when it is

* thin: no voxel deeper than ``MAX_RADIUS_MM`` inside it (the liver, the IVC or another vessel's
  trunk reached through a partial-volume bridge is thick), and
* tubular: it reaches at least ``ELONGATION`` times its depth and ``MIN_REACH_MM`` away from the
  tree (a small bright lump sitting on the tree does not), and
* not touching a large candidate component that is not the tree (``FOREIGN_VOXELS``: another
  vessel the tree only comes near).

A later positive click on such a thin branch learns a range that also holds other, brighter
vessels nearby; :mod:`.foreign_vessel` cuts what its trace runs into at the neck.

Low-contrast vessels (less than ``MIN_CONTRAST`` deviations of the surroundings between lumen and
surroundings, e.g. a non-contrast scan) are left as they are: a lower level is noise there.
(A small-scale Hessian vesselness was measured as an extra gate on the phantoms: at the missed
thin-branch voxels its median was below the 99th percentile of the liver voxels around the tree,
while the intensity level alone already keeps all but 0.6 % of those liver voxels out.)
"""

from __future__ import annotations

import cc3d
import numpy as np
from scipy import ndimage
from scipy.spatial import cKDTree

from .boxes import Box
from .tubular import edt_mm

LOW_SHARE = 0.25  # share of the tree's contrast a thin-branch voxel must reach
NOISE_DEVIATIONS = 2.5  # ... and at least this many robust deviations of the surroundings
MIN_CONTRAST = 4.0  # lumen-surroundings contrast (in deviations of the surroundings) needed at all
MAX_RADIUS_MM = 3.0  # a piece deeper than this inside is not a thin branch
ELONGATION = 3.0  # a piece must reach this many times its depth away from the tree ...
MIN_REACH_MM = 6.0  # ... and at least this far
FOREIGN_VOXELS = 50  # a candidate component (not the tree) this large is another structure
BAND_LAYERS = 1  # voxel layers around the tree that belong to its rim (joined only with a piece)
SHELL_LAYERS = (2, 4)  # the surroundings: this many voxel layers out from the tree
MAX_PIECE_ML = 2.0  # a piece holding more than this is not one thin branch (3 mm x 70 mm)
MARGIN_MM = 40.0  # the work is done in the tree's box grown by this much
RIDGE_MM = 3.0  # a branch voxel is compared with the brightest branch voxel this near ...
RIDGE_SHARE = 0.5  # ... and joins when it reads at least this share of it
START_VOXELS = 8  # branches grow from the parts of a click's addition at least this large (not its rim specks)


def grow_thin_branches(smooth: np.ndarray, tree: np.ndarray, spacing: np.ndarray, candidate: np.ndarray | None = None,
                       forbidden: np.ndarray | None = None, start: np.ndarray | None = None) -> np.ndarray:
    """``tree`` plus the thin branches grown from it (see the module doc); all masks of ``smooth``'s shape.

    ``candidate``: the voxels in the tree's intensity range (its large components away from the
    tree are other structures); ``forbidden``: voxels that never join (painted background, other
    targets, around negative clicks); ``start``: only branches leaving this part of the tree (default:
    all of it).
    """
    if start is not None:
        start = _without_specks(start)
    box = Box.of_mask(tree if start is None else start)
    if box is None:
        return tree
    box = box.grow(np.ceil(MARGIN_MM / np.asarray(spacing)).astype(int)).clip(tree.shape)
    sub = box.slices
    grown = _grow(smooth[sub], tree[sub], np.asarray(spacing, dtype=float), *(
        None if m is None else m[sub] for m in (candidate, forbidden, start)))
    if grown is None:
        return tree
    out = tree.copy()
    out[sub] |= grown
    return out


def _grow(smooth: np.ndarray, tree: np.ndarray, spacing: np.ndarray, candidate: np.ndarray | None,
          forbidden: np.ndarray | None, start: np.ndarray | None) -> np.ndarray | None:
    """The voxels the thin branches add, or None when there are none."""
    levels = _levels(smooth, tree)
    if levels is None:
        return None
    inside, around, deviation = levels
    sign = 1.0 if inside >= around else -1.0
    contrast = sign * (inside - around)
    level = max(LOW_SHARE * contrast, NOISE_DEVIATIONS * deviation)
    if contrast < MIN_CONTRAST * deviation or level >= 0.5 * contrast:
        return None
    near = _dilate(tree, BAND_LAYERS)
    weak = (sign * (smooth - around) >= level) & ~tree
    if forbidden is not None:
        weak &= ~forbidden
    band = weak & near
    pieces = weak & ~near
    labels = cc3d.connected_components(pieces, connectivity=26)
    counts = np.bincount(labels.ravel())
    starts = pieces & _dilate(near, 1)  # next to the band
    if start is not None:
        starts &= _dilate(start, BAND_LAYERS + 1)
    ids = np.unique(labels[starts])
    ids = ids[(ids > 0) & (counts[ids] * float(np.prod(spacing)) / 1000.0 <= MAX_PIECE_ML)]
    if not ids.size:
        return None
    lut = np.zeros(counts.size, dtype=bool)
    lut[ids] = True
    touching = lut[labels]
    sub = Box.of_mask(touching).grow(1).clip(labels.shape).slices  # the pieces' box: the distances are cheap
    where = touching[sub]
    depth = _component_max(edt_mm(where, spacing), labels[sub], where, ids)
    reach = _component_max(_distance_to(tree, touching, sub, spacing), labels[sub], where, ids)
    ok = (depth <= MAX_RADIUS_MM) & (reach >= np.maximum(ELONGATION * depth, MIN_REACH_MM))
    if candidate is not None and ok.any():  # a piece running into another structure is a bridge to it
        ok &= _component_max(_foreign(candidate[sub] & ~near[sub]), labels[sub], where, ids) == 0
    if not ok.any():
        return None
    lut[ids[~ok]] = False
    branches = lut[labels]
    branches[sub] &= _ridge_half(sign * (smooth[sub] - around), branches[sub], spacing)
    return branches | (band & _dilate(branches, 1))


def _ridge_half(signed: np.ndarray, branches: np.ndarray, spacing: np.ndarray) -> np.ndarray:
    """Voxels of ``branches`` reading at least ``RIDGE_SHARE`` of the brightest branch voxel within
    ``RIDGE_MM`` (their local half maximum: the lower level takes a thin branch's blurred rim too)."""
    size = tuple(2 * int(round(RIDGE_MM / float(s))) + 1 for s in spacing)
    ridge = ndimage.maximum_filter(np.where(branches, signed, -np.inf).astype(np.float32), size=size)
    return branches & (signed >= RIDGE_SHARE * ridge)


def _distance_to(tree: np.ndarray, where: np.ndarray, sub: tuple[slice, ...], spacing: np.ndarray) -> np.ndarray:
    """Distance (mm) from each voxel of ``where`` to the nearest voxel of ``tree``, over the box ``sub``
    (0 elsewhere): a nearest-neighbour query against the tree's surface, cheaper than a distance map
    of the whole box for the few voxels asked about."""
    box = Box.of_mask(tree)
    out = np.zeros(where[sub].shape, dtype=np.float32)
    if box is None:
        return out
    grown = box.grow(1).clip(tree.shape)
    crop = tree[grown.slices]
    surface = np.argwhere(crop & ~ndimage.minimum_filter(crop, size=3, mode="nearest")) + np.array(grown.start)
    asked = np.argwhere(where[sub])
    origin = np.array([s.start for s in sub])
    dist, _ = cKDTree(surface * spacing).query((asked + origin) * spacing)
    out[tuple(asked.T)] = dist
    return out


def _without_specks(mask: np.ndarray) -> np.ndarray:
    """``mask`` without its components smaller than ``START_VOXELS`` (a re-traced tree's rim voxels)."""
    box = Box.of_mask(mask)
    if box is None:
        return mask
    labels = cc3d.connected_components(mask[box.slices], connectivity=26)
    counts = np.bincount(labels.ravel())
    counts[0] = 0
    out = np.zeros_like(mask)
    out[box.slices] = (counts >= START_VOXELS)[labels]
    return out


def _levels(smooth: np.ndarray, tree: np.ndarray) -> tuple[float, float, float] | None:
    """Median of the tree, median and robust deviation of its surroundings (a shell ``SHELL_LAYERS``
    voxels out, read on a grid twice as coarse: these are statistics)."""
    coarse, values_grid = tree[::2, ::2, ::2], smooth[::2, ::2, ::2]
    shell = _dilate(coarse, SHELL_LAYERS[1] // 2) & ~_dilate(coarse, SHELL_LAYERS[0] // 2)
    if not shell.any() or not tree.any():
        return None
    values = values_grid[shell]
    around = float(np.median(values))
    deviation = 1.4826 * float(np.median(np.abs(values - around)))
    return float(np.median(smooth[tree])), around, max(deviation, 1e-3)


def _component_max(values: np.ndarray, labels: np.ndarray, where: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Largest of ``values`` over each component ``ids`` of ``labels`` (all inside the mask ``where``:
    only its voxels are read, so the labels sorted are the pieces', not the whole box's)."""
    return np.asarray(ndimage.maximum(values[where], labels=labels[where], index=ids), dtype=np.float64)


def _foreign(others: np.ndarray) -> np.ndarray:
    """The components of ``others`` of at least ``FOREIGN_VOXELS`` voxels."""
    labels = cc3d.connected_components(others, connectivity=26)
    counts = np.bincount(labels.ravel())
    counts[0] = 0
    return (counts >= FOREIGN_VOXELS)[labels]


def _dilate(mask: np.ndarray, layers: int) -> np.ndarray:
    """Dilation by a (2 layers + 1)^3 cube, computed in the box of ``mask`` grown by ``layers``."""
    box = Box.of_mask(mask)
    if box is None or layers <= 0:
        return mask.copy()
    sub = box.grow(layers).clip(mask.shape).slices
    out = np.zeros_like(mask)
    out[sub] = ndimage.maximum_filter(mask[sub], size=2 * layers + 1)
    return out

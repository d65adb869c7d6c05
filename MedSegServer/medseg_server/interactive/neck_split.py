"""A negative click on a vessel's leak into a neighbouring tree removes that tree up to the contact.

A trace that ran through a contact into another vessel (the portal tree into a hepatic vein it
crosses, both filled with the same contrast) holds a large sub-tree of the wrong vessel. A
negative click there used to take back only a few radii around itself (``vessel_edit.take_back``)
and the branch that cut leaves unconnected; the part between the click and the contact stayed,
and it took a dozen clicks to remove the leak piece by piece.

The contact is a neck: the two trees touch over a few voxels, narrower than the vessel at the
negative click. So the whole result is split between the positive clicks and the negative click
by a marker watershed of its depth (distance to the outside, flooded from the thickest parts: the
two sides meet at the narrowest place between them), and the negative's side is removed when

* the neck is clearly narrower than the vessel at the negative click (the highest depth on the
  boundary between the sides is at most ``NECK_RATIO`` of the depth there: along an even tube,
  where there is no neck, nothing is split), and
* it is not a large share of the result (at most ``MAX_SHARE``: a negative click past a thin
  part of the true tree must not take the tree's thick half with it).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage
from skimage.segmentation import watershed

from .boxes import Box
from .tubular import edt_mm

NECK_RATIO = 0.6  # the neck's depth is at most this share of the depth at the negative click ...
MAX_SHARE = 0.4  # ... and the removed side holds at most this share of the vessel
MIN_DEPTH_MM = 1.0  # a negative click on the vessel's rim (shallower) does not split at a neck
PAD = 1  # voxels of background around the vessel's box (its faces are outside)


def beyond_neck(current: np.ndarray, pos: np.ndarray, clicks: np.ndarray, spacing: np.ndarray) -> np.ndarray:
    """The part of the vessel ``current`` on the negative ``clicks``' side of the narrowest neck
    between them and the positive evidence ``pos`` (a mask inside ``current``), or an empty mask
    when there is no clear neck or that part is too large (module doc)."""
    empty = np.zeros(current.shape, dtype=bool)
    box = Box.of_mask(current)
    pts = np.asarray(clicks, dtype=int).reshape(-1, 3)
    if box is None or not pos.any() or not len(pts):
        return empty
    box = box.grow(PAD).clip(current.shape)
    sub = box.slices
    mask = current[sub]
    local = pts - np.array(box.start)
    local = local[np.all((local >= 0) & (local < np.array(mask.shape)), axis=1)]
    local = local[mask[tuple(local.T)]] if len(local) else local
    if not len(local):
        return empty
    depth = edt_mm(mask, spacing)
    at_click = float(depth[tuple(local.T)].max())
    if at_click < MIN_DEPTH_MM:
        return empty
    markers = np.zeros(mask.shape, dtype=np.int32)
    markers[pos[sub] & mask] = 1
    markers[tuple(local.T)] = 2
    split = watershed(-depth, markers, mask=mask)
    side = split == 2
    if side.sum() > MAX_SHARE * mask.sum() or _neck_depth(depth, side, split == 1) > NECK_RATIO * at_click:
        return empty
    out = empty
    out[sub] = side
    return out


def _neck_depth(depth: np.ndarray, side: np.ndarray, other: np.ndarray) -> float:
    """Largest depth on the negative side's voxels that face the other side (the neck's radius)."""
    facing = side & ndimage.maximum_filter(other, size=3)
    return float(depth[facing].max()) if facing.any() else 0.0

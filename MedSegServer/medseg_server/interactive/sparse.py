"""Annotate a few slices, the rest is filled in: shape interpolation between sparse slices.

Each annotated slice becomes a 2D signed distance map (mm, positive inside); the maps of two
consecutive annotated slices along an axis are blended linearly for the slices in between, and
the zero level set is the interpolated shape. Slices of several orientations are each
interpolated along their own axis and the results united. The image refinement (intensity,
edges) is then done by the session engine with the interpolated shape as the mask to refine.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from .boxes import Box


def signed_distance_2d(mask: np.ndarray, spacing: np.ndarray, empty_value: float) -> np.ndarray:
    """Signed distance (mm) to the boundary of a 2D mask, positive inside."""
    if not mask.any():
        return np.full(mask.shape, -empty_value, dtype=np.float32)
    inside = ndimage.distance_transform_edt(mask, sampling=spacing)
    outside = ndimage.distance_transform_edt(~mask, sampling=spacing)
    return (inside - outside).astype(np.float32)


def interpolate_slices(mask: np.ndarray, slices: list[tuple[int, int]], spacing_zyx: np.ndarray) -> tuple[Box, np.ndarray] | None:
    """3D shape through the masks on the annotated ``(axis, index)`` slices, as (box, crop)."""
    box = Box.of_mask(mask)
    if box is None:
        return None
    box = box.grow(2).clip(mask.shape)
    out = np.zeros(mask.shape, dtype=bool)
    for axis in sorted({a for a, _ in slices}):
        indices = sorted({i for a, i in slices if a == axis})
        plane_spacing = np.delete(spacing_zyx, axis)
        empty = float(np.max(np.array(box.shape) * spacing_zyx))
        lo, hi = box.start[axis], box.stop[axis]
        sub = tuple(slice(box.start[a], box.stop[a]) if a != axis else slice(None) for a in range(3))
        crop_mask = mask[sub]
        crop_out = out[sub]
        for i in indices:
            crop_out[(slice(None),) * axis + (i,)] |= np.take(crop_mask, i, axis=axis)
        for a, b in zip(indices[:-1], indices[1:], strict=True):
            if b - a < 2 or b < lo or a >= hi:
                continue
            da = signed_distance_2d(np.take(crop_mask, a, axis=axis), plane_spacing, empty)
            db = signed_distance_2d(np.take(crop_mask, b, axis=axis), plane_spacing, empty)
            for k in range(a + 1, b):
                t = (k - a) / (b - a)
                crop_out[(slice(None),) * axis + (k,)] |= ((1 - t) * da + t * db) > 0
        out[sub] = crop_out
    filled = Box.of_mask(out)
    if filled is None:
        return None
    return filled, out[filled.slices]

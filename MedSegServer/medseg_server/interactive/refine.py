"""Boundary trim: the rim of a blob is checked against its local surroundings before it is written.

On a coarse level a boundary voxel mixes the object with what lies around it, and the intensity
interval (wide enough for the whole object) accepts such mixed voxels. Each voxel of the object's
rim (the voxels an erosion by one removes) leaves the object when its smoothed intensity is
nearer the local intensity of the surroundings than the local intensity of the object (both
averaged over a small window, the object's on its core, the surroundings' one voxel away from
the object): the boundary moves onto the half-way, partial-volume edge. Where object and
surroundings are too alike to tell apart the rim stays. Only what is written to the label map is
trimmed; the level result that later interactions update is kept whole.
"""

from __future__ import annotations

import cc3d
import numpy as np
from scipy import ndimage

MIN_CONTRAST_HU = 8.0  # object and surroundings closer than this: the rim stays
WINDOW = 5  # level voxels: width of the window local intensities are averaged over
CONTEXT = WINDOW // 2 + 2  # level voxels of context wanted around the part that is written


def _local_mean(values: np.ndarray, where: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean of ``values`` over the voxels of ``where`` in a ``WINDOW``-wide box around each voxel, and
    the share of such voxels in that box."""
    weight = ndimage.uniform_filter(where.astype(np.float32), WINDOW, mode="nearest")
    total = ndimage.uniform_filter(np.where(where, values, 0).astype(np.float32), WINDOW, mode="nearest")
    return total / np.maximum(weight, 1e-6), weight


def trim_rim(mask: np.ndarray, smooth: np.ndarray) -> np.ndarray:
    """``mask`` without the rim voxels that look like the surroundings (both arrays on one level crop)."""
    core = ndimage.binary_erosion(mask, border_value=1)
    rim = mask & ~core
    if not rim.any() or not core.any():
        return mask
    around = ~ndimage.binary_dilation(mask)
    mean_in, w_in = _local_mean(smooth, core)
    mean_out, w_out = _local_mean(smooth, around)
    c_in, c_out, values = mean_in[rim], mean_out[rim], smooth[rim]
    known = (w_in[rim] > 0) & (w_out[rim] > 0) & (np.abs(c_in - c_out) >= MIN_CONTRAST_HU)
    out = mask.copy()
    out[rim] = ~(known & (np.abs(values - c_out) < np.abs(values - c_in)))
    return _anchored(out, core)


def _anchored(mask: np.ndarray, core: np.ndarray) -> np.ndarray:
    """The components of ``mask`` holding a ``core`` voxel or touching the crop's faces (rim voxels the
    trim cut off from the object are dropped)."""
    labels = cc3d.connected_components(mask, connectivity=6)
    keep = np.zeros(int(labels.max()) + 1, dtype=bool)
    keep[labels[core]] = True  # index assignment: no sorting of the (many) core labels
    for axis in range(3):
        for end in (0, -1):
            keep[np.take(labels, end, axis=axis)] = True
    keep[0] = False
    return keep[labels]


NATIVE_STEP = 2  # local means are computed on every second native voxel (cheap on a 512x512 crop) ...
NATIVE_WINDOW = 3  # ... over a window of this many such voxels (about 6 native voxels)
NATIVE_SIGMA = 0.7  # native voxels: light smoothing of the image before the half-way test
JOIN_SHARE = 0.4  # a boundary voxel this far from the surroundings' intensity to the core's is object
BRIGHT_HU = 50.0  # object voxels this much brighter than its core's median are an inclusion, not object


def snap_native(mask: np.ndarray, image: np.ndarray) -> np.ndarray:
    """Place the boundary of a mask brought up from a coarser level on the native half-way edge.

    A mask interpolated from a level ``f`` times coarser is only right to about half a level
    voxel, and on a blob its boundary sits inside the object (the interval and the smoothing
    reject the partial-volume voxels). Every native voxel one step inside or outside the
    boundary joins the object when its (lightly smoothed) intensity is at least ``JOIN_SHARE``
    of the way from the local intensity of the surroundings to that of the object's core (the
    voxel is mostly object: the smoothing pulls a boundary voxel of a convex object towards the
    surroundings, so the share is a bit under one half). Where the two are too alike, and on the
    crop's faces, nothing changes. Voxels of the object much brighter than its core
    (``bright_inclusions``: contrast-filled vessels, calcifications, cartilage that the coarse
    level averaged into the object) leave it.
    """
    core = ~_dilate6(~mask)
    grown = _dilate6(mask)
    band = grown & ~core
    band[[0, -1]] = False
    band[:, [0, -1]] = False
    band[:, :, [0, -1]] = False
    if not band.any() or not core.any():
        return mask
    smooth = ndimage.gaussian_filter(image.astype(np.float32), NATIVE_SIGMA, truncate=1.5)
    at = np.nonzero(band)
    coarse = tuple(a // NATIVE_STEP for a in at)
    sub = (slice(None, None, NATIVE_STEP),) * 3
    mean_in, w_in = _local_mean_coarse(smooth[sub], core[sub])
    mean_out, w_out = _local_mean_coarse(smooth[sub], ~grown[sub])
    c_in, c_out, values = mean_in[coarse], mean_out[coarse], smooth[at]
    known = (w_in[coarse] > 0) & (w_out[coarse] > 0) & (np.abs(c_in - c_out) >= MIN_CONTRAST_HU)
    share = (values - c_out) / np.where(known, c_in - c_out, 1.0)  # 0: like the surroundings, 1: like the core
    out = mask.copy()
    out[at] = np.where(known, share >= JOIN_SHARE, mask[at])
    out &= ~bright_inclusions(smooth, core[sub], sub)
    return _anchored(out, core & out)


def bright_inclusions(smooth: np.ndarray, core_sample: np.ndarray, sample: tuple[slice, ...]) -> np.ndarray:
    """Voxels of ``smooth`` brighter than the object's core by more than ``BRIGHT_HU`` (or six robust
    deviations of the core, when it is noisier); the core's intensities are read on ``smooth[sample]``
    where ``core_sample`` is set."""
    values = smooth[sample][core_sample]
    if values.size < 10:
        return np.zeros(smooth.shape, dtype=bool)
    centre = float(np.median(values))
    spread = 1.4826 * float(np.median(np.abs(values - centre)))
    return smooth > centre + max(BRIGHT_HU, 6.0 * spread)


def _local_mean_coarse(values: np.ndarray, where: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    weight = ndimage.uniform_filter(where.astype(np.float32), NATIVE_WINDOW, mode="nearest")
    total = ndimage.uniform_filter(np.where(where, values, 0).astype(np.float32), NATIVE_WINDOW, mode="nearest")
    return total / np.maximum(weight, 1e-6), weight


def _dilate6(mask: np.ndarray) -> np.ndarray:
    """Dilation by the 6-neighbourhood (faster than ``binary_dilation`` on large crops)."""
    out = mask.copy()
    for axis in range(3):
        lo = [slice(None)] * 3
        hi = [slice(None)] * 3
        lo[axis], hi[axis] = slice(None, -1), slice(1, None)
        out[tuple(lo)] |= mask[tuple(hi)]
        out[tuple(hi)] |= mask[tuple(lo)]
    return out

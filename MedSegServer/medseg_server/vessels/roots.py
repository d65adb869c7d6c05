"""Where vessel trees start: scores whose maximum marks the root voxels (cropped, no full-volume work).

``hilum_score``: the portal vein enters the liver at the hilum, so its root is the vessel voxel
farthest outside the liver. ``ostium_score``: the hepatic veins drain into the IVC, so their
roots are the vessel voxels touching it. Both give ``-inf`` where a root may not be.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage
from scipy.spatial import cKDTree

from .grid import Grid, bbox


def hilum_score(vessel: np.ndarray, liver: np.ndarray, grid: Grid) -> np.ndarray:
    """Distance (mm) from each vessel voxel to the nearest liver voxel (0 inside it), ``-inf`` off the vessel."""
    score = np.full(vessel.shape, -np.inf, np.float32)
    score[vessel] = 0.0
    outside = np.argwhere(vessel & ~liver)
    if not len(outside) or not liver.any():
        return score
    crop = bbox(liver, pad=1)
    sub = liver[crop]
    rim = np.argwhere(sub & ~ndimage.binary_erosion(sub)) + [c.start for c in crop]
    d, _ = cKDTree(grid.zyx_to_mm(rim)).query(grid.zyx_to_mm(outside))
    score[tuple(outside.T)] = d
    return score


def ostium_score(vessel: np.ndarray, ivc: np.ndarray, grid: Grid, contact_mm: float = 3.0) -> np.ndarray:
    """Minus the distance (mm) to the IVC at vessel voxels within ``contact_mm`` of it, ``-inf`` elsewhere."""
    score = np.full(vessel.shape, -np.inf, np.float32)
    if not vessel.any():
        return score
    crop = bbox(vessel, pad=int(np.ceil(contact_mm / min(grid.spacing))) + 1)
    near = ivc[crop]
    if not near.any():
        return score
    d = ndimage.distance_transform_edt(~near, sampling=grid.spacing_zyx)
    sub = score[crop]
    hit = vessel[crop] & (d <= contact_mm)
    sub[hit] = -d[hit]
    return score

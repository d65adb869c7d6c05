"""Writing a blob that has leaked: fast, without native boundary refinement.

A blob target past its plausible volume (``TargetProfile.max_volume_ml``) has run into its
surroundings: a first click in a non-contrast IVC floods litres of tissue of the same HU. Placing
the boundary of such a leak on the native half-way edge (``refine.py``) costs about a second on a
512x512 CT and changes nothing the user cares about (the next negative clicks cut the leak away),
so its level voxels are copied onto their native blocks instead. Once the target is back within
its plausible volume its whole boundary is refined again (see ``InteractiveSession._commit``).
"""

from __future__ import annotations

import numpy as np

from .boxes import Box
from .profiles import TargetProfile


def is_leak(voxels: int, spacing_mm: np.ndarray, profile: TargetProfile) -> bool:
    """True when a blob of ``voxels`` level voxels of ``spacing_mm`` is past its plausible volume."""
    if profile.tubular:
        return False
    return voxels * float(np.prod(spacing_mm)) / 1000.0 > profile.max_volume_ml


def blocks_to_native(level_crop: np.ndarray, level_box: Box, factors: tuple[int, int, int],
                     native_box: Box) -> np.ndarray:
    """``level_crop`` (over ``level_box``) on ``native_box``: each native voxel takes the value of
    the level voxel it lies in (voxels past the last whole block take the last level voxel; voxels
    outside ``level_box`` take the nearest one inside it)."""
    index = []
    for axis in range(3):
        native = np.arange(native_box.start[axis], native_box.stop[axis])
        at = native // factors[axis] - level_box.start[axis]
        index.append(np.clip(at, 0, level_crop.shape[axis] - 1))
    return level_crop[np.ix_(*index)]

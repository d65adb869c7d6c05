"""The published click-simulation protocol for interactive segmentation benchmarks.

Next click: the voxel farthest (Euclidean distance transform, in mm) from the boundary of the
largest 26-connected error component; positive if the ground truth is foreground there,
negative otherwise. The first click is the same rule with an empty prediction, i.e. the centre
of the largest ground-truth component. The box variant starts with the bounding box of the
largest ground-truth component.
"""

from __future__ import annotations

from dataclasses import dataclass

import cc3d
import numpy as np
from scipy import ndimage


@dataclass(frozen=True)
class Click:
    """A simulated click: native (z, y, x) voxel and its polarity."""

    zyx: tuple[int, int, int]
    positive: bool

    @property
    def xyz(self) -> list[int]:
        """MONAI Label order."""
        return list(self.zyx[::-1])


def _largest(mask: np.ndarray) -> tuple[np.ndarray, tuple[slice, slice, slice]] | None:
    labels, n = cc3d.connected_components(mask, connectivity=26, return_N=True)
    if n == 0:
        return None
    stats = cc3d.statistics(labels)
    counts = np.asarray(stats["voxel_counts"])
    counts[0] = 0
    best = int(counts.argmax())
    box = stats["bounding_boxes"][best]
    return labels[box] == best, box


def next_click(gt: np.ndarray, pred: np.ndarray, spacing_zyx: np.ndarray) -> Click | None:
    """The protocol's next click (None when the prediction is perfect)."""
    found = _largest(gt != pred)
    if found is None:
        return None
    comp, box = found
    padded = np.pad(comp, 1)  # the crop border counts as outside the component
    dist = ndimage.distance_transform_edt(padded, sampling=spacing_zyx)[1:-1, 1:-1, 1:-1]
    local = np.unravel_index(int(np.argmax(dist)), comp.shape)
    zyx = tuple(int(s.start + i) for s, i in zip(box, local, strict=True))
    return Click(zyx, bool(gt[zyx]))


def first_box(gt: np.ndarray) -> tuple[tuple[int, int, int], tuple[int, int, int]] | None:
    """Bounding box (inclusive start, exclusive stop, zyx) of the largest ground-truth component."""
    found = _largest(gt)
    if found is None:
        return None
    _, box = found
    return tuple(s.start for s in box), tuple(s.stop for s in box)


def dice(a: np.ndarray, b: np.ndarray) -> float:
    """Dice overlap of two masks (1.0 when both are empty)."""
    total = int(a.sum()) + int(b.sum())
    return 1.0 if total == 0 else 2.0 * int(np.logical_and(a, b).sum()) / total


def noc(dices: list[float], threshold: float, cap: int = 20) -> int:
    """Number of clicks to reach ``threshold`` Dice (``cap`` when never reached)."""
    for i, d in enumerate(dices[:cap], start=1):
        if d >= threshold:
            return i
    return cap

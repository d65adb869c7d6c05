"""How far intensity alone separates a structure: the threshold ceiling of a ground truth.

The best Dice that one intensity threshold reaches when it is applied only within ``margin``
voxels of the truth (an oracle that knows where the structure is, to one voxel, and picks the
best threshold for it). It is a reference, not a bound: a method with local thresholds or shape
knowledge can do better. A ceiling below a NoC level (0.9) says that level asks for more than
the image shows: a non-contrast CT's vessels, labels drawn by a model, sub-voxel branches.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi


@dataclass(frozen=True)
class Ceiling:
    """Best Dice of one threshold near the truth, and that threshold (image units, e.g. HU)."""

    dice: float
    threshold: float
    margin: int

    def as_json(self) -> dict[str, float | int]:
        return {"dice": round(self.dice, 4), "threshold": round(self.threshold, 1), "margin_voxels": self.margin}


def threshold_ceiling(image: np.ndarray, truth: np.ndarray, margin: int = 1) -> Ceiling:
    """Best Dice of ``image >= t`` inside ``truth`` dilated by ``margin`` face-neighbour steps.

    Every distinct value of the zone is tried as ``t``: counts come from sorting the zone once.
    """
    truth = truth.astype(bool)
    if image.shape != truth.shape:
        raise ValueError(f"image {image.shape} and truth {truth.shape} differ in shape")
    n_true = int(truth.sum())
    if n_true == 0:
        return Ceiling(0.0, float("nan"), margin)
    zone = ndi.binary_dilation(truth, iterations=margin) if margin else truth
    values = image[zone].astype(np.float64)
    inside = truth[zone]
    order = np.argsort(values)[::-1]  # brightest first: prefix k = voxels above the k-th value
    values, inside = values[order], inside[order]
    tp = np.cumsum(inside)
    taken = np.arange(1, values.size + 1)
    last = np.r_[values[1:] != values[:-1], True]  # a threshold includes every voxel of equal value
    dice = np.where(last, 2.0 * tp / (taken + n_true), -1.0)
    best = int(np.argmax(dice))
    return Ceiling(float(dice[best]), float(values[best]), margin)

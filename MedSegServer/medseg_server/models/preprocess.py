"""Bring CT volumes and labels to the grid a network works on, and its answers back.

Resampling is done with SimpleITK so that origin and direction are kept exactly (the result of a
model lands on the image's own grid); intensities are scaled with MONAI transforms.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import SimpleITK as sitk
from monai.transforms import ScaleIntensityRange


def network_grid(image: sitk.Image, spacing: list[float]) -> sitk.Image:
    """An empty image covering ``image``'s extent at ``spacing`` (x, y, z mm), same origin and direction."""
    old_spacing = np.array(image.GetSpacing(), float)
    new_spacing = np.array(spacing, float)
    size = np.maximum(np.round(np.array(image.GetSize()) * old_spacing / new_spacing), 1).astype(int)
    ref = sitk.Image([int(s) for s in size], sitk.sitkUInt8)
    ref.SetSpacing([float(s) for s in new_spacing])
    ref.SetOrigin(image.GetOrigin())
    ref.SetDirection(image.GetDirection())
    return ref


def resample_like(image: sitk.Image, ref: sitk.Image, label: bool = False, default: float = 0.0) -> sitk.Image:
    """``image`` resampled onto the grid of ``ref`` (nearest neighbour for labels, linear otherwise)."""
    interp = sitk.sitkNearestNeighbor if label else sitk.sitkLinear
    pixel = sitk.sitkUInt8 if label else sitk.sitkFloat32
    return sitk.Resample(image, ref, sitk.Transform(), interp, default, pixel)


def scale_intensity(array_zyx: np.ndarray, hu_window: list[float]) -> np.ndarray:
    """HU mapped linearly from ``hu_window`` to [0, 1] and clipped (float32)."""
    low, high = hu_window
    scaler = ScaleIntensityRange(a_min=low, a_max=high, b_min=0.0, b_max=1.0, clip=True)
    return np.asarray(scaler(array_zyx.astype(np.float32)), dtype=np.float32)


def image_to_input(image: sitk.Image, cfg: dict[str, Any]) -> tuple[sitk.Image, np.ndarray]:
    """(network-grid reference image, scaled (z, y, x) float32 array) for a CT ``image``."""
    ref = network_grid(image, cfg["spacing"])
    resampled = resample_like(sitk.Cast(image, sitk.sitkFloat32), ref, default=-1024.0)
    return ref, scale_intensity(sitk.GetArrayFromImage(resampled), cfg["hu_window"])


def label_to_grid(label: sitk.Image, ref: sitk.Image, mapping: dict[int, int] | None = None) -> np.ndarray:
    """A label volume on the network grid as a (z, y, x) uint8 array, values remapped by ``mapping``."""
    arr = sitk.GetArrayFromImage(resample_like(sitk.Cast(label, sitk.sitkUInt8), ref, label=True))
    return remap_labels(arr, mapping) if mapping else arr


def remap_labels(array: np.ndarray, mapping: dict[int, int]) -> np.ndarray:
    """Values ``k`` replaced by ``mapping[k]``; values not in ``mapping`` become 0."""
    lut = np.zeros(256, np.uint8)
    for src, dst in mapping.items():
        lut[int(src)] = int(dst)
    return lut[array.astype(np.uint8)]


def probs_to_image_grid(probs_czyx: np.ndarray, ref: sitk.Image, image: sitk.Image) -> np.ndarray:
    """Class probabilities on the network grid ``ref`` -> arg-max label (z, y, x) on ``image``'s grid."""
    best = None
    best_p = None
    for c in range(probs_czyx.shape[0]):
        chan = sitk.GetImageFromArray(np.ascontiguousarray(probs_czyx[c], dtype=np.float32))
        chan.CopyInformation(ref)
        up = sitk.GetArrayFromImage(resample_like(chan, image, default=1.0 if c == 0 else 0.0))
        if best is None:
            best, best_p = np.zeros(up.shape, np.uint8), up
        else:
            better = up > best_p
            best[better] = c
            best_p = np.where(better, up, best_p)
    return best

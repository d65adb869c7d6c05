"""A trivial but real liver model: an HU window learned from submitted labels, then clean-up.

It keeps the loop (infer -> correct -> submit -> train -> better infer) working end to end before
the learned MONAI models exist: "training" re-estimates the window from the intensities inside
the submitted liver labels.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import cc3d
import numpy as np
import SimpleITK as sitk
from scipy import ndimage

from ..atomic import atomic_write_bytes
from .base import InferRequest, InferResult, InferTask, ModelError, label_like

DEFAULT_WINDOW = (20.0, 125.0)  # HU: enhanced liver parenchyma in portal venous phase


class ThresholdLiverModel(InferTask):
    """Liver = largest (or clicked) connected region inside an HU window, smoothed and filled."""

    name = "threshold_liver"
    type = "segmentation"
    labels = {"liver": 1}
    description = "Liver from an HU window learned from final labels (baseline model, no network)"

    def __init__(self, weights_file: Path | None = None) -> None:
        self.weights_file = weights_file
        self.window = DEFAULT_WINDOW
        if weights_file is not None and weights_file.exists():
            self._load(weights_file.read_bytes())

    def config(self) -> dict[str, Any]:
        return {"window_low": self.window[0], "window_high": self.window[1], "largest_cc": True}

    def _load(self, data: bytes) -> None:
        try:
            doc = json.loads(data)
            low, high = float(doc["window"][0]), float(doc["window"][1])
        except (ValueError, KeyError, TypeError, IndexError):
            raise ModelError("weights must be JSON like {\"window\": [low, high]}") from None
        if not (np.isfinite([low, high]).all() and low < high):
            raise ModelError("window must be two finite numbers, low < high")
        self.window = (low, high)

    def weights_path(self) -> Path | None:
        return self.weights_file if self.weights_file and self.weights_file.exists() else None

    def load_weights(self, data: bytes) -> None:
        self._load(data)
        if self.weights_file is not None:
            atomic_write_bytes(self.weights_file, data)

    def save_window(self, low: float, high: float, extra: dict | None = None) -> None:
        """Persist a new window (what training produces)."""
        doc = {"window": [float(low), float(high)], **(extra or {})}
        self.load_weights(json.dumps(doc, indent=2).encode())

    def infer(self, request: InferRequest) -> InferResult:
        low = float(request.params.get("window_low", self.window[0]))
        high = float(request.params.get("window_high", self.window[1]))
        if not low < high:
            raise ModelError("window_low must be below window_high")
        image = request.image
        arr = sitk.GetArrayViewFromImage(image).astype(np.float32)
        spacing = np.array(image.GetSpacing()[::-1])  # z, y, x
        smooth = ndimage.gaussian_filter(arr, sigma=1.0 / np.maximum(spacing / spacing.min(), 1.0))
        mask = (smooth >= low) & (smooth <= high)
        radius = np.maximum(np.round(3.0 / spacing).astype(int), 1)
        mask = ndimage.binary_opening(mask, structure=_ellipsoid(radius))
        labels = cc3d.connected_components(mask, connectivity=6)
        if labels.max() == 0:
            return InferResult(label_like(np.zeros_like(mask, dtype=np.uint8), image), {"label_names": self.labels})
        fg = request.points("foreground")
        if len(fg):
            picked = {int(labels[z, y, x]) for x, y, z in fg} - {0}
            keep = np.isin(labels, list(picked)) if picked else np.zeros_like(mask)
        else:
            counts = np.bincount(labels.ravel())
            counts[0] = 0
            keep = labels == int(counts.argmax())
        keep = ndimage.binary_closing(keep, structure=_ellipsoid(radius))
        keep = _fill_holes_per_slice(keep)
        bg = request.points("background")
        for x, y, z in bg:
            if keep[z, y, x]:
                keep &= ~_component_at(keep, (z, y, x))
        out = keep.astype(np.uint8) * self.labels["liver"]
        return InferResult(label_like(out, image), {"label_names": self.labels, "window": [low, high]})


def _ellipsoid(radius: np.ndarray) -> np.ndarray:
    grids = np.ogrid[tuple(slice(-r, r + 1) for r in radius)]
    return sum((g / max(r, 1)) ** 2 for g, r in zip(grids, radius, strict=True)) <= 1.0


def _fill_holes_per_slice(mask: np.ndarray) -> np.ndarray:
    out = ndimage.binary_fill_holes(mask)
    for z in range(out.shape[0]):
        out[z] = ndimage.binary_fill_holes(out[z])
    return out


def _component_at(mask: np.ndarray, zyx: tuple[int, int, int]) -> np.ndarray:
    labels = cc3d.connected_components(mask, connectivity=6)
    return labels == labels[zyx]


def learn_window(images: list[np.ndarray], labels: list[np.ndarray], value: int = 1) -> tuple[float, float]:
    """HU window covering the central 96 % of intensities inside the labels (2nd-98th percentile)."""
    samples = [img[lab == value] for img, lab in zip(images, labels, strict=True) if (lab == value).any()]
    if not samples:
        raise ModelError("no labelled liver voxels to learn from")
    values = np.concatenate(samples).astype(np.float32)
    low, high = np.percentile(values, [2.0, 98.0])
    return float(low), float(high)

"""The inference-task interface every model implements."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import SimpleITK as sitk


class ModelError(ValueError):
    """Bad inference request (invalid clicks, parameters); answered with a 4xx."""

    status = 422


@dataclass
class InferRequest:
    """What one ``POST /infer/{model}`` asks for."""

    image: sitk.Image
    image_id: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    label: sitk.Image | None = None
    session_id: str | None = None

    def points(self, key: str) -> np.ndarray:
        """Click list ``params[key]`` as an (N, 3) int array of voxel indices (x, y, z).

        Raises:
            ModelError: points that are not triples of finite numbers inside the image.
        """
        raw = self.params.get(key) or []
        if not isinstance(raw, list):
            raise ModelError(f"'{key}' must be a list of [x, y, z] voxel coordinates")
        if len(raw) > 10000:
            raise ModelError(f"too many points in '{key}' ({len(raw)} > 10000)")
        try:
            pts = np.asarray(raw, dtype=float) if raw else np.zeros((0, 3))
        except (TypeError, ValueError):
            pts = None
        if pts is None or pts.ndim != 2 or pts.shape[1] != 3:
            raise ModelError(f"'{key}' must be a list of [x, y, z] voxel coordinates")
        if not np.isfinite(pts).all():
            raise ModelError(f"'{key}' holds NaN or infinite coordinates")
        size = np.array(self.image.GetSize())
        rounded = np.round(pts)
        outside = ((rounded < 0) | (rounded >= size)).any(axis=1)  # checked before the int cast
        if outside.any():
            raise ModelError(f"point {pts[outside][0].tolist()} in '{key}' is outside the image of size {size.tolist()}")
        return rounded.astype(int)


@dataclass
class InferResult:
    """A label volume on the request image's grid plus JSON parameters for the client."""

    label: sitk.Image
    params: dict[str, Any] = field(default_factory=dict)


class InferTask(ABC):
    """A model that segments a volume. Subclasses set the class attributes and ``infer``."""

    name: str = "model"
    type: str = "segmentation"  # MONAI Label types: segmentation, deepgrow, deepedit, scribbles, ...
    labels: dict[str, int] = {}
    dimension: int = 3
    description: str = ""

    @abstractmethod
    def infer(self, request: InferRequest) -> InferResult:
        """Segment ``request.image``; the result must share its geometry."""

    def config(self) -> dict[str, Any]:
        """Parameters a client may set (shown in ``/info/``)."""
        return {}

    def info(self) -> dict[str, Any]:
        """The model's entry in ``GET /info/``."""
        return {
            "type": self.type,
            "labels": dict(self.labels),
            "dimension": self.dimension,
            "description": self.description,
            "config": self.config(),
        }

    def weights_path(self) -> Path | None:
        """The file served by ``GET /model/{name}`` (None when the model has no weights)."""
        return None

    def load_weights(self, data: bytes) -> None:
        """Replace the weights (``PUT /model/{name}``)."""
        raise ModelError(f"model {self.name!r} has no weights to replace")


def label_like(array_zyx: np.ndarray, reference: sitk.Image) -> sitk.Image:
    """Wrap a (z, y, x) label array as a uint8 image with the geometry of ``reference``."""
    out = sitk.GetImageFromArray(np.ascontiguousarray(array_zyx, dtype=np.uint8))
    out.CopyInformation(reference)
    return out

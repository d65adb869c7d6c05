"""A learned model as the interactive engine's prior for the first click.

When a session opens, the published automatic model segments the whole image once, in a
background thread (opening never waits for it). The first positive click on a target that lands
inside the model's answer for that target keeps the target within the model's connected
component there, grown by ``ZONE_MARGIN_MM``: the image-driven engine still decides the boundary
but can no longer leak far into a neighbour the model knows is something else. A later positive
click opens the zone by ``CLICK_REACH_MM`` around itself: the model was too tight there, or
missed that part of the target (the zone is never lifted as a whole, which would let every leak
of the image-only engine back in). The model is only trusted for targets it is good at: its
validation Dice for the class on held-out cases (the model card of the published version) must
reach ``MIN_DICE``. For other targets, while the model is still running, when it failed, or
when the first click falls outside its answer, the engine works from the image alone.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import cc3d
import numpy as np
import SimpleITK as sitk

from .background import BackgroundWork
from .boxes import Box
from .propagate import near_points

if TYPE_CHECKING:
    from ..models.auto_seg import AutoSegModel

MIN_DICE = 0.8  # validation Dice a class needs before its model mask is used as the prior
MIN_VOXELS = 64  # model components smaller than this are noise, not a starting point
ZONE_MARGIN_MM = 12.0  # how far past the model's boundary the target may still grow
CLICK_REACH_MM = 25.0  # a later positive click opens the zone this far around itself

Component = tuple[Box, np.ndarray]  # native (z, y, x) box and the component's mask inside it


class ModelPrior(BackgroundWork):
    """The model's components per trusted target for one image, computed in a background thread."""

    def __init__(self, compute: Callable[[], np.ndarray], trusted: dict[str, int], source: str = "model") -> None:
        """``compute`` returns the model's label map (z, y, x) on the image grid; ``trusted`` maps the
        target names the model may start with to its label values. A failing model only means no prior."""
        self.trusted = dict(trusted)
        self.source = source
        self._compute = compute
        self._components: dict[str, list[Component]] = {}
        super().__init__("medseg-model-prior")

    def work(self) -> None:
        labels = self._compute()
        self._components = {name: components_of(labels == value) for name, value in self.trusted.items()}

    def component_at(self, name: str, zyx: np.ndarray) -> Component | None:
        """The model's component of target ``name`` holding native voxel ``zyx``, or None."""
        if not self.ready() or self.error is not None:
            return None
        point = tuple(int(v) for v in np.asarray(zyx).reshape(3))
        for box, mask in self._components.get(name, []):
            if box.contains(np.array([point]))[0] and mask[tuple(p - s for p, s in zip(point, box.start, strict=True))]:
                return box, mask
        return None

    def as_json(self) -> dict:
        """State of the prior for session info."""
        return {"source": self.source, "targets": sorted(self.trusted), "ready": self.ready(),
                "seconds": None if self.seconds is None else round(self.seconds, 3), "error": self.error}


def components_of(mask: np.ndarray) -> list[Component]:
    """26-connected components of ``mask`` with at least ``MIN_VOXELS`` voxels, as cropped masks."""
    if not mask.any():
        return []
    box = Box.of_mask(mask)
    labels = cc3d.connected_components(mask[box.slices], connectivity=26)
    out = []
    for index, extent in enumerate(cc3d.statistics(labels)["bounding_boxes"][1:], start=1):
        part = labels[extent] == index
        if part.sum() < MIN_VOXELS:
            continue
        start = tuple(int(b + s.start) for b, s in zip(box.start, extent, strict=True))
        stop = tuple(int(b + s.stop) for b, s in zip(box.start, extent, strict=True))
        out.append((Box(start, stop), part))
    return out


def grow_zone(component: Component, margin_mm: float, spacing_zyx: np.ndarray,
              shape: tuple[int, int, int]) -> Component:
    """``component`` grown by ``margin_mm`` (exact anisotropic distance), clipped to the image."""
    import edt

    box, mask = component
    reach = np.ceil(margin_mm / np.asarray(spacing_zyx)).astype(int)
    grown = box.grow(reach).clip(shape)
    canvas = np.zeros(grown.shape, dtype=bool)
    canvas[grown.relative(box)] = mask
    distance = edt.edt(~canvas, anisotropy=tuple(float(s) for s in spacing_zyx), parallel=1)
    return grown, distance <= margin_mm


def extend_zone(zone: Component, points: np.ndarray, radius_mm: float, spacing_zyx: np.ndarray,
                shape: tuple[int, int, int]) -> Component:
    """``zone`` plus a ball of ``radius_mm`` around each native (z, y, x) point."""
    box, mask = zone
    spacing = np.asarray(spacing_zyx, dtype=float)
    points = np.asarray(points, dtype=int).reshape(-1, 3)
    grown = box.union(Box.around(points, np.ceil(radius_mm / spacing).astype(int)).clip(shape))
    out = near_points(grown.shape, points - np.array(grown.start), spacing, radius_mm)
    out[grown.relative(box)] |= mask
    return grown, out


def trusted_targets(card: dict, labels: dict[str, int], min_dice: float = MIN_DICE) -> dict[str, int]:
    """Targets whose held-out validation Dice in the model card reaches ``min_dice``."""
    per_class = card.get("validation_dice_per_class") or {}
    out = {}
    for name, value in labels.items():
        dice = per_class.get(name)
        if isinstance(dice, int | float) and dice == dice and dice >= min_dice:
            out[name] = int(value)
    return out


def auto_seg_prior(model: AutoSegModel, min_dice: float = MIN_DICE) -> Callable[[sitk.Image], ModelPrior | None]:
    """A session's prior factory backed by the published version of ``model`` (None when it has
    no weights or no class it is good enough at)."""
    from ..models.base import ModelError

    def factory(image: sitk.Image) -> ModelPrior | None:
        try:
            bundle, version = model.bundle()
        except ModelError:
            return None
        trusted = trusted_targets(bundle.card, bundle.config["labels"], min_dice)
        if not trusted:
            return None
        return ModelPrior(lambda: model.predict_labels(image), trusted, f"{model.name} v{version}")

    return factory

"""Scoring methods for ``POST /scoring/{method}``, run as background jobs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import SimpleITK as sitk

from .jobs import BackgroundJob, JobContext


def dice(a: np.ndarray, b: np.ndarray) -> float:
    """Dice of two boolean masks (1.0 when both are empty)."""
    total = int(a.sum()) + int(b.sum())
    return 1.0 if total == 0 else 2.0 * int(np.logical_and(a, b).sum()) / total


class DiceScoring(BackgroundJob):
    """How much annotators changed the model's output: Dice of ``original`` vs ``final`` per image.

    The score is stored in each image's info under ``scoring.dice`` (low = the model needed a lot
    of correction there).
    """

    name = "dice"
    description = "Dice between the model's label (original) and the submitted one (final)"

    def __init__(self, studies: str) -> None:
        self.studies = studies

    def run(self, ctx: JobContext) -> dict[str, Any]:
        from ..datastore import LocalDatastore, NotFound

        store = LocalDatastore(Path(self.studies), maintain=False)  # the server owns recovery
        scores: dict[str, float] = {}
        images = store.list_images()
        for i, image_id in enumerate(images):
            try:
                original = store.get_label(image_id, "original")
                final = store.get_label(image_id, "final")
            except NotFound:
                continue
            a = sitk.GetArrayFromImage(sitk.ReadImage(str(original.path))) > 0
            b = sitk.GetArrayFromImage(sitk.ReadImage(str(final.path))) > 0
            if a.shape != b.shape:
                continue
            scores[image_id] = dice(a, b)
            info = store.get_image_info(image_id)
            merged = dict(info.get("scoring", {}))
            merged["dice"] = scores[image_id]
            store.set_image_info(image_id, {"scoring": merged})
            ctx.report(epoch=i + 1, total_epochs=len(images))
        ctx.log(f"scored {len(scores)} images")
        return {"scores": scores}

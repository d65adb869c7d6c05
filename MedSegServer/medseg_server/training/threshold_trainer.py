"""Trainer of the baseline threshold model: re-learns its HU window from the final labels."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import SimpleITK as sitk

from .. import imageio
from ..models.threshold import ThresholdLiverModel, learn_window
from .jobs import BackgroundJob, JobContext


class ThresholdTrainer(BackgroundJob):
    """``POST /train/threshold_liver``: fit the window on every image with a ``final`` label."""

    description = "Learn the liver HU window from final labels"

    def __init__(self, model: ThresholdLiverModel) -> None:
        self.model = model
        self.name = model.name

    def config(self) -> dict[str, Any]:
        return {"label_value": 1, "max_cases": 100}

    def run(self, ctx: JobContext) -> dict[str, Any]:
        pairs = ctx.request.get("pairs", [])[: int(ctx.request.get("max_cases", 100))]
        value = int(ctx.request.get("label_value", 1))
        images, labels = [], []
        for i, pair in enumerate(pairs):
            if ctx.should_stop():
                break
            img = sitk.GetArrayFromImage(imageio.read_image(Path(pair["image"])))
            lab = sitk.GetArrayFromImage(imageio.read_image(Path(pair["label"])))
            if img.shape == lab.shape:
                images.append(img)
                labels.append(lab)
            ctx.report(epoch=i + 1, total_epochs=len(pairs), cases=len(images))
            ctx.log(f"read case {i + 1}/{len(pairs)}")
        low, high = learn_window(images, labels, value)
        ctx.log(f"learned window [{low:.1f}, {high:.1f}] HU from {len(images)} cases")
        out = ctx.workdir / "weights.json"
        out.write_text(json.dumps({"window": [low, high], "cases": len(images)}))
        return {"window": [low, high], "cases": len(images), "weights": str(out), "voxels": int(sum(np.count_nonzero(lab == value) for lab in labels))}

    def finish(self, result: dict[str, Any]) -> None:
        self.model.load_weights(Path(result["weights"]).read_bytes())

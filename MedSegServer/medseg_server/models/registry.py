"""Registry of inference tasks; the app asks it by name."""

from __future__ import annotations

from pathlib import Path

from .auto_seg import AutoSegModel
from .base import InferTask
from .threshold import ThresholdLiverModel


class ModelRegistry:
    """Name -> model, in registration order."""

    def __init__(self) -> None:
        self._models: dict[str, InferTask] = {}

    def add(self, model: InferTask) -> InferTask:
        """Register ``model`` under its name (replacing one of the same name)."""
        self._models[model.name] = model
        return model

    def get(self, name: str) -> InferTask | None:
        """The model called ``name`` or ``None``."""
        return self._models.get(name)

    def names(self) -> list[str]:
        """Registered model names."""
        return list(self._models)

    def items(self):
        """(name, model) pairs."""
        return self._models.items()


def default_registry(model_dir: Path, interactive_prior: bool = True) -> ModelRegistry:
    """The models every MedSeg server offers; with ``interactive_prior`` the interactive engine
    starts its targets from ``auto_seg``'s answer where that model is trusted."""
    registry = ModelRegistry()
    registry.add(ThresholdLiverModel(model_dir / "threshold_liver" / "weights.json"))
    auto_seg = AutoSegModel(model_dir / "auto_seg")
    registry.add(auto_seg)
    from ..interactive.model import InteractiveModel  # late import: the engine imports models.base
    from ..interactive.model_prior import auto_seg_prior

    registry.add(InteractiveModel(prior_provider=auto_seg_prior(auto_seg) if interactive_prior else None))
    return registry

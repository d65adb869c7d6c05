"""Wire the learning loop into a server context: trainer, uncertainty scoring, strategies, auto-training.

``install_learning(ctx)`` is called once by ``build_context``; it finds the ``auto_seg`` model
registered by ``default_registry`` and adds around it:

- ``ctx.trainers["auto_seg"]``: :class:`SegTrainer` (versioning + publishing rule);
- after every published version, an uncertainty run over the unlabelled images (scoring runner);
- ``ctx.strategies["mc_dropout"]``, ``["tta"]``, ``["mc_dropout_diverse"]`` and the class-balanced
  ``["mc_dropout_classes"]``, ``["mc_dropout_dice"]`` reading the stored scores (``mc_dropout_diverse``
  also the stored descriptors of labelled and unlabelled images);
- ``ctx.extras["auto_train_model"] = "auto_seg"``: the model the debounced auto-training retrains.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from ..activelearning.class_scores import CLASS_SCORES, learned_classes
from ..activelearning.uncertainty import METHODS, UncertaintyJob, UncertaintyStore
from ..activelearning.uncertainty_strategies import DiverseUncertaintyStrategy, UncertaintyStrategy
from ..models.auto_seg import AutoSegModel
from .runner import AlreadyRunning
from .seg_trainer import SegTrainer

log = logging.getLogger("medseg.learning")
MODEL = "auto_seg"


def install_learning(ctx: Any) -> None:
    """Register the trainer, uncertainty job and strategies of the ``auto_seg`` model in ``ctx``."""
    model = ctx.models.get(MODEL)
    if not isinstance(model, AutoSegModel):
        return
    state = ctx.settings.state_dir
    model.device_setting = ctx.settings.device
    trainer = SegTrainer(MODEL, model.store.root, model.store.starter, state / "cache" / MODEL, ctx.settings.device)
    trainer.model = model
    ctx.trainers[MODEL] = trainer
    store = UncertaintyStore(state / "uncertainty" / MODEL)
    ctx.extras["uncertainty_store"] = store
    ctx.extras["uncertainty_job"] = UncertaintyJob(store.root, ctx.settings.device)
    for method in (*METHODS, *CLASS_SCORES):
        ctx.strategies[method] = UncertaintyStrategy(method, store)
    diverse = DiverseUncertaintyStrategy("mc_dropout", store)
    ctx.strategies[diverse.name] = diverse
    ctx.extras.setdefault("auto_train_model", MODEL)

    def after_training(result: dict[str, Any]) -> None:
        if result.get("published"):
            try:
                start_uncertainty(ctx)
            except (AlreadyRunning, ValueError) as exc:
                log.warning("uncertainty not recomputed after version %s: %s", result.get("version"), exc)

    trainer.listeners.append(after_training)


def start_uncertainty(ctx: Any, params: dict[str, Any] | None = None) -> dict[str, Any]:
    """Start scoring the unlabelled images with the published model (raises AlreadyRunning / ValueError)."""
    model = ctx.models.get(MODEL)
    folder = model.store.published_folder() if isinstance(model, AutoSegModel) else None
    if folder is None:
        raise ValueError(f"model {MODEL!r} has no published weights to score with")
    params = dict(params or {})
    wanted = params.pop("images", None)
    pool = ctx.datastore.unlabelled_images("final")
    ids = [i for i in pool if wanted is None or i in set(wanted)]
    described = ctx.datastore.labelled_images("final") if wanted is None else []  # a full run describes them
    version = model.store.published()
    request = {**params, "images": {i: str(ctx.datastore.image_path(i)) for i in ids},
               "describe": {i: str(ctx.datastore.image_path(i)) for i in described}, "bundle": str(folder),
               "version": version, "method": "uncertainty", "classes": scored_classes(model, folder, version)}
    return ctx.scoring_runner.start(ctx.extras["uncertainty_job"], request)


def scored_classes(model: AutoSegModel, folder: Path, version: int | None) -> list[int] | None:
    """Label values the class-balanced scores weigh: the classes the published version learned (per-class
    validation Dice of its training run or, for the starter, of its model card; :func:`.class_scores.learned_classes`);
    None (every class) when the version has no per-class Dice (an upload)."""
    try:
        labels = json.loads((folder / "config.json").read_text()).get("labels") or model.labels
    except (OSError, ValueError):
        labels = model.labels
    meta = model.store.meta(version) if version is not None else {}
    return learned_classes(labels, meta.get("per_class") or meta.get("card", {}).get("validation_dice_per_class"))

"""``GET /info/`` and ``GET /auth/``: what the server offers, shaped as MONAI Label answers it."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends

from .. import __version__
from ..context import AppContext
from ..labels import LABELS
from .common import get_ctx

router = APIRouter()


def _train_stats(ctx: AppContext) -> dict[str, Any]:
    latest = ctx.train_runner.status()
    stats: dict[str, Any] = {}
    if isinstance(latest, dict):
        progress = latest.get("progress", {})
        entry = {
            "status": latest["status"],
            "start_ts": latest.get("start_ts"),
            "epoch": progress.get("epoch", 0),
            "total_epochs": progress.get("total_epochs", 0),
            "best_metric": progress.get("best_metric", 0.0),
        }
        if latest["status"] != "RUNNING":
            entry["total_time"] = latest.get("end_ts")
        stats[latest.get("name") or latest["request"].get("model", "model")] = entry
    return stats


@router.get("/info/", summary="Server, models, trainers, strategies and scoring methods")
def info(ctx: AppContext = Depends(get_ctx)) -> dict[str, Any]:
    return {
        "name": ctx.settings.name,
        "description": ctx.settings.description,
        "version": __version__,
        "labels": dict(LABELS),
        "models": {name: model.info() for name, model in ctx.models.items()},
        "trainers": {n: {"description": t.description, "config": t.config()} for n, t in ctx.trainers.items()},
        "strategies": {n: s.info() for n, s in ctx.strategies.items()},
        "scoring": {n: {"description": s.description} for n, s in ctx.scoring.items()},
        "train_stats": _train_stats(ctx),
        "datastore": ctx.datastore.stats(),
    }


@router.get("/auth/", summary="Whether authentication is enabled (MONAI Label clients ask first)")
def auth_info(ctx: AppContext = Depends(get_ctx)) -> dict[str, Any]:
    return {"enabled": ctx.settings.auth_enabled, "client_id": "medseg", "realm": "", "scheme": "Bearer"}

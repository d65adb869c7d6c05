"""``GET /model/{model}/versions`` and ``POST /model/{model}/rollback``: the versions of a trained model."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Depends, HTTPException
from fastapi.concurrency import run_in_threadpool

from ..context import AppContext
from ..models import ModelError
from ..models.auto_seg import AutoSegModel
from ..training.versions import UnknownVersion
from .common import get_ctx

router = APIRouter(prefix="/model", tags=["model"])


def _versioned(ctx: AppContext, name: str) -> AutoSegModel:
    model = ctx.models.get(name)
    if model is None:
        raise HTTPException(404, f"model {name!r} not found")
    if not isinstance(model, AutoSegModel):
        raise HTTPException(404, f"model {name!r} has no versions")
    return model


@router.get("/{model}/versions", summary="Every version of the model (weights, data, validation Dice, time)")
def list_versions(model: str, ctx: AppContext = Depends(get_ctx)) -> dict[str, Any]:
    target = _versioned(ctx, model)
    return {"model": model, "published": target.store.published(), "versions": target.store.list()}


@router.post("/{model}/rollback", summary="Serve an earlier (or any) version")
async def rollback(model: str, body: dict[str, Any] = Body(...), ctx: AppContext = Depends(get_ctx)) -> dict[str, Any]:
    target = _versioned(ctx, model)
    version = body.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 0:
        raise HTTPException(422, "body must be {\"version\": N} with N >= 0 (0 = starter weights)")
    previous = target.store.published()
    try:
        target.store.publish(version, f"rollback from version {previous}")
    except UnknownVersion as exc:
        raise HTTPException(404, str(exc)) from None
    try:
        await run_in_threadpool(target.reload)
    except ModelError:
        if previous is not None:
            target.store.publish(previous, "rollback refused: that version does not load")
            await run_in_threadpool(target.reload)
        raise
    return {"model": model, "published": version, "previous": previous}

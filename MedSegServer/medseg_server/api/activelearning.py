"""``POST /activelearning/{strategy}``: the next image to label, and why."""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Body, Depends, HTTPException, Request

from ..context import AppContext
from .common import get_ctx
from .leases import pick_and_lease

router = APIRouter(tags=["activelearning"])


@router.post("/activelearning/{strategy}", summary="Pick the next image to label")
def next_sample(
    strategy: str, http: Request, params: dict[str, Any] | None = Body(None), ctx: AppContext = Depends(get_ctx)
) -> dict[str, Any]:
    chooser = ctx.strategies.get(strategy)
    if chooser is None:
        raise HTTPException(404, f"strategy {strategy!r} not found; available: {', '.join(ctx.strategies)}")
    request = {**(params or {}), "strategy": strategy}
    picked = pick_and_lease(ctx, http, chooser, request)  # multi-user: leased to the caller
    if picked is None:
        return {}
    image_id, reason = picked
    info = ctx.datastore.get_image_info(image_id)
    record = dict(info.get("strategy", {}))
    record[strategy] = {"ts": time.time(), "client_id": request.get("client_id")}
    ctx.datastore.set_image_info(image_id, {"strategy": record})
    path = ctx.datastore.image_path(image_id)
    name = f"{image_id}.nii.gz" if path.is_dir() else path.name
    return {**info, "id": image_id, "name": name, "strategy": record, "reason": reason}

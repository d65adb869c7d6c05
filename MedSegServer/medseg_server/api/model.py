"""``GET|PUT /model/{model}``: download or replace a model's weights."""

from __future__ import annotations

import hashlib
from typing import Any

from fastapi import APIRouter, Depends, File, HTTPException, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from ..context import AppContext
from .common import file_response, get_ctx, read_upload

router = APIRouter(prefix="/model", tags=["model"])


def _model(ctx: AppContext, name: str):
    model = ctx.models.get(name)
    if model is None:
        raise HTTPException(404, f"model {name!r} not found")
    return model


@router.get("/{model}", summary="Download the model's current weights")
def get_weights(model: str, ctx: AppContext = Depends(get_ctx)) -> Response:
    path = _model(ctx, model).weights_path()
    if path is None:
        raise HTTPException(404, f"Model File NOT Found for {model}")
    return file_response(path.read_bytes(), f"{model}{''.join(path.suffixes)}")


@router.put("/{model}", summary="Replace the model's weights")
async def put_weights(model: str, file: UploadFile = File(...), ctx: AppContext = Depends(get_ctx)) -> dict[str, Any]:
    target = _model(ctx, model)
    data = await read_upload(file, ctx.settings.max_upload_bytes, "weights")
    await run_in_threadpool(target.load_weights, data)
    return {"checksum": "SHA256:" + hashlib.sha256(data).hexdigest(), "size": len(data)}

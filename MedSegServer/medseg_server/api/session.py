"""``/session``: upload an image once, then infer on it by ``session_id``."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from fastapi import APIRouter, Depends, File, Query, UploadFile
from fastapi.concurrency import run_in_threadpool

from .. import imageio
from ..context import AppContext
from ..datastore import InvalidUpload
from .common import client_filename, file_response, get_ctx, read_upload

router = APIRouter(prefix="/session", tags=["session"])


@router.put("/", summary="Create a session from an uploaded image")
async def create_session(
    expiry: int = Query(0, ge=0, le=7 * 24 * 3600),
    files: list[UploadFile] = File(...),
    ctx: AppContext = Depends(get_ctx),
) -> dict[str, Any]:
    if len(files) != 1:
        raise InvalidUpload("send exactly one image file in 'files'")
    upload = files[0]
    data = await read_upload(upload, ctx.settings.max_upload_bytes, "image")
    name = client_filename(upload.filename)
    image = await run_in_threadpool(imageio.read_image_bytes, data, name)
    imageio.check_finite(image)
    suffix = imageio.image_suffix(name) or ".nii.gz"
    info = await run_in_threadpool(
        ctx.sessions.create, f"image{suffix}", lambda p: p.write_bytes(data), {"name": name}, expiry
    )
    return {"session_id": info.name, "session_info": asdict(info)}


@router.get("/{session_id}", summary="Session info (or its image with ?image=true)")
def get_session(
    session_id: str, image: bool = Query(False), update_ts: bool = Query(False), ctx: AppContext = Depends(get_ctx)
) -> Any:
    info = ctx.sessions.get(session_id, touch=update_ts)
    if image:
        path = info.image_path
        return file_response(path.read_bytes(), path.name)
    return asdict(info)


@router.delete("/{session_id}", summary="Remove a session")
def remove_session(session_id: str, ctx: AppContext = Depends(get_ctx)) -> dict[str, Any]:
    return asdict(ctx.sessions.remove(session_id))

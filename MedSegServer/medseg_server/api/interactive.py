"""``/interactive/sessions``: open a session on an image, interact, undo, reset, read the labels, close.

Sessions hold a lease renewed on every call; once it expires (or the session is closed) every
call answers 410. Each session has a lock, so concurrent calls on one session run one after the
other, and all heavy work runs in the thread pool, off the event loop.
"""

from __future__ import annotations

import uuid
from typing import Any

import SimpleITK as sitk
from fastapi import APIRouter, Body, Depends, File, Form, HTTPException, Query, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response

from .. import imageio
from ..context import AppContext
from ..datastore import validate_id
from ..interactive import InteractionError, parse
from ..interactive.manager import Lease, SessionManager
from ..interactive.model import InteractiveModel
from .common import client_filename, file_response, get_ctx, multipart_response, parse_json_field, read_upload

router = APIRouter(prefix="/interactive", tags=["interactive"])


def _manager(ctx: AppContext) -> SessionManager:
    for _, model in ctx.models.items():
        if isinstance(model, InteractiveModel):
            return model.sessions
    raise HTTPException(404, "no interactive model is registered on this server")


@router.post("/sessions", summary="Open an interactive session on a datastore image, an upload session or a file")
async def open_session(
    image: str = Query(""),
    session_id: str = Query("", description="a MONAI Label upload session (PUT /session/)"),
    ttl: float = Query(0, ge=0, le=24 * 3600, description="lease in seconds (0: server default)"),
    file: UploadFile | None = File(None),
    ctx: AppContext = Depends(get_ctx),
) -> dict[str, Any]:
    manager = _manager(ctx)
    data = await read_upload(file, ctx.settings.max_upload_bytes, "file") if file is not None else None
    name = client_filename(file.filename if file else "")

    def load() -> sitk.Image:
        if data is not None:
            return imageio.read_image_bytes(data, name)
        if session_id:
            return imageio.read_image(ctx.sessions.get(session_id).image_path)
        if image:
            return ctx.datastore.read_image(validate_id(image))
        raise HTTPException(422, "give an image ID (?image=), an upload session (?session_id=) or a 'file'")

    def work() -> Lease:
        volume = load()
        imageio.check_finite(volume)
        return manager.open(volume, image or None, ttl or None)

    lease = await run_in_threadpool(work)
    return lease.as_json()


@router.get("/sessions/{sid}", summary="Session description (renews the lease)")
async def describe(sid: str, ctx: AppContext = Depends(get_ctx)) -> dict[str, Any]:
    return _manager(ctx).get(sid).as_json()


@router.delete("/sessions/{sid}", summary="Close a session")
async def close(sid: str, ctx: AppContext = Depends(get_ctx)) -> dict[str, Any]:
    lease = _manager(ctx).close(sid)
    return {"session_id": lease.id, "closed": True}


def _answer(lease: Lease, update, output: str) -> Response:
    """JSON of the update, or multipart (JSON + the label crop of the changed box as NIfTI)."""
    info = {"session_id": lease.id, "update": update.as_json() if update else None}
    if output == "json" or update is None or update.changed is None:
        return JSONResponse(info)
    with lease.lock:
        crop = lease.session.label_image(update.changed)
    data = imageio.image_to_bytes(crop, ".nii.gz")
    return multipart_response(info, f"changed-{uuid.uuid4().hex[:8]}.nii.gz", data, boundary=uuid.uuid4().hex)


@router.post("/sessions/{sid}/interact", summary="Add an interaction to one target; answers the changed box")
async def interact(
    sid: str,
    params: str = Form("{}"),
    label: UploadFile | None = File(None),
    output: str = Query("all", pattern="^(json|all)$"),
    ctx: AppContext = Depends(get_ctx),
) -> Response:
    lease = _manager(ctx).get(sid)
    body = parse_json_field(params)
    target = str(body.get("label") or body.get("target") or "")
    if not target:
        raise HTTPException(422, "name the target in 'label' (e.g. \"liver\")")
    upload = await read_upload(label, ctx.settings.max_upload_bytes, "label") if label is not None else None
    label_name = client_filename(label.filename if label else "") or "label.nii.gz"

    def work():
        mask = None
        if upload is not None:
            img = imageio.read_image_bytes(upload, label_name)
            if tuple(img.GetSize()) != tuple(lease.session.size):
                raise InteractionError("the uploaded label does not have the size of the session image")
            mask = sitk.GetArrayFromImage(img)
        with lease.lock:
            inter = parse(body, lease.session.shape, mask)
            update = lease.session.interact(target, inter)
        return _answer(lease, update, output)

    return await run_in_threadpool(work)


@router.post("/sessions/{sid}/undo", summary="Undo the last interaction or reset")
async def undo(sid: str, output: str = Query("json", pattern="^(json|all)$"),
               ctx: AppContext = Depends(get_ctx)) -> Response:
    lease = _manager(ctx).get(sid)

    def work():
        with lease.lock:
            update = lease.session.undo()
        if update is None:
            raise HTTPException(409, "nothing to undo")
        return _answer(lease, update, output)

    return await run_in_threadpool(work)


@router.post("/sessions/{sid}/reset", summary="Clear one target (undoable)")
async def reset(sid: str, body: dict[str, Any] = Body(...), ctx: AppContext = Depends(get_ctx)) -> Response:
    lease = _manager(ctx).get(sid)
    target = str(body.get("label") or body.get("target") or "")

    def work():
        with lease.lock:
            update = lease.session.reset(target)
        return _answer(lease, update, "json")

    return await run_in_threadpool(work)


@router.get("/sessions/{sid}/label", summary="The session's label map (all targets)")
async def label_map(sid: str, ctx: AppContext = Depends(get_ctx)) -> Response:
    lease = _manager(ctx).get(sid)

    def work() -> bytes:
        with lease.lock:
            out = lease.session.label_image()
        return imageio.image_to_bytes(out, ".nii.gz")

    data = await run_in_threadpool(work)
    return file_response(data, f"{lease.image_id or 'interactive'}-{lease.id[:8]}.nii.gz")

"""``/datastore``: images and versioned labels (MONAI Label paths and parameter names)."""

from __future__ import annotations

import hashlib
from typing import Any, Literal

from fastapi import APIRouter, Depends, File, Form, HTTPException, Query, Request, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from .. import imageio
from ..context import AppContext
from ..datastore import validate_id
from .common import client_filename, file_response, get_ctx, parse_json_field, read_upload
from .leases import acting_user, guard_submission, keep_per_user_copy

router = APIRouter(prefix="/datastore", tags=["datastore"])


def _user(params: dict[str, Any]) -> str:
    user = params.get("user") or params.get("client_id") or "anonymous"
    return str(user)[:128]


@router.get("/", summary="Datastore summary (stats), everything (all) or training pairs (train)")
def datastore(
    output: Literal["stats", "all", "train"] = "stats", ctx: AppContext = Depends(get_ctx)
) -> Any:
    if output == "all":
        return ctx.datastore.as_json()
    if output == "train":
        return ctx.datastore.train_pairs()
    return ctx.datastore.stats()


async def _add_image(ctx: AppContext, image: str | None, params: str, file: UploadFile) -> dict[str, Any]:
    meta = parse_json_field(params)
    if image is not None:
        validate_id(image)
    data = await read_upload(file, ctx.settings.max_upload_bytes, "image")
    filename = client_filename(file.filename)
    meta.setdefault("user", _user(meta))
    image_id = await run_in_threadpool(ctx.datastore.add_image, image, data, filename, meta)
    return {"image": image_id}


@router.put("/image", summary="Upload a new image")
async def upload_image(
    image: str | None = Query(None, description="ID for the image (default: file name without suffix)"),
    params: str = Form("{}"),
    file: UploadFile = File(...),
    ctx: AppContext = Depends(get_ctx),
) -> dict[str, Any]:
    return await _add_image(ctx, image, params, file)


@router.put("/", summary="Upload a new image (old path, used by MONAI Label's Slicer plugin)")
async def upload_image_legacy(
    image: str | None = Query(None),
    params: str = Form("{}"),
    file: UploadFile = File(...),
    ctx: AppContext = Depends(get_ctx),
) -> dict[str, Any]:
    return await _add_image(ctx, image, params, file)


def _one_of(*values: str | None, what: str = "image") -> str:
    for value in values:
        if value:
            return validate_id(value, what)
    raise HTTPException(422, f"query parameter '{what}' is required")


@router.delete("/image", summary="Remove an image and its labels (moved to the trash, not erased)")
@router.delete("/", include_in_schema=False)
def remove_image(
    id: str | None = Query(None), image: str | None = Query(None), ctx: AppContext = Depends(get_ctx)
) -> dict[str, Any]:
    ctx.datastore.remove_image(_one_of(id, image))
    return {}


@router.head("/image", summary="Whether an image exists (optionally with this checksum)")
def head_image(
    image: str = Query(...), check_sum: str | None = Query(None), ctx: AppContext = Depends(get_ctx)
) -> Response:
    info = ctx.datastore.get_image_info(validate_id(image))
    if check_sum:
        want = check_sum.split(":", 1)[-1].lower()
        if _image_checksum(ctx, image, info) != want:
            return Response(status_code=404)
    return Response(status_code=200)


def _image_checksum(ctx: AppContext, image_id: str, info: dict[str, Any]) -> str:
    path = ctx.datastore.image_path(image_id)
    if path.is_dir():
        return ""
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    return digest


@router.get("/image", summary="Download an image (DICOM series are served as NIfTI)")
def download_image(image: str = Query(...), ctx: AppContext = Depends(get_ctx)) -> Response:
    path = ctx.datastore.image_path(validate_id(image))
    if path.is_dir():
        data = imageio.image_to_bytes(imageio.read_image(path), ".nii.gz")
        return file_response(data, f"{image}.nii.gz")
    return file_response(path.read_bytes(), path.name)


@router.get("/image/info", summary="Image info (name, checksum, user fields)")
def image_info(image: str = Query(...), ctx: AppContext = Depends(get_ctx)) -> dict[str, Any]:
    validate_id(image)
    info = ctx.datastore.get_image_info(image)
    path = ctx.datastore.image_path(image)
    if path.is_dir():
        info["name"] = f"{image}.nii.gz"
    else:
        info["checksum"] = "SHA256:" + _image_checksum(ctx, image, info)
    return info


@router.put("/image/info", summary="Merge fields into an image's info")
def update_image_info(
    image: str = Query(...), info: str = Form("{}"), ctx: AppContext = Depends(get_ctx)
) -> dict[str, Any]:
    return ctx.datastore.set_image_info(validate_id(image), parse_json_field(info, "info"))


@router.put("/label", summary="Submit a label; every version is kept")
async def save_label(
    request: Request,
    image: str = Query(...),
    tag: str = Query("final"),
    params: str = Form("{}"),
    label: UploadFile = File(...),
    ctx: AppContext = Depends(get_ctx),
) -> dict[str, Any]:
    tag = tag or "final"
    validate_id(image)
    validate_id(tag, "label tag")
    meta = parse_json_field(params)
    ctx.datastore.get_image_info(image)  # 404 before reading a large upload for nothing
    meta.update(guard_submission(ctx, request, image, meta))  # multi-user: needs the image's lease
    user = acting_user(request, meta) if ctx.settings.auth_enabled else _user(meta)
    data = await read_upload(label, ctx.settings.max_upload_bytes, "label")
    filename = client_filename(label.filename) or "label.nii.gz"
    version = await run_in_threadpool(ctx.datastore.save_label, image, tag, data, filename, user, meta)
    per_user = await run_in_threadpool(keep_per_user_copy, ctx, version, user, meta)
    if tag == "final":
        ctx.final_labels_since_train += 1
        hook = ctx.extras.get("on_final_label")
        if hook is not None:
            hook(ctx, image)
    return {"image": image, "label": image, **version.as_json(), **({"per_user": per_user} if per_user else {})}


def _label_query(label: str | None, image: str | None, id: str | None) -> str:
    return _one_of(label, image, id, what="label")


@router.get("/label", summary="Download the latest (or a given) version of a label")
def download_label(
    tag: str = Query("final"),
    label: str | None = Query(None),
    image: str | None = Query(None),
    version: int | None = Query(None, ge=1, le=2**62),
    ctx: AppContext = Depends(get_ctx),
) -> Response:
    found = ctx.datastore.get_label(_label_query(label, image, None), tag, version)
    return file_response(found.path.read_bytes(), f"{found.image_id}.nii.gz")


@router.head("/label", summary="Whether a label exists")
def head_label(
    tag: str = Query("final"),
    image: str | None = Query(None),
    label: str | None = Query(None),
    ctx: AppContext = Depends(get_ctx),
) -> Response:
    ctx.datastore.get_label(_label_query(label, image, None), tag)
    return Response(status_code=200)


@router.delete("/label", summary="Hide a label tag (its versions stay on disk)")
def remove_label(
    tag: str = Query(...),
    id: str | None = Query(None),
    image: str | None = Query(None),
    ctx: AppContext = Depends(get_ctx),
) -> dict[str, Any]:
    removed = ctx.datastore.remove_label(_label_query(None, image, id), tag)
    return {"removed_versions": removed}


@router.get("/label/info", summary="Info of the latest version of a label")
def label_info(
    tag: str = Query("final"),
    label: str | None = Query(None),
    image: str | None = Query(None),
    ctx: AppContext = Depends(get_ctx),
) -> dict[str, Any]:
    found = ctx.datastore.get_label(_label_query(label, image, None), tag)
    return {**found.info, **found.as_json(), "checksum": "SHA256:" + found.checksum}


@router.get("/label/versions", summary="Every kept version of an image's labels (who, when, checksum)")
def label_versions(
    image: str = Query(...), tag: str | None = Query(None), ctx: AppContext = Depends(get_ctx)
) -> list[dict[str, Any]]:
    ctx.datastore.get_image_info(validate_id(image))
    return [v.as_json() for v in ctx.datastore.label_versions(image, tag)]

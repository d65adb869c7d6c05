"""``POST /infer/{model}``: run a model on a datastore image, an upload or a session image."""

from __future__ import annotations

import time
import uuid
from typing import Any

import numpy as np
import SimpleITK as sitk
from fastapi import APIRouter, Depends, File, Form, HTTPException, Query, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response

from .. import imageio
from ..context import AppContext
from ..datastore import InvalidUpload, validate_id
from ..models import InferRequest
from .common import client_filename, file_response, get_ctx, multipart_response, parse_json_field, read_upload

router = APIRouter(tags=["infer"])

RESULT_EXTENSIONS = {".nrrd", ".nii.gz", ".nii", ".mha", ".seg.nrrd"}
RESULT_DTYPES = {"uint8": sitk.sitkUInt8, "uint16": sitk.sitkUInt16, "int16": sitk.sitkInt16, "int32": sitk.sitkInt32}


def _load_input(ctx: AppContext, image: str, session_id: str, upload: bytes | None, upload_name: str) -> sitk.Image:
    if session_id:
        return imageio.read_image(ctx.sessions.get(session_id).image_path)
    if upload is not None:
        return imageio.read_image_bytes(upload, upload_name)
    if image:
        return ctx.datastore.read_image(validate_id(image))
    raise HTTPException(422, "give an image ID (?image=), a session (?session_id=) or an uploaded 'file'")


def _run(ctx: AppContext, model_name: str, image: str, session_id: str, params: dict[str, Any],
         upload: bytes | None, upload_name: str, label: bytes | None, label_name: str) -> tuple[dict, sitk.Image]:
    model = ctx.models.get(model_name)
    if model is None:
        raise HTTPException(404, f"model {model_name!r} not found; available: {', '.join(ctx.models.names())}")
    t0 = time.perf_counter()
    volume = _load_input(ctx, image, session_id, upload, upload_name)
    imageio.check_finite(volume)
    prior = None
    if label is not None:
        prior = imageio.read_image_bytes(label, label_name)
        if not imageio.same_geometry(prior, volume):
            raise InvalidUpload("uploaded 'label' does not have the geometry of the image")
    t1 = time.perf_counter()
    result = model.infer(InferRequest(volume, image or None, params, prior, session_id or None))
    t2 = time.perf_counter()
    out = result.label
    if not imageio.same_geometry(out, volume):
        raise RuntimeError(f"model {model_name} returned a label with the wrong geometry")
    dtype = RESULT_DTYPES[params.get("result_dtype", "uint8")]
    out = sitk.Cast(out, dtype)
    out.CopyInformation(volume)
    info = dict(result.params)
    info.setdefault("label_names", dict(model.labels))
    info["latencies"] = {"pre": round(t1 - t0, 4), "infer": round(t2 - t1, 4), "total": round(t2 - t0, 4)}
    if params.get("save_label") and image and not session_id and upload is None:
        saved = ctx.datastore.save_label_image(
            image, str(params.get("label_tag", "original")), sitk.Cast(out, sitk.sitkUInt8),
            user=str(params.get("client_id", "model")), info={"model": model_name, "params": info},
        )
        info["saved_label"] = saved.as_json()
    return info, out


@router.post("/infer/{model}", summary="Run a model; answers the label (multipart, image or json)")
async def infer(
    model: str,
    image: str = Query(""),
    session_id: str = Query(""),
    output: str | None = Query(None, pattern="^(image|json|all)$"),
    params: str = Form("{}"),
    file: UploadFile | None = File(None),
    label: UploadFile | None = File(None),
    ctx: AppContext = Depends(get_ctx),
) -> Response:
    request_params = parse_json_field(params)
    ext = str(request_params.get("result_extension", ".nii.gz"))
    if ext not in RESULT_EXTENSIONS:
        raise HTTPException(422, f"result_extension must be one of {sorted(RESULT_EXTENSIONS)}")
    if str(request_params.get("result_dtype", "uint8")) not in RESULT_DTYPES:
        raise HTTPException(422, f"result_dtype must be one of {sorted(RESULT_DTYPES)}")
    limit = ctx.settings.max_upload_bytes
    upload = await read_upload(file, limit, "file") if file is not None else None
    label_bytes = await read_upload(label, limit, "label") if label is not None else None
    info, out = await run_in_threadpool(
        _run, ctx, model, image, session_id, request_params,
        upload, client_filename(file.filename if file else ""),
        label_bytes, client_filename(label.filename if label else "") or "label.nii.gz",
    )
    if output == "json":
        return JSONResponse(info)
    suffix = ".nrrd" if ext == ".seg.nrrd" else ext
    data = await run_in_threadpool(imageio.image_to_bytes, out, suffix)
    name = f"{(image or 'result')}-{uuid.uuid4().hex[:8]}{suffix}"
    if output == "image":
        return file_response(data, name)
    return multipart_response(info, name, data, boundary=uuid.uuid4().hex)


def label_counts(label: sitk.Image) -> dict[int, int]:
    """Voxel count per label value (used in tests and logs)."""
    values, counts = np.unique(sitk.GetArrayViewFromImage(label), return_counts=True)
    return {int(v): int(c) for v, c in zip(values, counts, strict=True)}

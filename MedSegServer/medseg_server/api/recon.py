"""``POST /recon/{image}``: 3D models, centrelines and planning report of an image's label, as a zip."""

from __future__ import annotations

import tempfile
from pathlib import Path

from fastapi import APIRouter, Depends, File, Form, HTTPException, Query, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from .. import imageio
from ..context import AppContext
from ..datastore import validate_id
from ..labels import parse_classes
from ..vessels.grid import VesselError
from .common import client_filename, file_response, get_ctx, parse_json_field, read_upload

router = APIRouter(tags=["recon"])


def _run(ctx: AppContext, image: str, tag: str, label_bytes: bytes | None, label_name: str,
         classes: dict | None, options: dict) -> bytes:
    from ..recon import reconstruct, write_outputs, zip_outputs

    volume = ctx.datastore.read_image(image)
    if label_bytes is not None:
        label = imageio.read_image_bytes(label_bytes, label_name)
    else:
        label = imageio.read_image(ctx.datastore.get_label(image, tag).path)
    try:
        rec = reconstruct(label, volume, classes, options)
        with tempfile.TemporaryDirectory(prefix="medseg-recon-") as tmp:
            write_outputs(rec, Path(tmp), formats=("vtp",))
            return zip_outputs(Path(tmp))
    except VesselError as exc:
        raise HTTPException(422, str(exc)) from None


@router.post("/recon/{image}", summary="Surfaces (glTF + VTP), centrelines and planning report, zipped")
async def recon(
    image: str,
    tag: str = Query("final", description="label tag in the datastore (when no label is uploaded)"),
    classes: str = Query("", description="label values, e.g. liver=5,portal_vein=64 (default: MedSeg's table)"),
    params: str = Form("{}"),
    label: UploadFile | None = File(None),
    ctx: AppContext = Depends(get_ctx),
) -> Response:
    image = validate_id(image)
    options = parse_json_field(params)
    try:
        class_map = parse_classes(classes) if classes else None
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from None
    data = await read_upload(label, ctx.settings.max_upload_bytes, "label") if label is not None else None
    body = await run_in_threadpool(_run, ctx, image, validate_id(tag), data,
                                   client_filename(label.filename if label else "") or "label.nii.gz",
                                   class_map, options)
    return file_response(body, f"{image}-recon.zip", "application/zip")

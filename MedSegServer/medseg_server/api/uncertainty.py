"""``/uncertainty``: compute, list and download the per-image uncertainty of the published model."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Depends, HTTPException, Query
from fastapi.responses import Response

from ..activelearning.uncertainty import METHODS, UncertaintyStore
from ..context import AppContext
from ..datastore import validate_id
from ..training import AlreadyRunning
from ..training.learning_setup import start_uncertainty
from .common import file_response, get_ctx

router = APIRouter(prefix="/uncertainty", tags=["activelearning"])


def _store(ctx: AppContext) -> UncertaintyStore:
    store = ctx.extras.get("uncertainty_store")
    if store is None:
        raise HTTPException(404, "no uncertainty-capable model on this server")
    return store


@router.post("/", summary="Score the unlabelled images with the published model (background)")
def compute(params: dict[str, Any] | None = Body(None), ctx: AppContext = Depends(get_ctx)) -> dict[str, Any]:
    _store(ctx)
    try:
        return start_uncertainty(ctx, params)
    except AlreadyRunning as exc:
        raise HTTPException(429, str(exc)) from None
    except ValueError as exc:
        raise HTTPException(409, str(exc)) from None


@router.get("/", summary="Uncertainty scores per image")
def scores(ctx: AppContext = Depends(get_ctx)) -> dict[str, Any]:
    store = _store(ctx)
    out: dict[str, Any] = {}
    for method in METHODS:
        for image_id, (_, record) in store.scores(method).items():
            out[image_id] = record
    return out


@router.get("/{image}", summary="Voxel-wise entropy volume of an image (NIfTI, for display)")
def volume(image: str, method: str = Query("mc_dropout"), ctx: AppContext = Depends(get_ctx)) -> Response:
    store = _store(ctx)
    validate_id(image)
    if method not in METHODS:
        raise HTTPException(422, f"method must be one of {', '.join(METHODS)}")
    path = store.volume_path(image, method)
    if not path.exists():
        raise HTTPException(404, f"no {method} uncertainty for image {image!r} yet")
    return file_response(path.read_bytes(), f"{image}.{method}.nii.gz")

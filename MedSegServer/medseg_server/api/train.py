"""``/train`` and ``/scoring``: background jobs with MONAI Label's task records."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Depends, HTTPException, Query

from ..context import AppContext
from ..training import AlreadyRunning
from .common import get_ctx

router = APIRouter(tags=["train"])


def start_training(ctx: AppContext, model: str, params: dict[str, Any]) -> dict[str, Any]:
    """Start the trainer of ``model`` with the current final labels (429 when one runs)."""
    trainer = ctx.trainers.get(model)
    if trainer is None:
        raise HTTPException(404, f"no trainer for model {model!r}; available: {', '.join(ctx.trainers)}")
    request = {**trainer.config(), **params, "model": model, "pairs": ctx.datastore.train_pairs()}
    try:
        record = ctx.train_runner.start(trainer, request)
    except AlreadyRunning as exc:
        raise HTTPException(429, str(exc)) from None
    ctx.final_labels_since_train = 0
    return record


@router.get("/train/", summary="Latest training task (all=true: history)")
def train_status(
    all: bool = Query(False), check_if_running: bool = Query(False), ctx: AppContext = Depends(get_ctx)
) -> Any:
    if check_if_running:
        current = ctx.train_runner.current()
        if current is None:
            raise HTTPException(404, "No Train Tasks are currently Running")
        return current
    status = ctx.train_runner.status(all_tasks=all)
    if status is None or status == []:
        raise HTTPException(404, "No Train Tasks Found")
    return status


@router.post("/train/{model}", summary="Start training a model in the background")
def train(
    model: str, params: dict[str, Any] | None = Body(None), ctx: AppContext = Depends(get_ctx)
) -> dict[str, Any]:
    return start_training(ctx, model, params or {})


@router.post("/train/", summary="Start training every model (MONAI Label's 'ALL')")
def train_all(params: dict[str, Any] | None = Body(None), ctx: AppContext = Depends(get_ctx)) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in ctx.trainers:
        try:
            out[name] = {"result": start_training(ctx, name, (params or {}).get(name, {})), "detail": None}
        except HTTPException as exc:
            out[name] = {"result": None, "detail": exc.detail}
    return out


@router.delete("/train/", summary="Stop the running training task")
def stop_training(ctx: AppContext = Depends(get_ctx)) -> Any:
    return ctx.train_runner.stop()


@router.get("/scoring/", summary="Latest scoring task (all=true: history)")
def scoring_status(all: bool = Query(False), ctx: AppContext = Depends(get_ctx)) -> Any:
    status = ctx.scoring_runner.status(all_tasks=all)
    if status is None or status == []:
        raise HTTPException(404, "No Scoring Tasks Found")
    return status


@router.post("/scoring/{method}", summary="Run a scoring method in the background")
def scoring(
    method: str, params: dict[str, Any] | None = Body(None), ctx: AppContext = Depends(get_ctx)
) -> dict[str, Any]:
    job = ctx.scoring.get(method)
    if job is None:
        raise HTTPException(404, f"scoring method {method!r} not found; available: {', '.join(ctx.scoring)}")
    try:
        return ctx.scoring_runner.start(job, {**(params or {}), "method": method})
    except AlreadyRunning as exc:
        raise HTTPException(429, str(exc)) from None


@router.delete("/scoring/", summary="Stop the running scoring task")
def stop_scoring(ctx: AppContext = Depends(get_ctx)) -> Any:
    return ctx.scoring_runner.stop()

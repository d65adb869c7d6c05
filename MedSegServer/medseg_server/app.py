"""The FastAPI application factory."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
from collections.abc import AsyncIterator

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from . import __version__
from .api import api_routers, train
from .auth import authorize, install_security
from .context import AppContext, build_context
from .datastore import DatastoreError
from .imageio import ImageError
from .models import ModelError
from .sessions import SessionGone
from .settings import Settings

log = logging.getLogger("medseg")


def _auto_train(ctx: AppContext, image_id: str) -> None:
    """After every ``auto_train_every`` new final labels, retrain (skipped while one runs)."""
    every = ctx.settings.auto_train_every
    if every and ctx.final_labels_since_train >= every and not ctx.train_runner.running():
        preferred = ctx.extras.get("auto_train_model")
        for name in [preferred] if preferred in ctx.trainers else ctx.trainers:
            try:
                train.start_training(ctx, name, {"trigger": f"auto after {image_id}"})
            except Exception as exc:  # never fail the label submission because of training
                log.warning("automatic training of %s not started: %s", name, exc)
            break


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def _invalid_request(_: Request, exc: RequestValidationError) -> JSONResponse:
        # FastAPI's default echoes the input, which fails to render for NaN / Infinity (a 500)
        detail = [{"loc": list(e.get("loc", ())), "msg": str(e.get("msg", "")), "type": e.get("type")}
                  for e in exc.errors()]
        return JSONResponse({"detail": detail}, status_code=422)

    @app.exception_handler(DatastoreError)
    async def _datastore_error(_: Request, exc: DatastoreError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=exc.status)

    @app.exception_handler(ImageError)
    async def _image_error(_: Request, exc: ImageError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=422)

    @app.exception_handler(ModelError)
    async def _model_error(_: Request, exc: ModelError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=exc.status)

    @app.exception_handler(SessionGone)
    async def _session_gone(_: Request, exc: SessionGone) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=404)

    @app.exception_handler(OSError)
    async def _os_error(_: Request, exc: OSError) -> JSONResponse:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):  # nothing was replaced: writes are atomic
            return JSONResponse({"detail": f"insufficient storage on the server: {exc.strerror}"}, status_code=507)
        log.exception("I/O error")
        return JSONResponse({"detail": f"server I/O error: {exc.strerror or exc}"}, status_code=500)


def create_app(settings: Settings) -> FastAPI:
    """Build the server for ``settings``: datastore opened, models registered, routes mounted."""
    ctx = build_context(settings)
    if settings.auto_train_every:
        ctx.extras["on_final_label"] = _auto_train

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        async def purge() -> None:
            while True:
                await asyncio.sleep(60)
                ctx.sessions.purge_expired()

        task = asyncio.create_task(purge())
        try:
            yield
        finally:
            task.cancel()
            ctx.close()

    app = FastAPI(title=settings.name, description=settings.description, version=__version__, lifespan=lifespan,
                  dependencies=[Depends(authorize)])  # every route checked against auth.policy
    install_security(app, settings)
    app.state.ctx = ctx

    @app.middleware("http")
    async def limit_body(request: Request, call_next):
        declared = request.headers.get("content-length")
        if declared is not None:
            try:
                size = int(declared)
            except ValueError:
                return JSONResponse({"detail": "invalid Content-Length"}, status_code=400)
            # multipart framing adds a little; the exact limit is enforced while reading each part
            if size > settings.max_upload_bytes + 1024 * 1024:
                return JSONResponse(
                    {"detail": f"request body larger than the {settings.max_upload_mb:g} MiB upload limit"},
                    status_code=413,
                )
        return await call_next(request)

    _install_error_handlers(app)
    for router in api_routers():
        app.include_router(router)

    @app.get("/", include_in_schema=False)
    def root() -> dict[str, str]:
        return {"name": settings.name, "version": __version__, "docs": "/docs", "info": "/info/"}

    return app

"""``/lease``: who is working on which image (acquire, renew, release, reviewer override).

Also the helpers the other routers use: :func:`acting_user` (the authenticated user, else the
client's ``client_id``), :func:`guard_submission` (a label submission needs the lease when the
server is multi-user) and :func:`lease_store`.
"""

from __future__ import annotations

import threading
from typing import Any

from fastapi import APIRouter, Body, Depends, HTTPException, Request

from ..auth import Role, current_user
from ..context import AppContext
from ..datastore import validate_id
from ..datastore.leases import LeaseHeld, LeaseStore, per_user_tag, safe_user
from .common import get_ctx

router = APIRouter(prefix="/lease", tags=["lease"])
_CREATE = threading.Lock()


def lease_store(ctx: AppContext) -> LeaseStore:
    """The server's lease store (``<state>/leases.sqlite``), opened on first use."""
    store = ctx.extras.get("leases")
    if store is None:
        with _CREATE:
            store = ctx.extras.get("leases")
            if store is None:
                store = LeaseStore(ctx.settings.state_dir / "leases.sqlite", ctx.settings.lease_ttl_s)
                ctx.extras["leases"] = store
    return store


def acting_user(request: Request, params: dict[str, Any] | None = None) -> str:
    """The authenticated user's name; with auth off, the client's ``user``/``client_id`` (or anonymous)."""
    principal = current_user(request)
    users = getattr(request.app.state, "users", None)
    if users is not None and principal is not None:
        return principal.name
    params = params or {}
    return safe_user(params.get("user") or params.get("client_id"))


def is_reviewer(request: Request) -> bool:
    """Whether the caller may override leases."""
    principal = current_user(request)
    return principal is not None and principal.role >= Role.reviewer


def guard_submission(ctx: AppContext, request: Request, image_id: str, params: dict[str, Any]) -> dict[str, Any]:
    """Check (and renew) the submitter's lease when leases are required; returns what to record.

    A reviewer may submit without the lease with ``override: true`` in the params.
    """
    if not ctx.settings.leases_required:
        return {}
    user = acting_user(request, params)
    store = lease_store(ctx)
    if params.get("override") in (True, "true", 1, "1"):
        if not is_reviewer(request):
            raise HTTPException(403, "only a reviewer may submit with override=true")
        holder = store.holder(image_id)
        if holder is None or holder.user != user:
            store.override(image_id, user)
        return {"lease_override": {"by": user, "from": holder.user if holder else None}}
    store.check_submission(image_id, user)
    return {}


@router.get("/", summary="Live leases (who works on which image, until when)")
def list_leases(ctx: AppContext = Depends(get_ctx)) -> list[dict[str, Any]]:
    return [lease.as_json() for lease in lease_store(ctx).active()]


@router.get("/{image}", summary="The live lease of an image and its history")
def get_lease(image: str, ctx: AppContext = Depends(get_ctx)) -> dict[str, Any]:
    validate_id(image)
    store = lease_store(ctx)
    lease = store.holder(image)
    return {"lease": lease.as_json() if lease else None, "events": store.events(image)}


@router.post("/{image}", summary="Acquire or renew the lease of an image")
def acquire_lease(
    image: str,
    request: Request,
    params: dict[str, Any] | None = Body(None),
    ctx: AppContext = Depends(get_ctx),
) -> dict[str, Any]:
    params = params or {}
    ctx.datastore.get_image_info(validate_id(image))  # 404 for an unknown image
    ttl = params.get("ttl_s")
    if ttl is not None and (not isinstance(ttl, (int, float)) or not 1 <= ttl <= 24 * 3600):
        raise HTTPException(422, "ttl_s must be a number of seconds between 1 and 86400")
    return lease_store(ctx).acquire(image, acting_user(request, params), ttl).as_json()


@router.delete("/{image}", summary="Release a lease (a reviewer may release anyone's)")
def release_lease(image: str, request: Request, ctx: AppContext = Depends(get_ctx)) -> dict[str, Any]:
    released = lease_store(ctx).release(validate_id(image), acting_user(request), force=is_reviewer(request))
    return {"released": released}


@router.post("/{image}/override", summary="Reviewer: take the lease, or hand it to another user")
def override_lease(
    image: str,
    request: Request,
    params: dict[str, Any] | None = Body(None),
    ctx: AppContext = Depends(get_ctx),
) -> dict[str, Any]:
    params = params or {}
    ctx.datastore.get_image_info(validate_id(image))
    to_user = params.get("user")
    if to_user is not None:
        to_user = validate_id(str(to_user), "user name")
    return lease_store(ctx).override(image, acting_user(request), to_user).as_json()


def pick_and_lease(ctx: AppContext, request: Request, chooser: Any, params: dict[str, Any]) -> Any:
    """Run an active-learning strategy; on a multi-user server, skip images leased to others and
    lease the pick to the caller (retrying when another annotator leased it in between)."""
    if not ctx.settings.leases_required:
        return chooser.select(ctx.datastore, params)
    store, user = lease_store(ctx), acting_user(request, params)
    exclude = set(params.get("exclude") or []) | store.leased_by_others(user)
    for _ in range(8):
        picked = chooser.select(ctx.datastore, {**params, "exclude": sorted(exclude)})
        if picked is None:
            return None
        try:
            lease = store.acquire(picked[0], user)
        except LeaseHeld:
            exclude.add(picked[0])
            continue
        return picked[0], {**picked[1], "lease": lease.as_json()}
    return None


def keep_per_user_copy(ctx: AppContext, version: Any, user: str, params: dict[str, Any]) -> dict[str, Any] | None:
    """On a multi-user server, also keep the submission under ``<tag>.<user>`` so that every
    annotator's work on an image stays side by side (with who and when), whoever submits last."""
    if not ctx.settings.leases_required or "." in version.tag:
        return None
    from .. import imageio

    tag = per_user_tag(version.tag, user)
    copy = ctx.datastore.save_label_image(
        version.image_id, tag, imageio.read_image(version.path), user=user,
        info={**params, "copy_of": {"tag": version.tag, "version": version.version}},
    )
    return {"tag": copy.tag, "version": copy.version, "checksum": copy.checksum}

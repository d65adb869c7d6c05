"""The FastAPI side: an app-wide dependency that checks the token against the route's role.

``authorize`` is installed on the app (``FastAPI(dependencies=[Depends(authorize)])``) so every
route, including those of routers added later, is checked against :func:`policy.required_role`.
``require(role)`` raises the bar for a single route or router.
"""

from __future__ import annotations

from fastapi import FastAPI, HTTPException, Request
from starlette.middleware.cors import CORSMiddleware

from ..settings import Settings
from .policy import required_role
from .roles import Role
from .tokens import Principal, UserStore

LOOPBACK = ("127.0.0.1", "localhost", "::1")
LOCAL_USER = Principal("local", Role.admin)  # the single user of the embedded default (auth off)


def _route_path(request: Request) -> str:
    # the concrete path: FastAPI's scope["route"] of an included router lacks the router's prefix
    return request.url.path


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return None


def _principal(request: Request) -> Principal | None:
    users: UserStore | None = getattr(request.app.state, "users", None)
    if users is None:
        return LOCAL_USER
    token = _bearer(request)
    return users.authenticate(token) if token else None


def _check(request: Request, need: Role | None) -> Principal | None:
    principal = _principal(request)
    request.state.principal = principal
    if need is None or principal is LOCAL_USER:
        return principal
    if principal is None:
        raise HTTPException(
            401, "authentication required: send 'Authorization: Bearer <token>' (tokens: `medseg users add`)",
            headers={"WWW-Authenticate": "Bearer"},
        )
    if principal.role < need:
        raise HTTPException(
            403, f"{request.method} {_route_path(request)} needs the {need.name} role; "
            f"user {principal.name!r} is {principal.role.name}",
        )
    return principal


async def authorize(request: Request) -> None:
    """App-wide dependency: the role the policy table gives this route."""
    _check(request, required_role(request.method, _route_path(request)))


def require(role: Role | str):
    """A dependency demanding at least ``role`` (on top of the app-wide policy)."""
    need = role if isinstance(role, Role) else Role.parse(role)

    async def dependency(request: Request) -> None:
        _check(request, need)

    return dependency


def current_user(request: Request) -> Principal | None:
    """Who made this request (``None`` when auth is on and no valid token came; the local user when off)."""
    principal = getattr(request.state, "principal", None)
    return principal if principal is not None else _principal(request)


def install_security(app: FastAPI, settings: Settings) -> None:
    """Open the user store when auth is on, and allow the configured browser origins (none by default)."""
    if not settings.auth_enabled and settings.host not in LOOPBACK:
        raise ValueError(f"refusing to serve {settings.host} without authentication: auth is off only on loopback")
    app.state.users = UserStore(settings.state_dir / "auth.sqlite") if settings.auth_enabled else None
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(settings.cors_origins),
            allow_methods=["GET", "HEAD", "PUT", "POST", "DELETE"],
            allow_headers=["Authorization", "Content-Type"],
        )

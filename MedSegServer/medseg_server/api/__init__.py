"""HTTP routers, one module per resource of the MONAI Label REST API (plus MedSeg's own).

Every module here that defines a module-level ``router`` is mounted by the app factory, so a new
resource is one new file.
"""

from __future__ import annotations

import importlib
import pkgutil

from fastapi import APIRouter


def api_routers() -> list[APIRouter]:
    """The ``router`` of every module of this package, in module-name order."""
    routers = []
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{__name__}.{info.name}")
        router = getattr(module, "router", None)
        if isinstance(router, APIRouter):
            routers.append(router)
    return routers

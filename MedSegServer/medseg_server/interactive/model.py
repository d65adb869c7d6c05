"""The MONAI Label ``InferTask`` adapter: ``POST /infer/interactive`` drives the session engine.

Two ways to call it:

* stateless, as MONAI Label's Slicer plugin does (type ``deepedit``): every call carries all the
  clicks of the current segment (``foreground``/``background``, or one key per label name) and
  ``label`` names the segment. The engine keeps a session per image between calls, resets the
  segment and applies the clicks, so the other segments stay and stay untouched.
* with ``params.session_id`` of an interactive session (``POST /interactive/sessions``): each call
  adds an interaction (new clicks, ``scribbles``, ``roi``, a ``mask`` or sparse ``slices`` in the
  uploaded label) to the session.

The answer is the session's whole label map plus, in the JSON, the changed bounding box.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import SimpleITK as sitk

from ..labels import LABELS
from ..models.base import InferRequest, InferResult, InferTask, ModelError
from .interactions import parse
from .manager import Lease, SessionManager
from .session import PriorProvider


class InteractiveModel(InferTask):
    """Clicks, scribbles, boxes and sparse slices on liver, vessels and tumours; no training needed."""

    name = "interactive"
    type = "deepedit"
    labels = dict(LABELS)
    dimension = 3
    description = ("Interactive engine: positive/negative clicks, scribbles, box, mask refinement and sparse-slice "
                   "fill; image-driven (intensity model, watershed competition, Hessian vesselness), no weights")

    def __init__(self, ttl: float = 900.0, max_sessions: int = 4, prior_provider: PriorProvider | None = None) -> None:
        self.sessions = SessionManager(ttl, max_sessions, prior_provider)

    def config(self) -> dict[str, Any]:
        return {"session_ttl_s": self.sessions.ttl, "targets": list(LABELS)}

    def infer(self, request: InferRequest) -> InferResult:
        params = request.params
        target = str(params.get("label") or "liver")
        if target not in LABELS:
            raise ModelError(f"unknown label {target!r}; known: {', '.join(LABELS)}")
        label_arr = None
        if request.label is not None:
            label_arr = sitk.GetArrayFromImage(request.label)
        sid = params.get("session_id")
        if sid:
            lease = self.sessions.get(str(sid))
            if tuple(lease.session.size) != tuple(request.image.GetSize()):
                raise ModelError("the image of this request is not the image of the interactive session")
            return self._apply(lease, target, _with_label_clicks(params, target), label_arr, stateless=False)
        key = f"{request.image_id or request.session_id or 'upload'}:{request.image.GetSize()}:{request.image.GetOrigin()}"
        lease = self.sessions.cached(key, lambda: request.image, request.image_id)
        return self._apply(lease, target, _with_label_clicks(params, target), label_arr, stateless=True)

    def _apply(self, lease: Lease, target: str, params: dict[str, Any], label: np.ndarray | None,
               stateless: bool) -> InferResult:
        with lease.lock:
            session = lease.session
            inter = parse(params, session.shape, label)
            if stateless and target in session.targets:
                session.reset(target)
            update = session.interact(target, inter) if not inter.is_empty() else None
            out = session.label_image()
        info = {"label_names": dict(LABELS), "target": target, "session_id": lease.id if not stateless else None,
                "update": update.as_json() if update else None}
        return InferResult(out, info)


def _with_label_clicks(params: dict[str, Any], target: str) -> dict[str, Any]:
    """Multi-label deepedit sends one click list per label name instead of foreground/background."""
    if "foreground" in params or not isinstance(params.get(target), list):
        return params
    out = dict(params)
    out["foreground"] = params[target]
    others = [p for name in LABELS if name != target and isinstance(params.get(name), list) for p in params[name]]
    out["background"] = list(params.get("background") or []) + others
    return out

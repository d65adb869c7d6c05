"""What a user can do to a target, validated: points, scribbles, a box, a mask, sparse slices."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..models.base import ModelError
from .boxes import Box

AXES = {"z": 0, "y": 1, "x": 2, "axial": 0, "coronal": 1, "sagittal": 2}
MAX_VOXELS = 2_000_000


class InteractionError(ModelError):
    """An interaction that cannot be applied (bad coordinates, empty scribble...): HTTP 422."""


def _empty() -> np.ndarray:
    return np.zeros((0, 3), dtype=int)


@dataclass
class Interaction:
    """One user action on one target. Coordinates are native (z, y, x) voxel indices."""

    positive: np.ndarray = field(default_factory=_empty)  # clicks
    negative: np.ndarray = field(default_factory=_empty)
    scribble_fg: np.ndarray = field(default_factory=_empty)  # painted voxels
    scribble_bg: np.ndarray = field(default_factory=_empty)
    box: Box | None = None
    mask: np.ndarray | None = None  # whole-image bool mask to refine (initial mask)
    slices: list[tuple[int, int]] = field(default_factory=list)  # (axis, index) annotated in ``mask``
    overwrite: bool = False  # may take voxels from other targets

    def is_empty(self) -> bool:
        """True when the interaction carries nothing."""
        return not (len(self.positive) or len(self.negative) or len(self.scribble_fg) or len(self.scribble_bg)
                    or self.box is not None or self.mask is not None)

    def kind(self) -> str:
        """Short name for logs and history."""
        if self.slices:
            return "slices"
        if self.mask is not None:
            return "mask"
        if len(self.scribble_fg) or len(self.scribble_bg):
            return "scribble"
        if self.box is not None and not (len(self.positive) or len(self.negative)):
            return "box"
        return "point"


def voxels_xyz(raw: Any, shape_zyx: tuple[int, int, int], what: str, limit: int = MAX_VOXELS) -> np.ndarray:
    """Validate a JSON list of [x, y, z] voxel indices; return (N, 3) int zyx."""
    if raw is None:
        return _empty()
    if not isinstance(raw, list | tuple):
        raise InteractionError(f"'{what}' must be a list of [x, y, z] voxel coordinates")
    if len(raw) > limit:
        raise InteractionError(f"too many voxels in '{what}' ({len(raw)} > {limit})")
    if not raw:
        return _empty()
    try:
        pts = np.asarray(raw, dtype=float)
    except (TypeError, ValueError):
        raise InteractionError(f"'{what}' must be a list of [x, y, z] voxel coordinates") from None
    if pts.ndim != 2 or pts.shape[1] != 3:
        raise InteractionError(f"'{what}' must be a list of [x, y, z] voxel coordinates")
    if not np.isfinite(pts).all():
        raise InteractionError(f"'{what}' holds NaN or infinite coordinates")
    ijk = np.round(pts).astype(int)
    size = np.array(shape_zyx[::-1])
    outside = ((ijk < 0) | (ijk >= size)).any(axis=1)
    if outside.any():
        raise InteractionError(f"point {pts[outside][0].tolist()} in '{what}' is outside the image of size {size.tolist()}")
    return ijk[:, ::-1].copy()


def box_xyz(raw: Any, shape_zyx: tuple[int, int, int]) -> Box:
    """A box as MONAI Label's ``roi`` ``[xmin, xmax, ymin, ymax, zmin, zmax]`` (inclusive) -> native Box."""
    if not isinstance(raw, list | tuple) or len(raw) != 6:
        raise InteractionError("'roi' must be [xmin, xmax, ymin, ymax, zmin, zmax] voxel indices")
    try:
        vals = np.asarray(raw, dtype=float)
    except (TypeError, ValueError):
        raise InteractionError("'roi' must hold 6 numbers") from None
    if not np.isfinite(vals).all():
        raise InteractionError("'roi' holds NaN or infinite values")
    lo = np.round(vals[0::2]).astype(int)[::-1]
    hi = np.round(vals[1::2]).astype(int)[::-1] + 1
    if (hi <= lo).any():
        raise InteractionError("'roi' minimum must not exceed its maximum")
    box = Box(tuple(int(v) for v in lo), tuple(int(v) for v in hi))
    clipped = box.clip(shape_zyx)
    if clipped.empty():
        raise InteractionError("'roi' lies outside the image")
    return clipped


def parse(params: dict[str, Any], shape_zyx: tuple[int, int, int], label: np.ndarray | None = None) -> Interaction:
    """Build an interaction from infer/interact parameters (MONAI Label names plus ours).

    ``foreground`` / ``background``: clicks [[x, y, z], ...]. ``scribbles``: {"foreground": voxels,
    "background": voxels}, or the string "label" to read them from the uploaded label (1 = fg,
    2 = bg). ``roi`` (or ``box``): [xmin, xmax, ymin, ymax, zmin, zmax]. ``mask``: "label" to use the
    uploaded label (non-zero) as a mask to refine. ``slices``: {"axis": "z", "indices": [...]} (or a
    list of those) naming the annotated slices of the uploaded label: the rest is filled in.
    """
    inter = Interaction(
        positive=voxels_xyz(params.get("foreground"), shape_zyx, "foreground", 10000),
        negative=voxels_xyz(params.get("background"), shape_zyx, "background", 10000),
        overwrite=bool(params.get("overwrite", False)),
    )
    scribbles = params.get("scribbles")
    if scribbles is not None:
        if scribbles == "label":
            if label is None:
                raise InteractionError("'scribbles' = 'label' needs an uploaded 'label' file")
            inter.scribble_fg = np.argwhere(label == 1)
            inter.scribble_bg = np.argwhere(label == 2)
        elif isinstance(scribbles, dict):
            inter.scribble_fg = voxels_xyz(scribbles.get("foreground"), shape_zyx, "scribbles.foreground")
            inter.scribble_bg = voxels_xyz(scribbles.get("background"), shape_zyx, "scribbles.background")
        else:
            raise InteractionError("'scribbles' must be {'foreground': [...], 'background': [...]} or 'label'")
        if not (len(inter.scribble_fg) or len(inter.scribble_bg)):
            raise InteractionError("the scribbles hold no voxel")
    roi = params.get("roi", params.get("box"))
    if roi not in (None, []):
        inter.box = box_xyz(roi, shape_zyx)
    if params.get("mask") == "label" or params.get("slices") is not None:
        if label is None:
            raise InteractionError("a mask or sparse slices need an uploaded 'label' file")
        inter.mask = label != 0
        inter.slices = _slices(params.get("slices"), shape_zyx) if params.get("slices") is not None else []
        if not inter.mask.any():
            raise InteractionError("the uploaded mask is empty")
    return inter


def _slices(raw: Any, shape_zyx: tuple[int, int, int]) -> list[tuple[int, int]]:
    groups = raw if isinstance(raw, list) else [raw]
    out = []
    for g in groups:
        if not isinstance(g, dict) or str(g.get("axis")) not in AXES or not isinstance(g.get("indices"), list):
            raise InteractionError("'slices' must be {'axis': 'z'|'y'|'x', 'indices': [...]} or a list of those")
        axis = AXES[str(g["axis"])]
        for i in g["indices"]:
            if not isinstance(i, int) or not 0 <= i < shape_zyx[axis]:
                raise InteractionError(f"slice index {i!r} is outside the image along {g['axis']}")
            out.append((axis, i))
    if not out:
        raise InteractionError("'slices' names no slice")
    return out

"""Interactions (clicks, boxes, scribbles, sparse slices) as ``/infer`` parameters, without Slicer.

Clicks arrive as RAS points (markups control points in world coordinates) and leave as voxel
indices ``[i, j, k]`` of the volume the server has, which is the IJK of the Slicer volume (see
:mod:`MedSegLib.geometry`).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .geometry import Grid, OutsideVolume

#: Model types that accept clicks (MONAI Label's and MedSeg's interactive engine).
INTERACTIVE_TYPES = ("deepedit", "deepgrow", "interactive", "scribbles")


@dataclass
class Interaction:
    """What the user did since the last answer: clicks (RAS), an optional box (RAS corners)."""

    segment: str
    positive_ras: np.ndarray = field(default_factory=lambda: np.zeros((0, 3)))
    negative_ras: np.ndarray = field(default_factory=lambda: np.zeros((0, 3)))
    box_corners_ras: np.ndarray | None = None

    @property
    def empty(self) -> bool:
        return not len(self.positive_ras) and not len(self.negative_ras) and self.box_corners_ras is None


def click_voxels(points_ras, grid: Grid) -> list[list[int]]:
    """RAS points -> ``[[i, j, k], ...]`` voxel indices; raises :class:`OutsideVolume` for a point off the image."""
    points = np.asarray(points_ras, float).reshape(-1, 3)
    if not len(points):
        return []
    return grid.voxels(points).tolist()


def interaction_params(
    interaction: Interaction, grid: Grid, session_id: str | None = None, extra: dict[str, Any] | None = None
) -> dict[str, Any]:
    """``/infer`` params of an interaction: ``foreground``, ``background``, ``label``, ``roi``, ``session_id``.

    Raises:
        OutsideVolume: a click outside the volume or a box that misses it.
        ValueError: nothing to send (no click and no box) or no segment selected.
    """
    if not interaction.segment:
        raise ValueError("select the segment to edit first")
    if interaction.empty:
        raise ValueError("place at least one include/exclude point or a box first")
    params: dict[str, Any] = dict(extra or {})
    params["label"] = interaction.segment
    params["foreground"] = click_voxels(interaction.positive_ras, grid)
    params["background"] = click_voxels(interaction.negative_ras, grid)
    if interaction.box_corners_ras is not None:
        params["roi"] = grid.box(interaction.box_corners_ras)
    if session_id:
        params["session_id"] = session_id
    return params


#: Most voxels one scribble or slice request may carry (the server's own limit is 2 million per list).
MAX_SCRIBBLE_VOXELS = 1_000_000

#: Names of the numpy axes of a ``[k, j, i]`` array, as the engine's ``slices`` parameter spells them.
AXIS_NAMES = ("z", "y", "x")


def voxel_list(mask_kji) -> list[list[int]]:
    """``[[i, j, k], ...]`` of the set voxels of a ``[k, j, i]`` mask (the server's voxel order)."""
    return np.argwhere(np.asarray(mask_kji, bool))[:, ::-1].tolist()


def scribble_payload(foreground_kji, background_kji, max_voxels: int = MAX_SCRIBBLE_VOXELS) -> dict[str, list]:
    """The engine's ``scribbles`` parameter from painted foreground/background masks (volume grid).

    Raises:
        ValueError: nothing painted, or more voxels than one request may carry.
    """
    fg = np.asarray(foreground_kji, bool)
    bg = np.asarray(background_kji, bool) & ~fg  # a voxel painted both ways counts as foreground
    total = int(fg.sum() + bg.sum())
    if total == 0:
        raise ValueError("paint foreground or background scribbles first")
    if total > max_voxels:
        raise ValueError(f"the scribbles cover {total} voxels; paint thinner strokes (at most {max_voxels})")
    return {"foreground": voxel_list(fg), "background": voxel_list(bg)}


def annotated_slices(mask_kji) -> dict[str, Any]:
    """The engine's ``slices`` parameter: the slices a segment was painted on, along the sparse axis.

    The sparse axis is the one where the painted planes leave gaps and cover the smallest share of
    their span (the axis the user scrolled through); ties go to ``z`` (axial for an axial scan).

    Raises:
        ValueError: fewer than two painted slices, or no axis with unpainted slices between painted ones.
    """
    mask = np.asarray(mask_kji, bool)
    if mask.ndim != 3:
        raise ValueError("a 3D mask is needed")
    best: tuple[float, int, list[int]] | None = None
    for axis in range(3):
        others = tuple(a for a in range(3) if a != axis)
        planes = np.flatnonzero(mask.any(axis=others)).tolist()
        if len(planes) < 2:
            continue
        span = planes[-1] - planes[0] + 1
        if span == len(planes):
            continue  # painted on every slice along this axis: not the annotation axis
        share = len(planes) / span
        if best is None or share < best[0]:
            best = (share, axis, planes)
    if best is None:
        raise ValueError("paint the segment on at least two slices, with unpainted slices between them")
    _, axis, planes = best
    return {"axis": AXIS_NAMES[axis], "indices": [int(i) for i in planes]}


def click_is_negative(point_list: str, shift: bool) -> bool:
    """Whether a placed point is an exclude click: placed in the exclude list, or with Shift held."""
    if point_list not in ("include", "exclude"):
        raise ValueError(f"unknown point list {point_list!r}")
    return point_list == "exclude" or bool(shift)


def mask_fingerprint(mask_kji) -> str:
    """A short digest of a boolean mask (shape and voxels), to tell whether a segment changed."""
    mask = np.ascontiguousarray(mask_kji, bool)
    digest = hashlib.sha1(str(mask.shape).encode())
    digest.update(np.packbits(mask).tobytes())
    return digest.hexdigest()[:16]


__all__ = [
    "INTERACTIVE_TYPES",
    "Interaction",
    "OutsideVolume",
    "click_is_negative",
    "click_voxels",
    "interaction_params",
    "annotated_slices",
    "mask_fingerprint",
    "scribble_payload",
    "voxel_list",
]

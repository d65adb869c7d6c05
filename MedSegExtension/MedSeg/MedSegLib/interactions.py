"""Interactions (clicks, boxes, scribbles) as MONAI Label ``/infer`` parameters, without Slicer.

Clicks arrive as RAS points (markups control points in world coordinates) and leave as voxel
indices ``[i, j, k]`` of the volume the server has, which is the IJK of the Slicer volume (see
:mod:`MedSegLib.geometry`).
"""

from __future__ import annotations

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


def scribble_params(segment: str, label_names: dict[str, int], roi: list[int] | None = None) -> dict[str, Any]:
    """Params of a scribbles request (the scribbles themselves travel as the ``label`` file).

    The label file holds the segments with their values plus ``foreground_scribbles`` and
    ``background_scribbles`` (values from :func:`scribble_label_names`).
    """
    names = scribble_label_names(label_names)
    return {
        "roi": list(roi or []),
        "label_info": [{"name": name, "id": value} for name, value in names.items()],
        "selected_label_name": segment,
    }


def scribble_label_names(label_names: dict[str, int]) -> dict[str, int]:
    """The structure labels plus two scribble labels above them."""
    top = max([0, *label_names.values()])
    return {**label_names, "foreground_scribbles": top + 1, "background_scribbles": top + 2}


__all__ = [
    "INTERACTIVE_TYPES",
    "Interaction",
    "OutsideVolume",
    "click_voxels",
    "interaction_params",
    "scribble_label_names",
    "scribble_params",
]

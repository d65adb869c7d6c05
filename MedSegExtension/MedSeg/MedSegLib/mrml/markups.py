"""Markups (point lists, ROI) -> RAS arrays in the volume's frame -> server clicks and boxes."""

from __future__ import annotations

import itertools

import numpy as np

from ..geometry import apply
from ..interactions import Interaction
from .volumes import matrix_to_numpy, world_to_volume


def control_points_ras(markups_node, volume_node=None) -> np.ndarray:
    """(N, 3) world RAS of the defined control points, in the volume's own RAS when a volume is given."""
    if markups_node is None:
        return np.zeros((0, 3))
    points = []
    for index in range(markups_node.GetNumberOfControlPoints()):
        if hasattr(markups_node, "GetNthControlPointPositionStatus") and (
            markups_node.GetNthControlPointPositionStatus(index) != markups_node.PositionDefined
        ):
            continue  # a point still being placed
        position = [0.0, 0.0, 0.0]
        markups_node.GetNthControlPointPositionWorld(index, position)
        points.append(position)
    array = np.asarray(points, float).reshape(-1, 3)
    if volume_node is not None and len(array):
        array = apply(world_to_volume(volume_node), array)
    return array


def roi_corners_ras(roi_node, volume_node=None) -> np.ndarray | None:
    """The 8 corners (world RAS, or the volume's RAS) of a markups ROI; ``None`` when it is not placed."""
    if roi_node is None or roi_node.GetNumberOfControlPoints() == 0:
        return None
    size = list(roi_node.GetSize())
    if min(size) <= 0:
        return None
    object_to_world = roi_node.GetObjectToWorldMatrix()
    half = np.asarray(size) / 2.0
    corners = np.array(list(itertools.product(*[(-h, h) for h in half])))
    # ROI "object" coordinates are centred on the ROI centre
    corners = apply(matrix_to_numpy(object_to_world), corners)
    if volume_node is not None:
        corners = apply(world_to_volume(volume_node), corners)
    return corners


def interaction_from_markups(segment: str, positive_node, negative_node, volume_node, roi_node=None) -> Interaction:
    """The user's include/exclude points (and box) as an :class:`Interaction` in the volume's RAS."""
    return Interaction(
        segment=segment,
        positive_ras=control_points_ras(positive_node, volume_node),
        negative_ras=control_points_ras(negative_node, volume_node),
        box_corners_ras=roi_corners_ras(roi_node, volume_node),
    )


def clear_points(*markups_nodes) -> None:
    """Remove every control point (after they were sent)."""
    for node in markups_nodes:
        if node is not None:
            node.RemoveAllControlPoints()


def move_last_point(source_node, target_node) -> bool:
    """Move the last placed control point of ``source_node`` to ``target_node`` (same world position).

    Used for Shift-click in the include list, which makes an exclude point. Returns False when the
    source has no placed point.
    """
    for index in range(source_node.GetNumberOfControlPoints() - 1, -1, -1):
        if hasattr(source_node, "GetNthControlPointPositionStatus") and (
            source_node.GetNthControlPointPositionStatus(index) != source_node.PositionDefined
        ):
            continue
        position = [0.0, 0.0, 0.0]
        source_node.GetNthControlPointPositionWorld(index, position)
        was = source_node.StartModify()
        source_node.RemoveNthControlPoint(index)
        source_node.EndModify(was)
        target_node.AddControlPointWorld(position)
        return True
    return False

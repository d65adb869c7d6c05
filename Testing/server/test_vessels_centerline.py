"""Centrelines and tree graph on known geometry (real VTK-free numpy/scipy code, no mocks)."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from medseg_server.vessels import CenterlineParams, Grid, VesselError, extract_centerlines


def grid_of(shape_zyx, spacing=(1.0, 1.0, 1.0)) -> Grid:
    img = sitk.Image(shape_zyx[2], shape_zyx[1], shape_zyx[0], sitk.sitkUInt8)
    img.SetSpacing(spacing)
    img.SetOrigin((-10.0, 5.0, 20.0))
    return Grid.of(img)


def capsule(mask: np.ndarray, a, b, r: float, spacing_zyx=(1.0, 1.0, 1.0)) -> None:
    """Add a tube of radius ``r`` mm from ``a`` to ``b`` (voxel z, y, x) to ``mask``."""
    sp = np.asarray(spacing_zyx)
    p = np.indices(mask.shape).reshape(3, -1).T * sp
    a, b = np.asarray(a, float) * sp, np.asarray(b, float) * sp
    t = np.clip((p - a) @ (b - a) / ((b - a) @ (b - a)), 0, 1)
    d = np.linalg.norm(p - (a + t[:, None] * (b - a)), axis=1)
    mask |= (d <= r).reshape(mask.shape)


@pytest.mark.parametrize("radius,spacing", [(4.0, (1.0, 1.0, 1.0)), (3.0, (0.7, 0.7, 1.2)), (2.5, (0.5, 0.5, 0.5))])
def test_tube_radius_and_length(radius, spacing):
    shape = (int(30 / spacing[2]), int(30 / spacing[1]), int(70 / spacing[0]))
    g = grid_of(shape, spacing)
    mask = np.zeros(shape, bool)
    zc, yc = shape[0] / 2 + 0.3, shape[1] / 2 - 0.2
    capsule(mask, (zc, yc, 8 / spacing[0]), (zc, yc, 58 / spacing[0]), radius, g.spacing_zyx)
    tree = extract_centerlines(mask, g, "tube")
    assert len(tree.branches) == 1 and not tree.bifurcations
    b = tree.branches[0]
    inner = b.radius_mm[len(b.radius_mm) // 5: -len(b.radius_mm) // 5]
    assert abs(np.median(inner) - radius) <= 0.1 * radius
    # the end caps are trimmed: the centreline runs between the two cap centres (50 mm apart)
    assert 50 - 4 <= b.length_mm <= 50 + 3
    ends = g.mm_to_zyx(b.points_mm[[0, -1]])[:, 2] * spacing[0]
    assert sorted(np.abs(ends - 8).tolist() + np.abs(ends - 58).tolist())[:2] < [2.5, 2.5]
    # points are physical: x follows the axis, y/z stay on it (away from the rounded caps)
    core = b.points_mm[len(b.points_mm) // 5: -len(b.points_mm) // 5]
    assert np.ptp(core[:, 1]) < 1.5 and np.ptp(core[:, 2]) < 1.5


def y_tree(shape=(60, 60, 60)) -> np.ndarray:
    m = np.zeros(shape, bool)
    capsule(m, (30.3, 29.8, 4), (30.3, 29.8, 30), 4.0)
    capsule(m, (30.3, 29.8, 30), (30.3, 8.2, 56), 3.0)
    capsule(m, (30.3, 29.8, 30), (30.3, 51.7, 56), 3.0)
    return m


def test_y_tree_has_one_bifurcation_and_generations():
    g = grid_of((60, 60, 60))
    score = np.full((60, 60, 60), -np.inf)
    score[:, :, :8] = 1.0  # root at the trunk's free end (small x)
    tree = extract_centerlines(y_tree(), g, "y", root_score=score)
    assert len(tree.bifurcations) == 1
    assert tree.summary()["end_points"] == 2 and len(tree.roots) == 1
    root = tree.roots[0]
    assert root.generation == 0 and sorted(tree.by_id()[c].generation for c in root.children) == [1, 1]
    children = [tree.by_id()[c] for c in root.children]
    for c in children:  # a child starts where its parent ends
        assert np.allclose(c.points_mm[0], root.points_mm[-1])
        assert 2.7 <= np.median(c.radius_mm) <= 3.3
    assert 3.6 <= np.median(root.radius_mm) <= 4.4
    bif = np.asarray(tree.bifurcations[0]["point_mm"])
    expected = g.zyx_to_mm(np.array([[30, 30, 30]]))[0]
    assert np.linalg.norm(bif - expected) < 6.0
    assert sorted(tree.descendants(root.id)) == [0, 1, 2]


def test_root_score_selects_the_trunk_end():
    g = grid_of((60, 60, 60))
    m = y_tree()
    score = np.full(m.shape, -np.inf)
    score[:, :, :8] = 1.0  # the trunk's free end (small x)
    tree = extract_centerlines(m, g, "y", root_score=score)
    assert tree.roots[0].points_zyx[0][2] < 8
    assert len(tree.bifurcations) == 1


def test_pruning_removes_a_surface_bump_but_keeps_real_branches():
    g = grid_of((60, 60, 60))
    m = y_tree()
    m[33:37, 29:32, 15:18] = True  # a small bump on the trunk wall
    pruned = extract_centerlines(m, g, "y")
    raw = extract_centerlines(m, g, "y", params=CenterlineParams(invalidation_scale=0.5, invalidation_const=0.0),
                              prune=False)
    assert len(pruned.bifurcations) == 1
    assert len(raw.bifurcations) >= len(pruned.bifurcations)


def test_bad_masks_raise_clear_errors():
    g = grid_of((20, 20, 20))
    with pytest.raises(VesselError, match="empty"):
        extract_centerlines(np.zeros((20, 20, 20), bool), g)
    with pytest.raises(VesselError, match="does not match"):
        extract_centerlines(np.ones((5, 5, 5), bool), g)
    one = np.zeros((20, 20, 20), bool)
    one[10, 10, 10] = True
    with pytest.raises(VesselError, match="no component"):
        extract_centerlines(one, g)


def test_tree_json_round_numbers():
    g = grid_of((60, 60, 60))
    doc = extract_centerlines(y_tree(), g, "y").as_json()
    assert doc["summary"]["bifurcations"] == 1
    b = doc["branches"][0]
    assert len(b["points_mm"]) == len(b["radius_mm"]) == len(b["points_ijk"])

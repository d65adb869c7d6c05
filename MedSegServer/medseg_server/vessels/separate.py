"""Split one vessel mask into the portal venous tree and the hepatic venous tree.

Both trees are flooded from their roots over the mask with a marker watershed whose relief is
minus the distance to the wall: a flood runs along thick lumens first, so where a portal and a
hepatic branch touch the border forms at the narrow contact and each branch keeps the tree it
is connected to through thicker vessel. Roots: the hepatic veins start at the IVC (mask voxels
next to it), the portal vein at the hilum (mask voxels outside the liver, far from the IVC),
or points the caller gives. A wrongly assigned branch is fixed by :func:`reassign_branch`: the
branch under the click and the branches below it move to the other tree.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import SimpleITK as sitk
from scipy import ndimage
from scipy.spatial import cKDTree

from ..labels import LABELS
from .centerline import extract_centerlines, wall_distance
from .grid import Grid, VesselError, ball, bbox

PORTAL = LABELS["portal_vein"]
HEPATIC = LABELS["hepatic_veins"]


@dataclass
class Seeds:
    """Root voxels (z, y, x) of each tree; clicks add to them."""

    portal: np.ndarray = field(default_factory=lambda: np.zeros((0, 3), int))
    hepatic: np.ndarray = field(default_factory=lambda: np.zeros((0, 3), int))

    def of(self, label: int) -> np.ndarray:
        return self.portal if label == PORTAL else self.hepatic


def auto_seeds(vessels: np.ndarray, grid: Grid, liver: np.ndarray | None, ivc: np.ndarray | None,
               contact_mm: float = 3.0) -> Seeds:
    """Hepatic roots: vessel voxels within ``contact_mm`` of the IVC. Portal root: the vessel voxels
    farthest outside the liver (the trunk at the hilum), away from the IVC."""
    vessels = vessels.astype(bool)
    if not vessels.any():
        raise VesselError("the vessel mask is empty")
    crop = bbox(vessels, pad=int(np.ceil(2 * contact_mm / min(grid.spacing))) + 1)
    offset = np.array([c.start for c in crop])
    v = vessels[crop]
    hepatic = np.zeros((0, 3), int)
    near_ivc = np.zeros_like(v)
    if ivc is not None and ivc[crop].any():
        near_ivc = ndimage.distance_transform_edt(~ivc[crop].astype(bool), sampling=grid.spacing_zyx) <= contact_mm
        hepatic = np.argwhere(v & near_ivc) + offset
    if liver is not None and liver[crop].any():
        outside = ndimage.distance_transform_edt(~liver[crop].astype(bool), sampling=grid.spacing_zyx)
    else:
        outside = np.zeros(v.shape)
    far_ivc = v & ~ndimage.binary_dilation(near_ivc, ball(2 * contact_mm, grid.spacing_zyx)) if near_ivc.any() else v
    cand = far_ivc & (outside > 0)
    if not cand.any():
        cand = far_ivc
    if not cand.any():
        raise VesselError("no portal vein root found: give one (portal_root)")
    score = np.where(cand, outside + 1e-3 * wall_distance(v, grid.spacing_zyx), -np.inf)
    top = np.argwhere(score >= np.max(score) - max(grid.spacing)) + offset
    return Seeds(portal=top, hepatic=hepatic)


def separate_trees(vessels: np.ndarray, grid: Grid, seeds: Seeds) -> np.ndarray:
    """Label each vessel voxel PORTAL or HEPATIC (0 elsewhere) by watershed from the seeds."""
    vessels = vessels.astype(bool)
    if not len(seeds.portal) or not len(seeds.hepatic):
        raise VesselError("both trees need at least one root (portal and hepatic)")
    markers = np.zeros(vessels.shape, np.uint8)
    for label, pts in ((PORTAL, seeds.portal), (HEPATIC, seeds.hepatic)):
        pts = np.asarray(pts, int).reshape(-1, 3)
        inside = np.all((pts >= 0) & (pts < np.array(vessels.shape)), axis=1)
        pts = pts[inside]
        markers[tuple(pts.T)] = label
    markers[~vessels] = 0
    if not (markers == PORTAL).any() or not (markers == HEPATIC).any():
        raise VesselError("a root lies outside the vessel mask")
    crop = bbox(vessels, pad=2)
    v = vessels[crop]
    dbf = ndimage.gaussian_filter(wall_distance(v, grid.spacing_zyx), 0.5)
    relief = np.where(v, -dbf, 1e3).astype(np.float32)  # background floods last
    ws = sitk.MorphologicalWatershedFromMarkers(sitk.GetImageFromArray(relief), sitk.GetImageFromArray(markers[crop]),
                                                markWatershedLine=False, fullyConnected=True)
    out = np.zeros(vessels.shape, np.uint8)
    out[crop] = sitk.GetArrayFromImage(ws).astype(np.uint8)
    out[~vessels] = 0
    return out


def snap_to_mask(point_zyx: np.ndarray, mask: np.ndarray, grid: Grid, max_mm: float = 5.0) -> np.ndarray:
    """The voxel of ``mask`` nearest to a clicked voxel (within ``max_mm``)."""
    pts = np.argwhere(mask)
    if not len(pts):
        raise VesselError("no vessel to click on")
    kd = cKDTree(pts * np.asarray(grid.spacing_zyx))
    d, i = kd.query(np.asarray(point_zyx, float) * np.asarray(grid.spacing_zyx))
    if d > max_mm:
        raise VesselError(f"the click is {d:.1f} mm from the nearest vessel (at most {max_mm} mm)")
    return pts[i]


def reassign_branch(labels: np.ndarray, grid: Grid, click_zyx: np.ndarray, seeds: Seeds) -> tuple[np.ndarray, Seeds]:
    """Move the branch under ``click_zyx`` (and the branches below it) to the other tree.

    The centreline tree of the clicked tree is traced from its roots, the branch nearest to the
    click is found, and every voxel of that tree whose nearest centreline point belongs to the
    branch or one of its descendants changes label. The first voxel of the moved branch becomes a
    root of the other tree, so a later :func:`separate_trees` with the returned seeds keeps the fix.
    """
    vessels = labels > 0
    click = snap_to_mask(click_zyx, vessels, grid)
    current = int(labels[tuple(click)])
    if current not in (PORTAL, HEPATIC):
        raise VesselError(f"the click is on label {current}, not on the portal or hepatic tree")
    other = HEPATIC if current == PORTAL else PORTAL
    tree_mask = labels == current
    score = np.full(labels.shape, -np.inf)
    roots = np.asarray(seeds.of(current), int).reshape(-1, 3)
    if len(roots):
        score[tuple(roots.T)] = 0.0
    tree = extract_centerlines(tree_mask, grid, "clicked", root_score=score)
    pts = np.concatenate([b.points_zyx for b in tree.branches])
    owner = np.concatenate([np.full(len(b.points_zyx), b.id) for b in tree.branches])
    sp = np.asarray(grid.spacing_zyx)
    kd = cKDTree(pts * sp)
    _, nearest = kd.query(click * sp)
    branch = tree.by_id()[int(owner[nearest])]
    if branch.parent_id is None:
        raise VesselError("the click is on a root trunk; move a branch, or give the roots again")
    moved_ids = set(tree.descendants(branch.id))
    # the shared first point belongs to the parent: only the branch's own points own voxels
    own = np.ones(len(pts), bool)
    start = 0
    for b in tree.branches:
        own[start] = b.parent_id is None  # first point of a child branch is the bifurcation
        start += len(b.points_zyx)
    kd_own = cKDTree(pts[own] * sp)
    vox = np.argwhere(tree_mask)
    _, j = kd_own.query(vox * sp)
    move = np.isin(owner[own][j], list(moved_ids))
    out = labels.copy()
    out[tuple(vox[move].T)] = other
    first = np.round(branch.points_zyx[min(1, len(branch.points_zyx) - 1)]).astype(int)
    first = snap_to_mask(first, out == other, grid)
    new = Seeds(portal=seeds.portal, hepatic=seeds.hepatic)
    if other == PORTAL:
        new.portal = np.vstack([np.asarray(seeds.portal, int).reshape(-1, 3), first[None]])
    else:
        new.hepatic = np.vstack([np.asarray(seeds.hepatic, int).reshape(-1, 3), first[None]])
    return out, new

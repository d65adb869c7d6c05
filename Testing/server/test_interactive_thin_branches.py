"""Thin vessel branches (``interactive/thin_branches.py``).

Volumes on a portal-phase CT grid (2.5 x 1.5 x 1.5 mm), drawn with each voxel's lumen share,
blurred 0.7 voxel and made noisy (12 HU), so a branch of radius 1.1 mm reads well below half way
between the vessel (190 HU) and the organ (60 HU), as the phantoms' thin branches do.
"""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

from medseg_server.interactive import Interaction, InteractiveSession
from medseg_server.interactive.thin_branches import grow_thin_branches

SPACING = np.array([2.5, 1.5, 1.5])  # z, y, x mm
SHAPE = (36, 64, 64)
TRUNK = ((2.0, 32.3, 14.6), (34.0, 32.3, 14.6), 4.5)  # (start zyx, end zyx, radius mm) in voxels
BRANCHES = [((12.0, 32.3, 14.6), (9.0, 22.0, 46.0), 1.5), ((24.0, 32.3, 14.6), (27.0, 48.0, 44.0), 1.5)]


def _lumen_share(segments: list, balls: list, shape: tuple[int, int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Each voxel's lumen share (3^3 sub-samples) and the voxels whose centre is in the lumen."""
    grid = np.indices(shape, dtype=float).reshape(3, -1).T

    def lumen(points: np.ndarray) -> np.ndarray:
        inside = np.zeros(len(points), dtype=bool)
        mm = points * SPACING
        for a, b, r in segments:
            a_, ab = np.array(a) * SPACING, (np.array(b) - np.array(a)) * SPACING
            p = mm - a_
            t = np.clip(p @ ab / (ab @ ab), 0.0, 1.0)
            inside |= ((p - t[:, None] * ab) ** 2).sum(axis=1) <= r * r
        for c, r in balls:
            inside |= ((mm - np.array(c) * SPACING) ** 2).sum(axis=1) <= r * r
        return inside

    offsets = (np.arange(3) + 0.5) / 3 - 0.5
    share = np.mean([lumen(grid + np.array([dz, dy, dx])) for dz in offsets for dy in offsets for dx in offsets], axis=0)
    return share.reshape(shape), lumen(grid).reshape(shape)


def _scan(share: np.ndarray, vessel_hu: float = 190.0, organ_hu: float = 60.0, noise: float = 12.0,
          seed: int = 0) -> sitk.Image:
    hu = ndimage.gaussian_filter(organ_hu + (vessel_hu - organ_hu) * share, 0.7)
    hu += np.random.default_rng(seed).normal(0.0, noise, share.shape)
    img = sitk.GetImageFromArray(hu.astype(np.int16))
    img.SetSpacing(tuple(float(s) for s in SPACING[::-1]))
    return img


def tree_with_thin_branches(lump: bool = False, seed: int = 0):
    """A trunk (radius 4.5 mm) with two thin side branches (1.5 mm, ~50 mm long); with ``lump``, also a
    small round lump (radius 3 mm) on the trunk's side reading 0.4 of the vessel's contrast.
    Returns the image, the trunk's, each branch's and the lump's true masks."""
    _, trunk = _lumen_share([TRUNK], [], SHAPE)
    branch_masks = [_lumen_share([b], [], SHAPE)[1] & ~trunk for b in BRANCHES]
    share, _ = _lumen_share([TRUNK, *BRANCHES], [], SHAPE)
    lump_mask = np.zeros(SHAPE, dtype=bool)
    if lump:
        lump_share, lump_mask = _lumen_share([], [((18.0, 32.3, 14.6 - 6.5 / 1.5), 3.0)], SHAPE)
        lump_mask &= ~trunk
        share = np.maximum(share, 0.4 * lump_share)
    return _scan(share, seed=seed), trunk, branch_masks, lump_mask


def thin_tube_into_thick_vessel(seed: int = 0):
    """A trunk (4.5 mm) on one side; apart from it, a thin tube (2 mm) running into another trunk
    (4.5 mm, a little darker: 70 % of the contrast), like a small portal branch touching a hepatic
    vein. Returns the image, the first trunk, the tube and the other trunk."""
    trunk_seg = ((2.0, 12.3, 10.6), (34.0, 12.3, 10.6), 4.5)
    tube_seg = ((18.0, 40.3, 6.0), (18.0, 40.3, 50.0), 2.0)
    other_seg = ((2.0, 40.3, 50.0), (34.0, 40.3, 50.0), 4.5)
    share, _ = _lumen_share([trunk_seg, tube_seg], [], SHAPE)
    other_share, other = _lumen_share([other_seg], [], SHAPE)
    trunk = _lumen_share([trunk_seg], [], SHAPE)[1]
    tube = _lumen_share([tube_seg], [], SHAPE)[1] & ~other
    return _scan(np.maximum(share, 0.7 * other_share), seed=seed), trunk, tube, other


def coverage(mask: np.ndarray, truth: np.ndarray) -> float:
    return float((mask & truth).sum() / truth.sum())


def test_thin_low_contrast_branches_are_followed_from_a_click_on_the_trunk():
    img, trunk, branches, _ = tree_with_thin_branches()
    s = InteractiveSession(img)
    s.interact("portal_vein", Interaction(positive=np.array([[18, 32, 15]])))
    got = s.mask("portal_vein")
    assert coverage(got, trunk) > 0.9
    for branch in branches:  # without the thin-branch growth each is under 10 % covered
        assert coverage(got, branch) > 0.6
    outside = got & ~trunk & ~np.any(branches, axis=0)  # the trunk's and the branches' partial-volume rim ...
    assert outside.sum() < 1.5 * sum(int(b.sum()) for b in branches)  # ... no leak into the organ


def test_a_bright_lump_on_the_tree_is_not_taken():
    img, trunk, branches, lump = tree_with_thin_branches(lump=True)
    s = InteractiveSession(img)
    s.interact("portal_vein", Interaction(positive=np.array([[18, 32, 15]])))
    got = s.mask("portal_vein")
    assert coverage(got, lump) < 0.2  # as bright as the branches and touching the tree, but round
    assert all(coverage(got, b) > 0.6 for b in branches)


def test_a_click_on_a_thin_tube_does_not_take_the_thicker_vessel_it_runs_into():
    img, trunk, tube, thick = thin_tube_into_thick_vessel()
    s = InteractiveSession(img)
    s.interact("portal_vein", Interaction(positive=np.array([[18, 12, 11]])))
    assert coverage(s.mask("portal_vein"), trunk) > 0.9
    s.interact("portal_vein", Interaction(positive=np.array([[18, 40, 40]])))  # on the tube, 15 mm from the other trunk
    got = s.mask("portal_vein")
    assert coverage(got, tube) > 0.3  # the tube near the click
    assert coverage(got, thick) < 0.2  # without foreign_vessel's cut the click's trace takes most of it


def test_low_contrast_trees_are_left_as_they_are():
    """Non-contrast: a tree 15 HU from its surroundings in 12 HU noise gets no thin branches (a lower level is noise)."""
    share, _ = _lumen_share([TRUNK, *BRANCHES], [], SHAPE)
    hu = sitk.GetArrayFromImage(_scan(share, vessel_hu=45.0, organ_hu=60.0)).astype(np.float32)
    smooth = ndimage.gaussian_filter(hu, 0.6)
    tree = _lumen_share([TRUNK], [], SHAPE)[1]
    assert np.array_equal(grow_thin_branches(smooth, tree, SPACING), tree)
    bright = ndimage.gaussian_filter(sitk.GetArrayFromImage(_scan(share)).astype(np.float32), 0.6)
    assert grow_thin_branches(bright, tree, SPACING).sum() > tree.sum()  # the same tree with contrast does grow

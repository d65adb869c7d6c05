"""A later positive click on a vessel does not pull in a neighbouring vessel it touches
(``interactive/foreign_vessel.py``), while a real missed branch still comes in whole; a click on a
bright vessel's rim does not learn a dark range (``tubular.contrast_interval``)."""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk

from medseg_server.interactive import Interaction, InteractiveSession
from medseg_server.interactive.profiles import profile_for
from medseg_server.interactive.tubular import contrast_interval

SHAPE = (40, 64, 64)  # z, y, x; 2 mm voxels
TRUNK_CLICK = (20, 20, 26)


def _tube(a: tuple[int, int, int], b: tuple[int, int, int], radius: float) -> np.ndarray:
    """Voxels within ``radius`` (voxels) of the segment a-b."""
    z, y, x = np.indices(SHAPE, dtype=np.float32)
    p, d = np.array(a, dtype=np.float32), np.array(b, dtype=np.float32) - np.array(a, dtype=np.float32)
    t = np.clip(((z - p[0]) * d[0] + (y - p[1]) * d[1] + (x - p[2]) * d[2]) / float(d @ d), 0.0, 1.0)
    return (z - p[0] - t * d[0]) ** 2 + (y - p[1] - t * d[1]) ** 2 + (x - p[2] - t * d[2]) ** 2 <= radius**2


def _image(parts: list[tuple[np.ndarray, float]], seed: int = 0) -> sitk.Image:
    """A 60 HU organ in fat with ``parts`` painted at their HU, plus noise (8 HU)."""
    z, y, x = np.indices(SHAPE)
    hu = np.full(SHAPE, -100.0)
    hu[((z - 20) / 18) ** 2 + ((y - 32) / 30) ** 2 + ((x - 32) / 30) ** 2 <= 1] = 60.0
    for mask, value in parts:
        hu[mask] = value
    hu += np.random.default_rng(seed).normal(0, 8, SHAPE)
    img = sitk.GetImageFromArray(hu.astype(np.int16))
    img.SetSpacing((2.0, 2.0, 2.0))
    return img


def trunk() -> np.ndarray:
    """The traced vessel: a bright trunk (radius 3.5 voxels) along x."""
    return _tube((20, 20, 4), (20, 20, 30), 3.5)


def branch_into_neighbour(seed: int = 0) -> tuple[sitk.Image, np.ndarray, np.ndarray, np.ndarray]:
    """A bright trunk, a thin dim branch (110 HU, radius 1.3) leaving it along y, and at the branch's
    end another bright vessel (180 HU, radius 3) it touches but that is not part of the tree, like
    a thin hepatic vein touching a portal branch. Returns the image, trunk, branch and neighbour."""
    neighbour = _tube((20, 43, 12), (20, 43, 60), 3.0)
    branch = _tube((20, 22, 30), (20, 40, 30), 1.3) & ~trunk() & ~neighbour
    return _image([(trunk(), 180.0), (branch, 110.0), (neighbour, 180.0)], seed), trunk(), branch, neighbour


def test_click_on_a_thin_branch_does_not_bring_in_the_vessel_it_touches():
    img, tr, branch, neighbour = branch_into_neighbour()
    s = InteractiveSession(img)
    s.interact("portal_vein", Interaction(positive=np.array([TRUNK_CLICK])))
    first = s.mask("portal_vein").copy()
    assert first[tr].mean() > 0.9 and first[neighbour].mean() < 0.05  # the trunk, not the neighbour
    s.interact("portal_vein", Interaction(positive=np.array([[20, 31, 30]])))  # on the dim branch
    second = s.mask("portal_vein")
    assert second[branch].mean() > 0.7  # the branch comes in, up to the neck ...
    assert second[neighbour].mean() < 0.05  # ... the neighbour it touches does not (it took 30 % of it)
    assert not (first & ~second).any()


def test_click_on_a_missed_branch_that_widens_still_adds_all_of_it():
    """A missed branch as bright as the clicked spot but twice as thick further on is the tree's own:
    only thicker and brighter parts are taken for a neighbour."""
    branch = (_tube((20, 22, 30), (20, 32, 30), 1.3) | _tube((20, 32, 30), (20, 38, 30), 3.5)) & ~trunk()
    img = _image([(trunk(), 180.0), (branch, 110.0)])
    s = InteractiveSession(img)
    s.interact("portal_vein", Interaction(positive=np.array([TRUNK_CLICK])))
    assert s.mask("portal_vein")[branch].mean() < 0.3  # too dim for the trunk's range
    s.interact("portal_vein", Interaction(positive=np.array([[20, 26, 30]])))  # on its thin part
    assert s.mask("portal_vein")[branch].mean() > 0.6  # (taking thickness alone for a neighbour kept 5 %;
    # the branch's far end lies beyond the click's local range)


def test_click_on_a_bright_vessels_rim_beside_fat_learns_a_bright_range():
    """The seed's value is the voxel of its 3x3x3 neighbourhood standing out most; on a bright
    vessel's rim beside fat the fat voxel stood out more from the organ and gave a range in fat."""
    rng = np.random.default_rng(0)
    smooth = np.full(SHAPE, 60.0) + rng.normal(0, 2, SHAPE)
    vessel = _tube((20, 32, 4), (20, 32, 60), 3.0)
    smooth[vessel] = 180.0
    smooth[:, 36:, :] = np.where(vessel[:, 36:, :], smooth[:, 36:, :], -100.0)  # fat right beside the vessel
    seed = np.array([20, 35, 30])  # on the vessel's rim, a fat voxel in its 3x3x3
    iv = contrast_interval(smooth, seed, np.array([2.0, 2.0, 2.0]), 3.0, profile_for("portal_vein"))
    assert iv.low <= 175.0 <= iv.high
    assert iv.low > 60.0  # neither fat nor organ


def test_click_on_a_vessels_blurred_rim_beside_gas_does_not_learn_air():
    """A click on the partial-volume rim between a bright vessel and a gas pocket (reading about 0
    HU, darker than the organ around) used to take the gas voxel of its 3x3x3 as the vessel's value
    and learn a dark range that flooded the gas; lumen never reads below ``LUMEN_MIN_HU``."""
    from scipy import ndimage

    from medseg_server.interactive.tubular import LUMEN_MIN_HU

    vessel = _tube((20, 32, 4), (20, 32, 60), 3.0)
    hu = np.full(SHAPE, 60.0)
    hu[vessel] = 180.0
    gas = np.zeros(SHAPE, dtype=bool)
    gas[17:23, 36:42, 10:50] = True  # 12 mm across: thin enough to pass for a vessel
    gas &= ~vessel
    hu[gas] = -900.0
    hu = ndimage.gaussian_filter(hu, 1.0) + np.random.default_rng(0).normal(0, 8, SHAPE)
    img = sitk.GetImageFromArray(hu.astype(np.int16))
    img.SetSpacing((2.0, 2.0, 2.0))
    rim = (20, 35, 30)  # between the lumen and the gas
    assert -200.0 < hu[rim] < 60.0
    s = InteractiveSession(img)
    s.interact("portal_vein", Interaction(positive=np.array([rim])))
    got = s.mask("portal_vein")
    assert got[gas].mean() < 0.02  # (it took 99 % of it)
    smooth = ndimage.gaussian_filter(hu, 1.0)
    iv = contrast_interval(smooth, np.array(rim), np.array([2.0, 2.0, 2.0]), 8.0, profile_for("portal_vein"))
    assert iv.low >= LUMEN_MIN_HU


def test_later_click_on_a_dim_spot_of_a_bright_tree_does_not_learn_the_liver():
    """A later positive click on a spot darker than the organ (a partial-volume spot) learned a
    dark range and added the organ's dark texture patches; the first click's side (bright, on a
    contrast scan) is the tree's, and a click not standing out that way takes the tree's range."""
    from scipy import ndimage

    rng = np.random.default_rng(1)
    texture = ndimage.gaussian_filter(rng.normal(0, 1, SHAPE), 3.0)  # the organ's low-frequency texture
    hu = 100.0 + 12.0 * texture / texture.std()
    tr = trunk()
    hu[tr] = 180.0
    spot = (20, 27, 20)  # 3 voxels off the trunk's rim, in the organ
    hu[19:22, 26:29, 19:22] = 80.0
    hu += rng.normal(0, 10, SHAPE)
    img = sitk.GetImageFromArray(hu.astype(np.int16))
    img.SetSpacing((2.0, 2.0, 2.0))
    s = InteractiveSession(img)
    s.interact("portal_vein", Interaction(positive=np.array([TRUNK_CLICK])))
    first = s.mask("portal_vein").copy()
    assert first[tr].mean() > 0.9
    s.interact("portal_vein", Interaction(positive=np.array([spot])))
    added = s.mask("portal_vein") & ~first
    assert (added & ~tr).sum() < 20  # (a dark range took 169 organ voxels)


def test_a_hepatic_click_range_reaches_further_towards_the_organ_than_a_portal_one():
    """Hepatic veins are clicked on a trunk brighter than most of their tree: their range reaches
    0.6 of the way to the surroundings (``TargetProfile.range_share``), the portal vein's half way."""
    rng = np.random.default_rng(2)
    smooth = np.full(SHAPE, 60.0) + rng.normal(0, 2, SHAPE)
    smooth[_tube((20, 32, 4), (20, 32, 60), 3.0)] = 180.0
    seed = np.array([20, 32, 30])
    spacing = np.array([2.0, 2.0, 2.0])
    portal = contrast_interval(smooth, seed, spacing, 3.0, profile_for("portal_vein"))
    hepatic = contrast_interval(smooth, seed, spacing, 3.0, profile_for("hepatic_veins"))
    contrast = portal.centre - 60.0
    assert abs((portal.centre - portal.low) / contrast - 0.5) < 0.05
    assert abs((hepatic.centre - hepatic.low) / contrast - 0.6) < 0.05

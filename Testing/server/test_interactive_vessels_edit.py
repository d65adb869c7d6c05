"""Later clicks on a vessel edit its last result locally (``interactive/vessel_edit.py``)."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from medseg_server.interactive import Interaction, InteractiveSession

SHAPE = (40, 64, 64)  # z, y, x; 2 mm voxels


def _tube(segments: list[tuple[tuple[int, int, int], tuple[int, int, int]]], radius: float) -> np.ndarray:
    out = np.zeros(SHAPE, dtype=bool)
    for a, b in segments:
        a_, b_ = np.array(a, dtype=float), np.array(b, dtype=float)
        for t in np.linspace(0.0, 1.0, 100):
            c = a_ + t * (b_ - a_)
            lo = np.maximum(np.floor(c - 4).astype(int), 0)
            hi = np.minimum(np.ceil(c + 5).astype(int), SHAPE)
            box = tuple(slice(int(p), int(q)) for p, q in zip(lo, hi, strict=True))
            zz, yy, xx = np.ogrid[box]
            out[box] |= (zz - c[0]) ** 2 + (yy - c[1]) ** 2 + (xx - c[2]) ** 2 <= radius**2
    return out


def tree_with_bulge(dark: bool, seed: int = 0) -> tuple[sitk.Image, np.ndarray, np.ndarray]:
    """A Y-shaped vessel (radius 2.2 voxels) in a 60 HU organ, with a bulge of the same intensity
    beside its junction (a neighbour the first click runs into). Bright (180 HU) or non-contrast
    (35 HU, weak edges). Returns the image, the tree and the bulge."""
    z, y, x = np.indices(SHAPE)
    organ = ((z - 20) / 18) ** 2 + ((y - 32) / 30) ** 2 + ((x - 32) / 30) ** 2 <= 1
    tree = _tube([((20, 32, 6), (20, 32, 30)), ((20, 32, 30), (20, 12, 52)), ((20, 32, 30), (20, 52, 52))], 2.2)
    bulge = _tube([((20, 32, 30), (29, 32, 30))], 3.0) & ~tree
    hu = np.full(SHAPE, -100.0)
    hu[organ] = 60.0
    hu[tree | bulge] = 35.0 if dark else 180.0
    hu += np.random.default_rng(seed).normal(0, 4 if dark else 8, SHAPE)
    img = sitk.GetImageFromArray(hu.astype(np.int16))
    img.SetSpacing((2.0, 2.0, 2.0))
    return img, tree, bulge


@pytest.mark.parametrize("dark", [False, True])
def test_negative_click_beside_the_junction_removes_the_bulge_not_the_branches(dark):
    img, tree, bulge = tree_with_bulge(dark)
    s = InteractiveSession(img)
    s.interact("portal_vein", Interaction(positive=np.array([[20, 32, 8]])))  # on the trunk
    first = s.mask("portal_vein").copy()
    assert first[tree].mean() > 0.95 and first[bulge].mean() > 0.9  # ran into the bulge
    s.interact("portal_vein", Interaction(negative=np.array([[27, 32, 30]])))  # in the bulge
    cut = s.mask("portal_vein")
    z, y, x = np.indices(SHAPE)
    far = (z - 20) ** 2 + (y - 32) ** 2 + (x - 30) ** 2 > 12**2  # more than 24 mm from the junction
    assert cut[bulge].mean() < 0.35  # the bulge goes ...
    assert cut[tree & far].mean() > 0.99  # ... the tree beyond the cut stays (a watershed of the whole
    assert cut[tree].mean() > 0.8  # tree kept 87 % of that and 62 % of the tree)
    assert not (cut & ~first).any()  # a negative click adds nothing


def test_positive_click_in_a_thick_spot_keeps_the_traced_tree():
    """A later positive click where the candidate is far too thick for a vessel used to tighten the
    range of the whole tree and drop half of it; now it only adds."""
    img, tree, bulge = tree_with_bulge(dark=True)
    z, y, x = np.indices(SHAPE)
    arr = sitk.GetArrayFromImage(img).astype(np.float64)
    thick = (z - 20) ** 2 + (y - 32) ** 2 + (x - 8) ** 2 <= 6.5**2  # a wide lake at the trunk's start
    arr[thick] = 35.0 + np.random.default_rng(1).normal(0, 4, int(thick.sum()))
    image = sitk.GetImageFromArray(arr.astype(np.int16))
    image.CopyInformation(img)
    s = InteractiveSession(image)
    s.interact("portal_vein", Interaction(positive=np.array([[20, 22, 41]])))  # on a branch
    first = s.mask("portal_vein").copy()
    assert first[tree & (x > 30)].mean() > 0.9
    s.interact("portal_vein", Interaction(positive=np.array([[20, 32, 8]])))  # in the lake
    second = s.mask("portal_vein")
    assert not (first & ~second).any()  # nothing of the traced tree is lost


def _bright_tubes(tubes: list[tuple[list, float]], seed: int = 0) -> sitk.Image:
    """Bright (180 HU) tubes, given as (segments, radius in voxels), in a 60 HU organ; 2 mm voxels."""
    z, y, x = np.indices(SHAPE)
    hu = np.full(SHAPE, -100.0)
    hu[((z - 20) / 19) ** 2 + ((y - 32) / 31) ** 2 + ((x - 32) / 31) ** 2 <= 1] = 60.0
    for segments, radius in tubes:
        hu[_tube(segments, radius)] = 180.0
    hu += np.random.default_rng(seed).normal(0, 8, SHAPE)
    img = sitk.GetImageFromArray(hu.astype(np.int16))
    img.SetSpacing((2.0, 2.0, 2.0))
    return img


def test_later_click_on_a_long_separate_branch_follows_it_past_the_local_crop():
    """A later positive click traces only near itself (``vessel_edit.LOCAL_MM``), widening the crop
    while what it adds runs into the crop's faces: a 100 mm branch is added whole, the traced tree
    stays as it was."""
    trunk = [((12, 16, 6), (12, 16, 58))]
    branch = [((28, 48, 8), (28, 48, 58))]
    img = _bright_tubes([(trunk, 3.5), (branch, 2.2)])
    s = InteractiveSession(img)
    s.interact("portal_vein", Interaction(positive=np.array([[12, 16, 30]])))
    first = s.mask("portal_vein").copy()
    far_branch = _tube(branch, 2.2)
    assert first[_tube(trunk, 3.5)].mean() > 0.95 and not first[far_branch].any()
    s.interact("portal_vein", Interaction(positive=np.array([[28, 48, 10]])))  # near the branch's start
    second = s.mask("portal_vein")
    x = np.indices(SHAPE)[2]
    assert second[far_branch & (x > 40) & (x < 55)].mean() > 0.95  # 60-90 mm from the click (not crop-widened: 0)
    assert (second & first).sum() == first.sum()  # the trunk kept


def test_a_finished_neighbour_is_a_barrier_for_later_clicks():
    """Targets are exclusive: a later click on a second hepatic branch touching a finished portal
    vein of the same brightness adds that branch, not the portal vein nor the branch beyond it."""
    hepatic = [((20, 10, 8), (20, 10, 40))]
    second = [((20, 25, 8), (20, 25, 40))]  # joined to the first branch only through the portal vein
    portal = [((20, 10, 40), (20, 40, 40))]  # touches both hepatic branches' ends
    beyond = [((20, 40, 40), (20, 40, 58))]  # reachable from the hepatic veins only through the portal vein
    img = _bright_tubes([(t, 2.2) for t in (hepatic, second, portal, beyond)])
    s = InteractiveSession(img)
    s.interact("portal_vein", Interaction(mask=_tube(portal, 2.2) & ~_tube(hepatic + second, 2.2)))
    portal_mask = s.mask("portal_vein").copy()
    assert portal_mask[_tube(portal, 2.2)].mean() > 0.9
    s.interact("hepatic_veins", Interaction(positive=np.array([[20, 10, 12]])))
    first = s.mask("hepatic_veins").copy()
    assert not first[_tube(second, 2.2)].any()
    s.interact("hepatic_veins", Interaction(positive=np.array([[20, 25, 12]])))  # later click, second branch
    hv = s.mask("hepatic_veins")
    assert hv[_tube(second, 2.2) & ~portal_mask].mean() > 0.9
    assert not (hv & portal_mask).any()
    assert not hv[_tube(beyond, 2.2)].any()
    assert (hv & first).sum() == first.sum()


def test_crop_inputs_give_the_candidate_of_the_region_cropped():
    """Local ranges are moved into the crop and those whose ball misses it are dropped (a ball
    far outside would otherwise wrap around through negative slice bounds)."""
    from medseg_server.interactive.intensity import Interval
    from medseg_server.interactive.profiles import profile_for
    from medseg_server.interactive.propagate import RoiInputs, candidate
    from medseg_server.interactive.vessel_edit import crop_inputs

    rng = np.random.default_rng(3)
    smooth = rng.normal(100.0, 40.0, (30, 40, 50))
    spacing = np.array([2.0, 1.0, 1.0])
    intervals = [Interval(100.0, 90.0, 110.0), Interval(160.0, 150.0, 170.0, (5, 5, 5), 6.0),
                 Interval(40.0, 30.0, 50.0, (25, 35, 45), 6.0), Interval(20.0, 10.0, 30.0, (15, 20, 24), 8.0)]
    inp = RoiInputs(smooth=smooth, gradient_of=lambda m: np.zeros_like(smooth), spacing=spacing,
                    positive=np.array([[15, 20, 25]]), negative=np.zeros((0, 3), dtype=int), intervals=intervals)
    box = (slice(10, 30), slice(12, 40), slice(20, 50))
    crop = crop_inputs(inp, box, inp.positive)
    profile = profile_for("portal_vein")
    assert len(crop.intervals) == 3  # the ball around (5, 5, 5) misses the crop
    np.testing.assert_array_equal(candidate(crop, profile), candidate(inp, profile)[box])
    assert crop.positive.tolist() == [[5, 8, 5]]


def test_a_widened_region_reuses_the_local_trace_done_in_the_same_place():
    """The session widens a vessel click's region when the result reaches its faces; a local trace
    done in a level box that did not change is taken from the interaction's memo."""
    from medseg_server.interactive.intensity import Interval
    from medseg_server.interactive.profiles import profile_for
    from medseg_server.interactive.propagate import RoiInputs, segment
    from medseg_server.interactive.vessel_edit import trace_near

    rng = np.random.default_rng(4)
    smooth = rng.normal(60.0, 8.0, (40, 60, 60))
    smooth[18:22, 28:32, 22:38] = 180.0  # a short vessel, inside the first local crop
    spacing = np.array([2.0, 2.0, 2.0])
    origins: list[tuple[int, ...]] = []

    def counted(inp, profile) -> np.ndarray:
        origins.append(inp.origin)
        return segment(inp, profile)

    def region(start: int, origin: tuple[int, int, int]) -> RoiInputs:
        """The level seen from a region beginning at z = ``start``, said to lie at ``origin``."""
        return RoiInputs(smooth=smooth[start:], gradient_of=lambda m: np.zeros_like(smooth[start:]),
                         spacing=spacing, positive=np.array([[20 - start, 30, 30]]),
                         negative=np.zeros((0, 3), dtype=int), intervals=[Interval(180.0, 120.0, 240.0)],
                         origin=origin, memo=memo)

    memo: dict = {}
    profile = profile_for("portal_vein")
    whole = region(0, (0, 0, 0))
    first = trace_near(whole, profile, whole.positive, counted)
    assert first[20, 30, 23:37].all() and origins == [(5, 15, 15)]  # one crop, at its level position
    later = region(5, (5, 0, 0))  # the same place, from a region starting 5 slices on
    np.testing.assert_array_equal(trace_near(later, profile, later.positive, counted), first[5:])
    assert len(origins) == 1  # taken from the memo
    elsewhere = region(5, (0, 0, 0))  # another place of the level: traced again
    trace_near(elsewhere, profile, elsewhere.positive, counted)
    assert len(origins) == 2


def test_negative_click_beside_a_positive_click_on_a_coarse_grid_takes_its_piece():
    """3 mm voxels: the voxels around a positive click that a negative one may not take would be a
    9 mm cube; a bump on the tube's wall right beside the positive click stayed whatever was clicked."""
    shape = (24, 40, 40)
    z, y, x = np.indices(shape)
    organ = ((z - 12) / 11) ** 2 + ((y - 20) / 19) ** 2 + ((x - 20) / 19) ** 2 <= 1
    tube = ((z - 12) ** 2 + (y - 20) ** 2 <= 1.5**2) & (x >= 4) & (x <= 36)
    bump = (z >= 11) & (z <= 13) & (y >= 22) & (y <= 23) & (x >= 19) & (x <= 21)
    hu = np.where(organ, 60.0, -100.0)
    hu[tube | bump] = 200.0
    hu += np.random.default_rng(3).normal(0, 4, shape)
    img = sitk.GetImageFromArray(hu.astype(np.int16))
    img.SetSpacing((3.0, 3.0, 3.0))
    s = InteractiveSession(img)
    s.interact("portal_vein", Interaction(positive=np.array([[12, 21, 20]])))  # the tube's wall at the bump
    first = s.mask("portal_vein").copy()
    assert first[tube].mean() > 0.95 and first[bump].mean() > 0.7 and first[12, 22, 21]
    s.interact("portal_vein", Interaction(negative=np.array([[12, 22, 21]])))  # the bump, beside the positive click
    cut = s.mask("portal_vein")
    assert not cut[12, 22, 21]
    assert cut[bump].mean() < 0.5
    assert cut[tube].mean() > 0.9  # (the tube loses a few voxels of its wall at the bump)

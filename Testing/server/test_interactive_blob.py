"""Blob targets on a coarse level: a leak is written fast as level blocks and refined once it is cut
back; the native boundary snap keeps voxels that are mostly object and drops bright inclusions; a blob
update that adds nothing does not need the opened candidate (the session skips the opening then); a
negative click does not flood an object it cannot tell apart from the clicked tissue without an edge; the
opening does not erode an object cut by the region's faces."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

from interactive_volumes import two_blobs
from medseg_server.interactive import Interaction, InteractiveSession
from medseg_server.interactive.boxes import Box
from medseg_server.interactive.intensity import Interval
from medseg_server.interactive.leak import blocks_to_native, is_leak
from medseg_server.interactive.profiles import profile_for
from medseg_server.interactive.propagate import RoiInputs, ellipsoid, open_extended, segment
from medseg_server.interactive.refine import snap_native

SHAPE = (64, 128, 192)  # z, y, x: 1.4 x 0.7 x 0.7 mm, so blobs like the IVC work on a 2x coarser level in-plane
SPACING_XYZ = (0.7, 0.7, 1.4)


def test_blocks_to_native_copies_each_level_voxel_onto_its_block() -> None:
    level = np.random.default_rng(0).random((3, 4, 5)) > 0.5
    level_box = Box((1, 2, 3), (4, 6, 8))
    native_box = Box((2, 4, 6), (8, 13, 17))  # factors (2, 2, 2); x runs one voxel past the last whole block
    out = blocks_to_native(level, level_box, (2, 2, 2), native_box)
    assert out.shape == native_box.shape
    for z, y, x in np.ndindex(*out.shape):
        lz, ly, lx = (native_box.start[0] + z) // 2, (native_box.start[1] + y) // 2, (native_box.start[2] + x) // 2
        expected = level[min(lz - 1, 2), min(ly - 2, 3), min(lx - 3, 4)]
        assert out[z, y, x] == expected


def test_is_leak_follows_the_plausible_volume() -> None:
    ivc = profile_for("ivc")
    spacing = np.array([2.0, 2.0, 2.0])  # 8 ul per voxel
    assert not is_leak(int(ivc.max_volume_ml * 1000 / 8), spacing, ivc)
    assert is_leak(int(ivc.max_volume_ml * 1000 / 8) + 1, spacing, ivc)
    assert not is_leak(10**9, spacing, profile_for("portal_vein"))  # vessels have their own leak guard


def _leaking_scene(seed: int = 0) -> tuple[sitk.Image, np.ndarray, np.ndarray]:
    """A 60 HU ball (the target, ~34 ml) joined by a bridge to a bigger 85 HU ball (~180 ml) in fat."""
    mm = np.indices(SHAPE).astype(float) * np.array([1.4, 0.7, 0.7])[:, None, None, None]
    centre_a, centre_b = np.array([44.8, 44.8, 28.0]), np.array([44.8, 44.8, 92.0])
    target = np.sqrt(((mm - centre_a[:, None, None, None]) ** 2).sum(0)) <= 20.0
    other = np.sqrt(((mm - centre_b[:, None, None, None]) ** 2).sum(0)) <= 35.0
    bridge = (np.abs(mm[0] - 44.8) <= 6) & (np.abs(mm[1] - 44.8) <= 6) & (mm[2] > 28) & (mm[2] < 92)
    hu = np.full(SHAPE, -100.0)
    hu[bridge | target] = 60.0
    hu[other] = 85.0
    hu = ndimage.gaussian_filter(hu, 0.7) + np.random.default_rng(seed).normal(0, 6, SHAPE)
    image = sitk.GetImageFromArray(hu.astype(np.int16))
    image.SetSpacing(SPACING_XYZ)
    return image, target, other


def _block_uniform(mask: np.ndarray, where: np.ndarray) -> bool:
    """True when every 1x2x2 native block touching ``where`` holds one value (a level mask copied as blocks)."""
    blocks = mask.reshape(SHAPE[0], SHAPE[1] // 2, 2, SHAPE[2] // 2, 2)
    mixed = blocks.any(axis=(2, 4)) & ~blocks.all(axis=(2, 4))
    return not (mixed & where.reshape(blocks.shape).any(axis=(2, 4))).any()


def test_a_leak_is_written_as_blocks_and_refined_once_cut_back() -> None:
    image, target, other = _leaking_scene()
    session = InteractiveSession(image, {"ivc": 4})
    session.interact("ivc", Interaction(positive=np.array([[32, 64, 40]])))
    state = session.targets["ivc"]
    assert state.level is not None and session.pyramid.levels[state.level].factors == (1, 2, 2)
    flooded = session.mask("ivc")
    voxel_ml = 1.4 * 0.7 * 0.7 / 1000.0
    assert flooded.sum() * voxel_ml > profile_for("ivc").max_volume_ml and (flooded & other).sum() > 0.5 * other.sum()
    assert state.rough and _block_uniform(flooded, np.ones(SHAPE, dtype=bool))  # written as level blocks

    session.interact("ivc", Interaction(negative=np.array([[32, 64, 131]])))  # in the other ball
    cut = session.mask("ivc")
    assert not state.rough and cut.sum() * voxel_ml <= profile_for("ivc").max_volume_ml
    assert (cut & other).sum() < 0.05 * other.sum()
    far_side = target & (np.indices(SHAPE)[2] < 40)  # the half of the target away from the cut
    assert not _block_uniform(cut, far_side ^ ndimage.binary_erosion(far_side))  # its boundary was refined too
    assert 2 * (cut & target).sum() / (cut.sum() + target.sum()) > 0.9


def _slab(shell_hu: float) -> tuple[np.ndarray, np.ndarray]:
    """A 100 HU slab (z < 20) in 0 HU, the layer just outside it at ``shell_hu``; the mask is the slab."""
    image = np.zeros((40, 24, 24), dtype=np.float32)
    image[:20] = 100.0
    image[20] = shell_hu
    mask = np.zeros(image.shape, dtype=bool)
    mask[:20] = True
    return mask, image


def test_a_boundary_voxel_that_is_mostly_object_joins() -> None:
    mask, image = _slab(45.0)  # 45 % object: a partial-volume voxel the rater counts as object
    assert snap_native(mask, image)[20, 4:-4, 4:-4].all()
    mask, image = _slab(25.0)  # a quarter object stays out
    assert not snap_native(mask, image)[20, 4:-4, 4:-4].any()


def test_bright_inclusions_leave_the_object() -> None:
    grid = np.indices((40, 40, 40)) - 19.5
    ball = np.sqrt((grid**2).sum(axis=0)) <= 15.0
    tube = (np.abs(grid[0]) <= 1.5) & (np.abs(grid[1]) <= 1.5)  # a contrast-filled vessel through it
    image = np.where(ball, 60.0, -100.0)
    image[tube & ball] = 200.0
    image = ndimage.gaussian_filter(image, 0.7) + np.random.default_rng(1).normal(0, 8, ball.shape)
    out = snap_native(ball, image.astype(np.int16))
    inner_tube = tube & ndimage.binary_erosion(ball, iterations=3)
    assert (out & inner_tube).sum() < 0.2 * inner_tube.sum()
    parenchyma = ndimage.binary_erosion(ball, iterations=3) & ~ndimage.binary_dilation(tube, iterations=2)
    assert (out & parenchyma).sum() > 0.99 * parenchyma.sum()


def test_a_blob_update_with_nothing_to_add_does_not_depend_on_the_opening() -> None:
    """The session skips the (costly) opening of the candidate when a blob's interaction adds nothing
    (negative clicks, background strokes): the update must not read it."""
    image, a, b, bridge = two_blobs()
    hu = sitk.GetArrayFromImage(image).astype(np.float32)
    smooth = ndimage.gaussian_filter(hu, 1.0)
    gradient = ndimage.gaussian_gradient_magnitude(hu, 1.0)
    none = np.zeros((0, 3), dtype=int)
    inp = RoiInputs(smooth=smooth, gradient_of=lambda mask: gradient, spacing=np.array([2.0, 2.0, 2.0]),
                    positive=np.array([[20, 32, 20]]), negative=np.array([[20, 32, 48]]),
                    intervals=[Interval(60.0, 25.0, 95.0)], previous=a | b | bridge,
                    fresh_positive=none, fresh_negative=np.array([[20, 32, 48]]))
    liver = profile_for("liver")
    assert liver.open_mm > 0
    with_opening = segment(inp, liver)
    assert (with_opening & b).sum() < 0.5 * b.sum()  # the negative click did take the leak back
    assert np.array_equal(with_opening, segment(inp, replace(liver, open_mm=0.0)))


def _object_with_a_touching_slab(wall_edge: float) -> tuple[RoiInputs, np.ndarray, np.ndarray]:
    """A 60 HU object (textured, 3 mm voxels) whose corner lobe (55 HU, 7.5 % of it) lies behind a thin
    wall of gradient ``wall_edge`` times the object's median gradient (1.4: a faint vessel wall, no edge;
    2.5: an edge), and under the lobe a slab of 55 HU touching it without any edge (a muscle layer next
    to the liver). The last result holds the object and the slab; a negative click goes into the slab."""
    shape = (30, 48, 80)
    z, y, x = np.indices(shape)
    obj = (z >= 3) & (z < 27) & (y >= 4) & (y < 30) & (x >= 4) & (x < 76)
    lobe = obj & (x >= 62) & (y >= 20)
    wall = obj & (((x == 61) & (y >= 19)) | ((y == 19) & (x >= 61)))
    slab = (z >= 3) & (z < 12) & (y >= 30) & (y < 40) & (x >= 62) & (x < 76)
    rng = np.random.default_rng(0)
    hu = np.full(shape, -100.0)
    hu[obj] = 60.0
    hu[lobe | slab] = 55.0
    texture = ndimage.gaussian_filter(rng.normal(0, 1, shape), 3.0)
    hu += 4.0 * texture / texture.std() * obj + rng.normal(0, 12, shape)
    gradient = ndimage.gaussian_gradient_magnitude(hu, 1.0)
    gradient[wall] = wall_edge * np.median(gradient[obj])
    click = np.array([[6, 35, 69]])
    inp = RoiInputs(smooth=ndimage.gaussian_filter(hu, 1.0), gradient_of=lambda mask: gradient,
                    spacing=np.array([3.0, 3.0, 3.0]), positive=np.array([[15, 12, 30]]), negative=click,
                    intervals=[Interval(60.0, 30.0, 90.0)], previous=obj | slab,
                    fresh_positive=np.zeros((0, 3), dtype=int), fresh_negative=click)
    return inp, lobe, slab


def test_a_negative_click_does_not_flood_an_object_it_cannot_tell_apart_without_an_edge() -> None:
    """The click's watershed runs through the faint wall into the lobe (far beyond its contest zone): the
    lobe's median is nearer the clicked slab's than the object's, but slab and object differ by less than
    the object's own spread, so without an edge between them the lobe stays and only the slab near the
    click goes. With an edge along the cut the whole lobe may go."""
    liver = profile_for("liver")
    inp, lobe, slab = _object_with_a_touching_slab(wall_edge=1.4)
    out = segment(inp, liver)
    assert (out & lobe).sum() > 0.95 * lobe.sum()
    assert (out & slab).sum() < 0.9 * slab.sum()  # the contested part of the slab, around the click, went
    inp, lobe, slab = _object_with_a_touching_slab(wall_edge=2.5)
    out = segment(inp, liver)
    assert (out & lobe).sum() < 0.1 * lobe.sum() and (out & slab).sum() < 0.1 * slab.sum()


def test_the_opening_keeps_an_object_cut_by_the_faces_and_still_cuts_thin_bridges() -> None:
    """An object running out of the field of view keeps its cut face (a plain opening treats the outside
    as background and erodes it); a thin bridge reaching a face is still cut."""
    spacing = np.array([2.5, 2.0, 2.0])
    structure = ellipsoid(7.0, spacing)
    mask = np.zeros((30, 40, 40), dtype=bool)
    mask[:12, 5:35, 5:35] = True  # a slab of organ cut by the top face (z = 0)
    mask[12:, 18:21, 18:21] = True  # a 6 mm bridge from it down to the bottom face
    opened = open_extended(mask, structure)
    inner = opened[6]  # a cross-section well inside the slab (its corners rounded by the opening)
    assert inner[10:30, 10:30].all() and all(np.array_equal(opened[z], inner) for z in range(6))
    assert not opened[14:].any()
    plain = ndimage.binary_opening(mask, structure=structure)
    assert plain[0].sum() < 0.9 * inner.sum()  # what the plain opening did to the cut face

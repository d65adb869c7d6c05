"""The interactive engine on small volumes: grow, cut leaks, undo, neighbours, boxes, slices, vessels."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from interactive_volumes import blob_with_leak, dice, tree, tube_touching_ball, two_blobs
from medseg_server.bench.clicks import next_click
from medseg_server.interactive import Interaction, InteractionError, InteractiveSession, parse
from medseg_server.interactive.boxes import Box
from medseg_server.synth import LABELS, make_phantom


def pos(*zyx: int) -> Interaction:
    return Interaction(positive=np.array([zyx]))


def neg(*zyx: int) -> Interaction:
    return Interaction(negative=np.array([zyx]))


@pytest.fixture(scope="module")
def blobs():
    return two_blobs()


def test_click_inside_grows_the_object_and_reports_the_changed_box(blobs):
    img, a, b, bridge = blobs
    s = InteractiveSession(img)
    update = s.interact("tumour", pos(20, 32, 20))
    mask = s.mask("tumour")
    assert mask[a].mean() > 0.95  # the clicked blob is segmented
    assert update.voxels == int(mask.sum())
    changed = update.changed
    assert changed is not None
    inside = np.zeros_like(mask)
    inside[changed.slices] = True
    assert not (mask & ~inside).any()  # every segmented voxel lies in the reported box


def test_negative_click_removes_the_leak_and_undo_restores(blobs):
    img, a, b, bridge = blobs
    s = InteractiveSession(img)
    s.interact("tumour", pos(20, 32, 20))
    leaked = s.mask("tumour").copy()
    assert leaked[b].mean() > 0.9  # same intensity, thick bridge: the first click leaks into B
    s.interact("tumour", neg(20, 32, 48))
    cut = s.mask("tumour")
    assert cut[b].mean() < 0.1
    assert cut[a].mean() > 0.95
    s.undo()
    assert np.array_equal(s.mask("tumour"), leaked)
    s.undo()
    assert not s.mask("tumour").any()
    assert s.undo() is None


def test_neighbour_is_not_eroded_and_overwrite_is_explicit(blobs):
    img, a, b, bridge = blobs
    s = InteractiveSession(img)
    s.interact("tumour", pos(20, 32, 20))
    s.interact("tumour", neg(20, 32, 48))
    first = s.mask("tumour").copy()
    s.interact("ivc", pos(20, 32, 48))  # the neighbour, same intensity, touching through the bridge
    assert np.array_equal(s.mask("tumour"), first)
    assert s.mask("ivc")[b].mean() > 0.9
    assert not (s.mask("ivc") & first).any()
    s.interact("ivc", Interaction(positive=np.array([[20, 32, 24]]), overwrite=True))
    assert (s.mask("ivc") & first).any()  # only when asked


def test_box_bounds_the_result(blobs):
    img, a, b, bridge = blobs
    s = InteractiveSession(img)
    box = Box((8, 20, 8), (33, 45, 33))
    s.interact("tumour", Interaction(box=box))
    mask = s.mask("tumour")
    outside = np.ones_like(mask)
    outside[box.slices] = False
    assert not (mask & outside).any()
    assert dice(mask, a & ~outside) > 0.85


def test_reset_clears_one_target_and_is_undoable(blobs):
    img, a, b, bridge = blobs
    s = InteractiveSession(img)
    s.interact("tumour", pos(20, 32, 20))
    s.interact("tumour", neg(20, 32, 48))
    s.interact("ivc", pos(20, 32, 48))
    before = s.labels.copy()
    s.reset("tumour")
    assert not s.mask("tumour").any() and s.mask("ivc").any()
    s.undo()
    assert np.array_equal(s.labels, before)


def test_sparse_slices_fill_the_volume(blobs):
    img, a, b, bridge = blobs
    s = InteractiveSession(img)
    annotated = np.zeros_like(a)
    indices = [12, 20, 28]
    annotated[indices] = a[indices]
    inter = Interaction(mask=annotated, slices=[(0, i) for i in indices])
    s.interact("tumour", inter)
    mask = s.mask("tumour")
    assert dice(mask[12:29], a[12:29]) > 0.9  # between the slices: filled in
    assert not mask[b].any()  # and nothing runs off into the neighbour


def test_one_click_on_a_vessel_follows_its_branches():
    img, tube, blob = tree()
    s = InteractiveSession(img)
    s.interact("portal_vein", pos(20, 32, 12))  # on the trunk
    mask = s.mask("portal_vein")
    assert dice(mask, tube) > 0.8
    assert mask[20, 14, 50] or mask[20, 15, 49]  # reached the end of one branch
    assert mask[20, 50, 50] or mask[20, 49, 49]  # and of the other


@pytest.mark.parametrize("dark", [False, True])
def test_vessel_click_does_not_leak_into_a_thick_neighbour(dark):
    img, tube, ball = tube_touching_ball(dark=dark)
    s = InteractiveSession(img)
    s.interact("hepatic_veins", pos(20, 32, 14))  # on the tube, far from the ball
    mask = s.mask("hepatic_veins")
    assert mask[tube].mean() > 0.7  # followed the tube, bright (contrast) or dark (non-contrast) alike
    assert mask[ball].mean() < 0.1  # but the thick ball it runs into is cut off
    assert dice(mask, tube) > 0.7


def test_click_protocol_converges_on_the_leaky_pair(blobs):
    img, a, b, bridge = blobs
    s = InteractiveSession(img)
    pred = np.zeros_like(a)
    for _ in range(4):
        c = next_click(a, pred, np.array([2.0, 2.0, 2.0]))
        s.interact("tumour", pos(*c.zyx) if c.positive else neg(*c.zyx))
        pred = s.mask("tumour")
    assert dice(pred, a) > 0.9


def test_negative_click_in_a_small_leak_removes_the_leak_and_keeps_the_blob():
    img, blob, leak = blob_with_leak()
    s = InteractiveSession(img)
    s.interact("liver", pos(20, 32, 24))  # on the dark spot in the blob's centre
    first = s.mask("liver").copy()
    assert first[blob].mean() > 0.95 and first[leak].mean() > 0.7  # ran through the bridge into the leak
    s.interact("liver", neg(20, 32, 47))
    cut = s.mask("liver")
    assert cut[leak].mean() < 0.1  # the leak it was placed in is gone
    assert cut[blob].mean() >= 0.95  # the blob is kept
    assert not (cut & ~first).any()  # a negative click adds nothing


@pytest.mark.parametrize("seed", [0, 1])
def test_liver_dice_is_monotonic_under_the_click_protocol_on_a_tiny_phantom(seed):
    ph = make_phantom(seed, shape=(96, 96, 40), spacing=(4.0, 4.0, 6.0))
    gt = sitk.GetArrayFromImage(ph.label) == LABELS["liver"]
    s = InteractiveSession(ph.image)
    pred = np.zeros_like(gt)
    dices = []
    for _ in range(8):
        c = next_click(gt, pred, np.array([6.0, 4.0, 4.0]))
        s.interact("liver", pos(*c.zyx) if c.positive else neg(*c.zyx))
        pred = s.mask("liver")
        dices.append(dice(pred, gt))
    assert all(b >= a - 0.01 for a, b in zip(dices, dices[1:], strict=False)), dices  # no click makes it worse
    assert dices[-1] > 0.89, dices


@pytest.mark.parametrize("params, message", [
    ({"foreground": [[70, 1, 1]]}, "outside the image"),
    ({"foreground": [[1, 2]]}, "voxel coordinates"),
    ({"foreground": [[float("nan"), 1, 1]]}, "NaN"),
    ({"scribbles": {"foreground": [], "background": []}}, "no voxel"),
    ({"roi": [1, 2, 3]}, "roi"),
    ({"roi": [90, 99, 90, 99, 90, 99]}, "outside"),
    ({"mask": "label"}, "uploaded 'label'"),
    ({"slices": {"axis": "q", "indices": [1]}}, "slices"),
])
def test_bad_interactions_are_refused(blobs, params, message):
    img, *_ = blobs
    with pytest.raises(InteractionError, match=message):
        parse(params, (40, 64, 64))


def test_empty_interaction_and_unknown_target_are_refused(blobs):
    img, *_ = blobs
    s = InteractiveSession(img)
    with pytest.raises(InteractionError, match="holds no"):
        s.interact("tumour", Interaction())
    with pytest.raises(InteractionError, match="unknown target"):
        s.interact("spleen", pos(1, 1, 1))

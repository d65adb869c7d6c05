"""Scribbles and "annotate a few slices" through the server's interactive engine, on slicer-core.

A real server (one per module) and a real MRML scene: the scribble segments painted in Slicer go
to the engine session as voxel lists, with the segment as it is now as the mask to refine; the
selected segment is updated in place. A segment painted on a few slices comes back filled in 3D.
"""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk
from scipy import ndimage

from testdata import make_ct


@pytest.fixture
def controller(scene, module_server, tmp_path):
    from MedSegLib.mrml.controller import MedSegController

    c = MedSegController(scene, tmp_path / "work")
    c.connect(module_server.url, user="tester")
    assert c.engine_model() == "interactive"
    yield c
    c.disconnect()


@pytest.fixture
def case(scene, controller):
    """A CT volume node, its truth, and a segmentation holding the upper half of the liver only."""
    from MedSegLib.labels import segment_specs
    from MedSegLib.mrml import segments, volumes

    image, truth = make_ct(seed=3)
    labels = sitk.GetArrayFromImage(truth)
    liver = labels > 0
    volume = volumes.add_volume(scene, image, "engine case")
    segmentation = scene.AddNewNodeByClass("vtkMRMLSegmentationNode")
    segmentation.SetReferenceImageGeometryParameterFromVolumeNode(volume)
    grid = volumes.volume_grid(volume)
    specs = {s.name: s for s in segment_specs(None)}
    cut = int(np.median(np.argwhere(liver)[:, 0]))
    upper = liver.copy()
    upper[cut:] = False
    segments.ensure_segment(segmentation, specs["liver"])
    segments.set_segment_mask(segmentation, "liver", upper, grid)
    tumour = np.zeros_like(liver)
    tumour[1:3, 1:3, 1:3] = True  # another segment, far away: must stay as it is
    segments.ensure_segment(segmentation, specs["tumour"])
    segments.set_segment_mask(segmentation, "tumour", tumour, grid)
    inner = ndimage.binary_erosion(liver, iterations=3) & ~ndimage.binary_dilation(labels == 2, iterations=3)
    return volume, segmentation, grid, liver, upper, tumour, inner, cut


def test_scribbles_grow_and_shrink_the_selected_segment(controller, case):
    from MedSegLib.mrml import segments

    volume, segmentation, grid, liver, upper, tumour, inner, cut = case
    segments.add_scribble_segments(segmentation, volume)
    # a foreground stroke inside the missing lower half of the liver
    fg = np.zeros_like(liver)
    painted_slice = cut + 4
    row = int(np.median(np.nonzero(liver[painted_slice])[0])) - 3
    fg[painted_slice, row, :] = True
    fg &= inner
    assert fg.sum() >= 5
    segments.set_segment_mask(segmentation, "foreground_scribbles", fg, grid)

    count = controller.scribbles(volume, segmentation, "liver")
    grown = segments.segment_mask(segmentation, "liver", volume)
    assert count == grown.sum()
    assert grown[fg].all()  # the painted voxels are in
    lower = liver.copy()
    lower[:cut] = False
    assert (grown & lower).sum() > 0.75 * lower.sum()  # it grew into the painted half
    assert (grown & liver)[painted_slice].sum() > 0.8 * liver[painted_slice].sum()
    assert (grown & ~liver).sum() < 0.1 * liver.sum()  # without leaking out of the liver
    assert np.array_equal(segments.segment_mask(segmentation, "tumour", volume), tumour)  # others untouched
    assert not segments.segment_mask_or_empty(segmentation, "foreground_scribbles", volume).any()  # consumed
    engine = controller.state.engine
    assert engine is not None and engine.image_id == "engine_case" and "liver" in engine.synced

    # a background stroke across the segment removes what it covers, and nothing is added
    bg = np.zeros_like(liver)
    bg[cut - 3, :, int(np.median(np.nonzero(grown[cut - 3])[1]))] = True
    bg &= grown
    segments.set_segment_mask(segmentation, "background_scribbles", bg, grid)
    count2 = controller.scribbles(volume, segmentation, "liver")
    shrunk = segments.segment_mask(segmentation, "liver", volume)
    assert count2 == shrunk.sum() < count
    assert not shrunk[bg].any()
    assert not (shrunk & ~grown).any()

    # undo goes back step by step (the scribbles come back with the segment as it was)
    assert controller.undo(segmentation) == "Scribbles"
    assert np.array_equal(segments.segment_mask(segmentation, "liver", volume), grown)
    assert controller.undo(segmentation) == "Scribbles"
    assert np.array_equal(segments.segment_mask(segmentation, "liver", volume), upper)


def test_a_few_painted_slices_are_filled_in_3d(controller, case):
    from MedSegLib.mrml import segments

    volume, segmentation, grid, liver, *_ = case
    planes = np.flatnonzero(liver.any(axis=(1, 2)))
    keep = np.zeros(liver.shape[0], bool)
    keep[planes[1]:planes[-1]:4] = True  # every 4th axial slice
    sparse = liver & keep[:, None, None]
    segments.set_segment_mask(segmentation, "liver", sparse, grid)

    request = controller.capture_slices(segmentation, volume, "liver")
    assert request.body["slices"] == {"axis": "z", "indices": np.flatnonzero(keep).tolist()}
    answer = controller.fetch_engine(controller.capture_volume(volume), request)
    count = controller.apply_engine(answer, volume, segmentation, request)
    filled = segments.segment_mask(segmentation, "liver", volume)
    assert count == filled.sum() > 3 * sparse.sum()
    dice = 2 * (filled & liver).sum() / (filled.sum() + liver.sum())
    assert dice > 0.9, dice
    assert controller.state.undo.next_label == "Slices"


def test_an_expired_engine_session_is_reopened(controller, case):
    from MedSegLib.errors import ClientError
    from MedSegLib.mrml import segments

    volume, segmentation, grid, liver, upper, tumour, inner, cut = case
    segments.add_scribble_segments(segmentation, volume)
    fg = inner & (np.arange(liver.shape[0]) == cut + 2)[:, None, None]
    segments.set_segment_mask(segmentation, "foreground_scribbles", fg, grid)
    controller.scribbles(volume, segmentation, "liver")
    old = controller.state.engine.session_id
    controller.client.close_interactive_session(old)  # as if its lease ran out on the server
    segments.set_segment_mask(segmentation, "foreground_scribbles", fg, grid)
    count = controller.scribbles(volume, segmentation, "liver")
    assert controller.state.engine.session_id != old and count > upper.sum()
    with pytest.raises(ClientError) as gone:
        controller.client.reset_interactive_target(old, "liver")
    assert gone.value.status == 410


def test_nothing_to_send_is_refused_before_the_request(controller, case):
    from MedSegLib.mrml import segments

    volume, segmentation, grid, liver, upper, *_ = case
    segments.add_scribble_segments(segmentation, volume)
    with pytest.raises(ValueError, match="paint foreground or background"):
        controller.capture_scribbles(segmentation, volume, "liver")
    with pytest.raises(ValueError, match="at least two slices"):
        controller.capture_slices(segmentation, volume, "liver")  # painted on every slice it spans
    with pytest.raises(ValueError, match="select the segment"):
        controller.capture_slices(segmentation, volume, "")

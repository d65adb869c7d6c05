"""The module's whole workflow on a real server and a real slicer-core scene (synthetic CT).

Connect -> Auto on a local volume (uploaded because the server lacks it) -> include/exclude
clicks from markups -> undo -> Submit -> Next sample -> cohort progress -> uncertainty overlay ->
3D plan (server reconstruction and local fallback) -> export. Training is covered by the module
self test (test_medseg_module.py).
"""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from testdata import make_ct


def _dice(a: np.ndarray, b: np.ndarray) -> float:
    return 2.0 * np.logical_and(a, b).sum() / max(a.sum() + b.sum(), 1)


def _ras_of(image: sitk.Image, index) -> list[float]:
    x, y, z = image.TransformContinuousIndexToPhysicalPoint([float(v) for v in index])
    return [-x, -y, z]


@pytest.fixture
def controller(scene, live_server, tmp_path):
    from MedSegLib.mrml.controller import MedSegController

    c = MedSegController(scene, tmp_path / "work")
    server = c.connect(live_server.url, user="tester")
    assert "threshold_liver" in server.models
    yield c
    c.disconnect()


def test_full_workflow(scene, controller, tmp_path):
    from MedSegLib.jobs import JobRunner
    from MedSegLib.mrml import markups, segments, tables, volumes

    state = controller.state
    assert state.model == "threshold_liver" and state.connected
    state.interactive_model = "threshold_liver"  # deterministic click behaviour (the baseline model)
    image, truth = make_ct(seed=11)
    truth_liver = sitk.GetArrayFromImage(truth) > 0
    volume = volumes.add_volume(scene, image, "local case")
    segmentation = scene.AddNewNodeByClass("vtkMRMLSegmentationNode")

    # Auto, on the worker thread, applied when drained (as the QTimer does)
    runner = JobRunner()
    try:
        captured = controller.capture_volume(volume)
        applied = []
        runner.submit(
            "Auto", lambda job: controller.fetch_auto(captured),
            on_done=lambda answer: applied.append(controller.apply_auto(answer, volume, segmentation)),
            on_error=lambda exc: pytest.fail(f"Auto failed: {exc}"),
        )
        assert runner.wait_idle(60)
    finally:
        runner.shutdown()
    assert applied == [["liver"]]
    assert volume.GetAttribute("MedSeg.ImageId") == "local_case"
    liver = segments.segment_mask(segmentation, "liver", volume)
    assert _dice(liver, truth_liver) > 0.8
    assert segmentation.GetSegmentation().GetSegment("liver").GetName() == "Liver"

    # an exclude click on the liver removes the connected region it is on (threshold model)
    negative = scene.AddNewNodeByClass("vtkMRMLMarkupsFiducialNode", "exclude")
    positive = scene.AddNewNodeByClass("vtkMRMLMarkupsFiducialNode", "include")
    parenchyma = np.argwhere(sitk.GetArrayFromImage(truth) == 1)  # (k, j, i), not on the vessel
    mid = parenchyma.mean(axis=0)
    off_vessel = parenchyma[np.abs(parenchyma[:, 1] - mid[1]) > 4]
    centre = off_vessel[np.argmin(np.linalg.norm(off_vessel - mid, axis=1))][::-1]  # (i, j, k)
    positive.AddControlPoint(*_ras_of(image, centre))
    count = controller.interact(volume, segmentation, positive, None, segment="liver")
    clicked = segments.segment_mask(segmentation, "liver", volume)
    i, j, k = centre
    assert count == clicked.sum() > 1000 and clicked[k, j, i]  # the region under the click
    assert _dice(clicked, truth_liver) > 0.5
    negative.AddControlPoint(*_ras_of(image, centre))
    assert controller.interact(volume, segmentation, None, negative, segment="liver") == 0
    assert segments.segment_mask(segmentation, "liver", volume).sum() == 0
    assert controller.undo(segmentation) == "Clicks"
    assert np.array_equal(segments.segment_mask(segmentation, "liver", volume), clicked)
    assert controller.undo(segmentation) == "Clicks"
    assert np.array_equal(segments.segment_mask(segmentation, "liver", volume), liver)  # back to Auto
    markups.clear_points(positive, negative)
    assert positive.GetNumberOfControlPoints() == 0

    # clicks outside the volume are refused before anything is sent
    positive.AddControlPoint(*_ras_of(image, (500, 0, 0)))
    from MedSegLib.geometry import OutsideVolume

    with pytest.raises(OutsideVolume):
        controller.interact(volume, segmentation, positive, None)

    # Submit: final label, saved version shown
    saved = controller.submit(volume, segmentation)
    assert saved["image"] == "local_case" and saved["version"] == 1 and saved["user"] == "tester"
    back = sitk.ReadImage(str(controller.client.download_label("local_case", tmp_path / "lab")))
    assert np.array_equal(sitk.GetArrayViewFromImage(back) > 0, liver)
    assert set(np.unique(sitk.GetArrayViewFromImage(back))) == {0, 1}

    # cohort progress
    cohort = controller.fetch_cohort()
    assert (cohort.total, cohort.labelled, cohort.by_user) == (4, 1, {"tester": 1})
    assert cohort.summary == "1 / 4 labelled (tester: 1)"

    # Next sample: an unlabelled case from the strategy, loaded as a volume node
    node = controller.next_sample("first")
    assert state.sample.image_id == "case_000" and state.sample.strategy == "first"
    assert node.GetAttribute("MedSeg.ImageId") == "case_000"
    server_image = sitk.ReadImage(str(controller.workdir / "samples" / "case_000" / "case_000.nii.gz"))
    assert volumes.volume_grid(node).dims == server_image.GetSize()
    assert len(state.undo) == 0  # a new case starts a new history

    # no uncertainty map yet (no trained network); a map file becomes an overlay on the image grid
    assert controller.fetch_uncertainty("case_000") is None
    array = sitk.GetArrayFromImage(server_image).astype(np.float32)
    unc = sitk.GetImageFromArray((array - array.min()) / (np.ptp(array) or 1.0))
    unc.CopyInformation(server_image)
    unc_path = tmp_path / "case_000.mc_dropout.nii.gz"
    sitk.WriteImage(unc, str(unc_path))
    overlay = controller.apply_uncertainty(unc_path, node)
    assert overlay.GetName() == "case_000 uncertainty"
    assert volumes.volume_grid(overlay).same_as(volumes.volume_grid(node))
    assert overlay.GetDisplayNode().GetWindow() == pytest.approx(1.0, abs=1e-3)
    wrong = sitk.Image(3, 3, 3, sitk.sitkFloat32)
    sitk.WriteImage(wrong, str(tmp_path / "wrong.nii.gz"))
    with pytest.raises(ValueError, match="uncertainty map"):
        controller.apply_uncertainty(tmp_path / "wrong.nii.gz", node)

    # Train now: started here; its progress polling to DONE is exercised by the module self test
    # (test_medseg_module.py), which runs the same controller calls, so CI trains only once.

    # 3D plan from the server's reconstruction of the current segmentation (not yet submitted)
    bundle = controller.fetch_recon(controller.capture_volume(volume), controller.capture_label(segmentation, volume))
    plan = controller.apply_recon(bundle, volume)
    names = [n.GetName() for n in plan.models]
    assert "Liver" in names
    liver_model = plan.models[names.index("Liver")]
    assert liver_model.GetDisplayNode().GetOpacity() < 1
    # the model lies on the liver in RAS: its centre is the segment's centre
    centre_ras = volumes.volume_grid(volume).to_ras(np.argwhere(liver).mean(axis=0)[::-1][None])[0]
    bounds = np.reshape(liver_model.GetPolyData().GetBounds(), (3, 2)).mean(axis=1)
    assert np.allclose(bounds, centre_ras, atol=3.0), (bounds, centre_ras)
    rows = tables.table_rows(plan.table)
    voxel_ml = np.prod(image.GetSpacing()) / 1000
    assert ("Liver", "volume_ml", f"{liver.sum() * voxel_ml:.4g}") in rows
    exported = controller.export_plan(tmp_path / "export", "stl")
    assert {p.name for p in exported} >= {"Liver.stl", "measures.csv"}

    # without a server reconstruction, a local plan from the segmentation's closed surfaces
    plan = controller.local_plan(segmentation, volume)
    assert [n.GetName() for n in plan.models] == ["Liver"]
    assert plan.models[0].GetPolyData().GetNumberOfPoints() > 100
    assert tables.table_rows(plan.table) == [("Liver", "volume_ml", f"{liver.sum() * voxel_ml:.1f}")]


def test_clicks_with_the_interactive_engine(scene, controller):
    """The deepedit-type model: an include click grows the selected segment through the clicked voxel."""
    from MedSegLib.mrml import segments, volumes

    if "interactive" not in controller.state.server.models:
        pytest.skip("the server has no interactive engine")
    assert controller.state.interactive_model == "interactive"
    image, truth = make_ct(seed=5)
    volume = volumes.add_volume(scene, image, "interactive case")
    segmentation = scene.AddNewNodeByClass("vtkMRMLSegmentationNode")
    parenchyma = np.argwhere(sitk.GetArrayFromImage(truth) == 1)
    k, j, i = parenchyma[len(parenchyma) // 2]
    positive = scene.AddNewNodeByClass("vtkMRMLMarkupsFiducialNode")
    positive.AddControlPoint(*_ras_of(image, (i, j, k)))
    count = controller.interact(volume, segmentation, positive, None, segment="liver")
    mask = segments.segment_mask(segmentation, "liver", volume)
    assert count == mask.sum() > 0 and mask[k, j, i]
    assert segmentation.GetSegmentation().GetSegment("liver").GetName() == "Liver"


def test_a_second_volume_with_the_same_name_gets_its_own_id(scene, controller):
    from MedSegLib.mrml import volumes

    first = volumes.add_volume(scene, make_ct(seed=1)[0], "case")
    second = volumes.add_volume(scene, make_ct(seed=2)[0], "case")
    id1 = controller.ensure_on_server(controller.capture_volume(first))
    id2 = controller.ensure_on_server(controller.capture_volume(second))
    assert id1 == "case" and id2.startswith("case-") and id2 != id1
    controller.remember_image_id(first, id1)
    assert controller.ensure_on_server(controller.capture_volume(first)) == "case"  # no upload again


def test_connect_errors_are_clear(scene, tmp_path):
    import socket

    from MedSegLib.errors import ServerUnavailable
    from MedSegLib.mrml.controller import MedSegController
    from MedSegLib.workflow import IncompatibleServer, ServerDescription

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    c = MedSegController(scene, tmp_path)
    with pytest.raises(ServerUnavailable, match="cannot reach"):
        c.connect(f"http://127.0.0.1:{port}", timeout=2)
    assert not c.state.connected and c.client is None
    with pytest.raises(IncompatibleServer, match="outdated"):
        ServerDescription.from_info({"models": {}, "config": {"x": 1}})
    with pytest.raises(IncompatibleServer, match="models"):
        ServerDescription.from_info({"name": "nginx"})


def test_clicks_say_when_the_segment_started_from_the_model(scene, controller):
    """With the server's model prior on (the default), a liver click on a phantom the starter weights
    never saw reports, once the model has answered, that the segment started from ``auto_seg``."""
    import time

    from medseg_server.synth import make_phantom
    from MedSegLib.mrml import segments, volumes

    phantom = make_phantom(100, shape=(128, 128, 48), spacing=(3.0, 3.0, 5.0))
    truth = sitk.GetArrayFromImage(phantom.label) == 1
    volume = volumes.add_volume(scene, phantom.image, "prior case")
    segmentation = scene.AddNewNodeByClass("vtkMRMLSegmentationNode")
    k, j, i = np.argwhere(truth).mean(axis=0).round().astype(int)
    assert truth[k, j, i]
    positive = scene.AddNewNodeByClass("vtkMRMLMarkupsFiducialNode")
    positive.AddControlPoint(*_ras_of(phantom.image, (i, j, k)))
    captured = controller.capture_volume(volume)
    interaction = controller.capture_interaction(volume, positive, None, None, "liver")
    deadline = time.monotonic() + 90
    answer = controller.fetch_interaction(captured, interaction)  # opens the server session: model starts
    while not answer.from_model and time.monotonic() < deadline:
        time.sleep(1.0)
        answer = controller.fetch_interaction(captured, interaction)
    assert answer.from_model.startswith("auto_seg v")
    controller.apply_interaction(answer, volume, segmentation, "liver")
    assert _dice(segments.segment_mask(segmentation, "liver", volume), truth) > 0.8

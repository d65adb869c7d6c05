"""``medseg bench interactive`` pieces: click protocol, the GrowCut baseline, the CLI dispatcher."""

from __future__ import annotations

import json

import numpy as np
import SimpleITK as sitk
from scipy import ndimage as ndi

from interactive_volumes import two_blobs
from medseg_server.bench import interactive as bench
from medseg_server.bench.ceiling import threshold_ceiling
from medseg_server.bench.clicks import dice, first_box, next_click, noc
from medseg_server.bench.growcut import GrowCut, needs_new_extent, seed_extent, working_extent
from medseg_server.cli import build_parser, main


def test_click_protocol_picks_the_centre_of_the_largest_error():
    gt = np.zeros((20, 20, 20), dtype=bool)
    gt[2:17, 2:17, 2:17] = True
    first = next_click(gt, np.zeros_like(gt), np.ones(3))
    assert first.positive and first.zyx == (9, 9, 9)
    pred = gt.copy()
    pred[:, :, 17:20] = True  # a false-positive slab
    pred[5:7, 5:7, 5:7] = False  # a small hole
    click = next_click(gt, pred, np.ones(3))
    assert not click.positive and click.zyx[2] >= 17
    assert next_click(gt, gt, np.ones(3)) is None
    assert first_box(gt) == ((2, 2, 2), (17, 17, 17))
    assert noc([0.5, 0.82, 0.91], 0.9) == 3 and noc([0.5], 0.9, cap=20) == 20


def test_engine_and_growcut_run_on_the_same_clicks():
    img, a, b, bridge = two_blobs()
    img, a = img[2:40, 14:50, 6:34], a[6:34, 14:50, 2:40]  # blob A and the start of the bridge: GrowCut stays quick
    eng = bench.run_engine(img, a, "tumour", clicks=2, box=False)
    assert len(eng["dice"]) == 2 and eng["dice"][-1] > 0.85
    gc = bench.run_growcut(img, a, eng["events"], clicks=2)
    assert len(gc["dice"]) == 2 and 0.0 <= gc["dice"][-1] <= 1.0
    assert gc["mask"].shape == a.shape and gc["mask"].any()  # real vtkImageGrowCutSegment output
    summary = bench.summarise(eng, 3)
    assert {"noc80", "noc90", "latency_p50_s", "open_s"} <= set(summary)


def test_growcut_keeps_one_filter_and_updates_it_like_slicer():
    img, a, b, bridge = two_blobs()
    image, truth = sitk.GetArrayFromImage(img)[6:34, 14:50, 2:40], a[6:34, 14:50, 2:40]
    clicks = [((14, 18, 18), True), ((14, 18, 34), False), ((10, 14, 14), True)]
    kept, fresh = GrowCut(image), GrowCut(image, incremental=False)
    for zyx, positive in clicks:
        kept.add_click(zyx, positive)
        fresh.add_click(zyx, positive)
        updated, scratch = kept.segment(), fresh.segment()
        assert updated[zyx] == positive and scratch[zyx] == positive
        # the incremental update differs from a run from scratch only where paths tie: as good a mask
        assert dice(updated, truth) >= dice(scratch, truth) - 0.05
    assert kept.resets == 1 and fresh.resets == len(clicks)  # the volume faces are seeds: one extent, one filter
    seeds = np.zeros((40, 40, 40), dtype=bool)
    seeds[10:20, 10:20, 10:20] = True
    extent = seed_extent(seeds)
    assert [v.tolist() for v in working_extent(extent, seeds.shape)] == [[7, 7, 7], [23, 23, 23]]
    assert not needs_new_extent(working_extent(extent, seeds.shape), extent, seeds.shape)
    seeds[21, 15, 15] = True  # a seed within 3 voxels of the extent's edge: Slicer starts again
    assert needs_new_extent(working_extent(extent, seeds.shape), seed_extent(seeds), seeds.shape)


def test_bench_cli_is_discovered_and_writes_json(tmp_path):
    img, a, b, bridge = two_blobs()
    label = sitk.GetImageFromArray(a.astype(np.uint8) * 7)
    label.CopyInformation(img)
    sitk.WriteImage(img, str(tmp_path / "ct.nii.gz"))
    sitk.WriteImage(label, str(tmp_path / "gt.nii.gz"))
    args = build_parser().parse_args(["bench", "interactive", "--image", str(tmp_path / "ct.nii.gz"), "--label",
                                      str(tmp_path / "gt.nii.gz"), "--classes", "tumour=7", "--clicks", "2",
                                      "--box", "--out", str(tmp_path / "r.json")])
    assert args.func is bench.run
    assert main(["bench", "interactive", "--image", str(tmp_path / "ct.nii.gz"), "--label", str(tmp_path / "gt.nii.gz"),
                 "--classes", "tumour=7", "--clicks", "2", "--box", "--out", str(tmp_path / "r.json")]) == 0
    result = json.loads((tmp_path / "r.json").read_text())
    entry = result["cases"][0]["classes"]["tumour"]["engine"]
    assert len(entry["dice"]) == 2 and entry["dice"][0] > 0.8  # the box alone finds the blob
    ceiling = result["cases"][0]["classes"]["tumour"]["ceiling"]
    assert ceiling["margin_voxels"] == 1 and 0.5 < ceiling["dice"] <= 1.0


def test_threshold_ceiling_is_the_best_single_threshold_near_the_truth():
    rng = np.random.default_rng(0)
    image = rng.normal(0.0, 1.0, (20, 20, 20))
    truth = np.zeros(image.shape, bool)
    truth[5:15, 5:15, 5:15] = True
    image[truth] += 10.0  # separated by 10 noise deviations: one threshold is exact
    sharp = threshold_ceiling(image, truth)
    assert sharp.dice == 1.0 and 1.0 < sharp.threshold < 11.0
    faint = image.copy()
    faint[truth] -= 9.0  # 1 deviation apart: no threshold separates it
    overlapping = threshold_ceiling(faint, truth)
    assert 0.5 < overlapping.dice < 0.9
    # the brute force over every threshold agrees with the sorted counts
    zone = ndi.binary_dilation(truth)
    best = max(2 * (truth & zone & (faint >= t)).sum() / ((zone & (faint >= t)).sum() + truth.sum())
               for t in np.unique(faint[zone]))
    assert abs(best - overlapping.dice) < 1e-12
    assert threshold_ceiling(image, np.zeros_like(truth)).dice == 0.0


def test_one_session_keeps_finished_classes_as_neighbours(tmp_path):
    """``--one-session``: classes annotated one after the other in one session; the second cannot
    take the first one's voxels (here the bridged blobs: a click in B alone would flood into A)."""
    img, a, b, bridge = two_blobs()
    label = sitk.GetImageFromArray((a * 5 + b * 4).astype(np.uint8))
    label.CopyInformation(img)
    sitk.WriteImage(img, str(tmp_path / "ct.nii.gz"))
    sitk.WriteImage(label, str(tmp_path / "gt.nii.gz"))
    common = ["bench", "interactive", "--image", str(tmp_path / "ct.nii.gz"), "--label", str(tmp_path / "gt.nii.gz"),
              "--classes", "tumour=5,ivc=4", "--clicks", "3"]
    assert main([*common, "--one-session", "--save-masks", str(tmp_path / "one"), "--out", str(tmp_path / "one.json")]) == 0
    result = json.loads((tmp_path / "one.json").read_text())
    assert result["one_session"] and result["cases"][0]["open_s"] >= 0
    masks = {name: sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / "one" / f"ct_{name}_engine.nii.gz"))) > 0
             for name in ("tumour", "ivc")}
    assert not (masks["tumour"] & masks["ivc"]).any() and masks["ivc"][b].mean() > 0.8
    assert "open_s" not in result["cases"][0]["classes"]["ivc"]["engine"]  # the case's session was opened once
    assert main([*common, "--out", str(tmp_path / "apart.json")]) == 0  # each class in its own session
    apart = json.loads((tmp_path / "apart.json").read_text())
    first_click = {key: r["cases"][0]["classes"]["ivc"]["engine"]["dice"][0] for key, r in (("one", result),
                                                                                            ("apart", apart))}
    assert first_click["apart"] < 0.6 < 0.8 < first_click["one"]  # alone it floods through the bridge into A

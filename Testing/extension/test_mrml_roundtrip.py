"""Real CT and its label through slicer-core nodes, the client and the real server, and back."""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk

from MedSegLib.geometry import grid_of

TOTALSEG = {"liver": 5, "portal_vein": 64, "ivc": 63, "aorta": 52}


def _totalseg_subset(label_path) -> sitk.Image:
    label = sitk.ReadImage(str(label_path))
    array = sitk.GetArrayFromImage(label)
    array[~np.isin(array, list(TOTALSEG.values()))] = 0
    out = sitk.GetImageFromArray(array)
    out.CopyInformation(label)
    return out


def test_real_ct_volume_and_segmentation_round_trip_through_the_server(scene, client, real_ct, tmp_path):
    from MedSegLib.mrml import segments, volumes

    ct_path = real_ct / "totalseg" / "example_ct.nii.gz"
    ct = sitk.ReadImage(str(ct_path))
    volume = volumes.load_volume(scene, ct_path, name="example ct")
    assert volumes.volume_grid(volume).same_as(grid_of(ct), 1e-6)

    # volume node -> NIfTI -> server -> download: voxels, geometry and orientation preserved
    upload = volumes.write_volume(volume, tmp_path / "upload" / "example_ct.nii.gz")
    image_id = client.upload_image(upload, image_id="example_ct")
    downloaded = sitk.ReadImage(str(client.download_image(image_id, tmp_path / "down")))
    assert downloaded.GetSize() == ct.GetSize()
    assert np.allclose(downloaded.GetOrigin(), ct.GetOrigin(), atol=1e-4)
    assert np.allclose(downloaded.GetSpacing(), ct.GetSpacing(), atol=1e-6)
    assert np.allclose(downloaded.GetDirection(), ct.GetDirection(), atol=1e-6)
    assert np.array_equal(sitk.GetArrayViewFromImage(downloaded), sitk.GetArrayViewFromImage(ct))

    # label -> segmentation node (named, coloured segments) -> label image -> server -> download
    label = _totalseg_subset(real_ct / "totalseg" / "example_seg_fast_force_split.nii.gz")
    segmentation = scene.AddNewNodeByClass("vtkMRMLSegmentationNode")
    ids = segments.load_label(segmentation, label, volume, TOTALSEG)
    assert ids == ["liver", "aorta", "ivc", "portal_vein"]
    seg = segmentation.GetSegmentation()
    assert seg.GetSegment("liver").GetName() == "Liver"
    assert np.allclose(seg.GetSegment("portal_vein").GetColor(), (0.00, 0.59, 0.80))
    assert "SCT^10200004^Liver" in segments.segment_terminology(seg.GetSegment("liver"))
    liver = segments.segment_mask(segmentation, "liver", volume)
    assert liver.sum() == (sitk.GetArrayViewFromImage(label) == 5).sum() > 1000

    exported = segments.label_image(segmentation, volume, TOTALSEG)
    assert np.array_equal(sitk.GetArrayViewFromImage(exported), sitk.GetArrayViewFromImage(label))
    label_path = tmp_path / "label.nii.gz"
    volumes.write_image(exported, label_path)
    saved = client.save_label(image_id, label_path, tag="final")
    assert saved.get("version") == 1, saved
    back = sitk.ReadImage(str(client.download_label(image_id, tmp_path / "labels")))
    assert np.array_equal(sitk.GetArrayViewFromImage(back), sitk.GetArrayViewFromImage(label))
    assert np.allclose(back.GetOrigin(), ct.GetOrigin(), atol=1e-4)
    assert np.allclose(back.GetDirection(), ct.GetDirection(), atol=1e-6)


def test_seg_nrrd_written_and_read_back(scene, tmp_path):
    from MedSegLib.mrml import segments, volumes
    from mrml_testdata import oblique_image

    image = oblique_image(shape_zyx=(12, 14, 16))
    volume = volumes.add_volume(scene, image, "oblique")
    array = np.zeros((12, 14, 16), np.uint8)
    array[2:8, 3:9, 4:12] = 1
    array[4:6, 5:7, 6:8] = 5  # tumour inside the liver
    label = sitk.GetImageFromArray(array)
    label.CopyInformation(image)
    segmentation = scene.AddNewNodeByClass("vtkMRMLSegmentationNode", "S")
    segments.load_label(segmentation, label, volume, {"liver": 1, "tumour": 5})

    path = segments.write_seg_nrrd(segmentation, tmp_path / "case.seg.nrrd")
    reread = segments.read_seg_nrrd(scene, path)
    seg = reread.GetSegmentation()
    assert [seg.GetNthSegmentID(i) for i in range(seg.GetNumberOfSegments())] == ["liver", "tumour"]
    assert seg.GetSegment("tumour").GetName() == "Liver tumour"
    assert np.allclose(seg.GetSegment("tumour").GetColor(), (0.93, 0.82, 0.25))
    assert "108369006" in segments.segment_terminology(seg.GetSegment("tumour"))
    out = segments.label_image(reread, volume)  # MedSeg table values
    assert np.array_equal(sitk.GetArrayViewFromImage(out), array)


def test_update_one_segment_in_place_and_undo(scene):
    from MedSegLib.mrml import segments, volumes
    from mrml_testdata import oblique_image

    image = oblique_image()
    volume = volumes.add_volume(scene, image, "v")
    base = np.zeros((9, 11, 13), np.uint8)
    base[1:4, 1:4, 1:4] = 1
    base[6:8, 6:9, 6:10] = 2
    label = sitk.GetImageFromArray(base)
    label.CopyInformation(image)
    segmentation = scene.AddNewNodeByClass("vtkMRMLSegmentationNode")
    segments.load_label(segmentation, label, volume)
    before = segments.snapshot(segmentation)

    answer = np.zeros_like(base)
    answer[1:6, 1:6, 1:6] = 1  # the interactive result for "liver" only
    answer_image = sitk.GetImageFromArray(answer)
    answer_image.CopyInformation(image)
    count = segments.update_segment_from_label(segmentation, "liver", answer_image, volume, value=1)
    assert count == 125
    assert segments.segment_mask(segmentation, "liver", volume).sum() == 125
    assert segments.segment_mask(segmentation, "portal_vein", volume).sum() == (base == 2).sum()

    segments.restore(segmentation, before)
    assert segments.segment_mask(segmentation, "liver", volume).sum() == 27

    wrong = sitk.Image(4, 4, 4, sitk.sitkUInt8)
    try:
        segments.update_segment_from_label(segmentation, "liver", wrong, volume)
    except ValueError as exc:
        assert "size" in str(exc)
    else:
        raise AssertionError("a label on another grid was accepted")

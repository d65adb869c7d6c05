"""The DICOMweb datastore against a real Orthanc PACS on 127.0.0.1, loaded with real CT series.

Orthanc (Debian ``orthanc`` + ``orthanc-dicomweb``) is installed by scripts/install-system-deps.sh;
when it is missing these tests FAIL with that instruction, they are never skipped.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pydicom
import pytest
import requests
import SimpleITK as sitk

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from medseg_server.auth import UserStore  # noqa: E402
from medseg_server.datastore.dicom_seg import seg_to_label  # noqa: E402
from medseg_server.datastore.dicomweb import IMPORT_TAG, DicomWebDatastore  # noqa: E402
from medseg_server.labels import BY_VALUE  # noqa: E402
from orthanc_pacs import OrthancMissing, start_orthanc  # noqa: E402


@pytest.fixture
def pacs(tmp_path: Path, shared_real_ct: Path):
    """A fresh Orthanc with the TotalSegmentator CT series, dcmqi's 3-slice CT and its liver SEG."""
    try:
        server = start_orthanc(tmp_path / "orthanc")
    except OrthancMissing as exc:
        pytest.fail(str(exc))
    server.upload(shared_real_ct / "totalseg" / "example_ct_dicom")
    server.upload(shared_real_ct / "dcmqi" / "ct-3slice")
    server.upload(shared_real_ct / "dcmqi" / "liver.dcm")
    yield server
    server.stop()


def _series_by_count(ds: DicomWebDatastore, count: int) -> str:
    return next(i for i in ds.list_images() if ds.get_image_info(i).get("instances") == count)


def _seg_on_pacs(ds: DicomWebDatastore, sop_uid: str) -> pydicom.Dataset:
    found = ds.client.search_for_instances(search_filters={"SOPInstanceUID": sop_uid, "Modality": "SEG"})
    assert len(found) == 1, f"SEG {sop_uid} not on the PACS"
    rec = pydicom.Dataset.from_json(found[0])
    return ds.client.retrieve_instance(rec.StudyInstanceUID, rec.SeriesInstanceUID, sop_uid)


def test_list_fetch_segment_store_seg_and_read_back(pacs, tmp_path: Path, server_factory, shared_real_ct: Path) -> None:
    studies = tmp_path / "studies"
    studies.mkdir()
    (studies / ".medseg").mkdir()
    token = UserStore(studies / ".medseg" / "auth.sqlite").add("alice", "annotator")
    live = server_factory(studies, dicomweb=pacs.dicomweb, require_lease=False)
    auth = {"Authorization": f"Bearer {token}"}
    assert requests.get(f"{live.url}/datastore/?output=all", timeout=30).status_code == 401  # auth on with a PACS

    objects = requests.get(f"{live.url}/datastore/?output=all", headers=auth, timeout=60).json()["objects"]
    assert len(objects) == 2  # the two CT series; the SEG series is not an image
    series = next(k for k, v in objects.items() if v["image"]["info"]["instances"] == 20)
    assert objects[series]["image"]["info"]["series_description"] == "CT Body 3.0"

    # fetch: the JPEG 2000 lossless series, decoded, equals the same CT read straight from the files
    got = requests.get(f"{live.url}/datastore/image", params={"image": series}, headers=auth, timeout=120)
    assert got.status_code == 200, got.text
    image = sitk.ReadImage(_tmp_file(tmp_path, "img.nii.gz", got.content))
    assert image.GetSize() == (512, 512, 20)
    direct = sitk.ReadImage(sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(shared_real_ct / "totalseg" / "example_ct_dicom")))
    assert np.array_equal(sitk.GetArrayViewFromImage(image), sitk.GetArrayViewFromImage(direct))

    # segment: the server's threshold model on the PACS series, then submit the label (2 structures)
    inferred = requests.post(f"{live.url}/infer/threshold_liver", params={"image": series, "output": "image"},
                             headers=auth, timeout=300)
    assert inferred.status_code == 200, inferred.text
    label = sitk.ReadImage(_tmp_file(tmp_path, "lab.nii.gz", inferred.content))
    arr = sitk.GetArrayFromImage(label).astype(np.uint8)
    arr[arr > 0] = 1
    arr[8:11, 200:260, 200:260] = 5  # a "tumour" block
    assert (arr == 1).sum() > 1000
    submitted = sitk.GetImageFromArray(arr)
    submitted.CopyInformation(image)
    saved = requests.put(f"{live.url}/datastore/label", params={"image": series, "tag": "final"},
                         files={"label": ("l.nii.gz", _nifti(submitted))}, headers=auth, timeout=120)
    assert saved.status_code == 200, saved.text
    info = requests.get(f"{live.url}/datastore/label/info", params={"image": series}, headers=auth, timeout=30).json()
    assert info["user"] == "alice"
    seg_status = info["dicom_seg"]
    assert seg_status["stored"] is True, seg_status

    # read the SEG back from the PACS: references, segments, colours, voxels
    ctx = live.ctx
    seg = _seg_on_pacs(ctx.datastore, seg_status["sop_instance_uid"])
    assert seg.Modality == "SEG" and seg.SegmentationType == "BINARY"
    assert seg.ReferencedSeriesSequence[0].SeriesInstanceUID == series
    assert seg.StudyInstanceUID == objects[series]["image"]["info"]["study_uid"]
    referenced = {i.ReferencedSOPInstanceUID for i in seg.ReferencedSeriesSequence[0].ReferencedInstanceSequence}
    assert referenced == {h.SOPInstanceUID for h in ctx.datastore.source_headers(series)}
    segments = {s.SegmentNumber: s for s in seg.SegmentSequence}
    assert [s.SegmentLabel for s in segments.values()] == [BY_VALUE[1].display, BY_VALUE[5].display]
    liver = segments[1]
    assert liver.SegmentedPropertyTypeCodeSequence[0].CodeValue == BY_VALUE[1].snomed_type[0]
    assert liver.SegmentedPropertyTypeCodeSequence[0].CodingSchemeDesignator == "SCT"
    assert len(liver.RecommendedDisplayCIELabValue) == 3
    back = seg_to_label(seg, ctx.datastore.reference(series), ctx.datastore.source_headers(series))
    assert np.array_equal(sitk.GetArrayViewFromImage(back), arr)

    # the local versioned store has the same label (voxels), and our own SEG is not re-imported
    local = requests.get(f"{live.url}/datastore/label", params={"image": series}, headers=auth, timeout=60)
    stored = sitk.ReadImage(_tmp_file(tmp_path, "stored.nii.gz", local.content))
    assert np.array_equal(sitk.GetArrayViewFromImage(stored), arr)
    ctx.datastore.refresh()
    assert ctx.datastore.label_tags(series) == ["final"]


def test_foreign_dicom_seg_is_imported(pacs, tmp_path: Path, shared_real_ct: Path) -> None:
    """dcmqi's liver.dcm (old SRT codes, made by another tool) becomes the 'pacs' label of its CT."""
    ds = DicomWebDatastore(_studies(tmp_path), pacs.dicomweb)
    series = _series_by_count(ds, 3)
    assert ds.label_tags(series) == [IMPORT_TAG]
    imported = ds.get_label(series, IMPORT_TAG)
    assert imported.info["imported_from"]["sop_instance_uid"]
    got = sitk.ReadImage(str(imported.path))
    want = sitk.ReadImage(str(shared_real_ct / "dcmqi" / "liver_seg.nrrd"))
    want = sitk.Resample(want, got, sitk.Transform(), sitk.sitkNearestNeighbor, 0, sitk.sitkUInt8)
    a, b = sitk.GetArrayViewFromImage(got), sitk.GetArrayViewFromImage(want)
    assert set(np.unique(a)) == {0, 1}  # liver = 1 in MedSeg's table
    assert (b > 0).sum() > 100_000
    assert np.array_equal(a > 0, b > 0)
    # re-opening the datastore does not import it twice
    again = DicomWebDatastore(ds.root, pacs.dicomweb)
    assert len(again.label_versions(series, IMPORT_TAG)) == 1


def test_cache_is_bounded_and_follows_pacs_changes(pacs, tmp_path: Path) -> None:
    ds = DicomWebDatastore(_studies(tmp_path), pacs.dicomweb,
                           cache_bytes=1, refresh_s=0, import_segs=False)
    small, big = _series_by_count(ds, 3), _series_by_count(ds, 20)
    assert ds.read_image(small).GetSize()[2] == 3
    assert ds.read_image(big).GetSize()[2] == 20
    cached = [uid for _, _, uid in ds.cache.entries()]
    assert cached == [big]  # over budget: the least recently used series was evicted
    # the PACS changes: one slice of the small series is deleted -> the next read refetches
    instance = requests.get(f"{pacs.url}/series", timeout=30).json()
    orthanc_series = next(s for s in instance if requests.get(f"{pacs.url}/series/{s}", timeout=30)
                          .json()["MainDicomTags"]["SeriesInstanceUID"] == small)
    first = requests.get(f"{pacs.url}/series/{orthanc_series}", timeout=30).json()["Instances"][0]
    requests.delete(f"{pacs.url}/instances/{first}", timeout=30).raise_for_status()
    ds2 = DicomWebDatastore(ds.root, pacs.dicomweb, cache_bytes=1 << 30, refresh_s=0, import_segs=False)
    assert ds2.read_image(small).GetSize()[2] == 2


def test_pacs_down_keeps_the_label_and_sends_the_seg_later(pacs, tmp_path: Path) -> None:
    ds = DicomWebDatastore(_studies(tmp_path), pacs.dicomweb,
                           import_segs=False, refresh_s=0)
    series = _series_by_count(ds, 3)
    ref = ds.reference(series)
    arr = np.zeros(sitk.GetArrayViewFromImage(ref).shape, np.uint8)
    arr[:, 100:200, 150:260] = 1
    label = sitk.GetImageFromArray(arr)
    label.CopyInformation(ref)
    port, workdir = pacs.port, pacs.workdir
    pacs.stop(keep_storage=True)
    saved = ds.save_label_image(series, "final", label, user="bob")
    assert saved.info["dicom_seg"]["stored"] is False
    assert ds.get_label(series, "final").checksum == saved.checksum  # safe locally
    assert len(list(ds.outbox.glob("*.json"))) == 1
    restarted = start_orthanc(workdir, port=port)
    try:
        assert ds.flush_outbox() == 1
        info = ds.get_label(series, "final").info["dicom_seg"]
        assert info["stored"] is True
        seg = _seg_on_pacs(ds, info["sop_instance_uid"])
        back = seg_to_label(seg, ref, ds.source_headers(series))
        assert np.array_equal(sitk.GetArrayViewFromImage(back), arr)
        assert not list(ds.outbox.glob("*.json"))
    finally:
        restarted.stop()


# ------------------------------------------------------------------ helpers
def _studies(tmp_path: Path) -> Path:
    path = tmp_path / "studies"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _tmp_file(folder: Path, name: str, data: bytes) -> str:
    path = folder / name
    path.write_bytes(data)
    return str(path)


def _nifti(image: sitk.Image) -> bytes:
    from medseg_server.imageio import image_to_bytes

    return image_to_bytes(image, ".nii.gz")


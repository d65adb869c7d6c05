"""The embedded datastore: versions, validation, path tricks, crash safety."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from medseg_server import imageio
from medseg_server.datastore import InvalidId, InvalidUpload, LocalDatastore, NotFound
from medseg_server.datastore.errors import Conflict
from testdata import make_ct


def label_bytes(label: sitk.Image, suffix: str = ".nii.gz") -> bytes:
    return imageio.image_to_bytes(label, suffix)


def test_discovers_images_and_ignores_reserved_folders(studies: Path) -> None:
    (studies / "notes.txt").write_text("not an image")
    (studies / "labels").mkdir()
    store = LocalDatastore(studies)
    assert store.list_images() == ["case_000", "case_001", "case_002"]
    assert store.unlabelled_images() == store.list_images()


def test_every_version_is_kept_with_who_when_checksum(studies: Path) -> None:
    store = LocalDatastore(studies)
    _, label = make_ct(seed=0)
    first = store.save_label("case_000", "final", label_bytes(label), "a.nii.gz", user="alice")
    arr = sitk.GetArrayFromImage(label)
    arr[arr == 2] = 1
    second_img = sitk.GetImageFromArray(arr)
    second_img.CopyInformation(label)
    second = store.save_label("case_000", "final", label_bytes(second_img), "b.nii.gz", user="bob")
    assert (first.version, second.version) == (1, 2)
    versions = store.label_versions("case_000", "final")
    assert [(v.version, v.user) for v in versions] == [(1, "alice"), (2, "bob")]
    assert first.checksum != second.checksum
    assert store.get_label("case_000", "final").version == 2
    old = sitk.ReadImage(str(store.get_label("case_000", "final", version=1).path))
    assert np.array_equal(sitk.GetArrayFromImage(old), sitk.GetArrayFromImage(label))
    assert store.stats() == {"total": 3, "completed": 1, "label_tags": {"final": 1}, "train": 1}
    assert store.verify() == []


def test_label_values_and_geometry_are_preserved(studies: Path) -> None:
    store = LocalDatastore(studies)
    image = store.read_image("case_001")
    _, label = make_ct(seed=1)
    saved = store.save_label("case_001", "final", label_bytes(label, ".nrrd"), "seg.nrrd")
    back = sitk.ReadImage(str(saved.path))
    assert imageio.same_geometry(back, image)
    assert back.GetPixelID() == sitk.sitkUInt8
    assert np.array_equal(sitk.GetArrayFromImage(back), sitk.GetArrayFromImage(label))


def test_label_on_a_sub_box_of_the_grid_is_pasted(studies: Path) -> None:
    """Slicer's .seg.nrrd often covers only the segment's extent."""
    store = LocalDatastore(studies)
    _, label = make_ct(seed=0)
    crop = label[5:30, 4:35, 3:20]
    saved = store.save_label("case_000", "final", label_bytes(crop, ".nrrd"), "crop.seg.nrrd")
    back = sitk.GetArrayFromImage(sitk.ReadImage(str(saved.path)))
    full = sitk.GetArrayFromImage(label)
    assert np.array_equal(back[3:20, 4:35, 5:30], full[3:20, 4:35, 5:30])
    assert back.sum() == full[3:20, 4:35, 5:30].sum()


@pytest.mark.parametrize(
    "bad_id", ["../etc/passwd", "..", "a/b", "/abs", "a\\b", "x" * 200, "", "é", "case\x00", ".hidden", "a..b"]
)
def test_path_tricks_are_refused(studies: Path, bad_id: str) -> None:
    store = LocalDatastore(studies)
    with pytest.raises(InvalidId):
        store.get_label(bad_id, "final")
    if bad_id:  # an empty ID means "use the file name", as in MONAI Label
        with pytest.raises(InvalidId):
            store.add_image(bad_id, b"x", "x.nii.gz")


def test_bad_labels_are_refused_and_store_unchanged(studies: Path) -> None:
    store = LocalDatastore(studies)
    _, label = make_ct(seed=0)
    wrong = sitk.Image([10, 10, 10], sitk.sitkUInt8)
    nan = sitk.Cast(label, sitk.sitkFloat32)
    arr = sitk.GetArrayFromImage(nan)
    arr[0, 0, 0] = np.nan
    nan_img = sitk.GetImageFromArray(arr)
    nan_img.CopyInformation(label)
    negative = sitk.Cast(label, sitk.sitkInt16) - 3
    cases = {
        "geometry": label_bytes(wrong),
        "nan": label_bytes(nan_img, ".nrrd"),
        "negative": label_bytes(negative),
        "truncated": label_bytes(label)[:200],
        "garbage": os.urandom(2048),
    }
    for name, data in cases.items():
        filename = "l.nrrd" if name == "nan" else "l.nii.gz"  # NIfTI float writing drops NaN
        with pytest.raises(InvalidUpload):
            store.save_label("case_000", "final", data, filename)
        assert store.label_versions("case_000") == [], name
    with pytest.raises(InvalidUpload, match="unsupported file name"):
        store.save_label("case_000", "final", label_bytes(label), "label.png")
    with pytest.raises(NotFound):
        store.save_label("nope", "final", label_bytes(label), "l.nii.gz")
    assert not (studies / "labels").exists() or not list((studies / "labels").rglob("*.*"))


def test_image_upload_is_idempotent_and_never_overwrites(studies: Path) -> None:
    store = LocalDatastore(studies)
    image, _ = make_ct(seed=7)
    data = imageio.image_to_bytes(image)
    assert store.add_image("new_case", data, "upload.nii.gz") == "new_case"
    assert store.add_image("new_case", data, "upload.nii.gz") == "new_case"
    other = imageio.image_to_bytes(make_ct(seed=8)[0])
    with pytest.raises(Conflict):
        store.add_image("new_case", other, "upload.nii.gz")
    with pytest.raises(InvalidUpload, match="3D"):
        store.add_image("flat", imageio.image_to_bytes(sitk.Image([8, 8], sitk.sitkInt16)), "flat.nii.gz")
    assert "new_case" in store.list_images()
    assert "flat" not in store.list_images()


def test_zip_bomb_header_is_refused_before_decompression(studies: Path) -> None:
    """A NIfTI header declaring 2048^3 voxels is refused from the header alone."""
    import gzip
    import struct

    header = bytearray(352)
    struct.pack_into("<i", header, 0, 348)
    struct.pack_into("<8h", header, 40, 3, 2048, 2048, 2048, 1, 1, 1, 1)
    struct.pack_into("<h", header, 70, 4)  # int16
    struct.pack_into("<h", header, 72, 16)
    struct.pack_into("<8f", header, 76, 1, 1, 1, 1, 1, 1, 1, 1)
    struct.pack_into("<f", header, 108, 352)
    header[344:348] = b"n+1\x00"
    data = gzip.compress(bytes(header) + b"\x00" * 1024)
    store = LocalDatastore(studies)
    with pytest.raises(InvalidUpload, match="larger than"):
        store.add_image("bomb", data, "bomb.nii.gz")


def test_remove_moves_to_trash(studies: Path) -> None:
    store = LocalDatastore(studies)
    _, label = make_ct(seed=0)
    store.save_label("case_000", "final", label_bytes(label), "l.nii.gz")
    store.remove_image("case_000")
    assert "case_000" not in store.list_images()
    assert list((studies / ".medseg" / "trash").rglob("case_000.nii.gz"))
    with pytest.raises(NotFound):
        store.get_label("case_000", "final")


WRITER = r"""
import sys
from pathlib import Path
import SimpleITK as sitk
from medseg_server import imageio
from medseg_server.datastore import LocalDatastore
store = LocalDatastore(Path(sys.argv[1]))
label = sitk.ReadImage(sys.argv[2])
data = imageio.image_to_bytes(label)
i = 0
while True:
    v = store.save_label("case_000", "final", data, "l.nii.gz", user=f"w{i}")
    print(v.version, v.checksum, flush=True)
    i += 1
"""


def test_writer_killed_mid_write_leaves_a_consistent_store(studies: Path, tmp_path: Path) -> None:
    """SIGKILL a process that submits labels in a loop; every acknowledged version must be intact."""
    _, label = make_ct(seed=0, shape_zyx=(60, 120, 120))
    label_file = tmp_path / "label.nii.gz"
    sitk.WriteImage(label, str(label_file))
    big, _ = make_ct(seed=0, shape_zyx=(60, 120, 120))
    sitk.WriteImage(big, str(studies / "case_000.nii.gz"))
    rng = np.random.default_rng(1)
    acknowledged: dict[int, str] = {}
    for _ in range(4):
        proc = subprocess.Popen(
            [sys.executable, "-c", WRITER, str(studies), str(label_file)],
            stdout=subprocess.PIPE, text=True,
        )
        time.sleep(1.0 + float(rng.uniform(0.0, 1.5)))
        proc.send_signal(signal.SIGKILL)
        out, _ = proc.communicate()
        for line in out.splitlines():
            version, checksum = line.split()
            acknowledged[int(version)] = checksum
    assert len(acknowledged) >= 4, "writers made no progress"
    store = LocalDatastore(studies)  # reopening runs recovery
    assert store.verify() == []
    stored = {v.version: v.checksum for v in store.label_versions("case_000", "final")}
    for version, checksum in acknowledged.items():
        assert stored.get(version) == checksum
    assert not list(studies.rglob(".tmp-*"))
    files = {p.relative_to(studies).as_posix() for p in (studies / "labels").rglob("*") if p.is_file()}
    assert len(files) == len(stored)

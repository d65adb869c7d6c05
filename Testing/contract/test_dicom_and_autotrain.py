"""DICOM series folders as images, and automatic retraining after new final labels."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import numpy as np
import requests
import SimpleITK as sitk

from medseg_server import imageio
from testdata import make_ct


def test_dicom_series_folder_is_an_image(server_factory, tmp_path: Path, shared_real_ct: Path) -> None:
    studies = tmp_path / "studies"
    studies.mkdir()
    shutil.copytree(shared_real_ct / "totalseg" / "example_ct_dicom", studies / "ct_dicom")
    live = server_factory(studies)
    url = live.url
    assert requests.get(f"{url}/datastore/?output=stats", timeout=10).json()["total"] == 1
    r = requests.get(f"{url}/datastore/image?image=ct_dicom", timeout=60)
    assert r.status_code == 200 and 'filename="ct_dicom.nii.gz"' in r.headers["content-disposition"]
    volume = imageio.read_image_bytes(r.content, "ct_dicom.nii.gz")
    assert volume.GetSize() == (512, 512, 20)
    assert np.allclose(volume.GetSpacing(), (0.9765625, 0.9765625, 2.0))
    r = requests.post(f"{url}/infer/threshold_liver?image=ct_dicom&output=image", data={"params": "{}"}, timeout=120)
    assert r.status_code == 200
    label = imageio.read_image_bytes(r.content, "x.nii.gz")
    assert imageio.same_geometry(label, volume)
    r = requests.put(f"{url}/datastore/label?image=ct_dicom", files={"label": ("l.nii.gz", r.content)}, timeout=60)
    assert r.status_code == 200 and r.json()["version"] == 1


def test_auto_training_after_n_final_labels(server_factory, studies: Path) -> None:
    live = server_factory(studies, auto_train_every=2)
    url = live.url
    _, label = make_ct(seed=0)
    data = imageio.image_to_bytes(label)
    r = requests.put(f"{url}/datastore/label?image=case_000", files={"label": ("l.nii.gz", data)}, timeout=30)
    assert r.status_code == 200
    assert requests.get(f"{url}/train/", timeout=10).status_code == 404  # one label: not yet
    _, label1 = make_ct(seed=1)
    r = requests.put(f"{url}/datastore/label?image=case_001", files={"label": ("l.nii.gz", imageio.image_to_bytes(label1))}, timeout=30)
    assert r.status_code == 200
    deadline = time.monotonic() + 10
    while requests.get(f"{url}/train/", timeout=10).status_code == 404:
        assert time.monotonic() < deadline, "training was not triggered"
        time.sleep(0.1)
    assert live.ctx.train_runner.wait(120)
    record = requests.get(f"{url}/train/", timeout=10).json()
    assert record["status"] == "DONE" and record["request"]["trigger"].startswith("auto")
    assert record["result"]["cases"] == 2


def test_orientation_of_non_identity_direction_is_preserved(server_factory, tmp_path: Path) -> None:
    studies = tmp_path / "s"
    studies.mkdir()
    image, label = make_ct(seed=2)
    direction = (0.0, 1.0, 0.0, -1.0, 0.0, 0.0, 0.0, 0.0, 1.0)
    image.SetDirection(direction)
    label.SetDirection(direction)
    sitk.WriteImage(image, str(studies / "oblique.nrrd"))
    live = server_factory(studies)
    r = requests.put(f"{live.url}/datastore/label?image=oblique",
                     files={"label": ("l.nrrd", imageio.image_to_bytes(label, ".nrrd"))}, timeout=30)
    assert r.status_code == 200, r.text
    back = imageio.read_image_bytes(requests.get(f"{live.url}/datastore/label?label=oblique", timeout=10).content, "l.nii.gz")
    assert np.allclose(back.GetDirection(), direction)
    assert np.array_equal(sitk.GetArrayFromImage(back), sitk.GetArrayFromImage(label))

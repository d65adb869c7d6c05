"""``POST /recon/{image}`` on a real server: zip of meshes and report; bad labels get a 4xx."""

from __future__ import annotations

import io
import json
import zipfile

import numpy as np
import requests
import SimpleITK as sitk

from medseg_server import imageio


def _label_bytes(image: sitk.Image, arr: np.ndarray) -> bytes:
    lab = sitk.GetImageFromArray(arr.astype(np.uint8))
    lab.CopyInformation(image)
    return imageio.image_to_bytes(lab, ".nii.gz")


def test_recon_endpoint(live_server):
    ctx = live_server.ctx
    image_id = ctx.datastore.list_images()[0]
    image = ctx.datastore.read_image(image_id)
    z, y, x = np.indices(sitk.GetArrayViewFromImage(image).shape)
    arr = np.zeros(z.shape, np.uint8)
    arr[(z - 12) ** 2 / 64 + (y - 20) ** 2 / 144 + (x - 24) ** 2 / 196 <= 1] = 1  # liver
    arr[((y - 20) ** 2 + (x - 22) ** 2 <= 4) & (arr == 1)] = 2  # a vessel through it
    files = {"label": ("label.nii.gz", _label_bytes(image, arr), "application/octet-stream")}
    r = requests.post(f"{live_server.url}/recon/{image_id}", files=files,
                      data={"params": json.dumps({"plane": {"point": [0, 0, 0], "normal": [0, 0, 1]}})}, timeout=120)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(r.content)) as zf:
        names = set(zf.namelist())
        assert {"scene.gltf", "report.json", "report.html", "rendering.png", "meshes/liver.vtp"} <= names
        report = json.loads(zf.read("report.json"))
    voxel_ml = np.prod(image.GetSpacing()) / 1000
    assert report["structures"]["liver"]["volume_ml"] == round((arr == 1).sum() * voxel_ml, 3)
    assert report["structures"]["liver"]["surface"]["watertight"]
    assert "resection" in report

    # the same label saved in the datastore, read by tag
    ctx.datastore.save_label(image_id, "final", _label_bytes(image, arr), "label.nii.gz", "tester", {})
    r = requests.post(f"{live_server.url}/recon/{image_id}?tag=final", timeout=120)
    assert r.status_code == 200, r.text


def test_recon_endpoint_rejects_bad_labels(live_server):
    ctx = live_server.ctx
    image_id = ctx.datastore.list_images()[0]
    image = ctx.datastore.read_image(image_id)
    shape = sitk.GetArrayViewFromImage(image).shape
    url = f"{live_server.url}/recon/{image_id}"

    empty = np.zeros(shape, np.uint8)
    r = requests.post(url, files={"label": ("l.nii.gz", _label_bytes(image, empty))}, timeout=60)
    assert r.status_code == 422 and "nothing to reconstruct" in r.json()["detail"]

    one = empty.copy()
    one[3, 3, 3] = 1
    r = requests.post(url, files={"label": ("l.nii.gz", _label_bytes(image, one))}, timeout=60)
    assert r.status_code == 422

    wrong = sitk.GetImageFromArray(np.ones((5, 6, 7), np.uint8))
    r = requests.post(url, files={"label": ("l.nii.gz", imageio.image_to_bytes(wrong, ".nii.gz"))}, timeout=60)
    assert r.status_code == 422 and "geometry" in r.json()["detail"]

    r = requests.post(url, files={"label": ("l.nii.gz", _label_bytes(image, one))},
                      data={"params": json.dumps({"generation": "x"})}, timeout=60)
    assert r.status_code == 422
    r = requests.post(f"{live_server.url}/recon/no_such_image", timeout=60)
    assert r.status_code == 404
    r = requests.post(url, timeout=60)  # no label uploaded, none in the datastore
    assert r.status_code == 404
    r = requests.post(url + "?classes=liver", timeout=60)
    assert r.status_code == 422

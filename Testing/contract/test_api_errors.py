"""Bad requests get a clear 4xx and leave the store unchanged."""

from __future__ import annotations

from pathlib import Path

import pytest
import requests
import SimpleITK as sitk

from medseg_server import imageio
from testdata import make_ct


def snapshot(studies: Path) -> dict[str, bytes]:
    return {
        p.relative_to(studies).as_posix(): p.read_bytes()
        for p in studies.rglob("*")
        if p.is_file() and ".medseg" not in p.parts
    }


@pytest.mark.parametrize(
    "image_id", ["../case_000", "..%2F..%2Fetc%2Fpasswd", "a/b", "%00", "c%C3%A1se", "x" * 300, ".medseg"]
)
def test_path_tricks_answer_400(live_server, image_id: str) -> None:
    url = live_server.url
    for method, path in (("GET", "/datastore/image"), ("GET", "/datastore/image/info"), ("HEAD", "/datastore/image")):
        r = requests.request(method, f"{url}{path}?image={image_id}", timeout=10)
        assert r.status_code == 400, (method, path, r.status_code, r.text)
    r = requests.get(f"{url}/datastore/label?label={image_id}&tag=final", timeout=10)
    assert r.status_code == 400
    r = requests.get(f"{url}/datastore/label?label=case_000&tag={image_id}", timeout=10)
    assert r.status_code == 400


def test_bad_uploads_are_refused_and_nothing_changes(server_factory, studies: Path) -> None:
    live = server_factory(studies, max_upload_mb=0.05)
    url = live.url
    before = snapshot(studies)
    _, label = make_ct(seed=0)
    good_label = imageio.image_to_bytes(label)
    wrong_geometry = imageio.image_to_bytes(sitk.Image([5, 5, 5], sitk.sitkUInt8))
    cases = [
        ("PUT", "/datastore/label?image=case_000", {"label": ("l.nii.gz", wrong_geometry)}, {}, 422, "geometry"),
        ("PUT", "/datastore/label?image=case_000", {"label": ("l.nii.gz", good_label[:100])}, {}, 422, "truncated"),
        ("PUT", "/datastore/label?image=case_000", {"label": ("l.nii.gz", good_label)}, {"params": "{oops"}, 422, "JSON"),
        ("PUT", "/datastore/label?image=case_000", {"label": ("l.nii.gz", good_label)}, {"params": "[1]"}, 422, "object"),
        ("PUT", "/datastore/label?image=missing", {"label": ("l.nii.gz", good_label)}, {}, 404, "not found"),
        ("PUT", "/datastore/label?image=case_000", {"label": ("l.exe", good_label)}, {}, 422, "unsupported"),
        ("PUT", "/datastore/label?image=case_000", {"label": ("big.nii.gz", b"\0" * 200_000)}, {}, 413, "limit"),
        ("PUT", "/datastore/image?image=x", {"file": ("x.nii.gz", b"\x1f\x8b" + b"\0" * 100)}, {}, 422, "gzip"),
        ("POST", "/infer/threshold_liver", {}, {"params": "{}"}, 422, "image ID"),
        ("POST", "/infer/threshold_liver?image=case_000", {}, {"params": '{"foreground": [[1, 2]]}'}, 422, "[x, y, z]"),
        ("POST", "/infer/threshold_liver?image=case_000", {}, {"params": '{"foreground": [[1e999, 2, 3]]}'}, 422, "NaN"),
        ("POST", "/infer/threshold_liver?image=case_000", {}, {"params": '{"result_extension": ".exe"}'}, 422, "result_extension"),
        ("POST", "/infer/nope?image=case_000", {}, {}, 404, "not found"),
        ("POST", "/activelearning/nope", {}, {}, 404, "not found"),
        ("POST", "/train/nope", {}, {}, 404, "no trainer"),
    ]
    for method, path, files, data, status, words in cases:
        r = requests.request(method, f"{url}{path}", files=files or None, data=data or None, timeout=30)
        assert r.status_code == status, (path, r.status_code, r.text)
        assert words.lower() in str(r.json()["detail"]).lower(), r.text
    assert snapshot(studies) == before
    assert live.ctx.datastore.verify() == []
    assert requests.get(f"{url}/info/", timeout=10).status_code == 200


def test_declared_huge_body_is_refused_early(server_factory, studies: Path) -> None:
    live = server_factory(studies, max_upload_mb=1)
    # requests refuses a lying Content-Length, so speak HTTP directly
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", live.port, timeout=10)
    conn.putrequest("PUT", "/datastore/label?image=case_000")
    conn.putheader("Content-Type", "multipart/form-data; boundary=b")
    conn.putheader("Content-Length", str(10 * 1024**3))
    conn.endheaders()
    response = conn.getresponse()
    assert response.status == 413 and b"limit" in response.read()
    conn.close()

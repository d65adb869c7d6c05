"""The interactive engine over HTTP: sessions with leases, interactions, undo, /infer, bad input."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
import SimpleITK as sitk

from interactive_volumes import two_blobs
from livetools import LiveServer, free_port
from medseg_server.labels import LABELS


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """One real uvicorn server for the whole module (each test opens its own sessions)."""
    from medseg_server.settings import Settings

    folder = tmp_path_factory.mktemp("interactive") / "studies"
    folder.mkdir()
    img, *_ = two_blobs()
    sitk.WriteImage(img, str(folder / "blobs.nii.gz"), True)
    with LiveServer(Settings(studies=folder, port=free_port())) as live:
        yield live


@pytest.fixture(scope="module")
def shared_session(server) -> str:
    """A session the bad-input cases share: a refused interaction must leave it usable."""
    return _open(server.url)["session_id"]


def _open(url: str, **params) -> dict:
    r = httpx.post(f"{url}/interactive/sessions", params={"image": "blobs", **params}, timeout=60)
    assert r.status_code == 200, r.text
    return r.json()


def _interact(url: str, sid: str, params: dict, output: str = "json") -> httpx.Response:
    return httpx.post(f"{url}/interactive/sessions/{sid}/interact", params={"output": output},
                      data={"params": json.dumps(params)}, timeout=60)


def test_session_round_trip(server):
    info = _open(server.url)
    sid = info["session_id"]
    assert info["size"] == [64, 64, 40] and info["labels"]["tumour"] == 5
    r = _interact(server.url, sid, {"label": "tumour", "foreground": [[20, 32, 20]]}, output="all")
    assert r.status_code == 200 and r.headers["content-type"].startswith("multipart/form-data")
    assert b'name="params"' in r.content and b".nii.gz" in r.content
    r = _interact(server.url, sid, {"label": "tumour", "background": [[48, 32, 20]]})
    update = r.json()["update"]
    assert update["target"] == "tumour" and update["changed"] is not None
    lo, hi = update["changed"]["min"], update["changed"]["max"]
    assert lo[0] <= 48 < hi[0]  # the removed leak (x = 48) is in the changed box
    label = httpx.get(f"{server.url}/interactive/sessions/{sid}/label", timeout=60)
    assert label.status_code == 200
    path = Path(server.ctx.settings.studies).parent / "label.nii.gz"
    path.write_bytes(label.content)
    arr = sitk.GetArrayFromImage(sitk.ReadImage(str(path)))
    assert arr[20, 32, 20] == 5 and arr[20, 32, 48] == 0
    assert httpx.post(f"{server.url}/interactive/sessions/{sid}/undo", timeout=60).json()["update"]["target"] == "tumour"
    r = httpx.post(f"{server.url}/interactive/sessions/{sid}/reset", json={"label": "tumour"}, timeout=60)
    assert r.status_code == 200 and r.json()["update"]["voxels"] == 0
    assert httpx.get(f"{server.url}/interactive/sessions/{sid}", timeout=10).json()["undo_depth"] == 2  # two clicks, one undone, one reset
    assert httpx.delete(f"{server.url}/interactive/sessions/{sid}", timeout=10).status_code == 200
    assert httpx.get(f"{server.url}/interactive/sessions/{sid}", timeout=10).status_code == 410


def test_lease_expires_with_410_and_unknown_is_404(server):
    sid = _open(server.url, ttl=1)["session_id"]
    assert _interact(server.url, sid, {"label": "tumour", "foreground": [[20, 32, 20]]}).status_code == 200
    time.sleep(1.3)
    r = _interact(server.url, sid, {"label": "tumour", "foreground": [[20, 32, 20]]})
    assert r.status_code == 410 and "expired" in r.json()["detail"]
    assert httpx.get(f"{server.url}/interactive/sessions/00000000-0000-0000-0000-000000000000", timeout=10).status_code == 404


def test_concurrent_sessions_do_not_mix(server):
    sids = [_open(server.url)["session_id"] for _ in range(2)]
    clicks = [[20, 32, 20], [48, 32, 20]]
    labels = ["tumour", "ivc"]  # the two blobs touch through a bridge: different targets tell the sessions apart
    results: dict[int, httpx.Response] = {}

    def work(i: int) -> None:
        results[i] = _interact(server.url, sids[i], {"label": labels[i], "foreground": [clicks[i]]})

    threads = [threading.Thread(target=work, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert all(results[i].status_code == 200 for i in range(2))
    maps = []
    for sid in sids:
        data = httpx.get(f"{server.url}/interactive/sessions/{sid}/label", timeout=60).content
        p = Path(server.ctx.settings.studies).parent / f"{sid}.nii.gz"
        p.write_bytes(data)
        maps.append(sitk.GetArrayFromImage(sitk.ReadImage(str(p))))
    assert maps[0].sum() > 0 and maps[1].sum() > 0
    for got, name in zip(maps, labels, strict=True):  # each session holds its own target only
        assert set(np.unique(got).tolist()) == {0, LABELS[name]}


@pytest.mark.parametrize("params", [
    {"label": "tumour", "foreground": [[640, 1, 1]]},
    {"label": "tumour", "foreground": [["NaN", 1, 1]]},
    {"label": "tumour", "scribbles": {"foreground": [], "background": []}},
    {"label": "tumour"},
    {"label": "spleen", "foreground": [[1, 1, 1]]},
    {"foreground": [[1, 1, 1]]},
])
def test_bad_interactions_answer_4xx(server, shared_session, params):
    sid = shared_session
    body = json.dumps(params).replace('"NaN"', "NaN")
    r = httpx.post(f"{server.url}/interactive/sessions/{sid}/interact", data={"params": body}, timeout=60)
    assert 400 <= r.status_code < 500, r.text
    assert "detail" in r.json()
    assert httpx.get(f"{server.url}/interactive/sessions/{sid}", timeout=10).json()["undo_depth"] == 0  # nothing recorded


def test_infer_endpoint_as_the_slicer_plugin_calls_it(server):
    info = httpx.get(f"{server.url}/info/", timeout=10).json()
    assert info["models"]["interactive"]["type"] == "deepedit"
    assert "portal_vein" in info["models"]["interactive"]["labels"]
    params = {"label": "tumour", "foreground": [[20, 32, 20]], "background": [[48, 32, 20]],
              "result_extension": ".nrrd", "result_dtype": "uint8", "client_id": "user-xyz"}
    r = httpx.post(f"{server.url}/infer/interactive", params={"image": "blobs"},
                   data={"params": json.dumps(params)}, timeout=60)
    assert r.status_code == 200 and r.headers["content-type"].startswith("multipart/form-data")
    assert b".nrrd" in r.content
    # resending the same clicks (the plugin always sends them all) gives the same answer, JSON form
    r2 = httpx.post(f"{server.url}/infer/interactive", params={"image": "blobs", "output": "json"},
                    data={"params": json.dumps(params)}, timeout=60)
    first = r2.json()["update"]["voxels"]
    r3 = httpx.post(f"{server.url}/infer/interactive", params={"image": "blobs", "output": "json"},
                    data={"params": json.dumps(params)}, timeout=60)
    assert r3.json()["update"]["voxels"] == first > 0
    bad = httpx.post(f"{server.url}/infer/interactive", params={"image": "blobs"},
                     data={"params": json.dumps({"label": "tumour", "foreground": [[1, 2, 300]]})}, timeout=60)
    assert bad.status_code == 422

"""Learning loop on the live server: auto-segmentation, training versions, publishing rule, rollback,
uncertainty and active learning, and a training process killed mid-run."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import numpy as np
import pytest
import requests
import SimpleITK as sitk

from livetools import wait_task
from medseg_server.models.auto_seg import STARTER_DIR
from testdata import make_ct

FAST_TRAIN = {"iterations": 3, "val_every": 1000, "threads": 1}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture
def learning_studies(studies: Path) -> Path:
    """Five tiny CTs (case_000..case_004); the labels of the first three are submitted by the tests."""
    for i in (3, 4):
        image, _ = make_ct(seed=i)
        sitk.WriteImage(image, str(studies / f"case_{i:03d}.nii.gz"), True)
    return studies


def _submit_final(url: str, tmp: Path, ids: list[int]) -> None:
    for i in ids:
        _, label = make_ct(seed=i)
        path = tmp / f"label_{i}.nii.gz"
        sitk.WriteImage(label, str(path), True)
        with open(path, "rb") as fh:
            r = requests.put(f"{url}/datastore/label", params={"image": f"case_{i:03d}", "tag": "final"},
                             files={"label": (path.name, fh)}, data={"params": '{"user": "tester"}'}, timeout=60)
        assert r.status_code == 200, r.text


def _infer(url: str, image_id: str) -> dict:
    r = requests.post(f"{url}/infer/auto_seg", params={"image": image_id, "output": "json"}, timeout=120)
    assert r.status_code == 200, r.text
    return r.json()


def test_starter_weights_are_small_and_documented() -> None:
    files = {p.name: p.stat().st_size for p in STARTER_DIR.iterdir()}
    assert {"model.pt", "config.json", "model_card.json"} <= set(files)
    assert sum(files.values()) < 5 * 1024 * 1024
    card = json.loads((STARTER_DIR / "model_card.json").read_text())
    assert {"data", "iterations", "validation_dice"} <= set(card)


def test_auto_seg_answers_with_the_image_geometry(server_factory, learning_studies: Path, tmp_path: Path) -> None:
    live = server_factory(learning_studies)
    image, truth = make_ct(shape_zyx=(30, 44, 52), spacing=(0.9, 1.1, 2.5), origin=(12.0, -40.0, 100.5), seed=7)
    direction = (0.0, 1.0, 0.0, -1.0, 0.0, 0.0, 0.0, 0.0, 1.0)  # rotated in-plane
    image.SetDirection(direction)
    upload = tmp_path / "rotated.nii.gz"
    sitk.WriteImage(image, str(upload), True)
    from MedSegLib.client import MedSegClient

    client = MedSegClient(live.url, timeout=120)
    try:
        result = client.infer("auto_seg", file=upload)
    finally:
        client.close()
    out_path = result.save(tmp_path)
    label = sitk.ReadImage(str(out_path))
    assert label.GetSize() == image.GetSize()
    assert np.allclose(label.GetSpacing(), image.GetSpacing(), atol=1e-4)
    assert np.allclose(label.GetOrigin(), image.GetOrigin(), atol=1e-3)
    assert np.allclose(label.GetDirection(), direction, atol=1e-5)
    values = set(np.unique(sitk.GetArrayFromImage(label)).tolist())
    assert values <= {0, 1, 2, 3, 4, 5}
    assert result.params["model_version"] == 0 and result.params["label_names"]["liver"] == 1
    info = requests.get(f"{live.url}/info/", timeout=30).json()
    assert "auto_seg" in info["models"] and "auto_seg" in info["trainers"]
    bad = requests.post(f"{live.url}/infer/auto_seg", params={"image": "case_000"},
                        data={"params": '{"overlap": 3}'}, timeout=60)
    assert bad.status_code == 422
    # weights: download, refuse garbage, accept a state dict as a new published version
    weights = requests.get(f"{live.url}/model/auto_seg", timeout=30)
    assert weights.status_code == 200 and weights.content == (STARTER_DIR / "model.pt").read_bytes()
    r = requests.put(f"{live.url}/model/auto_seg", files={"file": ("w.pt", b"not weights")}, timeout=30)
    assert r.status_code == 422
    r = requests.put(f"{live.url}/model/auto_seg", files={"file": ("w.pt", weights.content)}, timeout=30)
    assert r.status_code == 200, r.text
    versions = requests.get(f"{live.url}/model/auto_seg/versions", timeout=30).json()
    assert versions["published"] == 1 and versions["versions"][-1]["source"] == "upload"


def test_versions_publish_refuse_rollback_and_active_learning(server_factory, learning_studies: Path,
                                                              tmp_path: Path) -> None:
    live = server_factory(learning_studies)
    url = live.url
    _submit_final(url, tmp_path, [0, 1, 2])
    # 1) a run allowed to be worse by up to 1.0 Dice is always published
    r = requests.post(f"{url}/train/auto_seg", json={**FAST_TRAIN, "tolerance": 1.0}, timeout=30)
    assert r.status_code == 200, r.text
    task = wait_task(url, "/train/")
    assert task["status"] == "DONE", task
    assert task["result"]["published"] is True and task["result"]["version"] == 1
    assert task["progress"]["epoch"] == 3
    versions = requests.get(f"{url}/model/auto_seg/versions", timeout=30).json()
    assert versions["published"] == 1
    v1 = versions["versions"][-1]
    assert v1["version"] == 1 and v1["validation_dice"] is not None and v1["baseline_dice"] is not None
    assert {d["image"] for d in v1["data"]} == {"case_000", "case_001", "case_002"}
    assert {d["split"] for d in v1["data"]} == {"train", "validation"}
    assert _infer(url, "case_003")["model_version"] == 1
    # 2) a run that must beat the published model by 1.0 Dice is refused: kept as a version, not served
    r = requests.post(f"{url}/train/auto_seg", json={**FAST_TRAIN, "tolerance": -1.0}, timeout=30)
    assert r.status_code == 200, r.text
    task = wait_task(url, "/train/")
    assert task["status"] == "DONE" and task["result"]["published"] is False and task["result"]["version"] == 2
    versions = requests.get(f"{url}/model/auto_seg/versions", timeout=30).json()
    assert versions["published"] == 1 and [v["version"] for v in versions["versions"]] == [0, 1, 2]
    assert _infer(url, "case_003")["model_version"] == 1
    # 3) rollback to the starter, then forward to the refused version
    for target in (0, 2):
        r = requests.post(f"{url}/model/auto_seg/rollback", json={"version": target}, timeout=60)
        assert r.status_code == 200 and r.json()["published"] == target
        assert _infer(url, "case_004")["model_version"] == target
    assert requests.post(f"{url}/model/auto_seg/rollback", json={"version": 99}, timeout=30).status_code == 404
    assert requests.post(f"{url}/model/auto_seg/rollback", json={"version": "x"}, timeout=30).status_code == 422
    assert requests.get(f"{url}/model/threshold_liver/versions", timeout=30).status_code == 404
    # 4) publishing version 1 started the uncertainty run over the unlabelled images
    scoring = wait_task(url, "/scoring/")
    assert scoring["status"] == "DONE", scoring
    scores = requests.get(f"{url}/uncertainty/", timeout=30).json()
    assert set(scores) == {"case_003", "case_004"}
    assert all(s["model_version"] == 1 and s["mc_dropout"] >= 0 and s["tta"] >= 0 for s in scores.values())
    vol = requests.get(f"{url}/uncertainty/case_003", params={"method": "tta"}, timeout=30)
    assert vol.status_code == 200
    entropy_path = tmp_path / "entropy.nii.gz"
    entropy_path.write_bytes(vol.content)
    entropy = sitk.ReadImage(str(entropy_path))
    image = sitk.ReadImage(str(learning_studies / "case_003.nii.gz"))
    assert np.allclose(entropy.GetOrigin(), image.GetOrigin()) and entropy.GetPixelID() == sitk.sitkFloat32
    assert requests.get(f"{url}/uncertainty/case_000", timeout=30).status_code == 404
    assert requests.get(f"{url}/uncertainty/case_003", params={"method": "x"}, timeout=30).status_code == 422
    # 5) the strategies name the most uncertain unlabelled image, say why, and skip excluded ones
    best = max(scores, key=lambda i: scores[i]["mc_dropout"])
    other = ({"case_003", "case_004"} - {best}).pop()
    pick = requests.post(f"{url}/activelearning/mc_dropout", json={}, timeout=30).json()
    assert pick["id"] == best and pick["reason"]["score"] == pytest.approx(scores[best]["mc_dropout"])
    pick = requests.post(f"{url}/activelearning/mc_dropout", json={"exclude": [best]}, timeout=30).json()
    assert pick["id"] == other
    assert requests.post(f"{url}/activelearning/tta", json={"exclude": [best, other]}, timeout=30).json() == {}
    # 6) the same run described the labelled images, so the diverse strategy measures against all three
    described = live.ctx.extras["uncertainty_store"].features(1)
    assert set(described) == {"case_000", "case_001", "case_002", "case_003", "case_004"}
    pick = requests.post(f"{url}/activelearning/mc_dropout_diverse", json={}, timeout=30).json()
    assert pick["id"] in {"case_003", "case_004"} and pick["reason"]["reference"] == 3
    assert pick["reason"]["distance"] > 0 and pick["reason"]["score"] == pytest.approx(scores[pick["id"]]["mc_dropout"])
    pick = requests.post(f"{url}/activelearning/mc_dropout_diverse", json={"exclude": [pick["id"]]}, timeout=30).json()
    assert pick["id"] in {"case_003", "case_004"} and pick["reason"]["reference"] == 4


def test_training_killed_mid_run_keeps_the_server_and_the_last_good_model(server_factory, learning_studies: Path,
                                                                         tmp_path: Path) -> None:
    live = server_factory(learning_studies, auto_train_every=3)
    url = live.url
    _submit_final(url, tmp_path, [0, 1])
    assert requests.get(f"{url}/train/", timeout=30).status_code == 404  # debounced: not after 2 labels
    _submit_final(url, tmp_path, [2])
    task = requests.get(f"{url}/train/", timeout=30).json()  # the third final label started a run
    assert task["name"] == "auto_seg" and task["request"]["trigger"] == "auto after case_002"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        progress = requests.get(f"{url}/train/", timeout=30).json().get("progress", {})
        if progress.get("stage") == "training" and progress.get("epoch", 0) >= 10:
            break
        time.sleep(0.5)
    else:
        pytest.fail("training never got going")
    os.kill(live.ctx.train_runner._proc.pid, signal.SIGKILL)  # the child dies as in an OOM kill
    assert live.ctx.train_runner.wait(30)
    task = requests.get(f"{url}/train/", timeout=30).json()
    assert task["status"] == "ERROR" and "exited" in task["error"]
    versions = requests.get(f"{url}/model/auto_seg/versions", timeout=30).json()
    assert versions["published"] == 0 and [v["version"] for v in versions["versions"]] == [0]
    assert requests.get(f"{url}/info/", timeout=30).status_code == 200
    assert _infer(url, "case_003")["model_version"] == 0
    # and the next run is accepted
    r = requests.post(f"{url}/train/auto_seg", json={**FAST_TRAIN, "tolerance": 1.0}, timeout=30)
    assert r.status_code == 200
    assert wait_task(url, "/train/")["status"] == "DONE"

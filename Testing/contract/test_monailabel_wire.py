"""The REST API answers requests shaped exactly as MONAI Label's Slicer plugin sends them."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from medseg_server import imageio
from slicer_plugin_wire import as_json, encode_multipart, parse_form_answer, q, send
from testdata import make_ct


def test_info_has_models_and_no_top_level_config(live_server) -> None:
    status, _, body = send(live_server.url, "GET", "/info/")
    info = as_json(body)
    assert status == 200
    assert "config" not in info  # the plugin refuses servers that send one
    model = info["models"]["threshold_liver"]
    assert model["type"] == "segmentation" and model["dimension"] == 3 and model["labels"] == {"liver": 1}
    assert {"random", "first"} <= set(info["strategies"])
    assert "threshold_liver" in info["trainers"]
    assert info["datastore"] == {"total": 3, "completed": 0, "label_tags": {}, "train": 0}
    assert as_json(send(live_server.url, "GET", "/auth/")[2])["enabled"] is False


def test_upload_via_legacy_path_with_windows_filename(live_server) -> None:
    image, _ = make_ct(seed=11)
    data = imageio.image_to_bytes(image)
    ctype, body = encode_multipart(
        {"params": json.dumps({"client_id": "user-xyz"})}, {"file": ("C:\\Users\\rad\\My scans\\Volume 1.nii.gz", data)}
    )
    status, _, answer = send(live_server.url, "PUT", f"/datastore/?image={q('Volume_1')}", body, ctype)
    assert status == 200, answer
    assert as_json(answer) == {"image": "Volume_1"}
    stored = live_server.ctx.datastore.read_image("Volume_1")
    assert np.array_equal(sitk.GetArrayFromImage(stored), sitk.GetArrayFromImage(image))
    assert imageio.same_geometry(stored, image)


def test_next_sample_save_label_and_datastore_all(live_server) -> None:
    status, _, body = send(live_server.url, "POST", "/activelearning/first", json.dumps({"client_id": "user-xyz"}).encode())
    sample = as_json(body)
    assert status == 200 and sample["id"] == "case_000" and sample["name"] == "case_000.nii.gz"
    assert Path(sample["path"]).exists()
    assert sample["strategy"]["first"]["client_id"] == "user-xyz"

    status, headers, data = send(live_server.url, "GET", f"/datastore/image?image={q(sample['id'])}")
    assert status == 200 and 'filename="case_000.nii.gz"' in headers["content-disposition"]

    _, label = make_ct(seed=0)
    params = {"label_info": [{"name": "liver", "idx": 1}], "client_id": "user-xyz"}
    ctype, body = encode_multipart(
        {"params": json.dumps(params)}, {"label": ("/tmp/slicer/label.nii.gz", imageio.image_to_bytes(label))}
    )
    status, _, answer = send(live_server.url, "PUT", f"/datastore/label?image={q('case_000')}", body, ctype)
    assert status == 200, answer
    saved = as_json(answer)
    assert saved["tag"] == "final" and saved["version"] == 1 and saved["user"] == "user-xyz"

    everything = as_json(send(live_server.url, "GET", "/datastore/?output=all")[2])
    final = everything["objects"]["case_000"]["labels"]["final"]
    assert final["ext"] == ".nii.gz" and final["info"]["label_info"] == params["label_info"]
    stats = as_json(send(live_server.url, "GET", "/datastore/?output=stats")[2])
    assert stats["completed"] == 1 and stats["label_tags"] == {"final": 1}
    train = as_json(send(live_server.url, "GET", "/datastore/?output=train")[2])
    assert len(train) == 1 and Path(train[0]["label"]).exists()

    status, headers, data = send(live_server.url, "GET", "/datastore/label?label=case_000&tag=final")
    assert status == 200 and "filename=" in headers["content-disposition"]
    assert np.array_equal(
        sitk.GetArrayFromImage(imageio.read_image_bytes(data, "l.nii.gz")), sitk.GetArrayFromImage(label)
    )
    first = as_json(send(live_server.url, "POST", "/activelearning/first", b"{}")[2])
    assert first["id"] == "case_001"  # labelled images are not handed out again


def test_infer_answers_multipart_the_plugin_can_read(live_server) -> None:
    params = {"result_extension": ".nrrd", "result_dtype": "uint8", "client_id": "user-xyz"}
    ctype, body = encode_multipart({"params": json.dumps(params)}, {})
    status, headers, answer = send(live_server.url, "POST", f"/infer/threshold_liver?image={q('case_001')}", body, ctype)
    assert status == 200, answer
    assert headers["content-type"].startswith("multipart/form-data")
    form, files = parse_form_answer(headers, answer)
    result = json.loads(form["params"])
    assert result["label_names"] == {"liver": 1}
    (filename, data), = files.items()
    assert filename.endswith(".nrrd")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / filename
        path.write_bytes(data)
        label = sitk.ReadImage(str(path))
    image = live_server.ctx.datastore.read_image("case_001")
    assert imageio.same_geometry(label, image)
    assert label.GetPixelID() == sitk.sitkUInt8
    _, truth = make_ct(seed=1)
    pred = sitk.GetArrayFromImage(label) > 0
    ref = sitk.GetArrayFromImage(truth) > 0
    dice = 2 * (pred & ref).sum() / (pred.sum() + ref.sum())
    assert dice > 0.8, dice


def test_infer_with_clicks_and_uploaded_file(live_server) -> None:
    image, _ = make_ct(seed=3)
    params = {"foreground": [[14, 20, 12]], "background": [], "label": "liver", "result_extension": ".nii.gz"}
    ctype, body = encode_multipart(
        {"params": json.dumps(params)}, {"file": ("D:\\data\\scan.nii.gz", imageio.image_to_bytes(image))}
    )
    status, headers, answer = send(live_server.url, "POST", "/infer/threshold_liver", body, ctype)
    assert status == 200, answer
    _, files = parse_form_answer(headers, answer)
    label = imageio.read_image_bytes(next(iter(files.values())), "x.nii.gz")
    assert sitk.GetArrayFromImage(label)[12, 20, 14] == 1


def test_session_lifecycle(live_server) -> None:
    import requests

    image, _ = make_ct(seed=4)
    files = [("files", ("scan.nii.gz", imageio.image_to_bytes(image)))]
    r = requests.put(f"{live_server.url}/session/", files=files, data={"client_id": "user-xyz"}, timeout=60)
    assert r.status_code == 200, r.text
    session_id = r.json()["session_id"]
    assert requests.get(f"{live_server.url}/session/{session_id}", timeout=10).json()["name"] == session_id
    ctype, body = encode_multipart({"params": "{}"}, {})
    status, _, _ = send(live_server.url, "POST", f"/infer/threshold_liver?session_id={session_id}", body, ctype)
    assert status == 200
    assert requests.delete(f"{live_server.url}/session/{session_id}", timeout=10).status_code == 200
    assert requests.get(f"{live_server.url}/session/{session_id}", timeout=10).status_code == 404
    assert requests.get(f"{live_server.url}/session/not-a-uuid", timeout=10).status_code == 404


def test_training_learns_window_in_background_and_reports(live_server) -> None:
    import requests

    url = live_server.url
    assert requests.get(f"{url}/train/", timeout=10).status_code == 404
    for i in range(2):
        _, label = make_ct(seed=i)
        ctype, body = encode_multipart({"params": "{}"}, {"label": ("l.nii.gz", imageio.image_to_bytes(label))})
        assert send(url, "PUT", f"/datastore/label?image=case_00{i}", body, ctype)[0] == 200
    before = requests.get(f"{url}/info/", timeout=10).json()["models"]["threshold_liver"]["config"]
    started = requests.post(f"{url}/train/threshold_liver", json={"client_id": "user-xyz"}, timeout=30)
    assert started.status_code == 200, started.text
    assert started.json()["status"] == "RUNNING"
    assert live_server.ctx.train_runner.wait(120)
    record = requests.get(f"{url}/train/", timeout=10).json()
    assert record["status"] == "DONE", record
    assert record["progress"]["epoch"] == 2 and record["details"]
    after = requests.get(f"{url}/info/", timeout=10).json()["models"]["threshold_liver"]["config"]
    assert after != before
    # the tiny phantom's liver is 60 HU (+ 180 HU vessel counted as background): window hugs 60
    assert 20 < after["window_low"] < 60 < after["window_high"] < 110
    weights = requests.get(f"{url}/model/threshold_liver", timeout=10)
    assert weights.status_code == 200 and json.loads(weights.content)["window"][0] == after["window_low"]
    history = requests.get(f"{url}/train/?all=true", timeout=10).json()
    assert [h["status"] for h in history] == ["DONE"]


def test_train_conflict_and_stop(live_server) -> None:
    import requests

    url = live_server.url
    _, label = make_ct(seed=0)
    ctype, body = encode_multipart({"params": "{}"}, {"label": ("l.nii.gz", imageio.image_to_bytes(label))})
    send(url, "PUT", "/datastore/label?image=case_000", body, ctype)
    from testjobs import Sleeper

    live_server.ctx.trainers["sleeper"] = Sleeper()
    assert requests.post(f"{url}/train/sleeper", json={}, timeout=30).status_code == 200
    assert requests.post(f"{url}/train/threshold_liver", json={}, timeout=30).status_code == 429
    assert requests.get(f"{url}/train/?check_if_running=true", timeout=10).status_code == 200
    stopped = requests.delete(f"{url}/train/", timeout=30).json()
    assert stopped["status"] == "STOPPED"
    assert requests.get(f"{url}/train/?check_if_running=true", timeout=10).status_code == 404
    assert requests.get(f"{url}/info/", timeout=10).status_code == 200


def test_killed_training_process_leaves_server_and_model_intact(live_server) -> None:
    import requests

    from testjobs import SelfKiller

    url = live_server.url
    before = requests.get(f"{url}/info/", timeout=10).json()["models"]["threshold_liver"]["config"]
    live_server.ctx.trainers["selfkiller"] = SelfKiller()
    assert requests.post(f"{url}/train/selfkiller", json={}, timeout=30).status_code == 200
    assert live_server.ctx.train_runner.wait(60)
    record = requests.get(f"{url}/train/", timeout=10).json()
    assert record["status"] == "ERROR" and "exited" in record["error"]
    assert requests.get(f"{url}/info/", timeout=10).json()["models"]["threshold_liver"]["config"] == before


def test_scoring_dice_between_original_and_final(live_server) -> None:
    import requests

    url = live_server.url
    ctype, body = encode_multipart({"params": json.dumps({"save_label": True})}, {})
    assert send(url, "POST", "/infer/threshold_liver?image=case_002", body, ctype)[0] == 200
    _, label = make_ct(seed=2)
    ctype, body = encode_multipart({"params": "{}"}, {"label": ("l.nii.gz", imageio.image_to_bytes(label))})
    assert send(url, "PUT", "/datastore/label?image=case_002", body, ctype)[0] == 200
    assert requests.post(f"{url}/scoring/dice", json={}, timeout=30).status_code == 200
    assert live_server.ctx.scoring_runner.wait(120)
    record = requests.get(f"{url}/scoring/", timeout=10).json()
    assert record["status"] == "DONE", record
    score = record["result"]["scores"]["case_002"]
    assert 0.7 < score < 1.0
    info = requests.get(f"{url}/datastore/image/info?image=case_002", timeout=10).json()
    assert info["scoring"]["dice"] == score and info["checksum"].startswith("SHA256:")


def test_model_weights_upload_validated(live_server) -> None:
    import requests

    url = live_server.url
    bad = requests.put(f"{url}/model/threshold_liver", files={"file": ("w.json", b"{not json")}, timeout=10)
    assert bad.status_code == 422
    good = requests.put(f"{url}/model/threshold_liver", files={"file": ("w.json", b'{"window": [10, 90]}')}, timeout=10)
    assert good.status_code == 200 and good.json()["checksum"].startswith("SHA256:")
    assert requests.get(f"{url}/info/", timeout=10).json()["models"]["threshold_liver"]["config"]["window_low"] == 10
    assert requests.put(f"{url}/model/nope", files={"file": ("w", b"x")}, timeout=10).status_code == 404

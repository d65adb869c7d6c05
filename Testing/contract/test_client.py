"""MedSegLib's client against the real server: every call, and typed errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from MedSegLib.client import MedSegClient
from MedSegLib.errors import ClientError, NotFound, ServerUnavailable
from testdata import make_ct


def test_info_and_datastore(client: MedSegClient) -> None:
    info = client.info()
    assert "threshold_liver" in info["models"]
    assert client.datastore()["total"] == 3
    assert set(client.datastore("all")["objects"]) == {"case_000", "case_001", "case_002"}


def test_full_labelling_round_trip(client: MedSegClient, tmp_path: Path) -> None:
    sample = client.next_sample("first")
    assert sample["id"] == "case_000"
    image_file = client.download_image(sample["id"], tmp_path)
    assert image_file.name == "case_000.nii.gz"
    result = client.infer("threshold_liver", sample["id"], {"result_extension": ".nrrd"})
    assert result.filename.endswith(".nrrd") and result.params["label_names"] == {"liver": 1}
    label_file = result.save(tmp_path)
    label = sitk.ReadImage(str(label_file))
    image = sitk.ReadImage(str(image_file))
    assert label.GetSize() == image.GetSize()
    assert np.allclose(label.GetOrigin(), image.GetOrigin()) and np.allclose(label.GetSpacing(), image.GetSpacing())
    saved = client.save_label(sample["id"], label_file, params={"label_info": [{"name": "liver", "idx": 1}]})
    assert saved["version"] == 1 and saved["user"] == "tester"
    saved2 = client.save_label(sample["id"], label_file)
    assert saved2["version"] == 2 and saved2["checksum"] == saved["checksum"]
    versions = client.label_versions(sample["id"], "final")
    assert [v["version"] for v in versions] == [1, 2]
    back = client.download_label(sample["id"], tmp_path / "down", version=1)
    assert np.array_equal(sitk.GetArrayFromImage(sitk.ReadImage(str(back))), sitk.GetArrayFromImage(label))
    assert client.label_exists(sample["id"]) and not client.label_exists("case_001")
    assert client.next_sample("first")["id"] == "case_001"


def test_upload_session_and_infer_on_it(client: MedSegClient, tmp_path: Path) -> None:
    image, _ = make_ct(seed=5)
    path = tmp_path / "local volume.nii.gz"
    sitk.WriteImage(image, str(path))
    assert client.upload_image(path, "local_volume") == "local_volume"
    assert client.image_exists("local_volume") and not client.image_exists("nope")
    session = client.create_session(path)
    assert client.get_session(session)["name"] == session
    result = client.infer("threshold_liver", params={"foreground": [[14, 20, 12]]}, session_id=session)
    arr = sitk.GetArrayFromImage(sitk.ReadImage(str(result.save(tmp_path))))
    assert arr[12, 20, 14] == 1
    direct = client.infer("threshold_liver", file=path)
    assert direct.label
    client.remove_session(session)
    with pytest.raises(NotFound):
        client.get_session(session)


def test_training_calls(client: MedSegClient, live_server, tmp_path: Path) -> None:
    assert client.train_status() is None
    _, label = make_ct(seed=0)
    path = tmp_path / "l.nii.gz"
    sitk.WriteImage(label, str(path))
    client.save_label("case_000", path)
    record = client.train_start("threshold_liver")
    assert record["status"] == "RUNNING"
    assert live_server.ctx.train_runner.wait(120)
    assert client.train_status()["status"] == "DONE"
    weights = client.download_model("threshold_liver", tmp_path)
    assert "window" in json.loads(weights.read_text())
    assert client.upload_model("threshold_liver", weights)["checksum"].startswith("SHA256:")


def test_typed_errors_carry_server_messages(client: MedSegClient, tmp_path: Path) -> None:
    with pytest.raises(NotFound, match="model 'nope' not found"):
        client.infer("nope", "case_000")
    with pytest.raises(ClientError) as err:
        client.infer("threshold_liver", "case_000", {"foreground": [[9999, 0, 0]]})
    assert err.value.status == 422 and "outside the image" in err.value.detail
    with pytest.raises(ClientError) as err:
        client.next_sample("bad/strategy")
    assert err.value.status in (404, 400)
    bad = tmp_path / "bad.nii.gz"
    bad.write_bytes(b"not an image at all")
    with pytest.raises(ClientError) as err:
        client.save_label("case_000", bad)
    assert err.value.status == 422 and "NIfTI" in err.value.detail
    with pytest.raises(ClientError) as err:
        client.image_info("../../etc/passwd")
    assert err.value.status == 400


def test_server_down_is_server_unavailable() -> None:
    from livetools import free_port

    dead = MedSegClient(f"http://127.0.0.1:{free_port()}", timeout=2)
    with pytest.raises(ServerUnavailable, match="cannot reach"):
        dead.info()


def test_client_refuses_bad_urls() -> None:
    with pytest.raises(ValueError):
        MedSegClient("127.0.0.1:8000")

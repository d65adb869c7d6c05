"""Authentication: every route that reads patient data or writes needs a token with the right role."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import pytest
import requests

from medseg_server.auth import PUBLIC_ROUTES, Role, UserStore, required_role
from medseg_server.cli import main as medseg
from medseg_server.settings import Settings


def _users(studies: Path) -> dict[str, str]:
    store = UserStore(studies / ".medseg" / "auth.sqlite")
    return {role.name: store.add(f"{role.name}1", role) for role in Role}


def _routes(app) -> list[tuple[str, str]]:
    """(method, full path template) of every route, including those of included routers."""
    try:
        from fastapi.routing import iter_route_contexts  # FastAPI >= 0.16x includes routers lazily
        routes = list(iter_route_contexts(app.routes))
    except ImportError:
        routes = app.routes
    return [(m, r.path) for r in routes for m in sorted(getattr(r, "methods", None) or [])]


def _concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "case_000", path)


def test_every_route_is_covered_by_the_policy(server_factory, studies: Path) -> None:
    tokens = _users(studies)
    live = server_factory(studies, auth="on")
    routes = _routes(live.app)
    assert len(routes) > 20
    for method, path in routes:
        need = required_role(method, path)
        if need is None:
            assert (method, path) in PUBLIC_ROUTES
            continue
        url = live.url + _concrete(path)
        anonymous = requests.request(method, url, timeout=30)
        assert anonymous.status_code == 401, f"{method} {path} answered {anonymous.status_code} without a token"
        assert anonymous.headers.get("www-authenticate") == "Bearer"
        forged = requests.request(method, url, headers={"Authorization": "Bearer msk_forged"}, timeout=30)
        assert forged.status_code == 401
        if need > Role.viewer:
            low = requests.request(method, url, headers={"Authorization": f"Bearer {tokens['viewer']}"}, timeout=30)
            assert low.status_code == 403, f"{method} {path}: viewer got {low.status_code}"
            assert need.name in low.json()["detail"]
    paths = {p for _, p in routes}
    assert {"/datastore/label", "/infer/{model}", "/lease/{image}", "/session/{session_id}"} <= paths


def test_roles_are_ordered_and_enforced(server_factory, studies: Path) -> None:
    tokens = _users(studies)
    live = server_factory(studies, auth="on")
    h = {name: {"Authorization": f"Bearer {tok}"} for name, tok in tokens.items()}
    assert requests.get(f"{live.url}/datastore/", headers=h["viewer"], timeout=30).status_code == 200
    assert requests.get(f"{live.url}/auth/", timeout=30).json()["enabled"] is True
    from medseg_server.imageio import image_to_bytes
    from testdata import make_ct

    label = image_to_bytes(make_ct(seed=0)[1], ".nii.gz")
    put = dict(params={"image": "case_000", "tag": "final"}, files={"label": ("l.nii.gz", label)}, timeout=60)
    assert requests.put(f"{live.url}/datastore/label", headers=h["viewer"], **put).status_code == 403
    # annotator: may label (with the lease), may not delete images or train
    assert requests.post(f"{live.url}/lease/case_000", headers=h["annotator"], timeout=30).status_code == 200
    ok = requests.put(f"{live.url}/datastore/label", headers=h["annotator"],
                      data={"params": '{"client_id": "someone-else"}'}, **put)
    assert ok.status_code == 200, ok.text
    assert ok.json()["user"] == "annotator1"
    assert requests.delete(f"{live.url}/datastore/image", params={"id": "case_001"}, headers=h["reviewer"],
                           timeout=30).status_code == 403
    assert requests.post(f"{live.url}/train/threshold_liver", headers=h["annotator"], json={},
                         timeout=30).status_code == 403
    assert requests.delete(f"{live.url}/datastore/image", params={"id": "case_001"}, headers=h["admin"],
                           timeout=30).status_code == 200


def test_label_is_recorded_under_the_authenticated_user(server_factory, studies: Path, tiny_case) -> None:
    import SimpleITK as sitk

    from medseg_server.imageio import image_to_bytes

    tokens = _users(studies)
    live = server_factory(studies, auth="on", require_lease=False)
    image = sitk.ReadImage(str(studies / "case_000.nii.gz"))
    label = sitk.Image(image.GetSize(), sitk.sitkUInt8)
    label.CopyInformation(image)
    r = requests.put(f"{live.url}/datastore/label", params={"image": "case_000"},
                     headers={"Authorization": f"Bearer {tokens['annotator']}"},
                     data={"params": '{"client_id": "mallory", "user": "mallory"}'},
                     files={"label": ("l.nii.gz", image_to_bytes(label, ".nii.gz"))}, timeout=60)
    assert r.status_code == 200, r.text
    assert r.json()["user"] == "annotator1"  # the token's owner, not what the client claims


def test_tokens_are_hashed_at_rest(tmp_path: Path) -> None:
    db = tmp_path / "auth.sqlite"
    store = UserStore(db)
    token = store.add("alice", "reviewer")
    assert store.authenticate(token).role is Role.reviewer
    assert store.authenticate(token + "x") is None
    raw = b"".join(p.read_bytes() for p in tmp_path.iterdir())
    assert token.encode() not in raw
    rows = sqlite3.connect(db).execute("SELECT token_sha256 FROM users").fetchall()
    assert rows and len(rows[0][0]) == 64


def test_users_cli_add_list_remove(server_factory, studies: Path, capsys) -> None:
    import json

    assert medseg(["users", "--studies", str(studies), "add", "carol", "--role", "viewer"]) == 0
    token = json.loads(capsys.readouterr().out)["token"]
    assert medseg(["users", "--studies", str(studies), "add", "carol"]) == 2  # exists already
    capsys.readouterr()
    assert medseg(["users", "--studies", str(studies), "list"]) == 0
    assert "carol\tviewer" in capsys.readouterr().out
    live = server_factory(studies, auth="on")
    h = {"Authorization": f"Bearer {token}"}
    assert requests.get(f"{live.url}/datastore/", headers=h, timeout=30).status_code == 200
    assert medseg(["users", "--studies", str(studies), "remove", "carol"]) == 0
    assert requests.get(f"{live.url}/datastore/", headers=h, timeout=30).status_code == 401


def test_auth_defaults_and_cors(server_factory, studies: Path, tmp_path: Path) -> None:
    from medseg_server.app import create_app

    assert not Settings(studies=studies).auth_enabled  # the local embedded default
    assert Settings(studies=studies, host="0.0.0.0").auth_enabled
    assert Settings(studies=studies, dicomweb="http://127.0.0.1:1/dicom-web").auth_enabled
    with pytest.raises(ValueError, match="without authentication"):
        create_app(Settings(studies=studies, host="0.0.0.0", auth="off"))
    live = server_factory(studies)
    preflight = {"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"}
    r = requests.options(f"{live.url}/datastore/", headers=preflight, timeout=30)
    assert "access-control-allow-origin" not in r.headers  # CORS closed by default
    r = requests.get(f"{live.url}/datastore/", headers={"Origin": "https://evil.example"}, timeout=30)
    assert "access-control-allow-origin" not in r.headers
    other = tmp_path / "other"
    other.mkdir()
    opened = server_factory(other, cors_origins=["https://viewer.hospital.example"])
    ok = requests.options(f"{opened.url}/datastore/", timeout=30,
                          headers={**preflight, "Origin": "https://viewer.hospital.example"})
    assert ok.headers.get("access-control-allow-origin") == "https://viewer.hospital.example"

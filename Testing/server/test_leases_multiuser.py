"""Multi-annotator work: leases with expiry, renewal and reviewer override; per-user tags side by side."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import requests

from medseg_server.auth import Role, UserStore
from medseg_server.datastore.leases import LeaseHeld, LeaseRequired, LeaseStore
from medseg_server.imageio import image_to_bytes
from testdata import make_ct


def test_lease_store_expiry_renewal_override(tmp_path: Path) -> None:
    store = LeaseStore(tmp_path / "leases.sqlite", ttl_s=0.5)
    first = store.acquire("case_1", "alice")
    with pytest.raises(LeaseHeld, match="alice"):
        store.acquire("case_1", "bob")
    renewed = store.renew("case_1", "alice")
    assert renewed.renewals == 1 and renewed.expires_at > first.expires_at
    assert store.leased_by_others("bob") == {"case_1"}
    time.sleep(0.6)
    assert store.holder("case_1") is None  # expired = free
    assert store.acquire("case_1", "bob").user == "bob"
    with pytest.raises(LeaseRequired):
        store.check_submission("case_2", "bob")
    taken = store.override("case_1", "rita", to_user="carol")
    assert (taken.user, taken.overridden_by) == ("carol", "rita")
    assert [e["event"] for e in store.events("case_1")] == ["acquire", "acquire", "override"]


def _setup(studies: Path, server_factory):
    users = UserStore(studies / ".medseg" / "auth.sqlite")
    tokens = {name: users.add(name, role) for name, role in
              [("alice", Role.annotator), ("bob", Role.annotator), ("rita", Role.reviewer)]}
    live = server_factory(studies, auth="on", lease_ttl_s=60)
    return live, {n: {"Authorization": f"Bearer {t}"} for n, t in tokens.items()}


def test_active_learning_hands_each_annotator_a_different_image(server_factory, studies: Path) -> None:
    live, h = _setup(studies, server_factory)
    got = {}
    for name in ("alice", "bob"):
        r = requests.post(f"{live.url}/activelearning/first", headers=h[name], json={}, timeout=30)
        assert r.status_code == 200, r.text
        got[name] = r.json()["id"]
        assert r.json()["reason"]["lease"]["user"] == name
    assert got["alice"] != got["bob"]
    # asking again renews one's own lease instead of handing out another image
    again = requests.post(f"{live.url}/activelearning/first", headers=h["alice"], json={}, timeout=30).json()
    assert again["id"] == got["alice"]
    leases = requests.get(f"{live.url}/lease/", headers=h["bob"], timeout=30).json()
    assert {(x["image_id"], x["user"]) for x in leases} == {(got["alice"], "alice"), (got["bob"], "bob")}


def test_submission_needs_the_lease_or_a_reviewer_override(server_factory, studies: Path) -> None:
    live, h = _setup(studies, server_factory)
    label = image_to_bytes(make_ct(seed=0)[1], ".nii.gz")

    def submit(who: str, params: str = "{}") -> requests.Response:
        return requests.put(f"{live.url}/datastore/label", params={"image": "case_000"}, headers=h[who],
                            data={"params": params}, files={"label": ("l.nii.gz", label)}, timeout=60)

    no_lease = submit("alice")
    assert no_lease.status_code == 409 and "lease" in no_lease.json()["detail"]
    assert requests.post(f"{live.url}/lease/case_000", headers=h["alice"], timeout=30).status_code == 200
    held = requests.post(f"{live.url}/lease/case_000", headers=h["bob"], timeout=30)
    assert held.status_code == 409 and "alice" in held.json()["detail"]
    assert submit("bob").status_code == 409
    assert submit("bob", '{"override": true}').status_code == 403  # only reviewers override
    ok = submit("alice")
    assert ok.status_code == 200, ok.text
    assert ok.json()["per_user"]["tag"] == "final.alice"
    # the reviewer overrides and submits; both annotations stay, side by side, with who and when
    assert submit("rita", '{"override": true}').status_code == 200
    # bob gets the lease handed over by the reviewer and submits his own version
    r = requests.post(f"{live.url}/lease/case_000/override", headers=h["rita"], json={"user": "bob"}, timeout=30)
    assert r.status_code == 200 and r.json()["user"] == "bob"
    assert requests.post(f"{live.url}/lease/case_000/override", headers=h["alice"], json={},
                         timeout=30).status_code == 403
    assert submit("bob").status_code == 200
    versions = requests.get(f"{live.url}/datastore/label/versions", params={"image": "case_000"},
                            headers=h["alice"], timeout=30).json()
    by_tag = {}
    for v in versions:
        by_tag.setdefault(v["tag"], []).append(v["user"])
    assert by_tag["final"] == ["alice", "rita", "bob"]
    assert by_tag["final.alice"] == ["alice"] and by_tag["final.bob"] == ["bob"] and by_tag["final.rita"] == ["rita"]
    assert all(v["created_at"] > 0 for v in versions)
    history = requests.get(f"{live.url}/lease/case_000", headers=h["alice"], timeout=30).json()
    assert [e["event"] for e in history["events"]] == ["acquire", "override", "override"]

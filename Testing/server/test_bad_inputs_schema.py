"""Property-based bad input: Schemathesis generates requests from the server's own OpenAPI schema
(and Hypothesis odd IDs and tags); none may get a 5xx, and the server stays up."""

from __future__ import annotations

import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

# operations that start background work or replace a model weights file have their own tests
SKIP = ("/train", "/scoring", "/model")
FAST = settings(max_examples=10, deadline=None, suppress_health_check=list(HealthCheck), database=None)


def test_generated_requests_never_get_a_server_error(live_server) -> None:
    schema = schemathesis.openapi.from_dict(live_server.app.openapi())
    tried, errors = 0, []
    for result in schema.get_all_operations():
        operation = result.ok()
        if operation.path.startswith(SKIP):
            continue

        @FAST
        @given(case=operation.as_strategy())
        def check(case) -> None:
            nonlocal tried
            tried += 1
            response = case.call(base_url=live_server.url, timeout=60)
            if response.status_code >= 500:
                errors.append(f"{case.method} {case.formatted_path} {case.query}: {response.status_code}")

        check()
    print(f"\nschemathesis: {tried} generated requests, {len(errors)} server errors")
    assert tried > 100
    assert not errors, "\n".join(errors[:20])
    assert requests.get(f"{live_server.url}/info/", timeout=30).status_code == 200


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck), database=None)
@given(image=st.text(min_size=1, max_size=200), tag=st.text(max_size=40))
def test_any_id_or_tag_gets_a_4xx_with_a_message(live_server, image: str, tag: str) -> None:
    r = requests.get(f"{live_server.url}/datastore/label/info", params={"image": image, "tag": tag or "final"},
                     timeout=30)
    assert 400 <= r.status_code < 500, (image, tag, r.status_code)
    assert r.json()["detail"]

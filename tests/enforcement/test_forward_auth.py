"""Forward-auth: a real nginx asks Warden before each request to a small upstream; and the
endpoint itself with the headers Traefik and Envoy send, and with bad headers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from .conftest import LiveWarden
from .nginx import nginx_in_front

pytestmark = pytest.mark.enforcement

API_SCOPE = "GET POST DELETE"


@pytest.fixture
def front(live_warden: LiveWarden, tmp_path: Path) -> Iterator[str]:
    with nginx_in_front(live_warden.url, tmp_path) as url:
        yield url


def test_nginx_allows_denies_and_challenges(live_warden: LiveWarden, front: str) -> None:
    spiffe = live_warden.register()
    task = live_warden.start_task(spiffe, scope=API_SCOPE)
    auth = {"Authorization": f"Bearer {task['access_token']}"}

    allowed = httpx.get(f"{front}/api/tickets/T-1042?full=1", headers=auth)
    assert allowed.status_code == 200, allowed.text
    seen = allowed.json()
    assert seen["path"] == "/api/tickets/T-1042?full=1"
    # the upstream learns who is calling, and never sees the credential itself
    assert seen["agent"] == spiffe
    assert seen["task"] == task["task_id"]
    assert seen["decision"].startswith("dec_")
    assert seen["authorization"] is None

    # no policy permits GET on another route: denied
    assert httpx.get(f"{front}/api/payments", headers=auth).status_code == 403
    # a forbid on every DELETE
    assert httpx.delete(f"{front}/api/tickets/T-1042", headers=auth).status_code == 403
    # no credential, a forged one: 401 with a challenge
    anonymous = httpx.get(f"{front}/api/tickets/T-1042")
    assert anonymous.status_code == 401
    forged = httpx.get(
        f"{front}/api/tickets/T-1042", headers={"Authorization": "Bearer eyJ.eyJ.sig"}
    )
    assert forged.status_code == 401

    # the task ends: its credential is refused at once
    live_warden.complete(task)
    assert httpx.get(f"{front}/api/tickets/T-1042", headers=auth).status_code == 401

    records = live_warden.audit()
    assert any(
        r["data"].get("action") == "DELETE" and r["data"].get("decision") == "deny" for r in records
    )


def test_traefik_and_envoy_headers(live_warden: LiveWarden) -> None:
    spiffe = live_warden.register()
    task = live_warden.start_task(spiffe, scope=API_SCOPE)
    auth = {"Authorization": f"Bearer {task['access_token']}"}
    url = f"{live_warden.url}/v1/forward-auth"

    traefik = httpx.get(
        url,
        headers={
            **auth,
            "X-Forwarded-Method": "GET",
            "X-Forwarded-Uri": "/api/tickets/T-1",
            "X-Forwarded-Host": "api.example.com",
            "X-Forwarded-Proto": "https",
        },
    )
    assert traefik.status_code == 200, traefik.text
    assert traefik.headers["x-warden-agent"] == spiffe

    envoy = httpx.get(f"{url}/api/tickets/T-1", headers=auth)  # path_prefix + original path
    assert envoy.status_code == 200
    assert httpx.delete(f"{url}/api/tickets/T-1", headers=auth).status_code == 403

    # the decision saw the original request
    records = live_warden.audit()
    last = records[-1]["data"]
    assert last["resource"] == {"type": "Route", "id": "/api/tickets/T-1"}
    assert last["context"]["http"]["method"] == "DELETE"


@pytest.mark.parametrize(
    "headers",
    [
        {},  # nothing says what the original request was
        {"X-Original-URI": "/api/tickets"},  # no method
        {"X-Original-Method": "GET"},  # no URI
        {"X-Original-Method": "GET", "X-Original-URI": "/a", "X-Forwarded-Uri": "/b"},
        {"X-Original-Method": "GET", "X-Forwarded-Method": "DELETE", "X-Original-URI": "/a"},
        {"X-Original-Method": "BREW", "X-Original-URI": "/a"},
        {"X-Original-Method": "GET", "X-Original-URI": "http://elsewhere/a"},
        {"X-Original-Method": "GET", "X-Original-URI": "/a", "X-Forwarded-Proto": "gopher"},
    ],
)
def test_missing_or_conflicting_headers_are_refused(
    live_warden: LiveWarden, headers: dict[str, str]
) -> None:
    r = httpx.get(
        f"{live_warden.url}/v1/forward-auth",
        headers={**headers, "Authorization": "Bearer x.y.z"},
    )
    assert r.status_code == 400, r.text
    assert r.json()["error"]["code"] == "invalid_parameter"


def test_a_header_given_twice_is_refused(live_warden: LiveWarden) -> None:
    r = httpx.get(
        f"{live_warden.url}/v1/forward-auth",
        headers=[
            ("X-Original-Method", "GET"),
            ("X-Original-URI", "/api/tickets/1"),
            ("X-Original-URI", "/api/admin"),
        ],
    )
    assert r.status_code == 400

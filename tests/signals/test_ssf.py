"""Shared Signals end to end: streams, push and poll delivery, durability, order, receivers."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.api.conftest import World
from tests.signals.conftest import MakeWorld
from tests.signals.receivers import SETReceiver
from warden.sdk.signals import SignalReceiver

pytestmark = pytest.mark.signals

PUSH = "urn:ietf:rfc:8935"
POLL = "urn:ietf:rfc:8936"
CAEP = "https://schemas.openid.net/secevent/caep/event-type/"
SESSION_REVOKED = CAEP + "session-revoked"
CREDENTIAL_CHANGE = CAEP + "credential-change"
ACCOUNT_DISABLED = "https://schemas.openid.net/secevent/risc/event-type/account-disabled"
VERIFICATION = "https://schemas.openid.net/secevent/ssf/event-type/verification"
STREAM_UPDATED = "https://schemas.openid.net/secevent/ssf/event-type/stream-updated"


def _jwks(world: World) -> dict[str, Any]:
    jwks: dict[str, Any] = world.client.get("/.well-known/jwks.json").json()
    return jwks


def _stream(world: World, **body: Any) -> dict[str, Any]:
    r = world.client.post("/ssf/streams", json=body, headers=world.admin)
    assert r.status_code == 201, r.text
    out: dict[str, Any] = r.json()
    return out


@pytest.fixture
def receiver(world: World) -> Iterator[SETReceiver]:
    issuer = world.warden.settings.effective_issuer
    rx = SETReceiver(_jwks(world), issuer, audience="https://rs.example")
    yield rx
    rx.close()


def _push_stream(world: World, rx: SETReceiver, **extra: Any) -> dict[str, Any]:
    return _stream(
        world,
        delivery={"method": PUSH, "endpoint_url": rx.url, "authorization_header": "Bearer rx"},
        aud="https://rs.example",
        **extra,
    )


def _tick(world: World) -> None:
    world.warden.writer.flush()
    world.warden.signals.tick()


def test_configuration_is_published(world: World) -> None:
    meta = world.client.get("/.well-known/ssf-configuration").json()
    issuer = world.warden.settings.effective_issuer
    assert meta["issuer"] == issuer
    assert meta["jwks_uri"] == f"{issuer}/.well-known/jwks.json"
    assert set(meta["delivery_methods_supported"]) == {PUSH, POLL}
    assert meta["configuration_endpoint"] == f"{issuer}/ssf/streams"


def test_stream_management_needs_an_admin_and_valid_input(world: World) -> None:
    c = world.client
    assert c.post("/ssf/streams", json={}).status_code == 401
    assert c.get("/ssf/streams").status_code == 401
    for bad in (
        {"delivery": {"method": "urn:example:smoke-signals"}},
        {"delivery": {"method": PUSH}},
        {"delivery": {"method": PUSH, "endpoint_url": "ftp://x"}},
        {"events_requested": "all"},
        {"delivery": "push"},
        {"surprise": 1},
    ):
        r = c.post("/ssf/streams", json=bad, headers=world.admin)
        assert r.status_code == 400, (bad, r.text)
        assert r.json()["error"]["code"] == "invalid_parameter"
    assert (
        c.get("/ssf/streams", params={"stream_id": "nope"}, headers=world.admin).status_code == 404
    )
    assert c.get("/ssf/streams", headers=world.admin).json() == []
    from warden.core.model import OperatorRole

    _, token = world.warden.operators.create("reader", OperatorRole.AUDITOR, "test")
    auditor = {"Authorization": f"Bearer {token}"}
    assert c.post("/ssf/streams", json={}, headers=auditor).status_code == 403
    assert c.post("/ssf/verify", json={"stream_id": "x"}, headers=auditor).status_code == 403
    unknown = c.post("/ssf/poll/stream_nope", json={}, headers={"Authorization": "Bearer x"})
    assert unknown.status_code == 401  # the same answer as a wrong token: ids are not probed


def test_stream_lifecycle(world: World, receiver: SETReceiver) -> None:
    c = world.client
    stream = _push_stream(world, rx := receiver, events_requested=[SESSION_REVOKED, "urn:x"])
    sid = stream["stream_id"]
    assert stream["events_delivered"] == [SESSION_REVOKED]
    assert "authorization_header" not in stream["delivery"]  # the receiver's secret stays put
    got = c.get("/ssf/streams", params={"stream_id": sid}, headers=world.admin).json()
    assert got["delivery"]["endpoint_url"] == rx.url
    patched = c.patch(
        "/ssf/streams",
        json={"stream_id": sid, "events_requested": [SESSION_REVOKED, CREDENTIAL_CHANGE]},
        headers=world.admin,
    ).json()
    assert patched["events_delivered"] == [SESSION_REVOKED, CREDENTIAL_CHANGE]
    status = c.post("/ssf/status", json={"stream_id": sid, "status": "paused"}, headers=world.admin)
    assert status.json()["status"] == "paused"
    assert (
        c.post(
            "/ssf/status", json={"stream_id": sid, "status": "sleepy"}, headers=world.admin
        ).status_code
        == 400
    )
    assert (
        c.delete("/ssf/streams", params={"stream_id": sid}, headers=world.admin).status_code == 204
    )
    assert c.get("/ssf/streams", params={"stream_id": sid}, headers=world.admin).status_code == 404


def test_task_end_pushes_a_verified_session_revoked_that_drops_the_cache(
    world: World, receiver: SETReceiver
) -> None:
    world.register()
    task = world.start_task()
    receiver.cache[task["task_id"]] = "introspection: active"
    _push_stream(world, receiver)
    r = world.client.post(
        f"/v1/tasks/{task['task_id']}/complete",
        headers={"Authorization": f"Bearer {task['access_token']}"},
    )
    assert r.status_code == 200, r.text
    _tick(world)
    assert receiver.types() == [SESSION_REVOKED]
    claims = receiver.events[0]
    assert claims["sub_id"]["session"] == {"format": "opaque", "id": task["task_id"]}
    assert claims["sub_id"]["user"] == {"format": "uri", "uri": task["spiffe_id"]}
    event = claims["events"][SESSION_REVOKED]
    assert event["task_status"] == "completed"
    assert [c["format"] for c in event["credentials"]] == ["jwt_id"]
    assert task["task_id"] not in receiver.cache  # the receiver stopped trusting it
    assert receiver.authorization[-1] == "Bearer rx"


def test_kill_switch_sends_account_disabled_then_each_task(
    world: World, receiver: SETReceiver
) -> None:
    world.register()
    tasks = [world.start_task()["task_id"] for _ in range(3)]
    _push_stream(world, receiver)
    r = world.client.post("/v1/agents/support-bot/suspend", headers=world.admin)
    assert r.status_code == 200, r.text
    _tick(world)
    assert receiver.types() == [ACCOUNT_DISABLED] + [SESSION_REVOKED] * 3
    ended = {e["sub_id"]["session"]["id"] for e in receiver.events[1:]}
    assert ended == set(tasks)


def test_a_receiver_that_is_down_loses_nothing_and_keeps_the_order(
    world: World, receiver: SETReceiver
) -> None:
    world.register()
    tasks = [world.start_task()["task_id"] for _ in range(3)]
    _push_stream(world, receiver)
    receiver.fail_with = 503
    for task_id in tasks:
        world.client.post(f"/v1/tasks/{task_id}/revoke", headers=world.admin)
    _tick(world)
    assert receiver.attempts == 1  # the head failed: nothing behind it was sent out of order
    metrics = world.client.get("/metrics").text
    assert 'warden_ssf_events_pending{delivery="push"} 3.0' in metrics
    assert 'warden_ssf_events_total{outcome="retried"} 1.0' in metrics
    _tick(world)
    assert receiver.attempts == 1  # backing off
    receiver.fail_with = None
    world.clock.advance(120)
    _tick(world)
    assert [e["sub_id"]["session"]["id"] for e in receiver.events] == tasks
    assert 'warden_ssf_events_pending{delivery="push"} 0.0' in world.client.get("/metrics").text


def test_the_outbox_survives_a_restart(make_world: MakeWorld, tmp_path: Any) -> None:
    first = make_world()
    rx = SETReceiver(_jwks(first), first.warden.settings.effective_issuer, "https://rs.example")
    try:
        first.register()
        task = first.start_task()
        _push_stream(first, rx)
        rx.fail_with = 503
        first.client.post(f"/v1/tasks/{task['task_id']}/revoke", headers=first.admin)
        _tick(first)
        assert rx.events == []
        first.client.__exit__(None, None, None)  # the process goes away
        second = make_world()  # same data dir: a restart
        rx.fail_with = None
        second.clock.advance(120)  # past the retry's backoff
        _tick(second)
        assert rx.types() == [SESSION_REVOKED]
    finally:
        rx.close()


def test_two_replicas_queue_each_event_once(make_world: MakeWorld) -> None:
    a = make_world()
    b = make_world()  # another process over the same database
    rx = SETReceiver(_jwks(a), a.warden.settings.effective_issuer, "https://rs.example")
    try:
        a.register()
        task = a.start_task()
        _push_stream(a, rx)
        a.client.post(f"/v1/tasks/{task['task_id']}/revoke", headers=a.admin)
        a.warden.writer.flush()
        assert a.warden.signals.pump() + b.warden.signals.pump() == 1
        b.warden.signals.push()
        a.warden.signals.push()
        assert rx.types() == [SESSION_REVOKED]
    finally:
        rx.close()


def test_a_refused_set_is_recorded_not_retried(world: World) -> None:
    rx = SETReceiver({"keys": []}, world.warden.settings.effective_issuer, "https://rs.example")
    try:  # a receiver with the wrong keys refuses every SET (RFC 8935 error object)
        world.register()
        task = world.start_task()
        _push_stream(world, rx)
        world.client.post(f"/v1/tasks/{task['task_id']}/revoke", headers=world.admin)
        _tick(world)
        _tick(world)
        assert rx.attempts == 1
        assert [r["type"] for r in world.audit("ssf.set_rejected")] == ["ssf.set_rejected"]
    finally:
        rx.close()


def test_key_rotation_is_a_credential_change(world: World, receiver: SETReceiver) -> None:
    _push_stream(world, receiver)
    r = world.client.post("/v1/keys/rotate", headers=world.admin)
    assert r.status_code == 200, r.text
    receiver.jwks = _jwks(world)
    _tick(world)
    assert receiver.types() == [CREDENTIAL_CHANGE]
    event = receiver.events[0]["events"][CREDENTIAL_CHANGE]
    assert event["credential_type"] == "signing-key" and event["change_type"] == "create"


def test_poll_delivery_with_acknowledgement(world: World) -> None:
    stream = _stream(world, delivery={"method": POLL})
    url = stream["delivery"]["endpoint_url"]
    path = url.removeprefix(world.warden.settings.effective_issuer)
    world.register()
    task = world.start_task()
    world.client.post(f"/v1/tasks/{task['task_id']}/revoke", headers=world.admin)
    _tick(world)
    assert world.client.post(path, json={}).status_code == 401
    bad = {"Authorization": "Bearer not-the-token"}
    assert world.client.post(path, json={}, headers=bad).status_code == 401
    auth = {"Authorization": f"Bearer {stream['poll_token']}"}
    assert world.client.post(path, json={"maxEvents": -1}, headers=auth).status_code == 400
    first = world.client.post(path, json={"returnImmediately": True}, headers=auth).json()
    assert len(first["sets"]) == 1 and first["moreAvailable"] is False
    jti = next(iter(first["sets"]))
    again = world.client.post(path, json={"ack": [jti]}, headers=auth).json()
    assert again["sets"] == {}
    # the SDK receiver polls the same way, verifying with Warden's JWKS
    sdk = SignalReceiver(
        world.warden.settings.effective_issuer, _jwks(world), audience=stream["aud"]
    )
    world.client.post(
        "/ssf/verify", json={"stream_id": stream["stream_id"], "state": "s1"}, headers=world.admin
    )
    assert sdk.poll(path, stream["poll_token"], http=world.client) == 1
    assert sdk.received[-1]["events"][VERIFICATION] == {"state": "s1"}
    assert world.client.post(path, json={}, headers=auth).json()["sets"] == {}


def test_sdk_receiver_drops_the_keepers_credential(world: World) -> None:
    from warden.errors import TaskNotActiveError
    from warden.sdk import CredentialKeeper, WardenClient

    stream = _stream(world, delivery={"method": POLL})
    path = stream["delivery"]["endpoint_url"].removeprefix(world.warden.settings.effective_issuer)
    world.register()
    task = world.start_task()
    from warden.sdk._wire import credential_of

    client = WardenClient("http://testserver")
    keeper = CredentialKeeper(client, credential_of(task, world.clock.now()))
    assert keeper.token() == task["access_token"]
    sdk = SignalReceiver(
        world.warden.settings.effective_issuer, _jwks(world), audience=stream["aud"]
    )
    sdk.watch(keeper)
    world.client.post(f"/v1/tasks/{task['task_id']}/revoke", headers=world.admin)
    _tick(world)
    assert sdk.poll(path, stream["poll_token"], http=world.client) == 1
    assert sdk.is_revoked(task_id=task["task_id"])
    with pytest.raises(TaskNotActiveError):
        keeper.token()


@pytest.mark.postgres
def test_two_replicas_over_postgresql_queue_and_push_each_event_once(
    make_world: MakeWorld,
) -> None:
    from warden.cli.cluster import postgres_unreachable, postgres_url, temporary_schema

    base = postgres_url()
    error = postgres_unreachable(base)
    if error is not None:
        pytest.skip(f"PostgreSQL not reachable at {base}: {error}")
    with temporary_schema(base, "wt_ssf") as url:
        a = make_world(database_url=url)
        b = make_world(database_url=url)
        rx = SETReceiver(_jwks(a), a.warden.settings.effective_issuer, "https://rs.example")
        try:
            a.register()
            tasks = [a.start_task()["task_id"] for _ in range(3)]
            _push_stream(a, rx)
            for task_id in tasks:
                a.client.post(f"/v1/tasks/{task_id}/revoke", headers=a.admin)
            a.warden.writer.flush()
            assert a.warden.signals.pump() + b.warden.signals.pump() == 3
            assert b.warden.signals.push() + a.warden.signals.push() == 3
            assert [e["sub_id"]["session"]["id"] for e in rx.events] == tasks
        finally:
            rx.close()
            for w in (a, b):
                w.client.__exit__(None, None, None)


def test_the_sdk_push_endpoint_receives_and_refuses(world: World) -> None:
    from tests.enforcement.conftest import ThreadServer

    issuer = world.warden.settings.effective_issuer
    sdk = SignalReceiver(issuer, _jwks(world), audience="sdk")
    world.register()
    task = world.start_task()
    dropped: list[str | None] = []
    sdk.on_session_revoked(lambda task_id, _jtis: dropped.append(task_id))
    with ThreadServer(sdk.push_app()) as server:
        _stream(world, aud="sdk", delivery={"method": PUSH, "endpoint_url": server.url + "/set"})
        # a stream whose audience the receiver does not accept: refused with an RFC 8935 error
        _stream(world, aud="other", delivery={"method": PUSH, "endpoint_url": server.url + "/x"})
        world.client.post(f"/v1/tasks/{task['task_id']}/revoke", headers=world.admin)
        _tick(world)
    assert dropped == [task["task_id"]]
    rejected = world.audit("ssf.set_rejected")
    assert len(rejected) == 1 and "invalid_key" in rejected[0]["data"]["error"]


def test_a_new_stream_gets_what_happens_after_it_and_old_sets_are_pruned(
    world: World, receiver: SETReceiver
) -> None:
    world.register()
    before, after = world.start_task()["task_id"], world.start_task()["task_id"]
    world.client.post(f"/v1/tasks/{before}/revoke", headers=world.admin)
    _tick(world)  # nobody listens yet: the pump moves past it
    _push_stream(world, receiver)
    world.client.post(f"/v1/tasks/{after}/revoke", headers=world.admin)
    _tick(world)
    assert [e["sub_id"]["session"]["id"] for e in receiver.events] == [after]
    assert world.warden.signals.prune() == 0  # delivered just now: kept a while
    world.clock.advance(2 * 86400)
    assert world.warden.signals.prune() == 1  # housekeeping calls this on every replica


def test_a_set_queued_under_a_retired_key_is_still_verifiable(
    world: World, receiver: SETReceiver
) -> None:
    world.register()
    task = world.start_task()
    _push_stream(world, receiver, events_requested=[SESSION_REVOKED])
    receiver.fail_with = 503
    world.client.post(f"/v1/tasks/{task['task_id']}/revoke", headers=world.admin)
    _tick(world)  # queued, signed by the first key; the receiver is down
    old = world.warden.keys.current().kid
    assert world.client.post("/v1/keys/rotate", headers=world.admin).status_code == 200
    world.warden.keys.retire(old, now=world.clock.now())
    receiver.jwks = _jwks(world)
    assert old not in {k["kid"] for k in receiver.jwks["keys"]}
    receiver.fail_with = None
    world.clock.advance(120)
    _tick(world)
    assert receiver.types() == [SESSION_REVOKED]
    assert receiver.events[0]["sub_id"]["session"]["id"] == task["task_id"]


def test_a_renewal_that_binds_a_dpop_key_is_a_credential_change(
    world: World, receiver: SETReceiver
) -> None:
    from tests.lifecycle.dpop import ProofKey

    world.register()
    task = world.start_task()  # a bearer credential
    _push_stream(world, receiver, events_requested=[CREDENTIAL_CHANGE])
    key = ProofKey()
    token_url = f"{world.warden.settings.effective_issuer}/oauth2/token"
    renewed = world.client.post(
        "/oauth2/token",
        data={
            "grant_type": "urn:ietf:params:oauth:grant-type:token-exchange",
            "subject_token": task["access_token"],
            "subject_token_type": "urn:ietf:params:oauth:token-type:access_token",
        },
        headers={"DPoP": key.proof("POST", token_url)},
    )
    assert renewed.status_code == 200, renewed.text
    assert renewed.json()["token_type"] == "DPoP"
    _tick(world)
    assert receiver.types() == [CREDENTIAL_CHANGE]
    event = receiver.events[0]["events"][CREDENTIAL_CHANGE]
    assert event["credential_type"] == "dpop-key" and event["change_type"] == "create"
    assert event["jkt"] == key.jkt and event["previous_jkt"] is None
    assert receiver.events[0]["sub_id"]["session"]["id"] == task["task_id"]


def test_what_happens_while_a_stream_is_disabled_is_not_queued(
    world: World, receiver: SETReceiver
) -> None:
    world.register()
    first, second = world.start_task()["task_id"], world.start_task()["task_id"]
    sid = _push_stream(world, receiver)["stream_id"]
    status = {"stream_id": sid, "status": "disabled"}
    assert world.client.post("/ssf/status", json=status, headers=world.admin).status_code == 200
    world.client.post(f"/v1/tasks/{first}/revoke", headers=world.admin)
    _tick(world)
    status["status"] = "enabled"
    assert world.client.post("/ssf/status", json=status, headers=world.admin).status_code == 200
    world.client.post(f"/v1/tasks/{second}/revoke", headers=world.admin)
    _tick(world)
    assert receiver.types() == [STREAM_UPDATED, SESSION_REVOKED]
    assert receiver.events[0]["events"][STREAM_UPDATED]["status"] == "enabled"
    assert receiver.events[1]["sub_id"]["session"]["id"] == second

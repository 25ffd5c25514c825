"""Webhook delivery against a real HTTP receiver: signatures, retries, timeouts, no blocking."""

from __future__ import annotations

import time

import pytest

from tests.approvals.receiver import WebhookReceiver
from warden.webhooks import Delivery, WebhookDispatcher, WebhookEndpoint, decode_secret

pytestmark = pytest.mark.approvals


def _dispatcher(
    receiver: WebhookReceiver, results: list[tuple[str, bool, bool]], **kw: object
) -> WebhookDispatcher:
    endpoint = WebhookEndpoint(
        receiver.url, decode_secret(receiver.secret), frozenset({"alice@example.com"})
    )

    def report(d: Delivery, ok: bool, final: bool) -> None:
        results.append((d.error, ok, final))

    options: dict[str, object] = {"base_delay": 0.05, "max_attempts": 4, **kw}
    return WebhookDispatcher([endpoint], on_result=report, **options)  # type: ignore[arg-type]


def _until(predicate: object, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.02)
    raise AssertionError("condition not reached")


def test_a_delivery_is_signed_and_verifiable() -> None:
    results: list[tuple[str, bool, bool]] = []
    with WebhookReceiver() as receiver:
        d = _dispatcher(receiver, results)
        d.start()
        ids = d.submit("approval.requested", {"id": "apr_1"}, {"alice@example.com"}, ts=1.0)
        _until(lambda: receiver.received)
        d.close()
    got = receiver.received[0]
    assert got.verified and got.hand_verified
    assert got.headers["webhook-id"] == ids[0]
    assert got.event == {
        "type": "approval.requested",
        "timestamp": "1970-01-01T00:00:01+00:00",
        "data": {"id": "apr_1"},
    }
    assert results == [("", True, True)]


def test_a_wrong_secret_does_not_verify() -> None:
    with WebhookReceiver() as receiver, WebhookReceiver() as other:
        endpoint = WebhookEndpoint(receiver.url, decode_secret(other.secret))
        d = WebhookDispatcher([endpoint], on_result=lambda *_: None)
        d.start()
        d.submit("x", {}, set(), ts=1.0)
        _until(lambda: receiver.received)
        d.close()
    assert not receiver.received[0].verified
    assert not receiver.received[0].hand_verified


def test_errors_are_retried_with_backoff_until_delivered() -> None:
    results: list[tuple[str, bool, bool]] = []
    with WebhookReceiver(fail_first=2) as receiver:
        d = _dispatcher(receiver, results)
        d.start()
        d.submit("behaviour.finding", {}, {"alice@example.com"}, ts=1.0)
        _until(lambda: receiver.received)
        d.close()
    assert results == [("HTTP 500", False, False), ("HTTP 500", False, False), ("", True, True)]
    # the same message id on every attempt, so receivers can deduplicate
    assert receiver.attempts == 3


def test_a_receiver_that_times_out_is_retried_and_never_blocks_the_sender() -> None:
    results: list[tuple[str, bool, bool]] = []
    with WebhookReceiver(hang_first=1, hang_for=2.0) as receiver:
        d = _dispatcher(receiver, results, timeout=0.5)
        d.start()
        for i in range(50):
            d.submit("approval.requested", {"n": i}, {"alice@example.com"}, ts=1.0)
        # submit only queues: the first delivery is still stuck in the hanging receiver
        assert not d.idle()
        _until(lambda: len(receiver.received) == 50)
        d.close()
    assert ("timed out", False, False) in results


def test_giving_up_after_the_last_attempt() -> None:
    results: list[tuple[str, bool, bool]] = []
    with WebhookReceiver(fail_first=100) as receiver:
        d = _dispatcher(receiver, results, max_attempts=3)
        d.start()
        d.submit("approval.requested", {}, {"alice@example.com"}, ts=1.0)
        _until(lambda: len(results) == 3)
        d.close()
    assert [final for _, _, final in results] == [False, False, True]
    assert not any(ok for _, ok, _ in results)


def test_endpoints_get_only_the_events_and_recipients_they_asked_for() -> None:
    key = decode_secret("whsec_" + "A" * 44)
    owners = WebhookEndpoint("http://127.0.0.1:9/a", key, frozenset({"alice@example.com"}))
    security = WebhookEndpoint(
        "http://127.0.0.1:9/b",
        key,
        frozenset({"group:security"}),
        frozenset({"approval.escalated"}),
    )
    everyone = WebhookEndpoint("http://127.0.0.1:9/c", key)
    assert owners.wants("approval.requested", frozenset({"alice@example.com"}))
    assert not owners.wants("approval.requested", frozenset({"bob@example.com"}))
    assert security.wants("approval.escalated", frozenset({"group:security"}))
    assert not security.wants("approval.requested", frozenset({"group:security"}))
    assert everyone.wants("anything", frozenset())
    assert owners.name == "http://127.0.0.1:9/a"


def test_malformed_secrets_are_refused_without_echoing_them() -> None:
    for bad in ("nope", "whsec_", "whsec_c2hvcnQ="):
        with pytest.raises(ValueError) as info:
            decode_secret(bad)
        assert bad not in str(info.value) or bad == "whsec_"

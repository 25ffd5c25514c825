"""Overload and slow clients against a real ``warden serve`` (issue 11, ADR 0095): slowloris
connections are cut within the header deadline while others are served, a slow body is
answered 408, connections beyond the cap are refused cleanly, and a database that fails under
a running server gives 503 ``database_unavailable`` — never a 500.

No timing is asserted: every wait is bounded by ``WAIT`` and only the outcome is checked."""

from __future__ import annotations

import json
import socket
import sqlite3
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy.engine import make_url

from tests.faults._slow import (
    WAIT,
    closed_by_server,
    open_slowloris,
    port_of,
    server,
    status_of,
    still_open,
    trickle,
)
from tests.lifecycle.tcp_proxy import TCPProxy
from warden.cli.cluster import postgres_unreachable, postgres_url, temporary_schema

pytestmark = [pytest.mark.faults, pytest.mark.slow]


def _body(response: bytes) -> dict[str, object]:
    body = json.loads(response.split(b"\r\n\r\n", 1)[1])
    assert isinstance(body, dict)
    return body


def test_200_slowloris_connections_are_closed_while_a_normal_client_is_served(
    tmp_path: Path,
) -> None:
    config = {"server": {"header_timeout": "5s", "max_connections": 400}}
    with server(tmp_path / "data", config) as running:
        port = port_of(running)
        socks = open_slowloris(port, 200)
        try:
            trickle(socks)
            # a well-behaved client is served while the slowloris connections hang on
            with httpx.Client(base_url=running.url, timeout=WAIT) as client:
                assert client.get("/healthz").status_code == 200
            assert still_open(socks) > 0  # it did not have to wait for them to be cut
            deadline = time.monotonic() + WAIT
            answers = [closed_by_server(s, deadline) for s in socks]
            assert all(a is not None for a in answers), "a slowloris connection stayed open"
            assert {status_of(a or b"") for a in answers} == {408}
            assert _body(answers[0] or b"")["error"] == {
                "code": "request_timeout",
                "message": "the request headers did not arrive in time",
                "details": {},
            }
            with httpx.Client(base_url=running.url, timeout=WAIT) as client:
                assert client.get("/healthz").status_code == 200
        finally:
            for s in socks:
                s.close()


def test_an_idle_connection_that_sends_nothing_is_closed(tmp_path: Path) -> None:
    with server(tmp_path / "data", {"server": {"header_timeout": "1s"}}) as running:
        with socket.create_connection(("127.0.0.1", port_of(running)), timeout=WAIT) as s:
            s.settimeout(WAIT)
            assert status_of(s.recv(65536)) == 408
            assert s.recv(65536) == b""  # and closed


def test_a_slow_body_is_answered_408_and_the_connection_closed(tmp_path: Path) -> None:
    config = {"server": {"header_timeout": "30s", "body_timeout": "2s"}}
    with server(tmp_path / "data", config) as running:
        with socket.create_connection(("127.0.0.1", port_of(running)), timeout=WAIT) as s:
            s.sendall(
                b"POST /access/v1/evaluation HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                b"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"
            )
            answer = closed_by_server(s, time.monotonic() + WAIT)
        assert answer is not None, "the slow body was never cut"
        assert status_of(answer) == 408
        assert b"connection: close" in answer.lower()
        assert _body(answer)["error"]["code"] == "request_timeout"  # type: ignore[index]


def test_connections_beyond_the_cap_are_refused_cleanly_with_503(tmp_path: Path) -> None:
    config = {"server": {"header_timeout": "30s", "max_connections": 5}}
    with server(tmp_path / "data", config) as running:
        socks = open_slowloris(port_of(running), 5)
        try:
            with httpx.Client(base_url=running.url, timeout=WAIT) as client:
                r = client.get("/healthz")
            assert r.status_code == 503
            assert r.json()["error"]["code"] == "server_busy"
            assert r.headers["retry-after"] == "1"
            for s in socks:
                s.close()
            # the cap counts open connections: once they are gone, clients are served again
            deadline = time.monotonic() + WAIT
            while True:
                with httpx.Client(base_url=running.url, timeout=WAIT) as client:
                    if client.get("/healthz").status_code == 200:
                        break
                assert time.monotonic() < deadline, "still refused after the connections closed"
                time.sleep(0.05)
        finally:
            for s in socks:
                s.close()


def _register(client: httpx.Client, token: str, name: str) -> httpx.Response:
    body = {
        "name": name,
        "owner": "alice@example.com",
        "purpose": "fault test",
        "risk_tier": "medium",
        "entitlements": ["tickets.read"],
    }
    return client.post("/v1/agents", json=body, headers={"Authorization": f"Bearer {token}"})


def test_a_locked_sqlite_database_answers_503_database_unavailable(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with server(data, {}) as running, httpx.Client(base_url=running.url, timeout=WAIT) as client:
        token = (data / "admin.token").read_text().strip()
        assert _register(client, token, "before").status_code == 201
        holder = sqlite3.connect(data / "warden.db", timeout=WAIT)
        try:
            holder.execute("BEGIN IMMEDIATE")  # another process holds the write lock
            r = _register(client, token, "during")
        finally:
            holder.rollback()
            holder.close()
        assert r.status_code == 503, r.text
        assert r.json()["error"]["code"] == "database_unavailable"
        assert "database_unavailable" in running.log_tail(200)  # and a log line says so
        assert _register(client, token, "after").status_code == 201  # and it recovers


@pytest.mark.postgres
def test_postgresql_going_away_answers_503_database_unavailable(tmp_path: Path) -> None:
    base = postgres_url()
    error = postgres_unreachable(base)
    if error is not None:
        pytest.skip(f"PostgreSQL not reachable at {base}: {error}")
    url = make_url(base)
    proxy = TCPProxy((url.host or "127.0.0.1", url.port or 5432))
    through = base.replace(f"{url.host}:{url.port or 5432}", f"127.0.0.1:{proxy.port}")
    data = tmp_path / "data"
    try:
        with (
            temporary_schema(through, "wt_faults") as db_url,
            server(data, {"server": {"database_url": db_url}}) as running,
            httpx.Client(base_url=running.url, timeout=WAIT) as client,
        ):
            token = (data / "admin.token").read_text().strip()
            assert _register(client, token, "before").status_code == 201
            proxy.down()  # the database is gone (the shared server itself is never touched)
            try:
                r = _register(client, token, "during")
            finally:
                proxy.up()
            assert r.status_code == 503, r.text
            assert r.json()["error"]["code"] == "database_unavailable"
            assert "database_unavailable" in running.log_tail(200)
    finally:
        proxy.close()

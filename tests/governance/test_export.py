"""Export: OCSF and JSON lines to a file and to a real HTTP endpoint on loopback; a sink that is
down resumes where it stopped, with nothing lost and nothing doubled."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from warden.errors import ExportError
from warden.ocsf import schema
from warden.service.export import audit_exporter
from warden.service.sinks import FileSink, HTTPSink

from .conftest import World

pytestmark = pytest.mark.governance


class Receiver:
    """A SIEM stand-in: takes NDJSON batches, or answers 503 while ``down``."""

    def __init__(self) -> None:
        self.lines: list[dict[str, Any]] = []
        self.keys: list[str] = []
        self.down = False
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if receiver.down:
                    self.send_response(503)
                    self.end_headers()
                    return
                receiver.keys.append(self.headers["Idempotency-Key"])
                receiver.lines += [json.loads(x) for x in body.decode().splitlines()]
                self.send_response(202)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/ingest"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def _records(world: World, n_tasks: int = 2) -> None:
    world.register(f"bot{len(world.warden.state.agents_by_name)}")
    name = sorted(world.warden.state.agents_by_name)[-1]
    for _ in range(n_tasks):
        task = world.start_task(name)
        world.decide(task["access_token"], task["spiffe_id"], "tickets.read")
    world.warden.writer.flush()


def _seqs(lines: list[dict[str, Any]]) -> list[int]:
    return [line["metadata"]["sequence"] if "metadata" in line else line["seq"] for line in lines]


def test_http_sink_down_then_up_loses_and_doubles_nothing(world: World, receiver: Receiver) -> None:
    store = world.warden.store
    sink = HTTPSink(receiver.url, store, world.clock, name="siem")
    _records(world)
    receiver.down = True
    with pytest.raises(ExportError, match="HTTP 503"):
        audit_exporter(store, sink, "ocsf", batch=4).drain()
    assert store.fetch_export_cursor("siem") == 0
    receiver.down = False
    first = audit_exporter(store, sink, "ocsf", batch=4).drain()
    head = store.audit_head()[0]
    assert first == head and _seqs(receiver.lines) == list(range(1, head + 1))

    _records(world)
    exporter = audit_exporter(store, sink, "ocsf", batch=3)
    exporter.run_once()  # one batch in, then the sink goes down mid-export
    receiver.down = True
    with pytest.raises(ExportError):
        exporter.drain()
    receiver.down = False
    exporter.drain()
    head = store.audit_head()[0]
    assert _seqs(receiver.lines) == list(range(1, head + 1))  # in order, once each
    assert store.fetch_export_cursor("siem") == head
    assert len(set(receiver.keys)) == len(receiver.keys)
    assert receiver.keys[0] == "siem:1-4"
    validator = Draft202012Validator(schema())
    assert all(validator.is_valid(line) for line in receiver.lines)
    sink.close()


def test_unreachable_sink_is_an_export_error(world: World) -> None:
    _records(world)
    sink = HTTPSink("http://127.0.0.1:9/nothing", world.warden.store, world.clock, name="x")
    with pytest.raises(ExportError):
        audit_exporter(world.warden.store, sink, "jsonl").drain()
    assert world.warden.store.fetch_export_cursor("x") == 0
    sink.close()


def test_file_sink_resumes_from_its_last_line(world: World, tmp_path: Path) -> None:
    out = tmp_path / "siem" / "audit.jsonl"
    store = world.warden.store
    _records(world)
    audit_exporter(store, FileSink(out), "jsonl").drain()
    first = store.audit_head()[0]
    _records(world)
    # a crash mid-write left half a line behind
    with out.open("a") as fh:
        fh.write('{"seq": 999, "type": "torn')
    assert audit_exporter(store, FileSink(out), "jsonl").drain() == store.audit_head()[0] - first
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert _seqs(lines) == list(range(1, store.audit_head()[0] + 1))
    assert audit_exporter(store, FileSink(out), "jsonl").drain() == 0  # caught up


def test_a_file_that_is_not_an_export_is_refused(world: World, tmp_path: Path) -> None:
    out = tmp_path / "notes.txt"
    out.write_text("dear diary\n")
    _records(world)
    with pytest.raises(ExportError, match="cannot resume"):
        audit_exporter(world.warden.store, FileSink(out), "ocsf").drain()
    assert out.read_text() == "dear diary\n"


def test_the_background_export_loop_feeds_its_sinks(
    world: World, tmp_path: Path, receiver: Receiver
) -> None:
    out = tmp_path / "ocsf.jsonl"
    world.warden.export.sinks += [
        (FileSink(out), "ocsf"),
        (HTTPSink(receiver.url, world.warden.store, world.clock, name="loop"), "jsonl"),
    ]
    _records(world)
    receiver.down = True
    world.warden.export.tick()  # the HTTP sink fails, the file sink still gets everything
    head = world.warden.store.audit_head()[0]
    assert len(out.read_text().splitlines()) == head and receiver.lines == []
    receiver.down = False
    world.warden.export.tick()
    assert _seqs(receiver.lines) == list(range(1, head + 1))


def test_api_streams_ocsf_and_json_lines(world: World) -> None:
    _records(world)
    head = world.warden.store.audit_head()[0]
    r = world.client.get("/v1/audit/export", headers=world.admin)
    assert r.status_code == 200 and r.headers["content-type"] == "application/x-ndjson"
    events = [json.loads(x) for x in r.text.splitlines()]
    validator = Draft202012Validator(schema())
    assert _seqs(events) == list(range(1, head + 1))
    assert all(validator.is_valid(e) for e in events)
    r = world.client.get(
        "/v1/audit/export",
        params={"format": "jsonl", "after": 3, "until_seq": 5},
        headers=world.admin,
    )
    assert _seqs([json.loads(x) for x in r.text.splitlines()]) == [4, 5]
    bad = world.client.get("/v1/audit/export", params={"format": "xml"}, headers=world.admin)
    assert bad.status_code == 400
    assert world.client.get("/v1/audit/export").status_code == 401

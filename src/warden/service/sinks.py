"""Export sinks and the cursor-driven exporter (audit records, checkpoints).

A sink knows how far it got (its *position*: the last seq it holds) and takes batches of JSON
lines. The exporter reads what comes after the position, hands it over, and only then moves on,
so a sink that is down loses nothing and, when it comes back, gets exactly what it missed:

- ``FileSink`` (JSON lines): the file is its own cursor. The position is the seq of its last
  complete line; a torn last line (a crash mid-write) is cut off before appending again.
- ``HTTPSink``: POSTs ``application/x-ndjson`` batches; its cursor lives in the database
  (``export_cursors``) and advances only after a 2xx. Each batch carries
  ``Idempotency-Key: <sink>:<first seq>-<last seq>`` and every line its seq, so a receiver that
  got a batch whose answer was lost can drop the repeat.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar

import httpx

from warden.core.clock import Clock
from warden.core.ports import Store
from warden.errors import ExportError, InvalidParameterError

T = TypeVar("T")
TAIL_CHUNK = 65536


class Sink(Protocol):
    name: str

    def position(self) -> int:
        """The last seq this sink holds (0: nothing yet)."""
        ...

    def deliver(self, lines: Sequence[str], first: int, last: int) -> None:
        """Take lines for seqs ``first``..``last`` (ExportError when it cannot)."""
        ...


def _seq_of_line(line: bytes) -> int:
    obj = json.loads(line)
    seq = obj.get("seq")
    if seq is None:
        seq = (obj.get("metadata") or {}).get("sequence")
    if not isinstance(seq, int):
        raise ValueError("line has no seq")
    return seq


class FileSink:
    def __init__(self, path: Path, name: str | None = None) -> None:
        self.path = Path(path)
        self.name = name or f"file:{self.path}"

    def _tail(self) -> tuple[bytes, int]:
        """(last complete line, size of the file up to and including it)."""
        try:
            size = self.path.stat().st_size
        except FileNotFoundError:
            return b"", 0
        with self.path.open("rb") as fh:
            end = size
            buf = b""
            while end > 0:
                start = max(0, end - TAIL_CHUNK)
                fh.seek(start)
                buf = fh.read(end - start) + buf
                end = start
                complete = buf.rfind(b"\n")
                if complete == -1:
                    continue
                body = buf[:complete]
                prev = body.rfind(b"\n")
                if prev != -1 or end == 0:
                    return body[prev + 1 :], end + complete + 1
            return b"", 0

    def position(self) -> int:
        line, _ = self._tail()
        if not line.strip():
            return 0
        try:
            return _seq_of_line(line)
        except ValueError as exc:
            raise ExportError(
                f"cannot resume `{self.path}`: its last line is not an export line"
            ) from exc

    def deliver(self, lines: Sequence[str], first: int, last: int) -> None:
        try:
            _, good = self._tail()
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
            with os.fdopen(fd, "r+b") as fh:
                fh.truncate(good)  # drop a torn line left by a crash mid-write
                fh.seek(good)
                fh.write("".join(f"{line}\n" for line in lines).encode())
                fh.flush()
                os.fsync(fh.fileno())
        except OSError as exc:
            raise ExportError(f"cannot write `{self.path}`: {exc.strerror or exc}") from exc


class HTTPSink:
    def __init__(
        self,
        url: str,
        store: Store,
        clock: Clock,
        *,
        name: str | None = None,
        headers: dict[str, str] | None = None,
        timeout: float = 10.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if not url.startswith(("http://", "https://")):
            raise InvalidParameterError(f"export sink `{url}` must be an http(s) url")
        self.url = url
        self.name = name or f"http:{url}"
        self._store = store
        self._clock = clock
        self._http = httpx.Client(timeout=timeout, headers=headers or {}, transport=transport)

    def position(self) -> int:
        return self._store.fetch_export_cursor(self.name)

    def deliver(self, lines: Sequence[str], first: int, last: int) -> None:
        expected = self.position()
        body = "".join(f"{line}\n" for line in lines).encode()
        try:
            response = self._http.post(
                self.url,
                content=body,
                headers={
                    "Content-Type": "application/x-ndjson",
                    "Idempotency-Key": f"{self.name}:{first}-{last}",
                },
            )
        except httpx.HTTPError as exc:
            raise ExportError(f"export to `{self.url}` failed: {exc}") from exc
        if not 200 <= response.status_code < 300:
            raise ExportError(f"export to `{self.url}` failed: HTTP {response.status_code}")
        self._store.advance_export_cursor(
            self.name, expected=expected, to=last, at=self._clock.now()
        )

    def close(self) -> None:
        self._http.close()


@dataclass
class Exporter(Generic[T]):
    """Moves items after a sink's position into it, batch by batch."""

    sink: Sink
    fetch: Callable[[int, int], Sequence[T]]  # (after seq, limit) -> items ascending by seq
    seq_of: Callable[[T], int]
    encode: Callable[[T], str]
    batch: int = 500

    def run_once(self) -> int:
        position = self.sink.position()
        items = self.fetch(position, self.batch)
        if not items:
            return 0
        lines = [self.encode(item) for item in items]
        self.sink.deliver(lines, self.seq_of(items[0]), self.seq_of(items[-1]))
        return len(items)

    def drain(self, *, progress: Callable[[int], Any] | None = None) -> int:
        """Export until the sink is caught up; returns how many items went out."""
        total = 0
        while True:
            n = self.run_once()
            if n == 0:
                return total
            total += n
            if progress is not None:
                progress(n)


def make_sink(target: str, store: Store, clock: Clock, *, name: str | None = None) -> Sink:
    """An ``http(s)://`` url becomes an HTTPSink, anything else a file path."""
    if target.startswith(("http://", "https://")):
        return HTTPSink(target, store, clock, name=name)
    return FileSink(Path(target), name=name)

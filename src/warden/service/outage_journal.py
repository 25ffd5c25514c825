"""The outage journal: ``<data dir>/outage-journal.jsonl`` (ADR 0093).

One JSON object per line, appended with ``O_APPEND`` and ``fsync``-ed before the API answers:
while the database is down this file is the only durable record of a deny-ward change the
replica accepted. Entries are removed (the file rewritten and renamed into place) once replayed.
A separate lock file serialises appends and rewrites, so two processes that share a data folder
never lose each other's entries. A torn last line (a crash mid-append, before the fsync and so
before any answer) is skipped.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

__all__ = ["JOURNAL_NAME", "OutageJournal"]

log = logging.getLogger("warden.outage")

JOURNAL_NAME = "outage-journal.jsonl"


class OutageJournal:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock_path = path.with_name(path.name + ".lock")

    @contextmanager
    def _locked(self) -> Iterator[None]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing releases the lock

    def append(self, entry: dict[str, Any]) -> None:
        """Durable when this returns (the line and, for a new file, its directory entry)."""
        line = (json.dumps(entry, separators=(",", ":"), sort_keys=True) + "\n").encode()
        with self._locked():
            created = not self.path.exists()
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, line)
                os.fsync(fd)
            finally:
                os.close(fd)
            if created:
                _fsync_dir(self.path.parent)

    def entries(self) -> list[dict[str, Any]]:
        with self._locked():
            return self._read()

    def remove(self, ids: set[str]) -> None:
        """Drop the entries with these ids (replayed), keeping any appended meanwhile."""
        if not ids:
            return
        with self._locked():
            keep = [e for e in self._read() if e.get("id") not in ids]
            if not keep:
                self.path.unlink(missing_ok=True)
                _fsync_dir(self.path.parent)
                return
            tmp = self.path.with_name(self.path.name + ".tmp")
            with tmp.open("wb") as fh:
                for entry in keep:
                    fh.write(
                        (json.dumps(entry, separators=(",", ":"), sort_keys=True) + "\n").encode()
                    )
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.path)
            _fsync_dir(self.path.parent)

    def _read(self) -> list[dict[str, Any]]:
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return []
        out: list[dict[str, Any]] = []
        for number, line in enumerate(raw.splitlines(), 1):
            try:
                entry = json.loads(line)
            except ValueError:
                log.warning("%s line %d is not a journal entry: skipped", self.path, number)
                continue
            if isinstance(entry, dict) and isinstance(entry.get("id"), str):
                out.append(entry)
        return out


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)

"""The chain head kept outside the database: ``<data dir>/audit-head.json`` (ADR 0091).

Whoever can delete the last rows of ``audit_events`` leaves a chain that still verifies: a
cut tail is invisible from inside the database. So after every commit, and before any record
of it is acknowledged, the writer records ``{seq, hash}`` of the newest record here (plus the
newest signed checkpoint), written atomically: a temporary file, fsync, rename.
``warden audit verify`` then reports a database that ends before this head.

The head only moves forward. At start it is compared with the database; when the database no
longer holds it (a cut, a restored backup, another database) the file is kept as evidence, an
ERROR says so, and it is not overwritten until an operator moves it aside.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from warden.core.governance import Checkpoint

log = logging.getLogger("warden.audit")

HEAD_FILE = "audit-head.json"


@dataclass(frozen=True)
class ChainHead:
    seq: int
    hash: str
    checkpoint: Checkpoint | None = None


def read_head(path: Path) -> ChainHead | None:
    """The head recorded in ``path``; None when there is no file. ValueError when unreadable."""
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"cannot read the audit head `{path}`: {exc}") from exc
    try:
        cp = raw.get("checkpoint")
        checkpoint = (
            Checkpoint(
                seq=int(cp["seq"]),
                head_hash=str(cp["head_hash"]),
                ts=float(cp["ts"]),
                kid=str(cp.get("kid", "")),
                jws=str(cp["jws"]),
            )
            if cp
            else None
        )
        return ChainHead(seq=int(raw["seq"]), hash=str(raw["hash"]), checkpoint=checkpoint)
    except (AttributeError, KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"the audit head `{path}` is malformed: {exc}") from exc


def _checkpoint_obj(cp: Checkpoint) -> dict[str, Any]:
    return {"seq": cp.seq, "head_hash": cp.head_hash, "ts": cp.ts, "kid": cp.kid, "jws": cp.jws}


class HeadFile:
    """The forward-only chain head on disk; thread-safe, coalescing (older heads are skipped)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._seq = 0
        self._hash = ""
        self._checkpoint: Checkpoint | None = None
        self._want: tuple[int, str] | None = None  # a head that failed to land
        self.frozen = False  # the database does not hold this head: keep the file as evidence
        try:
            head = read_head(path)
        except ValueError as exc:
            log.error("%s; it is kept and no longer updated", exc)
            self.frozen = True
            return
        if head is not None:
            self._seq, self._hash, self._checkpoint = head.seq, head.hash, head.checkpoint

    @property
    def seq(self) -> int:
        return self._seq

    def reconcile(self, hash_at: dict[int, str], db_seq: int) -> None:
        """Compare with the database (its tail seq and the hash it holds at our seq)."""
        if self._seq == 0 or self.frozen:
            return
        held = hash_at.get(self._seq)
        if db_seq < self._seq or held != self._hash:
            self.frozen = True
            missing = (
                f"records {db_seq + 1}..{self._seq} are missing"
                if db_seq < self._seq
                else (f"record {self._seq} differs")
            )
            log.error(
                "audit log does not hold its recorded head (seq %d in %s): %s; run "
                "`warden audit verify`. The head file is kept as evidence and not updated "
                "until it is moved aside",
                self._seq,
                self.path,
                missing,
            )

    def advance(self, seq: int, hash: str) -> None:
        """Record ``seq``/``hash`` as the head unless a newer one is already on disk.

        Raises OSError when the file cannot be written (the caller must not acknowledge).
        """
        with self._lock:
            if self.frozen or seq <= self._seq or seq <= self._on_disk():
                return
            if self._want is None or seq > self._want[0]:
                self._want = (seq, hash)
            self._write(seq, hash, self._checkpoint)
            self._seq, self._hash, self._want = seq, hash, None

    def _on_disk(self) -> int:
        """The seq in the file now: another process sharing the folder (an embedded PDP beside
        its server) may have moved it further; the head never goes back."""
        try:
            head = read_head(self.path)
        except ValueError:
            return 0  # half-written by nobody (renames are atomic): rewrite it
        if head is None:
            return 0
        if head.seq > self._seq:
            self._seq, self._hash = head.seq, head.hash
            if head.checkpoint is not None:
                self._checkpoint = head.checkpoint
        return head.seq

    def retry(self) -> None:
        """Write the newest head that failed to land, if any (OSError when it still fails)."""
        with self._lock:
            if self._want is None or self.frozen:
                return
            seq, hash = self._want
            if seq > self._seq:
                self._write(seq, hash, self._checkpoint)
                self._seq, self._hash = seq, hash
            self._want = None

    def note_checkpoint(self, cp: Checkpoint) -> None:
        with self._lock:
            if self.frozen or (self._checkpoint is not None and self._checkpoint.seq >= cp.seq):
                return
            seq, hash = (self._seq, self._hash) if self._seq >= cp.seq else (cp.seq, cp.head_hash)
            self._write(seq, hash, cp)
            self._seq, self._hash, self._checkpoint = seq, hash, cp

    def _write(self, seq: int, hash: str, cp: Checkpoint | None) -> None:
        body: dict[str, Any] = {"seq": seq, "hash": hash}
        if cp is not None:
            body["checkpoint"] = _checkpoint_obj(cp)
        data = json.dumps(body, separators=(",", ":")).encode()
        # one temporary name per process: replicas sharing a folder never write the same one
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        # the rename is atomic; it is not fsync'd on the folder (one fsync less per commit): a
        # power cut may bring back the previous head, which verify reads as "database ahead"
        os.replace(tmp, self.path)

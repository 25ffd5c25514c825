"""What the audit writer has just committed, for live views and the server log.

The writer calls ``EventFeed.written`` with each committed batch (off the decision path, in
its own thread). The feed keeps the newest sequence number, so the console's event streams
(``GET /v1/audit/stream``) wake within a tick instead of re-reading the store, and writes one
structured log line per decision, approval, kill or policy change (``warden.events``). A line
names ids, outcomes and reasons only — never arguments, tokens or other request values.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
from collections.abc import Sequence
from typing import Any

from warden.core.model import AuditRecord

log = logging.getLogger("warden.events")

LOGGED_PREFIXES = ("authz.decision", "approval.", "policy.", "task.revoked")
LOGGED_TYPES = frozenset(
    {"agent.suspended", "agent.reactivated", "agent.decommissioned", "operator.created"}
)
FIELDS = ("decision", "action", "reason", "reasons", "policy_revision", "request_id", "status")
LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING,
          "error": logging.ERROR}  # fmt: skip


def logged(record_type: str) -> bool:
    return record_type in LOGGED_TYPES or record_type.startswith(LOGGED_PREFIXES)


def summary(rec: AuditRecord) -> dict[str, Any]:
    """The log line's fields: what happened to whom, with no request values."""
    out: dict[str, Any] = {"event": rec.type, "seq": rec.seq, "actor": rec.actor}
    for key, value in (
        ("agent", rec.agent),
        ("task", rec.task_id),
        ("decision_id", rec.decision_id),
    ):
        if value:
            out[key] = value
    data = rec.data
    for key in FIELDS:
        value = data.get(key)
        if value not in (None, "", []):
            out[key] = value
    approval = data.get("approval")
    if isinstance(approval, dict) and approval.get("request_id"):
        out["approval"] = approval["request_id"]
    if data.get("monitor"):
        out["mode"] = "monitor"
    for key in ("id", "request_id", "error"):  # approvals and policy changes
        value = data.get(key)
        if isinstance(value, str) and key not in out:
            out[key] = value[:500]
    return out


class EventFeed:
    def __init__(self, level: str = "info") -> None:
        self._seq = 0
        self.closed = False  # the server is stopping: live streams end
        self._lock = threading.Lock()
        self.level = LEVELS.get(level, logging.INFO)

    def close(self) -> None:
        self.closed = True

    @property
    def latest(self) -> int:
        """The newest committed sequence number this process has seen."""
        return self._seq

    def written(self, records: Sequence[AuditRecord]) -> None:
        if not records:
            return
        with self._lock:
            self._seq = max(self._seq, records[-1].seq)
        if not log.isEnabledFor(self.level):
            return
        for rec in records:
            if logged(rec.type):
                fields = summary(rec)
                log.log(self.level, "%s", _Line(fields), extra={"fields": fields})


class _Line:
    """Renders lazily: text handlers get ``key=value`` pairs, the JSON formatter the fields."""

    def __init__(self, fields: dict[str, Any]) -> None:
        self.fields = fields

    def __str__(self) -> str:
        return " ".join(f"{k}={_text(v)}" for k, v in self.fields.items())


def _text(value: Any) -> str:
    if isinstance(value, list):
        return ",".join(str(v) for v in value) or "-"
    text = str(value)
    return json.dumps(text) if (" " in text or not text) else text


class JSONFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, message, and an event's fields."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": round(record.created, 3),
            "level": record.levelname.lower(),
            "logger": record.name,
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            out.update(fields)
        else:
            out["message"] = record.getMessage()
        if record.exc_info:
            out["error"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str, ensure_ascii=False)


def configure_logging(level: str, fmt: str) -> None:
    """The server's root handler: text on a terminal, JSON lines otherwise (or as asked)."""
    use_json = fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())
    handler = logging.StreamHandler()
    if use_json:
        handler.setFormatter(JSONFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(levelname)-9s %(name)s: %(message)s"))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(LEVELS.get(level, logging.INFO))

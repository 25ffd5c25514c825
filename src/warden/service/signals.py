"""Shared Signals transmitter (SSF 1.0): streams, the outbox, push (RFC 8935) and poll (RFC 8936).

Operators register streams (one per receiver). ``pump`` turns new audit records into signed SETs
in the outbox (``signal_events`` says which), one row per stream that asked for the event type,
in the same transaction that moves the ``ssf`` cursor: nothing is lost and nothing is queued
twice, whichever replica pumps. ``push`` drains each push stream oldest first under a short
lease (one replica per stream): a 2xx delivers; a 400 with an RFC 8935 error object is the
receiver refusing that SET (recorded, not retried); anything else (down, 5xx, timeout) is retried
with backoff, and later events wait behind it, so a stream stays in order. Poll receivers fetch
and acknowledge with ``poll``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlsplit

import httpx

from warden.core.clock import Clock
from warden.core.ids import new_id
from warden.core.signals import POLL, PUSH, NewEvent, OutboxEntry, SignalStore, Stream, StreamStatus
from warden.errors import AuthenticationError, ConflictError, InvalidParameterError, NotFoundError
from warden.service.auditing import Auditor
from warden.service.signal_events import (
    ALWAYS,
    EVENTS_SUPPORTED,
    SOURCE_TYPES,
    STREAM_UPDATED,
    VERIFICATION,
    events_for,
)
from warden.tokens.keys import KeyManager
from warden.tokens.secevent import kid_of, resign_set, sign_set

log = logging.getLogger("warden.signals")

CURSOR = "ssf"
BATCH = 500
PUSH_BATCH = 100
MAX_POLL_EVENTS = 1000
LEASE = 30.0
BASE_DELAY = 0.5
SET_MEDIA_TYPE = "application/secevent+jwt"
_MUTABLE = {"delivery", "events_requested", "description", "aud"}
_READ_ONLY = {
    "stream_id",
    "iss",
    "events_supported",
    "events_delivered",
    "min_verification_interval",
}


@dataclass
class SignalStats:
    queued: int = 0
    delivered: int = 0
    retried: int = 0
    rejected: int = 0


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _text(value: Any, field: str, limit: int) -> str:
    if not isinstance(value, str) or len(value) > limit:
        raise InvalidParameterError(f"`{field}` must be a string of at most {limit} characters")
    return value


class SignalService:
    def __init__(
        self,
        store: SignalStore,
        keys: KeyManager,
        auditor: Auditor,
        clock: Clock,
        *,
        issuer: str,
        spiffe_of: Callable[[str], str | None],
        max_backoff: float = 60.0,
        timeout: float = 5.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._store = store
        self._keys = keys
        self._audit = auditor
        self._clock = clock
        self.issuer = issuer.rstrip("/")
        self._spiffe_of = spiffe_of
        self._max_backoff = max_backoff
        self._timeout = timeout
        self._transport = transport
        self._owner = new_id("replica")
        self._lock = threading.Lock()  # one pump/push pass at a time in this process
        self.stats = SignalStats()

    # -- metadata ------------------------------------------------------------------------------
    def configuration(self) -> dict[str, Any]:
        base = self.issuer
        return {
            "spec_version": "1_0",
            "issuer": base,
            "jwks_uri": f"{base}/.well-known/jwks.json",
            "delivery_methods_supported": [PUSH, POLL],
            "configuration_endpoint": f"{base}/ssf/streams",
            "status_endpoint": f"{base}/ssf/status",
            "verification_endpoint": f"{base}/ssf/verify",
            "authorization_schemes": [{"spec_urn": "urn:ietf:rfc:6750"}],
            "default_subjects": "ALL",
        }

    def view(self, stream: Stream) -> dict[str, Any]:
        """The SSF stream configuration (the receiver's push secret is never echoed)."""
        delivery: dict[str, Any] = {"method": stream.delivery_method}
        if stream.endpoint_url:
            delivery["endpoint_url"] = stream.endpoint_url
        requested = list(stream.events_requested)
        return {
            "stream_id": stream.id,
            "iss": self.issuer,
            "aud": stream.audience,
            "delivery": delivery,
            "events_supported": list(EVENTS_SUPPORTED),
            "events_requested": requested,
            "events_delivered": [e for e in EVENTS_SUPPORTED if e in requested],
            "description": stream.description,
        }

    # -- stream management (operators) --------------------------------------------------------
    def _parse(self, body: Any, stream_id: str, *, base: Stream | None) -> Stream:
        if not isinstance(body, dict):
            raise InvalidParameterError("the stream configuration must be a json object")
        unknown = set(body) - _MUTABLE - _READ_ONLY
        if unknown:
            raise InvalidParameterError(
                f"unknown stream configuration member `{sorted(unknown)[0]}`"
            )
        now = self._clock.now()
        delivery = body.get("delivery", None if base is None else {})
        if delivery is None:
            delivery = {"method": POLL}
        if not isinstance(delivery, dict):
            raise InvalidParameterError("`delivery` must be an object")
        method = delivery.get("method", base.delivery_method if base else POLL)
        if method not in (PUSH, POLL):
            raise InvalidParameterError(f"`delivery.method` must be `{PUSH}` or `{POLL}`")
        endpoint = base.endpoint_url if base and method == base.delivery_method else None
        auth = base.authorization_header if base and method == base.delivery_method else None
        if method == PUSH:
            if "endpoint_url" in delivery or endpoint is None:
                endpoint = _text(delivery.get("endpoint_url"), "delivery.endpoint_url", 2000)
                parts = urlsplit(endpoint)
                if parts.scheme not in ("http", "https") or not parts.hostname:
                    raise InvalidParameterError("`delivery.endpoint_url` must be an http(s) URL")
            if "authorization_header" in delivery:
                auth = _text(
                    delivery["authorization_header"], "delivery.authorization_header", 4096
                )
        else:
            endpoint = f"{self.issuer}/ssf/poll/{stream_id}"
            auth = None
        requested_raw = body.get(
            "events_requested", list(base.events_requested) if base else list(EVENTS_SUPPORTED)
        )
        if not isinstance(requested_raw, list) or not all(
            isinstance(e, str) for e in requested_raw
        ):
            raise InvalidParameterError("`events_requested` must be a list of event type URIs")
        description = _text(
            body.get("description", base.description if base else ""), "description", 1000
        )
        audience = _text(body.get("aud", base.audience if base else stream_id), "aud", 2000)
        return Stream(
            id=stream_id,
            audience=audience,
            description=description,
            delivery_method=method,
            endpoint_url=endpoint,
            authorization_header=auth,
            poll_token_hash=base.poll_token_hash if base else None,
            events_requested=tuple(dict.fromkeys(requested_raw))[:50],
            status=base.status if base else StreamStatus.ENABLED,
            status_reason=base.status_reason if base else "",
            created_by=base.created_by if base else "",
            created_at=base.created_at if base else now,
            updated_at=now,
        )

    def create(self, body: Any, actor: str) -> tuple[Stream, str | None]:
        """A new stream, and for a poll stream the bearer its receiver polls with (shown once)."""
        stream = replace(self._parse(body, new_id("stream"), base=None), created_by=actor)
        token = None
        if stream.delivery_method == POLL:
            token = secrets.token_urlsafe(32)
            stream = replace(stream, poll_token_hash=_hash(token))
        head = self._head()  # read before the stream exists: nothing after it is skipped
        self._store.create_stream(stream)
        self._catch_up(head, stream.id)
        self._audit.record("ssf.stream_created", actor, self._summary(stream))
        return stream, token

    def get(self, stream_id: str) -> Stream:
        return self._store.fetch_stream(stream_id)

    def list(self) -> list[Stream]:
        return self._store.list_streams()

    def update(
        self, stream_id: str, body: Any, actor: str, *, full: bool
    ) -> tuple[Stream, str | None]:
        """PATCH (``full=False``) or PUT (``full=True``, omitted members reset to defaults)."""
        current = self.get(stream_id)
        if isinstance(body, dict) and body.get("stream_id", stream_id) != stream_id:
            raise InvalidParameterError("`stream_id` does not match the stream")
        base = current
        if full:
            base = replace(
                current,
                events_requested=tuple(EVENTS_SUPPORTED),
                description="",
                audience=stream_id,
            )
            if isinstance(body, dict) and "delivery" not in body:
                raise InvalidParameterError("a full replacement needs `delivery`")
        stream = self._parse(body, stream_id, base=base)
        token = None
        if stream.delivery_method == POLL and current.delivery_method != POLL:
            token = secrets.token_urlsafe(32)
            stream = replace(stream, poll_token_hash=_hash(token))
        elif stream.delivery_method == PUSH:
            stream = replace(stream, poll_token_hash=None)
        self._store.update_stream(stream)
        self._audit.record("ssf.stream_updated", actor, self._summary(stream))
        self._stream_updated(stream)
        return stream, token

    def delete(self, stream_id: str, actor: str) -> None:
        self._store.delete_stream(stream_id)
        self._audit.record("ssf.stream_deleted", actor, {"stream_id": stream_id})

    def status(self, stream_id: str) -> dict[str, Any]:
        stream = self.get(stream_id)
        out: dict[str, Any] = {"stream_id": stream.id, "status": stream.status.value}
        if stream.status_reason:
            out["reason"] = stream.status_reason
        return out

    def set_status(self, body: Any, actor: str) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise InvalidParameterError("the status update must be a json object")
        stream = self.get(_text(body.get("stream_id"), "stream_id", 200))
        try:
            status = StreamStatus(str(body.get("status")))
        except ValueError:
            raise InvalidParameterError("`status` must be enabled, paused or disabled") from None
        reason = _text(body.get("reason", ""), "reason", 1000)
        head = self._head()
        was = stream.status
        stream = replace(stream, status=status, status_reason=reason, updated_at=self._clock.now())
        self._store.update_stream(stream)
        if was is StreamStatus.DISABLED and status is not StreamStatus.DISABLED:
            self._catch_up(head, stream.id)  # what happened while disabled is not queued
        self._audit.record(
            "ssf.stream_status",
            actor,
            {"stream_id": stream.id, "status": status.value, "reason": reason},
        )
        self._stream_updated(stream)
        return self.status(stream.id)

    def verify(self, body: Any) -> None:
        """Queue an SSF verification event carrying the receiver's ``state``."""
        if not isinstance(body, dict):
            raise InvalidParameterError("the verification request must be a json object")
        stream = self.get(_text(body.get("stream_id"), "stream_id", 200))
        event: dict[str, Any] = {}
        if "state" in body:
            event["state"] = _text(body["state"], "state", 1000)
        subject = {"format": "opaque", "id": stream.id}
        self._add(stream, VERIFICATION, subject, event)

    def _stream_updated(self, stream: Stream) -> None:
        event: dict[str, Any] = {"status": stream.status.value}
        if stream.status_reason:
            event["reason"] = stream.status_reason
        self._add(stream, STREAM_UPDATED, {"format": "opaque", "id": stream.id}, event)

    def _add(
        self, stream: Stream, event_type: str, subject: dict[str, Any], event: dict[str, Any]
    ) -> None:
        if stream.status is StreamStatus.DISABLED:
            return
        jti = new_id("set")
        token = self._sign(stream, jti, subject, event_type, event, txn=None)
        self._store.add_signal(
            NewEvent(stream.id, jti, event_type, None, token), at=self._clock.now()
        )
        self.stats.queued += 1

    @staticmethod
    def _summary(stream: Stream) -> dict[str, Any]:
        return {
            "stream_id": stream.id,
            "delivery": stream.delivery_method,
            "endpoint": _safe_url(stream.endpoint_url),
            "events_requested": list(stream.events_requested),
            "audience": stream.audience,
        }

    def _sign(
        self,
        stream: Stream,
        jti: str,
        subject: Mapping[str, Any],
        event_type: str,
        event: Mapping[str, Any],
        *,
        txn: str | None,
    ) -> str:
        return sign_set(
            self._keys.current(),
            issuer=self.issuer,
            audience=stream.audience,
            jti=jti,
            iat=self._clock.now(),
            subject=subject,
            event_type=event_type,
            event=event,
            txn=txn,
        )

    # -- the outbox ----------------------------------------------------------------------------
    def tick(self) -> None:
        with self._lock:
            self.pump()
            self.push()

    def pump(self) -> int:
        """Queue the events of audit records written since the last pass; returns how many."""
        queued = 0
        while True:
            streams = self._listening()
            if not streams:
                return queued  # nobody listens: no reads of the log, no writes
            position = self._store_cursor()
            records, upto = self._store.signal_records(
                after_seq=position, types=SOURCE_TYPES, limit=BATCH
            )
            if upto <= position:
                return queued
            events: list[NewEvent] = []
            for record in records:
                for event_type, subject, payload in events_for(
                    record, issuer=self.issuer, spiffe_of=self._spiffe_of
                ):
                    for stream in streams:
                        if record.ts < stream.created_at:
                            continue
                        if event_type not in stream.events_requested and event_type not in ALWAYS:
                            continue
                        jti = new_id("set")
                        token = self._sign(
                            stream, jti, subject, event_type, payload, txn=f"audit:{record.seq}"
                        )
                        events.append(NewEvent(stream.id, jti, event_type, record.seq, token))
            try:
                self._store.enqueue_signals(
                    events, cursor=CURSOR, expected=position, to=upto, at=self._clock.now()
                )
            except ConflictError:
                continue  # another replica queued this range: read the cursor again
            queued += len(events)
            self.stats.queued += len(events)

    def _store_cursor(self) -> int:
        return self._store.fetch_export_cursor(CURSOR)

    def _listening(self) -> tuple[Stream, ...]:
        return tuple(s for s in self._store.list_streams() if s.status is not StreamStatus.DISABLED)

    def _head(self) -> int:
        return self._store.signal_records(after_seq=0, types=(), limit=1)[1]

    def _catch_up(self, head: int, stream_id: str) -> None:
        """A stream starts listening while no other does: the cursor has stood still since the
        last one stopped, so move it to ``head`` (read before this stream started) instead of
        reading the log in between, which belongs to no stream."""
        if any(s.id != stream_id for s in self._listening()):
            return  # the pump is keeping the cursor current
        position = self._store_cursor()
        if position >= head:
            return
        try:
            self._store.enqueue_signals(
                [], cursor=CURSOR, expected=position, to=head, at=self._clock.now()
            )
        except ConflictError:
            pass  # another replica moved it

    def push(self) -> int:
        """Deliver what is due on every enabled push stream; returns how many were delivered."""
        delivered = 0
        streams = [
            s
            for s in self._store.list_streams()
            if s.delivery_method == PUSH and s.status is StreamStatus.ENABLED
        ]
        if not streams:
            return 0
        with httpx.Client(timeout=self._timeout, transport=self._transport) as http:
            for stream in streams:
                now = self._clock.now()
                if not self._store.claim_stream(stream.id, self._owner, until=now + LEASE, now=now):
                    continue  # another replica drains this stream
                delivered += self._push_stream(http, stream)
        return delivered

    def release(self) -> None:
        """Give up this replica's push leases (at shutdown), so another takes over at once."""
        for stream in self._store.list_streams():
            if stream.delivery_method == PUSH:
                self._store.claim_stream(stream.id, self._owner, until=0.0, now=self._clock.now())

    def _push_stream(self, http: httpx.Client, stream: Stream) -> int:
        delivered = 0
        for entry in self._store.pending_signals(stream.id, limit=PUSH_BATCH):
            now = self._clock.now()
            if entry.next_attempt_at > now:
                return delivered  # the head waits for its retry: so does everything behind it
            ok, outcome, error = self._post(http, stream, entry)
            retry_at = now + min(self._max_backoff, BASE_DELAY * 2**entry.attempts)
            self._store.signal_attempted(
                entry.id, ok=ok, outcome=outcome, error=error, at=now, retry_at=retry_at
            )
            if not ok:
                self.stats.retried += 1
                log.warning(
                    "SET %s to %s: %s; retrying", entry.jti, _safe_url(stream.endpoint_url), error
                )
                return delivered
            if outcome == "rejected":
                self.stats.rejected += 1
                self._audit.record(
                    "ssf.set_rejected",
                    "warden",
                    {
                        "stream_id": stream.id,
                        "jti": entry.jti,
                        "event": entry.event_type,
                        "error": error,
                    },
                )
            else:
                self.stats.delivered += 1
                delivered += 1
        return delivered

    def _post(
        self, http: httpx.Client, stream: Stream, entry: OutboxEntry
    ) -> tuple[bool, str | None, str | None]:
        """(done, outcome, error): done is False when the SET must be tried again."""
        headers = {"content-type": SET_MEDIA_TYPE, "accept": "application/json"}
        if stream.authorization_header:
            headers["authorization"] = stream.authorization_header
        assert stream.endpoint_url is not None
        token = self.verifiable(entry.token)
        try:
            response = http.post(stream.endpoint_url, content=token.encode(), headers=headers)
        except httpx.HTTPError as exc:
            return False, None, f"{type(exc).__name__}"
        if 200 <= response.status_code < 300:
            return True, "delivered", None
        if response.status_code == 400:
            err = _rfc8935_error(response)
            if err is not None:
                return True, "rejected", err
        return False, None, f"HTTP {response.status_code}"

    def verifiable(self, token: str) -> str:
        """``token``, re-signed when the key it was queued under has left the JWKS (a receiver
        that was down longer than a key's life still gets a SET it can verify)."""
        kid = kid_of(token)
        if kid is not None and self._keys.public_key(kid) is not None:
            return token
        return resign_set(token, self._keys.current())

    # -- poll (RFC 8936) -------------------------------------------------------------------------
    def authorize_poll(self, stream_id: str, token: str | None) -> Stream:
        """The poll stream ``token`` opens; one answer for an unknown stream, a push stream and
        a wrong token, so the endpoint does not tell which stream ids exist."""
        refused = AuthenticationError("this stream's poll token is required")
        if not token:
            raise refused
        try:
            stream = self.get(stream_id)
        except NotFoundError:
            raise refused from None
        expected = stream.poll_token_hash or ""
        if stream.delivery_method != POLL or not hmac.compare_digest(_hash(token), expected):
            raise refused
        return stream

    def poll(self, stream: Stream, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise InvalidParameterError("the poll request must be a json object")
        acks = body.get("ack", [])
        if (
            not isinstance(acks, list)
            or not all(isinstance(a, str) for a in acks)
            or len(acks) > MAX_POLL_EVENTS
        ):
            raise InvalidParameterError("`ack` must be a list of SET ids")
        errs = body.get("setErrs", {})
        if not isinstance(errs, dict) or len(errs) > MAX_POLL_EVENTS:
            raise InvalidParameterError("`setErrs` must be an object of SET id to error")
        max_events = body.get("maxEvents", 100)
        if isinstance(max_events, bool) or not isinstance(max_events, int) or max_events < 0:
            raise InvalidParameterError("`maxEvents` must be a non-negative integer")
        now = self._clock.now()
        self.stats.delivered += self._store.acknowledge_signals(
            stream.id, acks, outcome="delivered", error=None, at=now
        )
        for jti, err in errs.items():
            text = json.dumps(err)[:500] if isinstance(err, dict) else str(err)[:500]
            if self._store.acknowledge_signals(
                stream.id, [str(jti)], outcome="rejected", error=text, at=now
            ):
                self.stats.rejected += 1
                self._audit.record(
                    "ssf.set_rejected",
                    "warden",
                    {"stream_id": stream.id, "jti": str(jti), "error": text},
                )
        if max_events == 0 or stream.status is not StreamStatus.ENABLED:
            return {"sets": {}, "moreAvailable": False}
        limit = min(max_events, MAX_POLL_EVENTS)
        pending = self._store.pending_signals(stream.id, limit=limit + 1)
        sets = {e.jti: self.verifiable(e.token) for e in pending[:limit]}
        return {"sets": sets, "moreAvailable": len(pending) > limit}

    def prune(self, *, keep: float = 86400.0) -> int:
        """Forget SETs delivered (or refused) more than ``keep`` seconds ago (housekeeping)."""
        return self._store.prune_signals(before=self._clock.now() - keep)

    def pending(self) -> dict[str, int]:
        return self._store.count_pending_signals()


def _rfc8935_error(response: httpx.Response) -> str | None:
    try:
        body = response.json()
    except ValueError:
        return None
    if isinstance(body, dict) and isinstance(body.get("err"), str):
        return f"{body['err']}: {str(body.get('description', ''))[:300]}"
    return None


def _safe_url(url: str | None) -> str | None:
    """Scheme, host, port and path only: never a query that may carry a secret."""
    if not url:
        return url
    p = urlsplit(url)
    port = f":{p.port}" if p.port else ""
    return f"{p.scheme}://{p.hostname or ''}{port}{p.path}"

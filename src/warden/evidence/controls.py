"""Control checks over a stream of audit records.

One pass, in seq order, from the first record: ``Context`` replays what the log says about the
world (agent status, tier and owners, owner status, outstanding credentials, loaded policy
revisions) so each check can judge a record by the state *at its time*; checks count only
records inside the reporting period. Memory is bounded by live state (agents, owners,
credentials not yet expired), not by the length of the log.

Each check watches record-type prefixes (table-driven: record types other features add reach
the checks that name their prefix) and yields a ``ControlResult``: pass / fail / no_data (no
relevant records in the period) / not_evaluable (Warden does not record what the control
needs), counts, the violating record seqs, and what was measured.
"""

from __future__ import annotations

import json
import re
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from warden.core.model import AuditRecord
from warden.evidence.catalogue import BY_ID, ControlSpec

MAX_VIOLATIONS_LISTED = 50
END_TYPES = ("task.completed", "task.failed", "task.expired", "task.revoked")
STOP_TYPES = ("agent.suspended", "agent.decommissioned")


@dataclass(frozen=True)
class Thresholds:
    credential_ttl: float = 900.0  # CP-CRED-01
    credential_ttl_low: float = 3600.0
    revocation_within: float = 60.0  # CP-CRED-04
    kill_within: float = 5.0  # CP-KILL-01
    orphan_grace: float = 86400.0  # CP-OWN-01
    flag_grace: float = 7 * 86400.0  # CP-LIFE-02
    recertify_every: float = 90 * 86400.0  # CP-LIFE-03
    checkpoint_interval: float = 300.0  # CP-AUD-02
    max_delegation_depth: int = 3  # CP-AUTHZ-02

    def describe(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


@dataclass
class ControlResult:
    spec: ControlSpec
    status: str = "no_data"  # pass | fail | no_data | not_evaluable
    checked: int = 0
    violations: int = 0
    violating_seqs: list[int] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    measured: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        s = self.spec
        return {
            "id": s.id,
            "title": s.title,
            "assertion": s.assertion,
            "status": self.status,
            "checked": self.checked,
            "violations": self.violations,
            "violating_seqs": self.violating_seqs,
            "notes": self.notes,
            "measured": self.measured,
            "coverage": s.coverage,
            "coverage_note": s.coverage_note,
            "maps_to": {
                "owasp_asi": list(s.asi),
                "maestro": list(s.maestro),
                "nist_ai_rmf": list(s.ai_rmf),
                "nist_csf_2": list(s.csf),
                "sp800_53": list(s.sp800_53),
                "owasp_nhi": list(s.nhi),
            },
        }


# -- the replayed world -------------------------------------------------------------------------


@dataclass
class AgentState:
    status: str = "active"
    tier: str = "medium"
    owners: list[str] = field(default_factory=list)
    registered_seq: int = 0
    registered_at: float = 0.0
    last_certified: float | None = None
    stopped_at: float | None = None  # suspended / decommissioned


class Context:
    def __init__(self) -> None:
        self.agents: dict[str, AgentState] = {}
        self.inactive_humans: set[str] = set()
        self.revisions: set[str] = set()
        self.credentials: dict[str, tuple[str | None, float]] = {}  # jti -> (agent, expiry)
        self._expiry: deque[tuple[float, str]] = deque()
        self.revoked: dict[str, float] = {}  # jti -> when
        self.task_scopes: dict[str, tuple[set[str], int]] = {}  # task -> (granted, depth)

    def agent(self, name: str | None) -> AgentState | None:
        return None if name is None else self.agents.get(name)

    def has_active_owner(self, state: AgentState) -> bool:
        return any(o not in self.inactive_humans for o in state.owners)

    def outstanding(self, agent: str, at: float) -> list[str]:
        return [
            jti
            for jti, (owner, exp) in self.credentials.items()
            if owner == agent and exp > at and jti not in self.revoked
        ]

    def apply(self, rec: AuditRecord) -> None:
        d, t, name = rec.data, rec.type, rec.agent
        self._prune(rec.ts)
        if t == "agent.registered" and name:
            self.agents[name] = AgentState(
                tier=str(d.get("risk_tier", "medium")),
                owners=[str(d.get("owner", ""))],
                registered_seq=rec.seq,
                registered_at=rec.ts,
            )
        state = self.agent(name)
        if state is not None:
            if t == "agent.updated":
                changes = d.get("changes") or {}
                if "owner" in changes:
                    state.owners = [str(changes["owner"]), *state.owners[1:]]
                if "risk_tier" in changes:
                    state.tier = str(changes["risk_tier"])
            elif t == "agent.owner_transferred":
                state.owners = [str(o) for o in d.get("to") or []]
            elif t in STOP_TYPES:
                state.status = str(d.get("to") or t.split(".")[1])
                state.stopped_at = rec.ts
            elif t == "agent.reactivated":
                state.status, state.stopped_at = "active", None
            elif t.startswith("certification.") and t.endswith(
                ("kept", "reduced", "revoked", "expired")
            ):
                state.last_certified = rec.ts
        if t == "owner.deactivated":
            self.inactive_humans.add(str(d.get("owner")))
        elif t == "owner.reactivated":
            self.inactive_humans.discard(str(d.get("owner")))
        elif t == "policy.loaded" and d.get("revision"):
            self.revisions.add(str(d["revision"]))
        elif t in ("credential.issued", "credential.renewed") and d.get("jti"):
            exp = float(d.get("expires_at") or rec.ts)
            self.credentials[str(d["jti"])] = (name, exp)
            self._expiry.append((exp, str(d["jti"])))
        elif t == "credential.revoked" and d.get("jti"):
            self.revoked.setdefault(str(d["jti"]), rec.ts)
        elif t == "task.started" and rec.task_id:
            depth = int(d.get("depth") or len(d.get("chain") or [None]) - 1 or 0)
            self.task_scopes[rec.task_id] = (set(d.get("granted_scope") or []), depth)
        elif t in END_TYPES and rec.task_id:
            self.task_scopes.pop(rec.task_id, None)

    def _prune(self, now: float) -> None:
        # credentials expired long ago can no longer be used or revoked late: forget them
        while self._expiry and self._expiry[0][0] + 3600 < now:
            _, jti = self._expiry.popleft()
            self.credentials.pop(jti, None)
            self.revoked.pop(jti, None)


# -- checks -----------------------------------------------------------------------------------


class Check:
    id = ""
    watches: tuple[str, ...] = ()  # record-type prefixes; exact types also work

    def __init__(self, thresholds: Thresholds) -> None:
        self.t = thresholds
        self.result = ControlResult(BY_ID[self.id])

    def wants(self, record_type: str) -> bool:
        return any(record_type.startswith(p) for p in self.watches)

    def before(self, rec: AuditRecord, ctx: Context, in_period: bool) -> None:
        """Sees a record before ``Context.apply`` (state as it was when it was written)."""

    def after(self, rec: AuditRecord, ctx: Context, in_period: bool) -> None:
        """Sees a record after ``Context.apply``."""

    def violate(self, seq: int, note: str | None = None) -> None:
        r = self.result
        r.violations += 1
        if len(r.violating_seqs) < MAX_VIOLATIONS_LISTED:
            r.violating_seqs.append(seq)
        if note and len(r.notes) < 10:
            r.notes.append(note)

    def finish(self, ctx: Context, end: float) -> ControlResult:
        r = self.result
        if r.status == "not_evaluable":
            return r
        if r.violations:
            r.status = "fail"
        elif r.checked:
            r.status = "pass"
        return r


def _is_agent_decision(rec: AuditRecord) -> bool:
    subject = rec.data.get("subject") or {}
    return rec.agent is not None or str(subject.get("type", "")).lower() == "agent"


class RegisteredIdentity(Check):
    id = "CP-ID-01"
    watches = ("authz.decision", "task.started", "task.refused")

    def before(self, rec: AuditRecord, ctx: Context, in_period: bool) -> None:
        if not in_period:
            return
        denied = self.result.measured.setdefault("unregistered_or_inactive_denied", 0)
        if rec.type == "task.refused":
            if rec.data.get("reason") in ("unknown_agent", "agent_inactive"):
                self.result.measured["unregistered_or_inactive_denied"] = denied + 1
            return
        if rec.type == "authz.decision" and not _is_agent_decision(rec):
            return
        if rec.type == "authz.decision" and rec.data.get("decision") != "allow":
            if rec.data.get("reason") == "invalid_credential":
                self.result.measured["unregistered_or_inactive_denied"] = denied + 1
            return
        self.result.checked += 1
        state = ctx.agent(rec.agent)
        if state is None or state.status != "active":
            what = "unknown" if state is None else state.status
            self.violate(rec.seq, f"seq {rec.seq}: allowed for an agent that was {what}")


class OneIdentity(Check):
    id = "CP-ID-02"
    watches = ("authz.decision",)

    def before(self, rec: AuditRecord, ctx: Context, in_period: bool) -> None:
        jti = rec.data.get("jti")
        if not in_period or not jti or rec.agent is None:
            return
        self.result.checked += 1
        issued_to = ctx.credentials.get(str(jti))
        if issued_to is not None and issued_to[0] not in (None, rec.agent):
            self.violate(
                rec.seq, f"seq {rec.seq}: credential of `{issued_to[0]}` used by `{rec.agent}`"
            )


class ActiveOwner(Check):
    id = "CP-OWN-01"
    watches = ("authz.decision", "task.started", "agent.", "owner.")

    def __init__(self, thresholds: Thresholds) -> None:
        super().__init__(thresholds)
        self.orphaned: dict[str, tuple[int, float]] = {}  # agent -> (seq, since)

    def before(self, rec: AuditRecord, ctx: Context, in_period: bool) -> None:
        state = ctx.agent(rec.agent)
        acting = rec.type == "task.started" or (
            rec.type == "authz.decision" and rec.data.get("decision") == "allow"
        )
        if in_period and acting and state is not None:
            self.result.checked += 1
            if not ctx.has_active_owner(state):
                self.violate(rec.seq, f"seq {rec.seq}: `{rec.agent}` acted with no active owner")

    def after(self, rec: AuditRecord, ctx: Context, in_period: bool) -> None:
        if rec.type == "agent.orphaned" and rec.agent:
            self.orphaned.setdefault(rec.agent, (rec.seq, rec.ts))
        elif rec.type in ("agent.reowned", "agent.owner_transferred", *STOP_TYPES) and rec.agent:
            found = self.orphaned.pop(rec.agent, None)
            if found and in_period and rec.type in STOP_TYPES:
                took = rec.ts - found[1]
                worst = self.result.measured.get("max_orphan_to_suspend_s", 0.0)
                self.result.measured["max_orphan_to_suspend_s"] = round(max(worst, took), 3)
                if took > self.t.orphan_grace:
                    self.violate(found[0], f"`{rec.agent}` suspended {took:.0f} s after orphaning")

    def finish(self, ctx: Context, end: float) -> ControlResult:
        for agent, (seq, since) in self.orphaned.items():
            state = ctx.agent(agent)
            if state is not None and state.status == "active" and end - since > self.t.orphan_grace:
                self.violate(seq, f"`{agent}` orphaned and still active after the grace period")
        active = [s for s in ctx.agents.values() if s.status == "active"]
        self.result.measured["active_agents_at_end"] = len(active)
        if active:
            self.result.checked += len(active)
        for name, state in ctx.agents.items():
            if (
                state.status == "active"
                and not ctx.has_active_owner(state)
                and name not in self.orphaned
            ):
                self.violate(state.registered_seq, f"`{name}` is active with no active owner")
        return super().finish(ctx, end)


class RegistrationCompleteness(Check):
    id = "CP-LIFE-01"
    watches = ("agent.registered",)

    def after(self, rec: AuditRecord, ctx: Context, in_period: bool) -> None:
        if not in_period:
            return
        self.result.checked += 1
        missing = [k for k in ("purpose", "owner", "risk_tier") if not rec.data.get(k)]
        if not rec.data.get("entitlements"):
            missing.append("entitlements")
        if missing:
            self.violate(rec.seq, f"`{rec.agent}` registered without {', '.join(missing)}")


class Dormancy(Check):
    id = "CP-LIFE-02"
    watches = ("agent.", "credential.issued", "credential.renewed")

    def __init__(self, thresholds: Thresholds) -> None:
        super().__init__(thresholds)
        self.flagged: dict[str, tuple[int, float]] = {}

    def before(self, rec: AuditRecord, ctx: Context, in_period: bool) -> None:
        if rec.type.startswith("credential.") and in_period:
            state = ctx.agent(rec.agent)
            if state is not None and state.status == "decommissioned":
                self.violate(rec.seq, f"seq {rec.seq}: credential issued to a retired agent")

    def after(self, rec: AuditRecord, ctx: Context, in_period: bool) -> None:
        if rec.type == "agent.flagged" and rec.agent:
            self.flagged[rec.agent] = (rec.seq, rec.ts)
            if in_period:
                self.result.checked += 1
                reason = str(rec.data.get("reason"))
                key = f"flagged_{reason}"
                self.result.measured[key] = self.result.measured.get(key, 0) + 1
        elif rec.type in ("agent.unflagged", *STOP_TYPES) and rec.agent:
            found = self.flagged.pop(rec.agent, None)
            if found and rec.type in STOP_TYPES and rec.ts - found[1] > self.t.flag_grace + 86400:
                self.violate(found[0], f"`{rec.agent}` suspended late after being flagged")

    def finish(self, ctx: Context, end: float) -> ControlResult:
        for agent, (seq, since) in self.flagged.items():
            state = ctx.agent(agent)
            if state and state.status == "active" and end - since > self.t.flag_grace + 86400:
                self.violate(seq, f"`{agent}` flagged and still active past the grace period")
        self.result.checked += sum(1 for s in ctx.agents.values() if s.status != "decommissioned")
        return super().finish(ctx, end)


class Recertification(Check):
    id = "CP-LIFE-03"
    watches = ("certification.",)

    def after(self, rec: AuditRecord, ctx: Context, in_period: bool) -> None:
        if in_period and rec.agent and rec.type != "certification.review_opened":
            key = rec.type.split(".", 1)[1]
            self.result.measured[key] = self.result.measured.get(key, 0) + 1

    def finish(self, ctx: Context, end: float) -> ControlResult:
        for name, state in ctx.agents.items():
            if state.status != "active":
                continue
            self.result.checked += 1
            since = (
                state.last_certified if state.last_certified is not None else state.registered_at
            )
            if end - since > self.t.recertify_every:
                self.violate(
                    state.registered_seq,
                    f"`{name}` not certified for {(end - since) / 86400:.0f} days",
                )
        return super().finish(ctx, end)


class CredentialTTL(Check):
    id = "CP-CRED-01"
    watches = ("credential.issued", "credential.renewed")

    def before(self, rec: AuditRecord, ctx: Context, in_period: bool) -> None:
        if not in_period:
            return
        self.result.checked += 1
        issued, expires = rec.data.get("issued_at"), rec.data.get("expires_at")
        if not isinstance(issued, int | float) or not isinstance(expires, int | float):
            self.violate(rec.seq, f"seq {rec.seq}: credential without an expiry")
            return
        ttl = expires - issued
        state = ctx.agent(rec.agent)
        cap = self.t.credential_ttl_low if state and state.tier == "low" else self.t.credential_ttl
        self.result.measured["max_ttl_s"] = max(self.result.measured.get("max_ttl_s", 0), ttl)
        if ttl > cap:
            self.violate(rec.seq, f"seq {rec.seq}: credential lives {ttl:.0f} s (cap {cap:.0f} s)")


class CredentialBinding(Check):
    id = "CP-CRED-02"
    watches = ("credential.issued",)

    def before(self, rec: AuditRecord, ctx: Context, in_period: bool) -> None:
        if not in_period:
            return
        self.result.checked += 1
        if not rec.agent or not rec.task_id or not rec.data.get("audience"):
            self.violate(
                rec.seq, f"seq {rec.seq}: credential not bound to agent, task and audience"
            )


SECRET_PATTERNS = (
    ("jwt", re.compile(r"eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{16,}")),
    ("private key", re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----")),
    ("operator token", re.compile(r"wdn_op_[A-Za-z0-9_-]{20,}")),
    ("bearer token", re.compile(r"Bearer\s+[A-Za-z0-9._~+/-]{20,}")),
    ("aws access key", re.compile(r"AKIA[0-9A-Z]{16}")),
)


class NoSecrets(Check):
    id = "CP-CRED-03"
    watches = ("",)

    def before(self, rec: AuditRecord, ctx: Context, in_period: bool) -> None:
        if not in_period:
            return
        self.result.checked += 1
        text = json.dumps(rec.data, ensure_ascii=False)
        for kind, pattern in SECRET_PATTERNS:
            if pattern.search(text):
                self.violate(rec.seq, f"seq {rec.seq}: looks like a {kind} in `{rec.type}`")
                return


class RevocationPropagation(Check):
    id = "CP-CRED-04"
    watches = ("agent.suspended", "agent.decommissioned", "credential.revoked", "authz.decision")

    def __init__(self, thresholds: Thresholds) -> None:
        super().__init__(thresholds)
        self.pending: dict[str, tuple[int, float, str]] = {}  # jti -> (stop seq, at, agent)

    def before(self, rec: AuditRecord, ctx: Context, in_period: bool) -> None:
        if rec.type in STOP_TYPES and rec.agent:
            for jti in ctx.outstanding(rec.agent, rec.ts):
                self.pending[jti] = (rec.seq, rec.ts, rec.agent)
            if in_period:
                self.result.checked += 1
        elif rec.type == "authz.decision" and rec.data.get("decision") == "allow" and in_period:
            used = rec.data.get("jti")
            if used and str(used) in ctx.revoked and ctx.revoked[str(used)] <= rec.ts:
                self.violate(rec.seq, f"seq {rec.seq}: allowed on a revoked credential")

    def after(self, rec: AuditRecord, ctx: Context, in_period: bool) -> None:
        if rec.type != "credential.revoked":
            return
        found = self.pending.pop(str(rec.data.get("jti")), None)
        if found is None:
            return
        took = rec.ts - found[1]
        worst = self.result.measured.get("max_revocation_s", 0.0)
        self.result.measured["max_revocation_s"] = round(max(worst, took), 3)
        if took > self.t.revocation_within:
            self.violate(found[0], f"`{found[2]}`: credential revoked {took:.0f} s after the stop")

    def finish(self, ctx: Context, end: float) -> ControlResult:
        for jti, (seq, at, agent) in self.pending.items():
            expiry = ctx.credentials.get(jti, (None, 0.0))[1]
            if expiry > at + self.t.revocation_within and end > at + self.t.revocation_within:
                self.violate(seq, f"`{agent}`: a credential outlived the stop unrevoked")
        return super().finish(ctx, end)


class CompleteMediation(Check):
    id = "CP-AUTHZ-01"
    watches = ("authz.decision", "operator.auth_refused")

    def before(self, rec: AuditRecord, ctx: Context, in_period: bool) -> None:
        if not in_period:
            return
        if rec.type == "operator.auth_refused":  # refused management calls, aggregated
            measured = self.result.measured
            count = rec.data.get("count")
            n = count if isinstance(count, int) and count > 0 else 1
            measured["refused_management_calls"] = measured.get("refused_management_calls", 0) + n
            reasons = measured.setdefault("refused_by_reason", {})
            key = str(rec.data.get("reason", "unknown"))[:60]
            reasons[key] = reasons.get(key, 0) + n
            return
        self.result.checked += 1
        d = rec.data
        if d.get("decision") != "allow":
            return
        allows = self.result.measured.get("allows", 0) + 1
        self.result.measured["allows"] = allows
        if d.get("monitor"):
            self.violate(rec.seq, f"seq {rec.seq}: let through in monitor mode (would deny)")
        elif d.get("errors"):
            self.violate(rec.seq, f"seq {rec.seq}: allowed despite evaluation errors")
        elif not d.get("reasons"):
            self.violate(rec.seq, f"seq {rec.seq}: allowed with no determining policy")


class DelegationAttenuation(Check):
    id = "CP-AUTHZ-02"
    watches = ("task.started", "delegation.")

    def before(self, rec: AuditRecord, ctx: Context, in_period: bool) -> None:
        d = rec.data
        parent = d.get("parent_task") or d.get("parent_id") or d.get("parent")
        if not in_period or rec.type != "task.started" or not parent:
            return
        self.result.checked += 1
        granted = set(d.get("granted_scope") or [])
        parent_scope = ctx.task_scopes.get(str(parent))
        depth = int(d.get("depth") or max(len(d.get("chain") or []) - 1, 1))
        hist = self.result.measured.setdefault("depths", {})
        hist[str(depth)] = hist.get(str(depth), 0) + 1
        if parent_scope is not None and not granted <= parent_scope[0]:
            self.violate(rec.seq, f"seq {rec.seq}: delegate holds scope its delegator lacks")
        if depth > self.t.max_delegation_depth:
            self.violate(rec.seq, f"seq {rec.seq}: delegation chain {depth} deep")


class VersionedPolicy(Check):
    id = "CP-AUTHZ-03"
    watches = ("authz.decision", "policy.")

    def before(self, rec: AuditRecord, ctx: Context, in_period: bool) -> None:
        if not in_period or rec.type != "authz.decision" or rec.data.get("reason"):
            return  # refusals before Cedar ran name no revision
        self.result.checked += 1
        revision = rec.data.get("policy_revision")
        if not revision:
            self.violate(rec.seq, f"seq {rec.seq}: decision without a policy revision")
        elif str(revision) not in ctx.revisions:
            self.violate(
                rec.seq, f"seq {rec.seq}: revision `{revision}` was never recorded as loaded"
            )

    def after(self, rec: AuditRecord, ctx: Context, in_period: bool) -> None:
        if in_period and rec.type == "policy.rejected":
            self.result.measured["rejected_changes"] = (
                self.result.measured.get("rejected_changes", 0) + 1
            )


class Approvals(Check):
    """Table-driven over ``approval.*`` records (whatever the approvals feature records)."""

    id = "CP-APPR-01"
    watches = ("approval.", "authz.decision")

    def __init__(self, thresholds: Thresholds) -> None:
        super().__init__(thresholds)
        self.requested: dict[str, float] = {}
        self.granted: dict[str, float] = {}
        self.used: set[str] = set()
        self.latencies: list[float] = []

    @staticmethod
    def _id(rec: AuditRecord) -> str | None:
        data = rec.data
        if rec.type == "authz.decision":
            # decisions carry {"granted", "request_id", …}; their own top-level `request_id` is
            # the HTTP X-Request-ID, not an approval
            value = data.get("approval_id") or data.get("approval")
        else:  # approval.* records name their request `request_id`
            value = data.get("approval_id") or data.get("request_id") or data.get("id")
        if isinstance(value, dict):
            value = value.get("id") or value.get("approval_id") or value.get("request_id")
        return None if value is None else str(value)

    def before(self, rec: AuditRecord, ctx: Context, in_period: bool) -> None:
        aid = self._id(rec)
        verb = rec.type.rsplit(".", 1)[-1]
        if rec.type.startswith("approval.") and aid:
            if verb == "requested":
                self.requested[aid] = rec.ts
            elif verb in ("granted", "approved"):
                self.granted[aid] = rec.ts
            outcomes = ("granted", "approved", "denied", "rejected", "expired", "timed_out")
            if in_period and verb in outcomes:
                self.result.checked += 1
                if aid in self.requested and len(self.latencies) < 100_000:
                    latency = rec.ts - self.requested[aid]
                    timed_out = verb in ("expired", "timed_out")
                    self.latencies.append(-1.0 if timed_out else latency)
            return
        if (
            rec.type == "authz.decision"
            and in_period
            and aid
            and rec.data.get("decision") == "allow"
        ):
            self.result.checked += 1
            if aid not in self.granted:
                self.violate(rec.seq, f"seq {rec.seq}: allowed on approval `{aid}` never granted")
            elif aid in self.used:
                self.violate(rec.seq, f"seq {rec.seq}: approval `{aid}` used twice")
            elif rec.ts - self.granted[aid] > 600:
                self.violate(rec.seq, f"seq {rec.seq}: approval `{aid}` used after 10 min")
            self.used.add(aid)

    def finish(self, ctx: Context, end: float) -> ControlResult:
        if not self.result.checked:
            self.result.notes.append("no approval records in the period")
        return super().finish(ctx, end)


class KillSwitch(Check):
    id = "CP-KILL-01"
    watches = ("agent.suspended", "agent.decommissioned", "authz.decision")

    def before(self, rec: AuditRecord, ctx: Context, in_period: bool) -> None:
        if rec.type in STOP_TYPES:
            if in_period:
                self.result.checked += 1
            return
        state = ctx.agent(rec.agent)
        if (
            in_period
            and state is not None
            and state.stopped_at is not None
            and rec.data.get("decision") == "allow"
            and rec.ts > state.stopped_at + self.t.kill_within
        ):
            self.violate(rec.seq, f"seq {rec.seq}: `{rec.agent}` allowed after its suspension")


class NotRecorded(Check):
    """Controls whose evidence Warden does not produce (yet): mapped, but not evaluated."""

    reason: str = ""

    def finish(self, ctx: Context, end: float) -> ControlResult:
        if not self.result.checked:
            self.result.status = "not_evaluable"
            self.result.notes.append(self.reason)
            return self.result
        return super().finish(ctx, end)


class InterAgent(NotRecorded):
    id = "CP-A2A-01"
    reason = "agent-to-agent message authentication happens outside Warden and is not recorded"


class ToolAllowlist(NotRecorded):
    id = "CP-TP-01"
    reason = "Warden keeps no registry of pinned tools or MCP servers yet"


class Budgets(NotRecorded):
    id = "CP-RATE-01"
    watches = ("budget.",)
    reason = "no budget or circuit-breaker records in the period"

    def after(self, rec: AuditRecord, ctx: Context, in_period: bool) -> None:
        if in_period:
            self.result.checked += 1


class AnomalyDetection(NotRecorded):
    id = "CP-MON-01"
    watches = ("finding.", "behaviour.")
    reason = "no behavioural detector records (findings) in the period"

    def after(self, rec: AuditRecord, ctx: Context, in_period: bool) -> None:
        if in_period:
            self.result.checked += 1
            sev = str(rec.data.get("severity", "unknown"))
            self.result.measured[sev] = self.result.measured.get(sev, 0) + 1


class Incidents(NotRecorded):
    id = "CP-INC-01"
    watches = ("incident.",)
    reason = "no incident records: findings are not yet linked to containment actions"

    def after(self, rec: AuditRecord, ctx: Context, in_period: bool) -> None:
        if in_period:
            self.result.checked += 1


class Approvers(NotRecorded):
    id = "CP-APPR-02"
    watches = ("approval.granted", "approval.approved")
    reason = "approver authentication strength is not recorded"

    def after(self, rec: AuditRecord, ctx: Context, in_period: bool) -> None:
        if not in_period:
            return
        self.result.checked += 1
        approver = str(rec.data.get("approver") or rec.actor)
        if approver.startswith("spiffe://") or (rec.agent and approver == rec.agent):
            self.violate(rec.seq, f"seq {rec.seq}: approved by an agent identity")


# data keys every record of a type must carry (CP-AUD-01); table-driven like the mapping
REQUIRED_DATA: dict[str, tuple[str, ...]] = {
    "authz.decision": ("decision", "action", "resource"),
    "credential.issued": ("jti", "issued_at", "expires_at", "audience"),
    "credential.renewed": ("jti", "issued_at", "expires_at"),
    "credential.revoked": ("jti",),
    "task.started": ("granted_scope", "purpose", "attestation"),
    "agent.registered": ("owner", "spiffe_id"),
    "agent.suspended": ("reason",),
    "approval.requested": (),
}


class Completeness(Check):
    id = "CP-AUD-01"
    watches = ("",)

    def before(self, rec: AuditRecord, ctx: Context, in_period: bool) -> None:
        if not in_period:
            return
        self.result.checked += 1
        missing = [k for k in REQUIRED_DATA.get(rec.type, ()) if k not in rec.data]
        if not rec.actor:
            missing.append("actor")
        if rec.type == "authz.decision" and not rec.decision_id:
            missing.append("decision_id")
        if missing:
            self.violate(rec.seq, f"seq {rec.seq} `{rec.type}` lacks {', '.join(missing)}")


class Attribution(Check):
    id = "CP-AUD-03"
    watches = ("authz.decision", "task.started", "agent.", "policy.", "owner.", "operator.")

    def before(self, rec: AuditRecord, ctx: Context, in_period: bool) -> None:
        if not in_period:
            return
        if rec.type in ("authz.decision", "task.started"):
            if rec.agent is None:
                return
            self.result.checked += 1
            state = ctx.agent(rec.agent)
            if state is None or not any(state.owners):
                self.violate(rec.seq, f"seq {rec.seq}: `{rec.agent}` resolves to no human")
            return
        self.result.checked += 1
        if rec.actor.startswith("spiffe://"):
            self.violate(rec.seq, f"seq {rec.seq}: `{rec.type}` made by an agent identity")


class Retention(Check):
    id = "CP-AUD-04"

    def __init__(self, thresholds: Thresholds) -> None:
        super().__init__(thresholds)
        self.first: AuditRecord | None = None

    def note_first(self, rec: AuditRecord) -> None:
        if self.first is None:
            self.first = rec

    def finish(self, ctx: Context, end: float) -> ControlResult:
        if self.first is None:
            return self.result
        self.result.checked = 1
        self.result.measured["oldest_record_ts"] = self.first.ts
        if self.first.seq != 1:
            self.violate(self.first.seq, "records before this one are gone")
        self.result.notes.append(
            "exportable as OCSF 1.8.0 with the raw chain under unmapped.warden"
        )
        return super().finish(ctx, end)


CHECKS: tuple[type[Check], ...] = (
    RegisteredIdentity,
    OneIdentity,
    ActiveOwner,
    RegistrationCompleteness,
    Dormancy,
    Recertification,
    CredentialTTL,
    CredentialBinding,
    NoSecrets,
    RevocationPropagation,
    CompleteMediation,
    DelegationAttenuation,
    VersionedPolicy,
    InterAgent,
    ToolAllowlist,
    Approvals,
    Approvers,
    KillSwitch,
    Budgets,
    AnomalyDetection,
    Incidents,
    Completeness,
    Attribution,
    Retention,
)

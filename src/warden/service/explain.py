"""Why a decision came out as it did: one decision id → everything an operator needs.

Used by ``GET /v1/audit/decisions/{id}``, ``warden why`` and the console's decision page. It
reads the decision's audit record (what the PEP sent, masked as recorded), the credential's
task and delegation chain, the determining policies with their source text at file:line, the
mode, the approval the decision opened or used, and where the record sits in the hash chain —
with the record's own hash, its links to both neighbours and the nearest signed checkpoint
after it checked on the spot.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any

from warden.authz.pdp import PolicyDecisionPoint
from warden.authz.source import locate
from warden.core.audit import chain_hash
from warden.core.governance import AuditQuery
from warden.core.model import AuditDraft, AuditRecord
from warden.core.ports import Store
from warden.core.reasons import decision_reason, recorded_reason
from warden.errors import InvalidParameterError, NotFoundError
from warden.service.checkpoints import _signed_heads
from warden.service.tasks import task_view

MAX_CHECKPOINT_WALK = 5000  # records walked from the decision to the checkpoint that covers it
MAX_ID = 200

REFUSALS = {  # what a pre-Cedar refusal means, in words (the record holds the code and detail)
    "missing_credential": "the request carried no task credential",
    "invalid_credential": "the task credential was refused",
    "invalid_dpop_proof": "the DPoP proof was refused",
    "out_of_scope": "the action is outside the credential's scope",
    "tool_mismatch": "the action and the tool resource name different tools",
    "agent_suspended": "the agent is suspended by its behaviour monitor",
    "budget_exceeded": "the agent's budget is spent",
    "counters_unavailable": "the shared budget counters did not answer (fail closed)",
    "evaluation_error": "the policies could not be evaluated (fail closed)",
}


class DecisionExplainer:
    def __init__(
        self,
        store: Store,
        pdp: PolicyDecisionPoint,
        approval_view: Callable[[str], dict[str, Any] | None],
        jwks: Callable[[], Mapping[str, Any]],
        policies_dir: Path | None,
    ) -> None:
        self._store = store
        self._pdp = pdp
        self._approval = approval_view
        self._jwks = jwks
        self._dir = policies_dir

    def explain(self, decision_id: str) -> dict[str, Any]:
        if not decision_id or len(decision_id) > MAX_ID:
            raise InvalidParameterError("`decision_id` must be a decision id")
        records = self._store.search_audit(AuditQuery(decision_id=decision_id), limit=100)
        decision = next((r for r in records if r.type == "authz.decision"), None)
        if decision is None:
            raise NotFoundError(f"no decision `{decision_id}` in the audit log")
        data = decision.data
        reasons = [str(r) for r in data.get("reasons") or []]
        return {
            "decision_id": decision_id,
            "decision": data.get("decision"),
            "ts": decision.ts,
            "agent": decision.agent,
            "actor": decision.actor,
            "task_id": decision.task_id,
            "request": {
                "subject": data.get("subject"),
                "action": data.get("action"),
                "resource": data.get("resource"),
                "context": data.get("context"),
                "request_id": data.get("request_id"),
            },
            "reason": reason_text(data),
            # the code and policy ids the PEP was given (core/reasons.py), from the record
            "reason_code": recorded_reason(data),
            "reasons": reasons,
            "errors": data.get("errors") or [],
            "mode": "monitor" if data.get("monitor") else "enforce",
            "monitor": _monitor(data),
            "policies": [self._policy(pid) for pid in reasons],
            "policy_revision": data.get("policy_revision"),
            "serving_revision": self._pdp.revision,
            "credential": self._credential(decision),
            "approval": self._approval_of(data),
            "behaviour": data.get("behaviour"),
            "audit": self._position(decision),
            "related": [asdict(r) for r in records if r.seq != decision.seq],
        }

    # -- parts -----------------------------------------------------------------------------
    def _policy(self, policy_id: str) -> dict[str, Any]:
        lps = self._pdp.policy_set
        info = lps.policies.get(policy_id) if lps is not None else None
        if info is None or lps is None:
            return {"id": policy_id, "loaded": False}
        out: dict[str, Any] = {
            "id": policy_id,
            "loaded": True,
            "effect": info.effect,
            "mode": info.mode,
            "annotations": dict(info.annotations),
            "file": info.source,
            "line": None,
            "column": None,
            "text": None,
        }
        try:
            text = (lps.path / info.source).read_text("utf-8")
        except (OSError, UnicodeDecodeError):
            return out
        found = locate(text, info.index)
        if found is not None:
            out.update(line=found.line, column=found.column, text=found.text)
        return out

    def _credential(self, rec: AuditRecord) -> dict[str, Any]:
        data = rec.data
        task: dict[str, Any] | None = None
        if rec.task_id:
            try:
                task = task_view(self._store.fetch_task(rec.task_id))
            except NotFoundError:
                task = None
        chain = data.get("chain") or (task["chain"] if task else None) or []
        return {
            "jti": data.get("jti"),
            "subject": data.get("subject"),
            "chain": chain,
            "depth": data.get("depth", max(0, len(chain) - 1)),
            "task": task,
        }

    def _approval_of(self, data: Mapping[str, Any]) -> dict[str, Any] | None:
        approval = data.get("approval")
        if not isinstance(approval, dict):
            return None
        out = dict(approval)
        rid = approval.get("request_id")
        if isinstance(rid, str):
            out["record"] = self._approval(rid)
        return out

    def _position(self, rec: AuditRecord) -> dict[str, Any]:
        head_seq, _ = self._store.audit_head()
        own = chain_hash(rec.seq, rec.prev_hash, _draft(rec)) == rec.hash
        before = self._store.list_audit(after_seq=rec.seq - 2, limit=1) if rec.seq > 1 else []
        links_prev = rec.prev_hash == before[0].hash if before else rec.seq == 1
        after = self._store.list_audit(after_seq=rec.seq, limit=1)
        links_next = after[0].prev_hash == rec.hash if after else None
        checkpoint = self._checkpoint(rec)
        ok = own and links_prev and links_next is not False and checkpoint.get("ok") is not False
        return {
            "seq": rec.seq,
            "head_seq": head_seq,
            "hash": rec.hash,
            "prev_hash": rec.prev_hash,
            "verification": {
                "ok": ok,
                "record_hash": own,
                "links_previous": links_prev,
                "links_next": links_next,
                "checkpoint": checkpoint,
            },
        }

    def _checkpoint(self, rec: AuditRecord) -> dict[str, Any]:
        """The first signed checkpoint at or after the record, and whether the chain from the
        record reaches its signed head."""
        found = self._store.list_checkpoints(after_seq=rec.seq - 1, limit=1)
        if not found:
            return {"ok": None, "note": "no signed checkpoint covers this record yet"}
        cp = found[0]
        good, bad = _signed_heads([cp], self._jwks())
        if bad:
            return {"ok": False, "seq": cp.seq, "note": bad[0][1]}
        if cp.seq - rec.seq > MAX_CHECKPOINT_WALK:
            return {"ok": None, "seq": cp.seq, "note": "checkpoint too far to walk here: run "
                    "`warden audit verify`"}  # fmt: skip
        prev = rec.hash
        for link in self._store.list_audit(after_seq=rec.seq, limit=cp.seq - rec.seq):
            if link.prev_hash != prev or chain_hash(link.seq, prev, _draft(link)) != link.hash:
                return {"ok": False, "seq": cp.seq, "note": f"chain breaks at seq {link.seq}"}
            prev = link.hash
        ok = good.get(cp.seq) is not None and prev == cp.head_hash
        return {"ok": ok, "seq": cp.seq, "kid": cp.kid, "ts": cp.ts}


def reason_text(data: Mapping[str, Any]) -> str:
    """The precise reason of a decision record, in words."""
    decision = data.get("decision")
    code = data.get("reason")
    if isinstance(code, str):
        detail = data.get("detail")
        words = REFUSALS.get(code, code.replace("_", " "))
        return f"{words}: {detail}" if detail else words
    reasons = [str(r) for r in data.get("reasons") or []]
    approval = data.get("approval") or {}
    if isinstance(approval, dict) and approval.get("required"):
        return f"approval required by {', '.join(reasons) or 'policy'}"
    if decision == "allow":
        text = f"permitted by {', '.join(reasons)}" if reasons else "permitted"
    elif reasons:
        text = f"forbidden by {', '.join(reasons)}"
    elif data.get("errors"):
        text = "policy evaluation failed (fail closed)"
    else:
        text = "no policy permits this (default deny)"
    if data.get("monitor"):
        text += " — monitor mode: enforcement would have denied, the call proceeded"
    return text


def _monitor(data: Mapping[str, Any]) -> dict[str, Any] | None:
    """The record's monitor-mode member with the code enforcement would have answered."""
    monitor = data.get("monitor")
    if not isinstance(monitor, dict):
        return None
    return {**monitor, "reason": decision_reason(False, data.get("approval"))}


def _draft(rec: AuditRecord) -> AuditDraft:
    return AuditDraft(
        ts=rec.ts,
        type=rec.type,
        actor=rec.actor,
        data=rec.data,
        agent=rec.agent,
        task_id=rec.task_id,
        decision_id=rec.decision_id,
    )

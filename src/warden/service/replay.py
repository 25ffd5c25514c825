"""Replay recorded decisions against a candidate policy set: what would change?

Every ``authz.decision`` record Warden writes after Cedar ran holds the Cedar request as
evaluated (``cedar``, see ``authz/recording.py``) and the policy-level outcome
(``policy_outcome``: ``allow``, ``deny`` or ``approval`` — a deny whose determining forbids
all carry ``@approval``). ``Replayer`` re-evaluates those requests with a candidate set, in
Cedar batches, and classifies every difference (``allow→deny``, ``deny→allow``,
``allow→approval``, …) by agent, tool (the Cedar action) and policy, with counts and
example decision ids.

The comparison is at policy level: agent or tier monitor mode, spent grants and behavioural
refusals are not policy outcomes and do not change with the policies. Refusals before Cedar
(bad credential, out of scope) have no Cedar request and are counted as ``skipped``.

Uncertainty: a masked value (a secret-looking key) is recorded as a digest, so a policy that
reads it sees the digest, not the value. A result is flagged ``uncertain`` when a candidate
policy that can apply to the request reads a masked path.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from warden.approvals import requirement_from
from warden.authz.pdp import PolicyDecisionPoint
from warden.authz.policy_set import LoadedPolicySet, is_policy_file, load_policy_files
from warden.authz.recording import overlaps, request_from_record
from warden.authz.types import AuthzRequest, Decision
from warden.core.duration import parse_duration
from warden.core.model import AuditRecord
from warden.core.ports import Store
from warden.errors import InvalidParameterError

__all__ = [
    "THRESHOLD_KEYS",
    "ReplayQuery",
    "ReplayReport",
    "Replayer",
    "exceeded",
    "files_of",
    "parse_query",
    "policy_outcome",
    "recorded_decisions",
    "replay_files",
]

BATCH = 2000
EXAMPLES = 5
THRESHOLD_KEYS = ("changes", "allow_to_deny", "deny_to_allow", "new_approvals", "uncertain")


def policy_outcome(decision: Decision) -> str:
    """``allow``, ``approval`` (a deny only ``@approval`` forbids cause) or ``deny``."""
    if decision.allowed:
        return "allow"
    if requirement_from(decision.reasons, decision.annotations, errors=decision.errors):
        return "approval"
    return "deny"


@dataclass(slots=True)
class _Group:
    count: int = 0
    examples: list[str] = field(default_factory=list)

    def add(self, decision_id: str, examples: int) -> None:
        self.count += 1
        if len(self.examples) < examples:
            self.examples.append(decision_id)


@dataclass(slots=True)
class ReplayReport:
    candidate_revision: str
    examined: int = 0  # decision records read
    replayed: int = 0  # with a Cedar request
    skipped: int = 0  # refusals before Cedar, or records from before requests were kept
    unchanged: int = 0
    uncertain: int = 0
    errors: int = 0  # recorded requests the candidate could not evaluate (counted as deny)
    revisions: Counter[str] = field(default_factory=Counter)
    transitions: dict[str, _Group] = field(default_factory=dict)
    by_agent: dict[str, dict[str, _Group]] = field(default_factory=dict)
    by_tool: dict[str, dict[str, _Group]] = field(default_factory=dict)
    by_policy: dict[str, dict[str, _Group]] = field(default_factory=dict)
    uncertain_examples: list[str] = field(default_factory=list)

    @property
    def changed(self) -> int:
        return sum(g.count for g in self.transitions.values())

    def count(self, transition: str) -> int:
        group = self.transitions.get(transition)
        return group.count if group else 0

    def figures(self) -> dict[str, int]:
        """The figures thresholds apply to."""
        return {
            "changes": self.changed,
            "allow_to_deny": self.count("allow→deny"),
            "deny_to_allow": self.count("deny→allow") + self.count("approval→allow"),
            "new_approvals": self.count("allow→approval") + self.count("deny→approval"),
            "uncertain": self.uncertain,
        }

    def to_dict(self) -> dict[str, Any]:
        def groups(d: Mapping[str, _Group]) -> dict[str, Any]:
            ordered = sorted(d.items(), key=lambda kv: (-kv[1].count, kv[0]))
            return {k: {"count": g.count, "examples": list(g.examples)} for k, g in ordered}

        def nested(d: Mapping[str, Mapping[str, _Group]]) -> list[dict[str, Any]]:
            rows = [
                {"key": key, "total": sum(g.count for g in inner.values()), **groups(inner)}
                for key, inner in d.items()
            ]
            rows.sort(key=lambda r: (-r["total"], r["key"]))
            return rows

        return {
            "candidate_revision": self.candidate_revision,
            "examined": self.examined,
            "replayed": self.replayed,
            "skipped": self.skipped,
            "unchanged": self.unchanged,
            "changed": self.changed,
            "uncertain": self.uncertain,
            "uncertain_examples": list(self.uncertain_examples),
            "errors": self.errors,
            "recorded_revisions": dict(self.revisions),
            "transitions": groups(self.transitions),
            "by_agent": nested(self.by_agent),
            "by_tool": nested(self.by_tool),
            "by_policy": nested(self.by_policy),
            "figures": self.figures(),
        }


def exceeded(report: ReplayReport, thresholds: Mapping[str, int]) -> list[str]:
    """The thresholds a report crosses (a figure strictly above its limit)."""
    figures = report.figures()
    return [
        f"{key}: {figures[key]} > {limit}"
        for key, limit in thresholds.items()
        if key in figures and figures[key] > limit
    ]


@dataclass(frozen=True, slots=True)
class _Item:
    decision_id: str
    agent: str
    before: str
    before_reasons: tuple[str, ...]
    request: AuthzRequest
    masked: tuple[str, ...]


class Replayer:
    """Replays decision records (``AuditRecord``-like: ``data``, ``decision_id``, ``agent``)."""

    def __init__(self, candidate: LoadedPolicySet, *, examples: int = EXAMPLES) -> None:
        self._lps = candidate
        self._pdp = PolicyDecisionPoint(candidate)
        self._examples = examples

    def run(self, records: Iterable[Any]) -> ReplayReport:
        report = ReplayReport(self._lps.revision)
        batch: list[_Item] = []
        for record in records:
            report.examined += 1
            item = self._item(record)
            if item is None:
                report.skipped += 1
                continue
            report.revisions[str(record.data.get("policy_revision") or "")] += 1
            batch.append(item)
            if len(batch) >= BATCH:
                self._evaluate(batch, report)
                batch = []
        if batch:
            self._evaluate(batch, report)
        return report

    @staticmethod
    def _item(record: Any) -> _Item | None:
        data = record.data
        cedar = data.get("cedar") if isinstance(data, Mapping) else None
        before = data.get("policy_outcome") if isinstance(data, Mapping) else None
        if not isinstance(cedar, Mapping) or before not in ("allow", "deny", "approval"):
            return None
        try:
            request, masked = request_from_record(cedar)
        except ValueError:
            return None
        return _Item(
            str(record.decision_id or ""),
            str(record.agent or f"{request.principal.type}:{request.principal.id}"),
            str(before),
            tuple(str(r) for r in data.get("reasons") or ()),
            request,
            masked,
        )

    def _evaluate(self, batch: list[_Item], report: ReplayReport) -> None:
        decisions = self._pdp.evaluate_batch([i.request for i in batch])
        for item, decision in zip(batch, decisions, strict=True):
            report.replayed += 1
            if decision.errors and not decision.allowed and not decision.reasons:
                report.errors += 1
            after = policy_outcome(decision)
            uncertain = bool(item.masked) and self._reads_masked(item)
            if uncertain:
                report.uncertain += 1
                if len(report.uncertain_examples) < self._examples:
                    report.uncertain_examples.append(item.decision_id)
            if after == item.before:
                report.unchanged += 1
                continue
            transition = f"{item.before}→{after}"
            n = self._examples
            report.transitions.setdefault(transition, _Group()).add(item.decision_id, n)
            for table, key in (
                (report.by_agent, item.agent),
                (report.by_tool, item.request.action),
            ):
                table.setdefault(key, {}).setdefault(transition, _Group()).add(item.decision_id, n)
            for pid in _responsible(item.before_reasons, decision):
                report.by_policy.setdefault(pid, {}).setdefault(transition, _Group()).add(
                    item.decision_id, n
                )

    def _reads_masked(self, item: _Item) -> bool:
        req = item.request
        sl = self._lps.slice_for(
            req.principal.type,
            req.principal.id,
            req.principal_parents,
            req.action,
            req.resource.type,
            req.resource.id,
        )
        policies = self._lps.policies
        return any(overlaps(policies[pid].reads, item.masked) for pid in sl.ids if pid in policies)


def _responsible(before: Iterable[str], decision: Decision) -> Iterator[str]:
    """The policies behind a change: the candidate's determining ones, else the old ones."""
    now = tuple(decision.reasons) + tuple(decision.monitored)
    if now:
        yield from dict.fromkeys(now)
        return
    old = tuple(before)
    if old:
        yield from dict.fromkeys(old)
        return
    yield "(no policy applies: default deny)"


# --------------------------------------------------------------------------- running


@dataclass(frozen=True, slots=True)
class ReplayQuery:
    """What to replay: a time window, optionally one agent, at most ``limit`` records."""

    since: float | None = None
    until: float | None = None
    agent: str | None = None
    limit: int = 1_000_000
    examples: int = EXAMPLES
    thresholds: Mapping[str, int] = field(default_factory=dict)


PAGE = 5000


def recorded_decisions(store: Store, query: ReplayQuery) -> Iterator[AuditRecord]:
    """The ``authz.decision`` records of a window, oldest first, paged."""
    after = 0
    left = query.limit
    while left > 0:
        page = store.list_audit(
            after_seq=after,
            limit=min(PAGE, left),
            type_prefix="authz.decision",
            agent=query.agent,
            since=query.since,
            until=query.until,
        )
        if not page:
            return
        yield from page
        left -= len(page)
        after = page[-1].seq
        if len(page) < PAGE:
            return


def replay_files(
    store: Store, files: Mapping[str, bytes], query: ReplayQuery
) -> tuple[ReplayReport, list[str]]:
    """Load a candidate set (``PolicyError`` with located errors if invalid) and replay.

    Returns the report and the thresholds it crosses.
    """
    candidate = load_policy_files(files, origin="<candidate>")
    report = Replayer(candidate, examples=query.examples).run(recorded_decisions(store, query))
    return report, exceeded(report, query.thresholds)


def parse_query(body: Mapping[str, Any], now: float) -> ReplayQuery:
    """A ``ReplayQuery`` from an API body; ``InvalidParameterError`` on a bad member."""

    def when(key: str) -> float | None:
        value = body.get(key)
        if value is None:
            return None
        if isinstance(value, str):
            try:
                return now - parse_duration(value)
            except ValueError as exc:
                raise InvalidParameterError(f"`{key}`: {exc}") from None
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        raise InvalidParameterError(f"`{key}` must be a duration (`24h`) or a Unix time")

    agent = body.get("agent")
    if agent is not None and not isinstance(agent, str):
        raise InvalidParameterError("`agent` must be a string")
    limit = body.get("limit", 1_000_000)
    examples = body.get("examples", EXAMPLES)
    for key, value in (("limit", limit), ("examples", examples)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise InvalidParameterError(f"`{key}` must be a non-negative integer")
    raw = body.get("thresholds") or {}
    if not isinstance(raw, Mapping):
        raise InvalidParameterError("`thresholds` must be an object")
    thresholds: dict[str, int] = {}
    for key, value in raw.items():
        if key not in THRESHOLD_KEYS:
            allowed = ", ".join(THRESHOLD_KEYS)
            raise InvalidParameterError(f"unknown threshold `{key}` (one of {allowed})")
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise InvalidParameterError(f"threshold `{key}` must be a non-negative integer")
        thresholds[key] = value
    return ReplayQuery(when("since"), when("until"), agent, limit, examples, thresholds)


def files_of(body: Mapping[str, Any]) -> dict[str, bytes]:
    """The ``files`` member of an API body: ``{file name: text}``."""
    files = body.get("files")
    if not isinstance(files, Mapping) or not files:
        raise InvalidParameterError("send `files`: an object of policy file name -> text")
    out: dict[str, bytes] = {}
    for name, text in files.items():
        if not isinstance(name, str) or not isinstance(text, str):
            raise InvalidParameterError("each of `files` must map a file name to its text")
        if not is_policy_file(name) or "/" in name or "\\" in name or name.startswith("."):
            raise InvalidParameterError(
                f"`{name}` is not a policy file name (*.cedar, *.cedarschema[.json], entities.json)"
            )
        out[name] = text.encode("utf-8")
    return out

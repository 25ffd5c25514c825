"""The per-replica behaviour monitor: counters, detectors and escalation, all in memory.

``observe`` runs before Cedar on every agent decision and returns the live facts policies see
under ``context.warden.behaviour``; ``outcome`` and ``refused`` record how the call ended. Each
detector fires at most once per learning window for the same thing and explains itself in one
sentence. A finding adds severity points to the agent's score (findings older than
``score_window`` drop out); crossing the risk tier's thresholds asks for notification,
step-up (high-risk calls need approval for ``step_up_for``) or suspension (the kill switch —
further calls are refused at once, before the suspension itself is carried out). Findings
and their escalations go to ``outbox``; the service drains it off the hot path.

Shared counters (ADR 0094): with a ``SharedCounters`` backend, the call-rate window, the budgets
and the deny streak are kept there, so N replicas still give an agent one budget. ``observe``
then makes one atomic ``reserve`` (count the call, reserve the budgets it would use, read the
streak): the single round trip on the decision path; a backend that does not answer refuses
the call (``counters_unavailable``). ``outcome`` hands back what a denied call reserved and
counts the streak asynchronously; the streak finding is raised by whichever replica's increment
reaches the threshold. Without a backend everything stays in this process, as before.

Learning: tools, destinations and active hours used during a *calm* window (no finding of
medium or worse) join the learned baseline when the window closes, and the calls per window
feed an exponentially weighted average. A learned baseline flags novelty only once it has
``min_history`` windows; a declared baseline does so at once.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from warden.behaviour.baseline import Budget, Declared, parse_declared
from warden.behaviour.settings import POINTS, BehaviourSettings
from warden.behaviour.window import SlidingCounter
from warden.core.counters import Claim, Reserved, SharedCounters
from warden.core.ids import new_id
from warden.core.model import Agent, AgentStatus, Baseline, Finding, RiskTier, Severity
from warden.errors import CountersUnavailableError, InvalidParameterError

_EWMA = 0.3
_CALM_BREAKERS = {Severity.MEDIUM, Severity.HIGH, Severity.CRITICAL}
_HIGH_TIERS = frozenset({RiskTier.HIGH, RiskTier.CRITICAL})


@dataclass(slots=True)
class Observation:
    """What the decision path learns from the monitor for one call."""

    facts: dict[str, Any]
    refusal: str | None = None  # "agent_suspended" | "budget_exceeded" | "counters_unavailable"
    detail: str = ""
    high_risk: bool = False
    step_up: bool = False
    refund: list[Claim] = field(default_factory=list)  # what to give back if the call is denied


@dataclass(frozen=True, slots=True)
class Escalation:
    """A finding and what the thresholds ask to do about it."""

    finding: Finding
    owner: str
    notify: bool = False
    step_up: bool = False  # step-up starts with this finding
    suspend: bool = False  # the suspend threshold was crossed by this finding


@dataclass(slots=True)
class _AgentState:
    name: str
    settings: BehaviourSettings
    declared: Declared = field(default_factory=Declared)
    learned_tools: set[str] = field(default_factory=set)
    learned_destinations: set[str] = field(default_factory=set)
    learned_hours: set[int] = field(default_factory=set)
    learned_rate: float = 0.0  # calls per window (EWMA)
    windows: int = 0  # calm windows learned from
    window_end: float = 0.0
    window_calls: int = 0
    window_tools: set[str] = field(default_factory=set)
    window_destinations: set[str] = field(default_factory=set)
    window_hours: set[int] = field(default_factory=set)
    window_tasks: set[str] = field(default_factory=set)
    children: dict[str, set[str]] = field(default_factory=dict)
    fired: set[str] = field(default_factory=set)
    calm: bool = True
    spike_level: int = 0
    deny_streak: int = 0
    calls: SlidingCounter = field(init=False)
    out_of_scope: SlidingCounter = field(init=False)
    budget_calls: SlidingCounter = field(init=False)
    budget_cost: SlidingCounter = field(init=False)
    tool_calls: dict[str, SlidingCounter] = field(default_factory=dict)
    tool_cost: dict[str, SlidingCounter] = field(default_factory=dict)
    events: deque[tuple[float, int]] = field(default_factory=deque)
    score: int = 0
    step_up_until: float = 0.0
    suspended: bool = False
    suspended_at: float = 0.0
    dirty: bool = False

    def __post_init__(self) -> None:
        s = self.settings
        self.calls = SlidingCounter(s.window, s.buckets)
        self.out_of_scope = SlidingCounter(s.window, s.buckets)
        self.budget_calls = SlidingCounter(s.budget_window, s.buckets)
        self.budget_cost = SlidingCounter(s.budget_window, s.buckets)


class BehaviourMonitor:
    def __init__(
        self, settings: BehaviourSettings | None = None, shared: SharedCounters | None = None
    ) -> None:
        self.settings = settings or BehaviourSettings()
        self.shared = shared
        self._states: dict[str, _AgentState] = {}
        self.outbox: deque[Escalation] = deque()
        self.wake = threading.Event()
        self._lock = threading.Lock()  # state creation and baseline snapshots only

    # -- baselines ------------------------------------------------------------------------------
    def _state(self, name: str) -> _AgentState:
        st = self._states.get(name)
        if st is None:
            with self._lock:
                st = self._states.get(name)
                if st is None:
                    st = _AgentState(name, self.settings)
                    self._states[name] = st
        return st

    def load(self, baselines: Iterable[Baseline]) -> None:
        for b in baselines:
            st = self._state(b.agent)
            try:
                st.declared = parse_declared(b.declared or None)
            except InvalidParameterError:
                st.declared = Declared()  # a stored baseline that no longer validates
            learned = b.learned or {}
            st.learned_tools = set(learned.get("tools") or ())
            st.learned_destinations = set(learned.get("destinations") or ())
            st.learned_hours = {int(h) for h in learned.get("hours") or ()}
            st.learned_rate = float(learned.get("calls_per_window") or 0.0)
            st.windows = int(learned.get("windows") or 0)

    def set_declared(self, agent: str, declared: Declared) -> None:
        self._state(agent).declared = declared

    def snapshot(self, agent: str, declared: Mapping[str, Any]) -> Baseline:
        st = self._state(agent)
        return Baseline(agent, dict(declared), _learned(st))

    def dirty(self) -> list[tuple[str, dict[str, Any]]]:
        """Agents whose learned baseline changed since the last call: (name, learned)."""
        out = []
        for st in list(self._states.values()):
            if st.dirty:
                st.dirty = False
                out.append((st.name, _learned(st)))
        return out

    def peek(self, agent: Agent, now: float) -> Observation:
        """What a listing (a PEP asking whether to *show* a tool) sees: suspension and the live
        facts, with nothing counted — a listing is not a call, so it must not feed rates,
        budgets or detectors."""
        if not self.settings.enabled:
            return Observation({})
        st = self._states.get(agent.name)
        if st is None:
            st = self._state(agent.name)
        if st.suspended and not (
            agent.status is AgentStatus.ACTIVE and agent.updated_at > st.suspended_at
        ):
            return Observation(
                {"score": st.score, "suspended": True},
                "agent_suspended",
                "the agent was suspended by behavioural escalation",
            )
        step_up = st.step_up_until > now
        mature = st.windows >= self.settings.min_history
        facts = {
            "calls_in_window": int(st.calls.total(now)),
            "baseline_calls": int(self._baseline_rate(st, mature)),
            "new_tool": False,
            "new_destination": False,
            "off_hours": False,
            "intent_drift": False,
            "deny_streak": st.deny_streak,
            "score": st.score,
            "step_up": step_up,
        }
        return Observation(facts, None, "", False, step_up)

    def view(self, agent: str, now: float) -> dict[str, Any]:
        """The live state of one agent's behaviour (for operators)."""
        st = self._state(agent)
        self._prune(st, now)
        return {
            "learned": _learned(st),
            "calls_in_window": int(st.calls.total(now)),
            "deny_streak": st.deny_streak,
            "score": st.score,
            "step_up_until": st.step_up_until if st.step_up_until > now else None,
            "suspended_by_behaviour": st.suspended,
        }

    def reset(self, agent: str) -> None:
        """Forget the agent's score and escalations (after an operator reactivated it)."""
        st = self._state(agent)
        st.events.clear()
        st.score = 0
        st.step_up_until = 0.0
        st.suspended = False
        st.deny_streak = 0
        if self.shared is not None:
            self.shared.submit(agent, [], 0.0, "reset")

    # -- the decision path ------------------------------------------------------------------------
    def observe(
        self,
        agent: Agent,
        task_id: str,
        category: str,
        action: str,
        context: Mapping[str, Any] | None,
        now: float,
        *,
        decision_id: str | None = None,
        parent: tuple[Agent, str] | None = None,
    ) -> Observation:
        s = self.settings
        if not s.enabled:
            return Observation({})
        st = self._states.get(agent.name) or self._state(agent.name)
        if now >= st.window_end:
            self._roll(st, now)
        if st.suspended:
            if agent.status is AgentStatus.ACTIVE and agent.updated_at > st.suspended_at:
                self.reset(agent.name)  # an operator reactivated it since
            else:
                return Observation(
                    {"score": st.score, "suspended": True},
                    "agent_suspended",
                    "the agent was suspended by behavioural escalation",
                )
        ctx = context or {}
        destination = ctx.get("destination")
        if not isinstance(destination, str) or not destination:
            destination = None
        calls = st.calls.add(now)
        reserved: Reserved | None = None
        claims: list[Claim] = []
        labels: list[str] = []
        if self.shared is not None:
            claims, labels = _claims(st, action, _cost(ctx), s)
            try:
                reserved = self.shared.reserve(agent.name, claims, now)
            except CountersUnavailableError as exc:
                return Observation({"score": st.score}, "counters_unavailable", exc.message)
            calls = reserved.totals[0]  # every replica's calls in the window
            st.deny_streak = reserved.streak
        st.window_calls += 1
        hour = int(now // 3600) % 24
        st.window_hours.add(hour)
        d = st.declared
        mature = st.windows >= s.min_history

        def emit(detector: str, severity: Severity, summary: str, facts: dict[str, Any]) -> None:
            self._raise(st, agent, detector, severity, summary, facts, now, task_id, decision_id)

        new_tool, known = _novel(action, st.learned_tools, d.tools, mature, st.windows)
        if action not in st.window_tools:
            st.window_tools.add(action)
            if new_tool:
                emit(
                    "first_tool",
                    Severity.MEDIUM if known else Severity.LOW,
                    f"agent `{agent.name}` used tool `{action}` for the first time"
                    + ("; it is not in its baseline" if known else ""),
                    {"tool": action},
                )
        new_destination = False
        if destination is not None:
            new_destination, known = _novel(
                destination, st.learned_destinations, d.destinations, mature, st.windows
            )
            if destination not in st.window_destinations:
                st.window_destinations.add(destination)
                if new_destination:
                    emit(
                        "first_destination",
                        Severity.MEDIUM if known else Severity.LOW,
                        f"agent `{agent.name}` reached destination `{destination}` for the "
                        "first time" + ("; it is not in its baseline" if known else ""),
                        {"destination": destination},
                    )

        # a spike is measured against a baseline: an agent with none (nothing declared, too
        # little history) is not judged on its rate
        rate = self._baseline_rate(st, mature)
        threshold = max(s.rate_min_calls, s.rate_factor * rate)
        if rate and calls > threshold and st.spike_level < 2:
            level = 2 if calls > 2 * threshold else 1
            if level > st.spike_level:
                st.spike_level = level
                emit(
                    "rate_spike",
                    Severity.CRITICAL if level == 2 else Severity.HIGH,
                    f"agent `{agent.name}` made {int(calls)} calls in {s.window:.0f} s, "
                    f"{calls / rate:.1f}x its baseline of {rate:.0f}",
                    {"calls": int(calls), "baseline": rate, "threshold": threshold},
                )

        hours = d.active_hours if d.active_hours is not None else None
        if hours is None and mature and st.learned_hours:
            hours = frozenset(st.learned_hours)
        off_hours = hours is not None and hour not in hours
        if off_hours and f"hours:{int(now // 3600)}" not in st.fired:
            st.fired.add(f"hours:{int(now // 3600)}")
            emit(
                "off_hours",
                Severity.MEDIUM if d.active_hours is not None else Severity.LOW,
                f"agent `{agent.name}` acted at {hour:02d}:00 UTC, outside its active hours",
                {"hour": hour, "active_hours": sorted(hours or ())},
            )

        drift = False
        intent = ctx.get("intent")
        if isinstance(intent, str) and intent:
            allowed = s.intents.get(category, frozenset()) | s.intents.get("*", frozenset())
            drift = intent != category and intent not in allowed
            if drift and f"intent:{task_id}:{intent}" not in st.fired:
                st.fired.add(f"intent:{task_id}:{intent}")
                emit(
                    "intent_drift",
                    Severity.MEDIUM,
                    f"agent `{agent.name}` declared intent `{intent}`, outside its task's "
                    f"purpose category `{category}`",
                    {"intent": intent, "category": category},
                )

        if task_id not in st.window_tasks:
            st.window_tasks.add(task_id)
            limit = d.max_fan_out if d.max_fan_out is not None else s.fan_out
            if len(st.window_tasks) > limit and "fan_out" not in st.fired:
                st.fired.add("fan_out")
                emit(
                    "fan_out",
                    Severity.MEDIUM,
                    f"agent `{agent.name}` worked on {len(st.window_tasks)} tasks in "
                    f"{s.window:.0f} s (limit {limit})",
                    {"tasks": len(st.window_tasks), "limit": limit},
                )
            if parent is not None:
                self._delegated(parent, task_id, now)

        refusal = None
        detail = ""
        refund: list[Claim] = []
        if reserved is not None:
            refund = reserved.refunds(claims)
            if reserved.refused >= 0:
                claim = claims[reserved.refused]
                refusal, detail = self._budget_refusal(
                    st, agent, labels[reserved.refused], _over(claim, reserved), now, task_id,
                    decision_id,
                )  # fmt: skip
        elif d.has_budget:
            refusal, detail = self._over_budget(
                st, agent, action, _cost(ctx), now, task_id, decision_id
            )

        self._prune(st, now)
        step_up = st.step_up_until > now
        high_risk = (
            new_tool
            or new_destination
            or action in s.high_risk_actions
            or agent.risk_tier in _HIGH_TIERS
        )
        facts = {
            "calls_in_window": int(calls),
            "baseline_calls": int(rate),
            "new_tool": new_tool,
            "new_destination": new_destination,
            "off_hours": off_hours,
            "intent_drift": drift,
            "deny_streak": st.deny_streak,
            "score": st.score,
            "step_up": step_up,
        }
        if st.suspended:
            refusal = "agent_suspended"
            detail = "the agent was suspended by behavioural escalation"
            if refund and self.shared is not None:  # no outcome follows a suspension refusal
                self.shared.submit(agent.name, refund, now)
                refund = []
        return Observation(facts, refusal, detail, high_risk, step_up, refund)

    def outcome(
        self,
        agent: Agent,
        action: str,
        allowed: bool,
        context: Mapping[str, Any] | None,
        now: float,
        *,
        task_id: str | None = None,
        decision_id: str | None = None,
        refund: list[Claim] | None = None,
    ) -> None:
        """Record how a decision ended: deny streaks, and budget consumption when allowed
        (shared counters: the budget was reserved by ``observe``; a denied call's ``refund``
        gives it back)."""
        if not self.settings.enabled:
            return
        st = self._states.get(agent.name)
        if st is None:
            return
        shared = self.shared
        if shared is not None:
            if allowed:
                if st.deny_streak:  # only a streak someone saw needs breaking (no extra write)
                    st.deny_streak = 0
                    shared.submit(agent.name, [], now, "reset")
                return
            shared.submit(
                agent.name,
                list(refund or ()),
                now,
                "incr",
                lambda r: self._streak(st, agent, r.streak, now, task_id, decision_id),
            )
            return
        if allowed:
            st.deny_streak = 0
            if st.declared.has_budget:
                cost = _cost(context or {})
                st.budget_calls.add(now)
                if cost:
                    st.budget_cost.add(now, cost)
                if action in st.declared.tool_budgets:
                    _counter(st.tool_calls, action, self.settings).add(now)
                    if cost:
                        _counter(st.tool_cost, action, self.settings).add(now, cost)
            return
        self._denied(st, agent, now, task_id, decision_id)

    def refused(
        self,
        agent: Agent,
        reason: str,
        action: str,
        now: float,
        *,
        task_id: str | None = None,
        decision_id: str | None = None,
    ) -> None:
        """A deny before Cedar (out of scope, budget): scope creep and deny streaks."""
        if not self.settings.enabled:
            return
        st = self._state(agent.name)
        if now >= st.window_end:
            self._roll(st, now)
        if self.shared is not None:
            claim = Claim("out_of_scope", self.settings.window, self.settings.buckets)
            scoped = reason == "out_of_scope"

            def counted(r: Reserved) -> None:
                if scoped:
                    self._scope_creep(
                        st, agent, int(r.totals[0]), action, now, task_id, decision_id
                    )
                self._streak(st, agent, r.streak, now, task_id, decision_id)

            self.shared.submit(agent.name, [claim] if scoped else [], now, "incr", counted)
            return
        if reason == "out_of_scope":
            count = int(st.out_of_scope.add(now))
            self._scope_creep(st, agent, count, action, now, task_id, decision_id)
        self._denied(st, agent, now, task_id, decision_id)

    # -- internals -------------------------------------------------------------------------------
    def _scope_creep(
        self,
        st: _AgentState,
        agent: Agent,
        count: int,
        action: str,
        now: float,
        task_id: str | None,
        decision_id: str | None,
    ) -> None:
        n = self.settings.scope_creep
        if count in (n, 2 * n):
            self._emit(
                st,
                agent,
                now,
                task_id,
                decision_id,
                "scope_creep",
                Severity.HIGH if count >= 2 * n else Severity.MEDIUM,
                f"agent `{agent.name}` asked {count} times in {self.settings.window:.0f} s "
                f"for tools outside its task's scope (last: `{action}`)",
                {"out_of_scope": count, "action": action},
            )

    def _denied(
        self,
        st: _AgentState,
        agent: Agent,
        now: float,
        task_id: str | None,
        decision_id: str | None,
    ) -> None:
        st.deny_streak += 1
        self._streak(st, agent, st.deny_streak, now, task_id, decision_id)

    def _streak(
        self,
        st: _AgentState,
        agent: Agent,
        streak: int,
        now: float,
        task_id: str | None,
        decision_id: str | None,
    ) -> None:
        """The agent's deny streak is now ``streak`` (here or, shared, on any replica)."""
        st.deny_streak = streak
        n = self.settings.deny_streak
        if n and streak and streak % n == 0:
            self._emit(
                st,
                agent,
                now,
                task_id,
                decision_id,
                "deny_streak",
                Severity.MEDIUM,
                f"agent `{agent.name}` was denied {streak} times in a row",
                {"deny_streak": streak},
            )

    def _baseline_rate(self, st: _AgentState, mature: bool) -> float:
        if st.declared.calls_per_minute is not None:
            return st.declared.calls_per_minute * self.settings.window / 60.0
        return st.learned_rate if mature else 0.0

    def _over_budget(
        self,
        st: _AgentState,
        agent: Agent,
        action: str,
        cost: float,
        now: float,
        task_id: str,
        decision_id: str | None,
    ) -> tuple[str | None, str]:
        d = st.declared
        scope = "agent"
        over = _exceeded(d.budget, st.budget_calls, st.budget_cost, cost, now)
        if over is None:
            tool_budget = d.tool_budgets.get(action)
            if tool_budget is not None:
                scope = f"tool `{action}`"
                over = _exceeded(
                    tool_budget,
                    _counter(st.tool_calls, action, self.settings),
                    _counter(st.tool_cost, action, self.settings),
                    cost,
                    now,
                )
        if over is None:
            return None, ""
        return self._budget_refusal(st, agent, scope, over, now, task_id, decision_id)

    def _budget_refusal(
        self,
        st: _AgentState,
        agent: Agent,
        scope: str,
        over: str,
        now: float,
        task_id: str | None,
        decision_id: str | None,
    ) -> tuple[str, str]:
        window = self.settings.budget_window
        message = f"{scope} {over} per {window:.0f} s"
        key = f"budget:{scope}"
        if key not in st.fired:
            st.fired.add(key)
            self._emit(
                st,
                agent,
                now,
                task_id,
                decision_id,
                "budget_exceeded",
                Severity.MEDIUM,
                f"agent `{agent.name}`: {message}",
                {"scope": scope},
            )
        return "budget_exceeded", message

    def _delegated(self, parent: tuple[Agent, str], child_task: str, now: float) -> None:
        parent_agent, parent_task = parent
        pst = self._state(parent_agent.name)
        children = pst.children.setdefault(parent_task, set())
        children.add(child_task)
        limit = pst.declared.max_fan_out
        limit = self.settings.fan_out if limit is None else limit
        key = f"delegation:{parent_task}"
        if len(children) > limit and key not in pst.fired:
            pst.fired.add(key)
            self._emit(
                pst,
                parent_agent,
                now,
                parent_task,
                None,
                "delegation_fan_out",
                Severity.MEDIUM,
                f"task `{parent_task}` of agent `{parent_agent.name}` delegated to "
                f"{len(children)} subtasks in {self.settings.window:.0f} s (limit {limit})",
                {"subtasks": len(children), "limit": limit},
            )

    def _roll(self, st: _AgentState, now: float) -> None:
        """Close the learning window: learn from it if it was calm, then start a new one."""
        if st.window_end and st.window_calls:
            if st.calm:
                st.learned_tools |= st.window_tools
                st.learned_destinations |= st.window_destinations
                st.learned_hours |= st.window_hours
                st.learned_rate = (
                    float(st.window_calls)
                    if st.windows == 0
                    else (1 - _EWMA) * st.learned_rate + _EWMA * st.window_calls
                )
                st.windows += 1
                st.dirty = True
        st.window_tools = set()
        st.window_destinations = set()
        st.window_hours = set()
        st.window_tasks = set()
        st.children = {}
        st.fired = set()
        st.calm = True
        st.spike_level = 0
        st.window_calls = 0
        w = self.settings.window
        st.window_end = (now // w + 1) * w

    def _prune(self, st: _AgentState, now: float) -> None:
        horizon = now - self.settings.score_window
        events = st.events
        while events and events[0][0] < horizon:
            st.score -= events.popleft()[1]

    def _emit(
        self,
        st: _AgentState,
        agent: Agent,
        now: float,
        task_id: str | None,
        decision_id: str | None,
        detector: str,
        severity: Severity,
        summary: str,
        facts: dict[str, Any],
    ) -> None:
        self._raise(st, agent, detector, severity, summary, facts, now, task_id, decision_id)

    def _raise(
        self,
        st: _AgentState,
        agent: Agent,
        detector: str,
        severity: Severity,
        summary: str,
        facts: dict[str, Any],
        now: float,
        task_id: str | None,
        decision_id: str | None,
    ) -> None:
        self._prune(st, now)
        points = POINTS[severity]
        st.events.append((now, points))
        st.score += points
        if severity in _CALM_BREAKERS:
            st.calm = False
        th = self.settings.thresholds_for(agent.risk_tier.value)
        actions = ["record"]
        notify = st.score >= th.notify
        if notify:
            actions.append("notify")
        step_up = False
        if st.score >= th.step_up:
            step_up = st.step_up_until <= now
            st.step_up_until = now + self.settings.step_up_for
            actions.append("step_up")
        suspend = st.score >= th.suspend and not st.suspended
        if suspend:
            st.suspended = True
            st.suspended_at = now
            actions.append("suspend")
        finding = Finding(
            id=new_id("fnd"),
            agent=agent.name,
            detector=detector,
            severity=severity,
            summary=summary,
            created_at=now,
            facts=facts,
            task_id=task_id,
            decision_id=decision_id,
            score=st.score,
            actions=tuple(actions),
        )
        self.outbox.append(Escalation(finding, agent.owner, notify, step_up, suspend))
        self.wake.set()


def _novel(
    name: str, learned: set[str], declared: frozenset[str] | None, mature: bool, windows: int
) -> tuple[bool, bool]:
    """(is it new, is there a trustworthy baseline to say so). A brand-new agent has none."""
    if declared is not None:
        return name not in declared and name not in learned, True
    if mature or windows > 0:
        return name not in learned, mature
    return False, False


def _exceeded(
    budget: Budget, calls: SlidingCounter, spent: SlidingCounter, cost: float, now: float
) -> str | None:
    """What this call would exceed of ``budget``, or None."""
    if budget.calls is not None and calls.total(now) + 1 > budget.calls:
        return f"call budget of {budget.calls} is used up"
    if budget.cost is not None:
        used = spent.total(now)
        if used + cost > budget.cost:
            return (
                f"cost budget of {budget.cost:g} would be exceeded "
                f"({used:g} spent, this call {cost:g})"
            )
    return None


def _claims(
    st: _AgentState, action: str, cost: float, s: BehaviourSettings
) -> tuple[list[Claim], list[str]]:
    """The shared claims of one call: its rate window first, then each budget it would use,
    in the order the in-process check looks at them; and the scope each budget is named by."""
    claims = [Claim("calls", s.window, s.buckets)]
    labels = [""]
    for budget, suffix, scope in (
        (st.declared.budget, "", "agent"),
        (st.declared.tool_budgets.get(action), f":{action}", f"tool `{action}`"),
    ):
        if budget is None:
            continue
        if budget.calls is not None:
            claims.append(
                Claim("budget_calls" + suffix, s.budget_window, s.buckets, 1.0, budget.calls)
            )
            labels.append(scope)
        if budget.cost is not None:
            claims.append(
                Claim("budget_cost" + suffix, s.budget_window, s.buckets, cost, budget.cost)
            )
            labels.append(scope)
    return claims, labels


def _over(claim: Claim, reserved: Reserved) -> str:
    """The same sentence as ``_exceeded`` for a claim the shared counters refused."""
    limit = claim.limit or 0.0
    if claim.name.startswith("budget_calls"):
        return f"call budget of {int(limit)} is used up"
    used = reserved.totals[reserved.refused]
    return (
        f"cost budget of {limit:g} would be exceeded ({used:g} spent, this call {claim.amount:g})"
    )


def _cost(ctx: Mapping[str, Any]) -> float:
    cost = ctx.get("cost")
    if isinstance(cost, int | float) and not isinstance(cost, bool) and 0 <= cost < 1e12:
        return float(cost)
    return 0.0


def _counter(table: dict[str, SlidingCounter], key: str, s: BehaviourSettings) -> SlidingCounter:
    counter = table.get(key)
    if counter is None:
        counter = table[key] = SlidingCounter(s.budget_window, s.buckets)
    return counter


def _learned(st: _AgentState) -> dict[str, Any]:
    return {
        "tools": sorted(st.learned_tools),
        "destinations": sorted(st.learned_destinations),
        "hours": sorted(st.learned_hours),
        "calls_per_window": round(st.learned_rate, 3),
        "windows": st.windows,
    }

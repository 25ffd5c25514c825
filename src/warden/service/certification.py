"""Access certification campaigns.

``start`` opens one review per active agent, addressed to its primary owner: the agent's
entitlements and what it actually used in the period (the actions of its allowed decisions in
the audit log, from the previous campaign or ``every`` ago). The owner answers each review with
one decision — keep, reduce (to a subset; by default to what was used) or revoke (no
entitlements, agent suspended). Reviews unanswered at the deadline get the campaign's timeout
action: reduce to what was used (suspend when nothing was), or suspend. A campaign closes when
every review is answered or expired; with ``every`` the next one opens on schedule.

Only one campaign is open at a time (a second start is a conflict). Every step is an audit
record: ``certification.started``, ``.review_opened``, ``.kept``, ``.reduced``, ``.revoked``,
``.expired``, ``.closed``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from warden.core.clock import Clock
from warden.core.governance import (
    AuditQuery,
    Campaign,
    CampaignStatus,
    Review,
    ReviewDecision,
    ReviewStatus,
    TimeoutAction,
)
from warden.core.ids import new_id
from warden.core.model import Agent, AgentStatus, Operator, OperatorRole
from warden.core.ports import Store
from warden.core.scope import parse_scope
from warden.errors import ConflictError, InvalidParameterError, NotFoundError, PermissionDeniedError
from warden.service.agents import AgentService
from warden.service.auditing import Auditor
from warden.service.operators import acts_for

log = logging.getLogger("warden.certification")

DEFAULT_EVERY = 90 * 86400.0
DEFAULT_WINDOW = 14 * 86400.0


class CertificationService:
    def __init__(
        self,
        store: Store,
        agents: AgentService,
        auditor: Auditor,
        clock: Clock,
        *,
        window: float = DEFAULT_WINDOW,
        on_timeout: TimeoutAction = TimeoutAction.REDUCE,
        flush_audit: Callable[[], object] = lambda: None,
    ) -> None:
        self._store = store
        self._agents = agents
        self._audit = auditor
        self._clock = clock
        self.window = window
        self.on_timeout = on_timeout
        self._flush = flush_audit  # usage is read from the audit log: see every record first

    # -- starting ------------------------------------------------------------------------------
    def start(
        self,
        actor: str,
        *,
        every: float | None = None,
        window: float | None = None,
        on_timeout: TimeoutAction | None = None,
    ) -> tuple[Campaign, list[Review]]:
        now = self._clock.now()
        window = self.window if window is None else window
        if every is not None and window > every:
            raise InvalidParameterError("the review window must not be longer than `every`")
        previous = next(iter(self._store.list_campaigns(limit=1)), None)
        self._flush()
        # usage since the previous campaign opened; the first looks back one cycle
        period_start = previous.started_at if previous else now - (every or DEFAULT_EVERY)
        campaign = Campaign(
            id=new_id("cmp"),
            started_at=now,
            started_by=actor,
            period_start=period_start,
            deadline=now + window,
            on_timeout=on_timeout or self.on_timeout,
            every=every,
        )
        reviews = [
            Review(
                id=new_id("rev"),
                campaign_id=campaign.id,
                agent_name=agent.name,
                owner=agent.owner,
                entitlements=agent.entitlements,
                used=self.used(agent, period_start),
                deadline=campaign.deadline,
            )
            for agent in self._active_agents()
        ]
        self._store.create_campaign(campaign, reviews)  # ConflictError when one is open
        self._audit.record(
            "certification.started",
            actor,
            {
                "campaign": campaign.id,
                "every": every,
                "deadline": campaign.deadline,
                "on_timeout": campaign.on_timeout.value,
                "period_start": period_start,
                "reviews": len(reviews),
            },
        )
        for review in reviews:
            self._audit.record(
                "certification.review_opened",
                actor,
                {
                    "campaign": campaign.id,
                    "review": review.id,
                    "owner": review.owner,
                    "entitlements": list(review.entitlements),
                    "used": list(review.used),
                    "deadline": review.deadline,
                },
                agent=review.agent_name,
            )
        return campaign, reviews

    def _active_agents(self) -> list[Agent]:
        found: list[Agent] = []
        after: str | None = None
        while True:
            page = self._store.list_agents(status=AgentStatus.ACTIVE, after=after, limit=500)
            found.extend(page)
            if len(page) < 500:
                return found
            after = page[-1].name

    def used(self, agent: Agent, since: float) -> tuple[str, ...]:
        """Entitlements the agent exercised: actions of its allowed decisions since ``since``."""
        actions: set[str] = set()
        query = AuditQuery(
            type_prefix="authz.decision",
            agent=agent.name,
            decision="allow",
            since=since,
        )
        after = 0
        while True:
            page = self._store.search_audit(query, after_seq=after, limit=1000)
            actions.update(str(r.data.get("action")) for r in page if r.data.get("action"))
            if len(page) < 1000:
                break
            after = page[-1].seq
        return tuple(sorted(actions & set(agent.entitlements)))

    # -- deciding --------------------------------------------------------------------------
    def decide(
        self,
        review_id: str,
        decision: Any,
        operator: Operator,
        *,
        entitlements: Any = None,
    ) -> Review:
        try:
            choice = ReviewDecision(decision)
        except ValueError:
            raise InvalidParameterError("`decision` must be keep, reduce or revoke") from None
        review = self._store.fetch_review(review_id)
        # the owner acts through a linked operator account, as for approvals (the account's
        # name matching the owner still counts, for deployments that named accounts so)
        owner = acts_for(operator, review.owner) or operator.name == review.owner
        if operator.role is not OperatorRole.ADMIN and not owner:
            raise PermissionDeniedError(
                f"only the agent's owner `{review.owner}` or an admin may decide this review"
            )
        if review.status is not ReviewStatus.PENDING:
            raise ConflictError(f"review `{review_id}` was already decided ({review.status.value})")
        now = self._clock.now()
        if now > review.deadline:
            raise ConflictError(f"review `{review_id}` is past its deadline")
        actor = f"operator:{operator.name}"
        if choice is ReviewDecision.KEEP:
            return self._settle(review, ReviewStatus.KEPT, review.entitlements, actor, now)
        if choice is ReviewDecision.REVOKE:
            return self._settle(review, ReviewStatus.REVOKED, (), actor, now, suspend=True)
        keep = review.used if entitlements is None else parse_scope(entitlements)
        if not set(keep) <= set(review.entitlements):
            raise InvalidParameterError("a reduction may only keep entitlements the agent has")
        return self._settle(review, ReviewStatus.REDUCED, keep, actor, now)

    def _settle(
        self,
        review: Review,
        status: ReviewStatus,
        keep: tuple[str, ...],
        actor: str,
        now: float,
        *,
        suspend: bool = False,
        note: str | None = None,
    ) -> Review:
        decided = replace(review, status=status, decided_at=now, decided_by=actor, result=keep)
        self._store.decide_review(decided)  # compare-and-set: a review is decided once
        try:
            agent = self._agents.get(review.agent_name)
        except NotFoundError:
            agent = None
        removed = sorted(set(review.entitlements) - set(keep))
        if agent is not None and agent.status is not AgentStatus.DECOMMISSIONED:
            if removed:
                current = [
                    e for e in agent.entitlements if e in keep or e not in review.entitlements
                ]
                self._agents.update(agent.name, {"entitlements": current}, actor)
            if suspend and agent.status is AgentStatus.ACTIVE:
                self._agents.suspend(agent.name, actor, f"certification: {status.value}")
            gov = self._store.fetch_governance(agent.name)
            self._store.put_governance(replace(gov, last_certified_at=now))
        self._audit.record(
            f"certification.{status.value}",
            actor,
            {
                "campaign": review.campaign_id,
                "review": review.id,
                "owner": review.owner,
                "entitlements": list(keep),
                "removed": removed,
                "used": list(review.used),
                "suspended": suspend,
                **({"note": note} if note else {}),
            },
            agent=review.agent_name,
        )
        self._close_if_done(review.campaign_id, now)
        return decided

    # -- deadlines and schedule ----------------------------------------------------------------
    def tick(self) -> dict[str, Any]:
        now = self._clock.now()
        expired = []
        for review in self._store.list_reviews(status=ReviewStatus.PENDING, due_before=now):
            try:
                campaign = self._store.fetch_campaign(review.campaign_id)
                self._expire(review, campaign, now)
                expired.append(review.id)
            except ConflictError:
                continue  # decided meanwhile (another replica, or the owner at the last second)
        for campaign in self._store.list_campaigns(limit=5):
            if campaign.status is CampaignStatus.OPEN and now > campaign.deadline:
                self._close_if_done(campaign.id, now)
        started = self._start_if_due(now)
        return {"expired": expired, "started": started.id if started else None}

    def _expire(self, review: Review, campaign: Campaign, now: float) -> None:
        if campaign.on_timeout is TimeoutAction.SUSPEND or not review.used:
            note = "no answer by the deadline: suspended"
            self._settle(review, ReviewStatus.EXPIRED, (), "warden", now, suspend=True, note=note)
        else:
            note = "no answer by the deadline: reduced to what was used"
            self._settle(review, ReviewStatus.EXPIRED, review.used, "warden", now, note=note)

    def _close_if_done(self, campaign_id: str, now: float) -> None:
        reviews = self._store.list_reviews(campaign_id=campaign_id)
        if any(r.status is ReviewStatus.PENDING for r in reviews):
            return
        try:
            self._store.close_campaign(campaign_id, closed_at=now)
        except ConflictError:
            return
        counts: dict[str, int] = {}
        for r in reviews:
            counts[r.status.value] = counts.get(r.status.value, 0) + 1
        self._audit.record("certification.closed", "warden", {"campaign": campaign_id, **counts})

    def _start_if_due(self, now: float) -> Campaign | None:
        latest = next(iter(self._store.list_campaigns(limit=1)), None)
        if latest is None or latest.every is None or latest.status is CampaignStatus.OPEN:
            return None
        if now < latest.started_at + latest.every:
            return None
        try:
            campaign, _ = self.start(
                "warden",
                every=latest.every,
                window=latest.deadline - latest.started_at,
                on_timeout=latest.on_timeout,
            )
        except ConflictError:
            return None
        return campaign

    def close(self, campaign_id: str, actor: str) -> Campaign:
        """Close a campaign early: its pending reviews expire with the timeout action now."""
        campaign = self._store.fetch_campaign(campaign_id)
        if campaign.status is not CampaignStatus.OPEN:
            raise ConflictError(f"certification campaign `{campaign_id}` is already closed")
        now = self._clock.now()
        for review in self._store.list_reviews(
            campaign_id=campaign_id, status=ReviewStatus.PENDING
        ):
            try:
                self._expire(review, campaign, now)
            except ConflictError:
                continue
        self._close_if_done(campaign_id, now)
        return self._store.fetch_campaign(campaign_id)


def campaign_view(campaign: Campaign, reviews: list[Review] | None = None) -> dict[str, Any]:
    view: dict[str, Any] = {
        "id": campaign.id,
        "status": campaign.status.value,
        "started_at": campaign.started_at,
        "started_by": campaign.started_by,
        "period_start": campaign.period_start,
        "deadline": campaign.deadline,
        "on_timeout": campaign.on_timeout.value,
        "every": campaign.every,
        "closed_at": campaign.closed_at,
    }
    if reviews is not None:
        view["reviews"] = [review_view(r) for r in reviews]
    return view


def review_view(review: Review) -> dict[str, Any]:
    base = f"/v1/certifications/reviews/{review.id}"
    return {
        "id": review.id,
        "campaign": review.campaign_id,
        "agent": review.agent_name,
        "owner": review.owner,
        "entitlements": list(review.entitlements),
        "used": list(review.used),
        "unused": sorted(set(review.entitlements) - set(review.used)),
        "deadline": review.deadline,
        "status": review.status.value,
        "decided_at": review.decided_at,
        "decided_by": review.decided_by,
        "result": None if review.result is None else list(review.result),
        # one request each: POST with no body (reduce keeps what was used)
        "actions": {d.value: f"{base}/{d.value}" for d in ReviewDecision}
        if review.status is ReviewStatus.PENDING
        else {},
    }

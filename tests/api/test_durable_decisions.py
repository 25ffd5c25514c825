"""A decision is answered only once its audit record is committed, and waiting for that commit
never blocks the event loop that decides (ADR 0090): the routes await it."""

from __future__ import annotations

import asyncio

from warden.audit.writer import Ticket

from .conftest import World


def test_a_decision_is_in_the_log_when_answered_and_the_loop_never_blocks(world: World) -> None:
    agent = world.register("support-bot")
    task = world.start_task(scope="tickets.read")
    blocked: list[str] = []
    wait = world.warden.writer.wait

    def observed(ticket: Ticket) -> None:
        try:
            asyncio.get_running_loop()
        except RuntimeError:  # a worker thread: waiting here is what it is for
            pass
        else:
            blocked.append("a synchronous audit wait on the event loop")
        wait(ticket)

    world.warden.writer.wait = observed  # type: ignore[method-assign]
    for path in ("/access/v1/evaluation", "/access/v1/evaluations"):
        answer = world.client.post(
            path,
            json={
                "subject": {
                    "type": "agent",
                    "id": agent["spiffe_id"],
                    "properties": {"token": task["access_token"]},
                },
                "action": {"name": "tools/call"},
                "resource": {"type": "tool", "id": "tickets.read"},
                "context": {"arguments": {}},
            },
        ).json()
        decision_id = answer["context"]["decision_id"]
        # no flush: answered means committed
        found = world.warden.store.list_audit(type_prefix="authz.decision", limit=1000)
        assert decision_id in {r.decision_id for r in found}
    assert blocked == []

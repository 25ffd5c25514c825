"""Replicas: who is running, and what one replica's hot state says (operators only).

``GET /v1/replica/agents/{name}`` answers from the answering replica's memory, not the database:
it is how ``warden agents suspend`` sees a kill reach every replica.
"""

from __future__ import annotations

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from warden.api.deps import any_operator, warden_of
from warden.api.errors import json_response
from warden.errors import NotFoundError

router = APIRouter(tags=["replicas"])


@router.get("/v1/replicas")
async def list_replicas(request: Request) -> Response:
    await run_in_threadpool(any_operator, request)
    w = warden_of(request)
    replicas = await run_in_threadpool(w.replication.replicas)
    return json_response(
        {
            "self": w.replication.replica_id,
            "replicas": [
                {"id": r.id, "url": r.url, "started_at": r.started_at, "last_seen": r.last_seen}
                for r in replicas
            ],
        }
    )


@router.get("/v1/replica")
async def this_replica(request: Request) -> Response:
    await run_in_threadpool(any_operator, request)
    w = warden_of(request)
    stats = w.replication.stats
    return json_response(
        {
            "id": w.replication.replica_id,
            "channel": w.replication.channel.name,
            "connected": w.replication.channel.connected,
            "started_at": stats.started_at,
            "changes_sent": stats.changes_sent,
            "changes_applied": stats.changes_applied,
            "publish_failures": stats.publish_failures,
            "resyncs": stats.resyncs,
            "last_resync_at": stats.last_resync_at,
            "last_change_at": stats.last_change_at,
            "deny_applied": stats.deny_applied,
            "freshness": w.replication.freshness.status().to_dict(),
            "outage_journal": {"pending": w.outage.pending, "replayed": w.outage.replayed},
            "hot_state": {
                "agents": len(w.state.agents_by_name),
                "active_tasks": len(w.state.tasks),
                "revoked_credentials": len(w.state.revoked),
            },
        }
    )


@router.get("/v1/replica/agents/{name}")
async def agent_here(request: Request, name: str) -> Response:
    await run_in_threadpool(any_operator, request)
    w = warden_of(request)
    agent = w.state.agents_by_name.get(name)
    if agent is None:
        raise NotFoundError(f"agent `{name}` is not in this replica's memory")
    tasks = [t.id for t in list(w.state.tasks.values()) if t.agent_name == name]
    return json_response(
        {
            "replica": w.replication.replica_id,
            "name": name,
            "status": agent.status.value,
            "active_tasks": len(tasks),
        }
    )

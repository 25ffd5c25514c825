"""A small A2A agent built with the official A2A SDK (``a2a-sdk``): the target behind
``warden a2a-proxy`` in the tests. It echoes, and says which Warden headers it was given."""

from __future__ import annotations

from typing import Any

from a2a.helpers.proto_helpers import new_text_message
from a2a.server.agent_execution import AgentExecutor, RequestContext
from a2a.server.events.event_queue_v2 import EventQueue
from a2a.server.request_handlers import DefaultRequestHandler
from a2a.server.routes import create_agent_card_routes, create_jsonrpc_routes
from a2a.server.tasks import InMemoryTaskStore
from a2a.types import AgentCapabilities, AgentCard, AgentInterface, AgentSkill
from starlette.applications import Starlette

SEEN: list[dict[str, str]] = []  # the Warden headers of each message (what the proxy carried)


class EchoExecutor(AgentExecutor):
    async def execute(self, context: RequestContext, event_queue: EventQueue) -> None:
        call = context.call_context
        headers: dict[str, Any] = {}
        if call is not None:
            headers = dict((call.state or {}).get("headers") or {})
        SEEN.append({k: v for k, v in headers.items() if k.lower().startswith("x-warden-")})
        text = context.get_user_input()
        await event_queue.enqueue_event(
            new_text_message(f"echo: {text}", context_id=context.context_id)
        )

    async def cancel(self, context: RequestContext, event_queue: EventQueue) -> None:
        return None


def card(url: str) -> AgentCard:
    return AgentCard(
        name="billing-agent",
        description="Answers billing questions",
        version="1.0.0",
        supported_interfaces=[
            AgentInterface(url=f"{url}/a2a", protocol_binding="JSONRPC", protocol_version="1.0")
        ],
        capabilities=AgentCapabilities(streaming=True),
        default_input_modes=["text/plain"],
        default_output_modes=["text/plain"],
        skills=[
            AgentSkill(
                id="invoices.explain", name="Explain an invoice", description="d", tags=["b"]
            ),
            AgentSkill(id="refunds.issue", name="Issue a refund", description="d", tags=["b"]),
        ],
    )


def app(url: str) -> Starlette:
    agent_card = card(url)
    handler = DefaultRequestHandler(
        agent_executor=EchoExecutor(), task_store=InMemoryTaskStore(), agent_card=agent_card
    )
    return Starlette(
        routes=[*create_agent_card_routes(agent_card), *create_jsonrpc_routes(handler, "/a2a")]
    )

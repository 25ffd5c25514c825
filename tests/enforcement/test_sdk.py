"""The Python SDK against a real Warden over HTTP, and its embedded PDP in-process."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path
from typing import Any

import httpx
import pytest

from warden.demo.server import free_port
from warden.sdk import (
    AccessDeniedError,
    ApprovalRequiredError,
    AsyncCredentialKeeper,
    AsyncWardenClient,
    CredentialKeeper,
    DecisionUnavailableError,
    RemoteAPIError,
    WardenClient,
    guard,
)
from warden.sdk.embedded import EmbeddedPDP, sync_policies

from .conftest import POLICIES, SCOPE, LiveWarden

pytestmark = pytest.mark.enforcement


def test_sync_client_exchanges_decides_renews_and_ends(live_warden: LiveWarden) -> None:
    spiffe = live_warden.register()
    with WardenClient(live_warden.url) as client:
        cred = client.exchange(
            live_warden.svid(spiffe),
            scope=SCOPE.split(),
            purpose="answer T-1042",
            category="support",
        )
        assert cred.spiffe_id == spiffe and "tickets.read" in cred.scope
        assert cred.token not in repr(cred)
        allowed = client.decide_tool(cred.token, "tickets.read", {"ticket": "T-1042"})
        assert allowed.allowed and allowed.policies == ("support-tickets",)
        allowed.enforce("tickets.read")
        denied = client.decide_tool(cred.token, "email.send", {"to": "x@evil.test"})
        with pytest.raises(AccessDeniedError) as err:
            denied.enforce("email.send")
        assert err.value.policies == ["no-external-email"]
        assert err.value.decision_id == denied.decision_id
        both = client.evaluations(
            [
                {
                    "subject": {"type": "agent", "id": spiffe, "properties": {"token": cred.token}},
                    "action": {"name": n},
                    "resource": {"type": "Tool", "id": n},
                }
                for n in ("tickets.read", "payments.refund")
            ]
        )
        assert [b["decision"] for b in both] == [True, False]
        renewed = client.renew(cred)
        assert renewed.token != cred.token and renewed.task_id == cred.task_id
        client.end_task(renewed)
        after = client.decide_tool(renewed.token, "tickets.read", {"ticket": "T-1042"})
        assert not after.allowed and after.reason == "invalid_credential"
        with pytest.raises(RemoteAPIError) as refused:
            client.exchange("not-an-svid", scope="tickets.read", purpose="x")
        assert refused.value.status == 400 and refused.value.error_code == "invalid_request"


def test_async_client_and_keeper_renew_before_expiry(live_warden: LiveWarden) -> None:
    spiffe = live_warden.register()

    async def scenario() -> None:
        async with AsyncWardenClient(live_warden.url) as client:
            cred = await client.exchange(
                live_warden.svid(spiffe), scope=SCOPE, purpose="answer", category="support"
            )
            now = [cred.issued_at]
            keeper = AsyncCredentialKeeper(client, cred, clock=lambda: now[0])
            assert await keeper.token() == cred.token  # fresh: kept
            now[0] = cred.expires_at - 10  # inside the last fifth of its life
            renewed = await keeper.token()
            assert renewed != cred.token
            decision = await client.decide_tool(renewed, "tickets.read", {"ticket": "T-1"})
            assert decision.allowed

    asyncio.run(scenario())


def test_an_unreachable_pdp_is_an_error_never_an_allow() -> None:
    client = WardenClient(f"http://127.0.0.1:{free_port()}", timeout=1)
    with pytest.raises(DecisionUnavailableError):
        client.decide_tool("token", "tickets.read")
    with pytest.raises(DecisionUnavailableError):
        client.evaluations([{"subject": {}, "action": {}, "resource": {}}])


def test_guard_on_plain_and_async_functions(live_warden: LiveWarden) -> None:
    spiffe = live_warden.register()
    client = WardenClient(live_warden.url)
    cred = client.exchange(live_warden.svid(spiffe), scope=SCOPE, purpose="t", category="support")
    keeper = CredentialKeeper(client, cred)
    sent: list[str] = []

    @guard(client, keeper, tool="email.send")
    def send_email(to: str, subject: str = "hello") -> str:
        sent.append(to)
        return f"sent to {to}"

    assert send_email("carol@example.com") == "sent to carol@example.com"
    with pytest.raises(AccessDeniedError):
        send_email(to="mallory@evil.test")
    assert sent == ["carol@example.com"]  # the denied call never ran
    assert send_email.__name__ == "send_email"  # frameworks still see the function

    async_client = AsyncWardenClient(live_warden.url)

    @guard(async_client, cred)
    async def whoami() -> str:
        return "me"

    @guard(async_client, cred)
    async def payments_refund(invoice: str) -> str:  # not in scope (and not even the name)
        return "refunded"

    async def scenario() -> None:
        assert await whoami() == "me"
        with pytest.raises(AccessDeniedError) as err:
            await payments_refund("INV-1")
        assert err.value.reason == "out_of_scope"
        await async_client.aclose()

    asyncio.run(scenario())
    # the decisions are on the record with the arguments the policy saw
    decisions = live_warden.audit()
    assert any(
        r["data"]["context"].get("arguments", {}).get("to") == "mallory@evil.test"
        for r in decisions
    )

    down = WardenClient(f"http://127.0.0.1:{free_port()}", timeout=1)
    ran: list[bool] = []

    @guard(down, cred)
    def whoami_sync() -> None:
        ran.append(True)

    with pytest.raises(DecisionUnavailableError):
        whoami_sync()
    assert not ran


class _ApprovingPDP:
    """A PDP that asks for approval twice, then allows: the shape issue 5's decisions take."""

    def __init__(self) -> None:
        self.asked = 0

    def evaluate(self, request: dict[str, Any]) -> dict[str, Any]:
        self.asked += 1
        if self.asked < 3:
            return {
                "decision": False,
                "context": {"decision_id": f"dec_{self.asked}", "approval": {"id": "apr_1"}},
            }
        return {"decision": True, "context": {"decision_id": "dec_3"}}


def test_guard_waits_for_approval_when_asked_to() -> None:
    pdp = _ApprovingPDP()

    @guard(pdp, "token", wait_for_approval=5, poll_interval=0.01)
    def refund(amount: int) -> str:
        return "refunded"

    assert refund(5) == "refunded"
    assert pdp.asked == 3

    impatient = _ApprovingPDP()

    @guard(impatient, "token")
    def refund_now(amount: int) -> str:
        return "refunded"

    with pytest.raises(ApprovalRequiredError) as err:
        refund_now(5)
    assert err.value.approval_id == "apr_1"


def test_embedded_pdp_decides_in_process(tmp_path: Path) -> None:
    from warden.tokens.svid import DevTrustDomain

    policies = tmp_path / "policies"
    shutil.copytree(POLICIES, policies)
    trust = DevTrustDomain.create("example.org", tmp_path / "trust")
    from warden.config import TrustDomainConfig

    with EmbeddedPDP.open(
        policies,
        tmp_path / "data",
        trust_domains=(TrustDomainConfig("example.org", trust.bundle_path),),
    ) as pdp:
        agent = pdp.warden.agents.register(
            {
                "name": "local-bot",
                "owner": "alice@example.com",
                "purpose": "local work",
                "risk_tier": "low",
                "entitlements": ["tickets.read", "email.send"],
                "groups": ["support"],
            },
            "test",
        )
        cred = pdp.exchange(
            trust.mint(agent.spiffe_id, "warden"),
            scope="tickets.read email.send",
            purpose="t",
            category="support",
        )
        assert pdp.decide_tool(cred.token, "tickets.read", {"ticket": "1"}).allowed
        assert not pdp.decide_tool(cred.token, "email.send", {"to": "x@evil.test"}).allowed

        @guard(pdp, cred)
        def tickets_read(ticket: str) -> str:
            return ticket

        with pytest.raises(AccessDeniedError):  # the function name is not the tool name
            tickets_read("T-1")
        assert guard(pdp, cred, tool="tickets.read")(tickets_read.__wrapped__)("T-1") == "T-1"


def test_embedded_pdp_runs_a_synced_copy_of_the_server_policies(
    live_warden: LiveWarden, tmp_path: Path
) -> None:
    token = live_warden.admin["Authorization"].removeprefix("Bearer ")
    folder = tmp_path / "synced"
    with WardenClient(live_warden.url) as client:
        revision = sync_policies(client, folder, operator_token=token)
    assert revision == live_warden.warden.pdp.revision
    assert (folder / "tools.cedar").read_text() == (POLICIES / "tools.cedar").read_text()
    with EmbeddedPDP.open(folder) as pdp:
        assert pdp.warden.pdp.revision == revision
    # operators only
    r = httpx.get(f"{live_warden.url}/v1/policies/bundle")
    assert r.status_code == 401

"""``@guard``: put a Warden decision in front of a tool function.

    pdp = WardenClient("http://127.0.0.1:8080")        # or EmbeddedPDP.open("policies")
    keeper = CredentialKeeper(pdp, credential)

    @guard(pdp, keeper)                                # the tool is the function's name
    def send_email(to: str, subject: str) -> str: ...

Each call builds the AuthZEN request from the tool name and the bound arguments (defaults
filled in) in Warden's convention — action = the tool, ``context.arguments`` = the arguments —
asks the PDP, and runs the function only on allow. A deny raises ``AccessDeniedError``; an
approval-required deny raises ``ApprovalRequiredError`` unless ``wait_for_approval`` is set,
in which case the guard waits (polling the approval, or re-asking the PDP) up to that many
seconds and runs the function once the decision turns to allow. A PDP that cannot answer
raises ``DecisionUnavailableError``: the function never runs on an error.

Works on plain and ``async`` functions, and under agent frameworks' tool wrappers: the wrapper
keeps the function's name, docstring and signature (``functools.wraps``), so LangChain's
``@tool`` and the OpenAI Agents SDK's ``@function_tool`` see the original parameters.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import json
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol, TypeVar, cast

from warden.errors import DecisionUnavailableError

from . import _wire
from ._wire import Decision, TaskCredential

__all__ = ["guard"]

F = TypeVar("F", bound=Callable[..., Any])
PENDING = "pending"


class _Credential(Protocol):
    def token(self) -> str: ...


CredentialLike = str | TaskCredential | _Credential | Callable[[], str] | Any


def _token_of(credential: CredentialLike) -> str:
    if isinstance(credential, str):
        return credential
    if isinstance(credential, TaskCredential):
        return credential.token
    getter = getattr(credential, "token", None)
    if callable(getter):
        return str(getter())
    if callable(credential):
        return str(credential())
    raise TypeError("credential must be a token, a TaskCredential, a keeper or a callable")


async def _atoken_of(credential: CredentialLike) -> str:
    getter = getattr(credential, "token", None)
    if callable(getter) and inspect.iscoroutinefunction(getter):
        return str(await getter())
    return _token_of(credential)


def _json_arguments(fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    bound = inspect.signature(fn).bind(*args, **kwargs)
    bound.apply_defaults()
    # Cedar holds JSON-like values only; anything else is shown to policy as its text
    return json.loads(json.dumps(dict(bound.arguments), default=str))


def guard(
    pdp: Any,
    credential: CredentialLike,
    *,
    tool: str | None = None,
    resource: Mapping[str, Any] | None = None,
    context: Mapping[str, Any] | None = None,
    wait_for_approval: float | None = None,
    approvals: Any = None,
    poll_interval: float = 1.0,
) -> Callable[[F], F]:
    """Guard a tool function with a Warden decision (see the module docstring).

    ``pdp`` answers ``evaluate(request) -> dict`` (``WardenClient``, ``EmbeddedPDP``) or, for
    ``async`` functions, may be an ``AsyncWardenClient``. ``credential`` is the task credential:
    a token, a ``TaskCredential``, a ``CredentialKeeper`` or a callable returning a token.
    ``approvals`` (a client with ``approval(id)``) is polled while waiting for an approval;
    without it the guard re-asks the PDP every ``poll_interval`` seconds.
    """

    def decorate(fn: F) -> F:
        name = tool or fn.__name__

        def request(token: str, arguments: Any) -> dict[str, Any]:
            return _wire.tool_evaluation(token, name, arguments, resource=resource, context=context)

        if inspect.iscoroutinefunction(fn):

            async def ask(token: str, arguments: Any) -> Decision:
                answer = pdp.evaluate(request(token, arguments))
                if inspect.isawaitable(answer):
                    answer = await answer
                return Decision.of(_checked(answer))

            @functools.wraps(fn)
            async def guarded_async(*args: Any, **kwargs: Any) -> Any:
                arguments = _json_arguments(fn, args, kwargs)
                decision = await ask(await _atoken_of(credential), arguments)
                deadline = time.monotonic() + (wait_for_approval or 0)
                while decision.approval_id and wait_for_approval and time.monotonic() < deadline:
                    await _await_approval(approvals, decision.approval_id, poll_interval)
                    decision = await ask(await _atoken_of(credential), arguments)
                decision.enforce(name)
                return await cast(Callable[..., Awaitable[Any]], fn)(*args, **kwargs)

            return cast(F, guarded_async)

        def ask_sync(token: str, arguments: Any) -> Decision:
            return Decision.of(_checked(pdp.evaluate(request(token, arguments))))

        @functools.wraps(fn)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            arguments = _json_arguments(fn, args, kwargs)
            decision = ask_sync(_token_of(credential), arguments)
            deadline = time.monotonic() + (wait_for_approval or 0)
            while decision.approval_id and wait_for_approval and time.monotonic() < deadline:
                _wait_approval_sync(approvals, decision.approval_id, poll_interval)
                decision = ask_sync(_token_of(credential), arguments)
            decision.enforce(name)
            return fn(*args, **kwargs)

        return cast(F, guarded)

    return decorate


def _checked(answer: Any) -> dict[str, Any]:
    if not isinstance(answer, dict) or not isinstance(answer.get("decision"), bool):
        raise DecisionUnavailableError("the PDP answer has no boolean `decision`")
    return answer


def _still_pending(status: Any) -> bool:
    return isinstance(status, dict) and status.get("status", PENDING) == PENDING


def _wait_approval_sync(approvals: Any, approval_id: str, interval: float) -> None:
    """Sleep until the approval leaves ``pending`` (or one interval when nothing to poll)."""
    time.sleep(interval)
    while approvals is not None and _still_pending(approvals.approval(approval_id)):
        time.sleep(interval)


async def _await_approval(approvals: Any, approval_id: str, interval: float) -> None:
    await asyncio.sleep(interval)
    while approvals is not None:
        status = approvals.approval(approval_id)
        if inspect.isawaitable(status):
            status = await status
        if not _still_pending(status):
            return
        await asyncio.sleep(interval)

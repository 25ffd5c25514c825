"""Guard LangChain tools: ``guard_tool(existing_tool, pdp, credential)`` or ``@guard(...)``.

    from langchain_core.tools import tool
    from warden.sdk.integrations.langchain import guard

    @tool(handle_tool_error=True)
    @guard(pdp, keeper, tool="email.send")     # the Warden tool name; LangChain's is the function's
    def send_email(to: str, subject: str) -> str: ...

A refusal raises LangChain's ``ToolException`` (chained to Warden's ``AccessDeniedError``,
``ApprovalRequiredError`` or ``DecisionUnavailableError``): with ``handle_tool_error`` set,
LangChain hands the reason (`` access_denied: `email.send` was denied … ``) to the model instead
of raising, so the model can correct course. ``guard_tool`` does the same for a
``StructuredTool`` built elsewhere: a new tool with the same name, description, argument schema
and error handling whose function (and coroutine) is guarded.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any, TypeVar, cast

from warden.errors import WardenError
from warden.sdk.guard import guard as _guard

__all__ = ["guard", "guard_tool"]

F = TypeVar("F", bound=Callable[..., Any])


def _tool_exception(exc: WardenError) -> Exception:
    from langchain_core.tools import ToolException

    error = ToolException(f"{exc.code}: {exc.message}")
    error.__cause__ = exc
    return error


def guard(pdp: Any, credential: Any, **options: Any) -> Callable[[F], F]:
    """Warden's ``@guard`` whose refusals are ``ToolException`` (see the module docstring)."""

    def decorate(fn: F) -> F:
        guarded = _guard(pdp, credential, **options)(fn)
        if inspect.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def run_async(*args: Any, **kwargs: Any) -> Any:
                try:
                    return await guarded(*args, **kwargs)
                except WardenError as exc:
                    raise _tool_exception(exc) from exc

            return cast(F, run_async)

        @functools.wraps(fn)
        def run(*args: Any, **kwargs: Any) -> Any:
            try:
                return guarded(*args, **kwargs)
            except WardenError as exc:
                raise _tool_exception(exc) from exc

        return cast(F, run)

    return decorate


def guard_tool(tool: Any, pdp: Any, credential: Any, **options: Any) -> Any:
    """A guarded copy of a LangChain ``StructuredTool`` (the Warden tool name defaults to its
    name)."""
    from langchain_core.tools import StructuredTool

    options.setdefault("tool", tool.name)
    func = guard(pdp, credential, **options)(tool.func) if tool.func else None
    coroutine = guard(pdp, credential, **options)(tool.coroutine) if tool.coroutine else None
    return StructuredTool(
        name=tool.name,
        description=tool.description,
        args_schema=tool.args_schema,
        func=func,
        coroutine=coroutine,
        return_direct=tool.return_direct,
        handle_tool_error=tool.handle_tool_error,
    )

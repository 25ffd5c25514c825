"""Guard OpenAI Agents SDK function tools: ``guarded_function_tool(fn, pdp, credential)``.

    from agents import function_tool

    send = function_tool(guard(pdp, keeper, tool="email.send")(send_email))

is all it takes, except that the SDK then tells the model only "an error occurred".
``guarded_function_tool`` also hands the model Warden's reason (`` `email.send` was denied:
denied by policy no-external-email``) so it can correct course; the function never runs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from warden.errors import WardenError
from warden.sdk.guard import guard


def guarded_function_tool(
    fn: Callable[..., Any], pdp: Any, credential: Any, *, tool: str | None = None, **options: Any
) -> Any:
    """``agents.function_tool`` over ``fn`` guarded by Warden (``tool`` = the Warden tool name,
    default the function's name); other keywords go to ``guard``."""
    from agents import function_tool

    return function_tool(
        guard(pdp, credential, tool=tool, **options)(fn), failure_error_function=explain
    )


def explain(context: Any, error: Exception) -> str:
    """What the model reads when a guarded tool fails: Warden's reason, or a generic line."""
    if isinstance(error, WardenError):
        return f"{error.code}: {error.message}"
    return "An error occurred while running the tool. Please try again."

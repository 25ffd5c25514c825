"""Guard LangChain tools: ``guard_tool(existing_tool, pdp, credential)``.

    from langchain_core.tools import tool

    @tool
    @guard(pdp, keeper, tool="email.send")     # the Warden tool name; LangChain's is the function's
    def send_email(to: str, subject: str) -> str: ...

``guard_tool`` does the same for a ``StructuredTool`` built elsewhere: a new tool with the same
name, description and argument schema whose function (and coroutine) is guarded. A deny raises
``AccessDeniedError`` from ``invoke``/``ainvoke`` (set ``handle_tool_error`` on the tool to turn
it into a message for the model).
"""

from __future__ import annotations

from typing import Any

from warden.sdk.guard import guard


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

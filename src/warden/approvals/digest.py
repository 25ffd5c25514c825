"""The digest an approval is bound to: agent, task, action, resource and arguments.

SHA-256 (hex) over the canonical JSON of ``{"agent", "task", "action", "resource": {"type",
"id"}, "arguments"}`` — keys sorted, no insignificant whitespace, UTF-8 — so the same call
always hashes the same, and any other call (another argument value, another task) does not.
Only ``context.arguments`` is bound from the PEP's context: profile machinery (such as an
echoed ``context.approval``) and volatile members never change the digest.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any


def action_digest(
    agent: str, task_id: str, action: str, resource_type: str, resource_id: str, arguments: Any
) -> str:
    document = {
        "agent": agent,
        "task": task_id,
        "action": action,
        "resource": {"type": resource_type, "id": resource_id},
        "arguments": arguments if arguments is not None else {},
    }
    canonical = json.dumps(
        document, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()

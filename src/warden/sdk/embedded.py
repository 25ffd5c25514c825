"""``from warden.sdk.embedded import EmbeddedPDP`` — the embedded PDP's name in the SDK.

The embedded PDP builds a whole Warden in this process, so its code is ``warden.embedded`` (the
server side); this module re-exports it, with ``sync_policies`` (``warden.sdk.policies``), for
the programs that import them from here. It is the one module of ``warden.sdk`` that reaches the
server, named as such in the ``sdk`` contracts of ``pyproject.toml`` (ADR 0153); importing
``warden.sdk`` alone never loads it.
"""

from __future__ import annotations

from warden.embedded import EmbeddedPDP
from warden.sdk.policies import sync_policies

__all__ = ["EmbeddedPDP", "sync_policies"]

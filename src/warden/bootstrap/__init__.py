"""The composition root (ADR 0151): Settings in, a frozen set of services out, loops apart.

* ``build_services(settings, clock=, store=)`` — every component, in one pass, in dependency
  order, by constructor injection (``bootstrap.build``); the result is ``Services``, frozen;
* ``Warden(settings, ...)`` — one process: its ``Services`` plus settings, ``start()``/``close()``;
* ``Runtime`` — the background loops ``Warden.start()`` runs and ``close()`` stops in reverse;
* ``bootstrap.stores`` — which store (SQL by URL, or one passed in) and its change channel.

It sits above ``warden.service`` (which never imports it) and below the adapters that host a
Warden (``api``, ``cli``, ``mcp``, the embedded PDP).
"""

from warden.bootstrap.build import build_services, shared_counters
from warden.bootstrap.runtime import Runtime
from warden.bootstrap.services import Services
from warden.bootstrap.warden import Warden

__all__ = ["Runtime", "Services", "Warden", "build_services", "shared_counters"]

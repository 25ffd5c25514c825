"""The proxy's configuration file (``warden mcp-proxy --config proxy.yaml``).

.. code-block:: yaml

    warden:
      url: http://127.0.0.1:8080      # a remote Warden (AuthZEN + JWKS), or:
      # embedded:                     # Warden in this process, over a server's state:
      #   config: warden.yaml         # the server's own config file: every setting it has
      #                               # (database, modes, approvals, behaviour, tokens…)
      #   data_dir: .warden           # and/or these overrides
      #   database_url: postgresql://warden@db/warden
      #   policies: policies
      #   issuer: http://127.0.0.1:8080
      # api_key: change-me            # when Warden is not on loopback
    resource: http://127.0.0.1:8931/mcp   # this proxy's URL = the audience its credentials need
    pinning:
      mode: enforce                   # enforce | require | tofu | off (see below)
      recheck: 5                      # a call re-lists an upstream's tools older than this
    limits:
      call_timeout: 30                # seconds an upstream may take to answer
      max_argument_bytes: 65536       # larger tool/prompt arguments are refused
    upstreams:
      - name: helpdesk                # the resource in decisions: MCPServer::"helpdesk"
        command: [python, -m, warden.examples.mcp_helpdesk]
        env: {HELPDESK_DB: /srv/helpdesk.db}   # the only variables the server gets (+ PATH)
      - name: crm
        url: http://127.0.0.1:9000/mcp
        headers: {Authorization: Bearer <the proxy's own token for the CRM>}
        tool_prefix: crm.             # its tools appear as crm.<name>

Relative paths are relative to the file's folder.

Tool pinning (``warden mcp pin``): with ``enforce`` a tool whose definition differs from the one
an operator pinned is hidden and its calls refused (``tool_definition_changed``); unpinned tools
pass. ``require`` also hides unpinned tools; ``tofu`` (development) pins what it sees first;
``off`` checks nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from warden.core.ids import full_match
from warden.errors import InvalidParameterError

from .signals import SignalsConfig, parse_signals

__all__ = ["ProxyConfig", "UpstreamConfig", "load_proxy_config"]

PINNING_MODES = ("enforce", "require", "tofu", "off")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


@dataclass(frozen=True)
class UpstreamConfig:
    name: str
    command: tuple[str, ...] = ()
    url: str | None = None
    env: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    cwd: str | None = None
    tool_prefix: str = ""
    timeout: float = 30.0


@dataclass(frozen=True)
class ProxyConfig:
    upstreams: tuple[UpstreamConfig, ...]
    warden_url: str | None = None
    embedded_data_dir: Path | None = None
    embedded_policies: Path | None = None
    embedded_issuer: str | None = None
    embedded_config: Path | None = None
    embedded_database_url: str | None = None
    api_key: str | None = None
    resource: str | None = None
    call_timeout: float = 30.0
    max_argument_bytes: int = 64 * 1024
    max_sessions: int = 64
    pinning_mode: str = "enforce"
    pin_recheck: float = 5.0
    signals: SignalsConfig | None = None  # HTTP mode: follow a Shared Signals stream

    @property
    def embedded(self) -> bool:
        return self.warden_url is None


def _bad(message: str) -> InvalidParameterError:
    return InvalidParameterError(f"proxy config: {message}")


def _strings(value: Any, where: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _bad(f"`{where}` must be a mapping")
    return {str(k): str(v) for k, v in value.items()}


def _upstream(raw: Any, index: int, timeout: float) -> UpstreamConfig:
    where = f"upstreams[{index}]"
    if not isinstance(raw, dict):
        raise _bad(f"`{where}` must be a mapping")
    name = raw.get("name")
    if not isinstance(name, str) or not full_match(_NAME, name):
        raise _bad(f"`{where}.name` must be a short name of letters, digits, `.`, `_`, `-`")
    command = raw.get("command")
    url = raw.get("url")
    if (command is None) == (url is None):
        raise _bad(f"`{where}` needs exactly one of `command` (stdio) or `url` (HTTP)")
    if command is not None:
        if isinstance(command, str):
            command = [command, *[str(a) for a in raw.get("args") or []]]
        if (
            not isinstance(command, list)
            or not command
            or not all(isinstance(c, str) for c in command)
        ):
            raise _bad(f"`{where}.command` must be a list of strings")
    if url is not None and (
        not isinstance(url, str) or not url.startswith(("http://", "https://"))
    ):
        raise _bad(f"`{where}.url` must be an http(s) URL")
    prefix = raw.get("tool_prefix", "")
    if not isinstance(prefix, str) or (prefix and not re.fullmatch(r"[A-Za-z0-9._-]+", prefix)):
        raise _bad(f"`{where}.tool_prefix` may only hold letters, digits, `.`, `_`, `-`")
    return UpstreamConfig(
        name=name,
        command=tuple(command or ()),
        url=url,
        env=_strings(raw.get("env"), f"{where}.env"),
        headers=_strings(raw.get("headers"), f"{where}.headers"),
        cwd=str(raw["cwd"]) if raw.get("cwd") else None,
        tool_prefix=prefix,
        timeout=float(raw.get("timeout", timeout)),
    )


def parse_proxy_config(raw: Any, base: Path = Path(".")) -> ProxyConfig:
    if not isinstance(raw, dict):
        raise _bad("the file must hold a mapping")
    limits = raw.get("limits") or {}
    if not isinstance(limits, dict):
        raise _bad("`limits` must be a mapping")
    timeout = float(limits.get("call_timeout", 30.0))
    ups = raw.get("upstreams")
    if not isinstance(ups, list) or not ups:
        raise _bad("`upstreams` must list at least one MCP server")
    upstreams = tuple(_upstream(u, i, timeout) for i, u in enumerate(ups))
    names = [u.name for u in upstreams]
    if len(set(names)) != len(names):
        raise _bad("upstream names must be unique")
    warden = raw.get("warden") or {}
    if not isinstance(warden, dict):
        raise _bad("`warden` must be a mapping")
    url = warden.get("url")
    embedded = warden.get("embedded")
    if (url is None) == (embedded is None):
        raise _bad("`warden` needs exactly one of `url` (remote) or `embedded`")
    data_dir = policies = server_config = None
    issuer: str | None = None
    database_url: str | None = None
    if embedded is not None:
        if not isinstance(embedded, dict):
            raise _bad("`warden.embedded` must be a mapping")

        def rel(value: Any) -> Path:
            path = Path(str(value))
            return path if path.is_absolute() else base / path

        unknown = set(embedded) - {"config", "data_dir", "database_url", "policies", "issuer"}
        if unknown:
            raise _bad(f"`warden.embedded.{sorted(unknown)[0]}` is not a known key")
        server_config = rel(embedded["config"]) if embedded.get("config") else None
        if server_config is not None and not server_config.is_file():
            raise _bad(f"`warden.embedded.config`: `{server_config}` does not exist")
        data_dir = rel(embedded["data_dir"]) if embedded.get("data_dir") else None
        if data_dir is None and server_config is None:
            data_dir = rel(".warden")
        policies = rel(embedded["policies"]) if embedded.get("policies") else None
        issuer = str(embedded["issuer"]) if embedded.get("issuer") else None
        database_url = str(embedded["database_url"]) if embedded.get("database_url") else None
    pinning = raw.get("pinning") or {}
    if not isinstance(pinning, dict):
        raise _bad("`pinning` must be a mapping")
    mode = pinning.get("mode", "enforce")
    if mode not in PINNING_MODES:
        raise _bad(f"`pinning.mode` must be one of {', '.join(PINNING_MODES)}")
    try:
        recheck = float(pinning.get("recheck", 5.0))
    except (TypeError, ValueError):
        raise _bad("`pinning.recheck` must be a number of seconds") from None
    resource = raw.get("resource")
    if resource is not None and not isinstance(resource, str):
        raise _bad("`resource` must be the proxy's URL")
    return ProxyConfig(
        upstreams=upstreams,
        warden_url=str(url).rstrip("/") if url is not None else None,
        embedded_data_dir=data_dir,
        embedded_policies=policies,
        embedded_issuer=issuer,
        embedded_config=server_config,
        embedded_database_url=database_url,
        api_key=str(warden["api_key"]) if warden.get("api_key") else None,
        resource=resource,
        call_timeout=timeout,
        max_argument_bytes=int(limits.get("max_argument_bytes", 64 * 1024)),
        max_sessions=int(limits.get("max_sessions", 64)),
        pinning_mode=mode,
        pin_recheck=recheck,
        signals=parse_signals(raw.get("signals")),
    )


def load_proxy_config(path: Path) -> ProxyConfig:
    try:
        raw = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise _bad(f"cannot read `{path}`: {exc}") from exc
    return parse_proxy_config(raw, path.parent.resolve())

"""``warden a2a-proxy --config a2a.yaml``: read the config, fetch Warden's keys, serve.

.. code-block:: yaml

    warden:
      url: http://127.0.0.1:8080          # the Warden that decides (AuthZEN + JWKS)
      # api_key: change-me                # when Warden is not on loopback
    target:
      name: billing-agent                 # the resource in decisions: A2AAgent::"billing-agent"
      url: http://127.0.0.1:9999          # the A2A server (card at /.well-known/agent-card.json)
    resource: http://127.0.0.1:8940/a2a   # this proxy: the audience its credentials need
    timeout: 60
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
import yaml

from warden.core.clock import SystemClock
from warden.core.ids import full_match
from warden.errors import DecisionUnavailableError, InvalidParameterError
from warden.tokens.jwks import PublishedKeys
from warden.tokens.verifier import TaskCredentialVerifier

from .proxy import A2AProxyConfig, create_a2a_proxy_app

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


def _bad(message: str) -> InvalidParameterError:
    return InvalidParameterError(f"a2a proxy config: {message}")


def parse_a2a_config(
    raw: Any, *, host: str = "127.0.0.1", port: int = 8940
) -> tuple[str, str | None, A2AProxyConfig]:
    """(Warden URL, PEP API key, proxy config) from the YAML mapping."""
    if not isinstance(raw, dict):
        raise _bad("the file must hold a mapping")
    warden = raw.get("warden") or {}
    target = raw.get("target") or {}
    if not isinstance(warden, dict) or not isinstance(warden.get("url"), str):
        raise _bad("`warden.url` must be the Warden server's URL")
    if not isinstance(target, dict):
        raise _bad("`target` must be a mapping")
    name, url = target.get("name"), target.get("url")
    if not isinstance(name, str) or not full_match(_NAME, name):
        raise _bad("`target.name` must be a short name of letters, digits, `.`, `_`, `-`")
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise _bad("`target.url` must be the A2A server's http(s) URL")
    resource = raw.get("resource") or f"http://{host}:{port}/a2a"
    if not isinstance(resource, str) or not resource.startswith(("http://", "https://")):
        raise _bad("`resource` must be this proxy's URL")
    try:
        timeout = float(raw.get("timeout", 60))
    except (TypeError, ValueError):
        raise _bad("`timeout` must be a number of seconds") from None
    api_key = warden.get("api_key")
    return (
        str(warden["url"]).rstrip("/"),
        str(api_key) if api_key else None,
        A2AProxyConfig(name, url.rstrip("/"), resource, timeout, target.get("card_url")),
    )


async def remote_verifier(warden_url: str, resource: str) -> tuple[TaskCredentialVerifier, str]:
    """A verifier over the Warden's published keys for credentials meant for ``resource``."""
    try:
        async with httpx.AsyncClient(base_url=warden_url, timeout=5.0) as http:
            meta = (await http.get("/.well-known/oauth-authorization-server")).raise_for_status()
            body = meta.json()
            jwks = (
                await http.get(body.get("jwks_uri") or "/.well-known/jwks.json")
            ).raise_for_status()
            keys = PublishedKeys(jwks.json())
            issuer = str(body["issuer"])
    except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
        raise DecisionUnavailableError(
            f"cannot read Warden's keys at `{warden_url}`: {exc}"
        ) from exc
    verifier = TaskCredentialVerifier(
        keys, issuer=issuer, audiences=(resource,), clock=SystemClock()
    )
    return verifier, issuer


async def run_a2a_proxy(path: Path, host: str, port: int) -> None:
    import uvicorn

    from warden.sdk.client import AsyncWardenClient

    try:
        raw = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise _bad(f"cannot read `{path}`: {exc}") from exc
    warden_url, api_key, config = parse_a2a_config(raw, host=host, port=port)
    verifier, issuer = await remote_verifier(warden_url, config.resource)
    client = AsyncWardenClient(warden_url, api_key=api_key)
    try:
        app = create_a2a_proxy_app(config, client, verifier, issuer=issuer)
        server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning"))
        await server.serve()
    finally:
        await client.aclose()

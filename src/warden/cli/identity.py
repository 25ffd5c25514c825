"""``warden agent-identity``: fetch this process's JWT-SVID from Warden's workload socket.

The socket attests the *calling process* (this command) from the kernel: its uid, gid,
executable path and digest. Prints the SVID (``--json`` for the whole answer); exchange it at
``/oauth2/token`` like any JWT-SVID. ``fetch_svid`` is the same call for Python programs.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer

from warden.cli.output import fail

DEFAULT_SOCKET = Path(".warden/workload.sock")


class WorkloadAPIError(Exception):
    def __init__(self, message: str, reason: str | None = None) -> None:
        super().__init__(message)
        self.reason = reason


def fetch_svid(socket_path: Path | str, audience: str | None = None) -> dict[str, Any]:
    """Ask the workload socket for a JWT-SVID for the calling process."""
    body = {"audience": audience} if audience else {}
    try:
        with httpx.Client(transport=httpx.HTTPTransport(uds=str(socket_path)), timeout=10) as c:
            response = c.post("http://warden/v1/jwt-svid", json=body)
    except httpx.HTTPError as exc:
        raise WorkloadAPIError(f"cannot reach the workload socket `{socket_path}`: {exc}") from exc
    try:
        answer = response.json()
    except ValueError:
        raise WorkloadAPIError(
            f"the workload socket answered HTTP {response.status_code}"
        ) from None
    if response.status_code != 200:
        error = answer.get("error") if isinstance(answer, dict) else None
        if isinstance(error, dict):
            reason = (error.get("details") or {}).get("reason")
            raise WorkloadAPIError(f"{error.get('code')}: {error.get('message')}", reason)
        raise WorkloadAPIError(f"the workload socket answered HTTP {response.status_code}")
    result: dict[str, Any] = answer
    return result


def agent_identity(
    socket_path: Annotated[
        Path,
        typer.Option("--socket", envvar="WARDEN_WORKLOAD_SOCKET", help="The workload API socket."),
    ] = DEFAULT_SOCKET,
    audience: Annotated[
        str | None, typer.Option("--audience", help="The SVID audience (default: warden's).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the whole answer.")] = False,
) -> None:
    """Print a JWT-SVID for this process, attested by the local workload API."""
    try:
        answer = fetch_svid(socket_path, audience)
    except WorkloadAPIError as exc:
        fail(str(exc))
    typer.echo(json.dumps(answer) if as_json else answer["svid"])

"""A small httpx client for Warden's management API, as the CLI uses it.

Base URL: ``--url`` / ``WARDEN_URL`` (default ``http://127.0.0.1:8080``). Operator token:
``WARDEN_TOKEN``, else the file ``<data dir>/admin.token`` that ``warden serve`` writes on first
start (``--data-dir`` / ``WARDEN_DATA_DIR``, default ``./.warden``). API errors are rendered as
``error: <code>: <message>`` on stderr with exit code 1.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer

import warden
from warden.cli.output import fail
from warden.service.operators import ADMIN_TOKEN_FILE

DEFAULT_URL = "http://127.0.0.1:8080"
DEFAULT_DATA_DIR = Path(".warden")

UrlOption = Annotated[
    str,
    typer.Option("--url", envvar="WARDEN_URL", help="Base URL of the Warden server."),
]
DataDirOption = Annotated[
    Path,
    typer.Option(
        "--data-dir",
        envvar="WARDEN_DATA_DIR",
        help="Warden data folder (holds admin.token when WARDEN_TOKEN is not set).",
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print the raw JSON response.")]


def admin_token_path(data_dir: Path) -> Path:
    return Path(data_dir) / ADMIN_TOKEN_FILE


def operator_token(data_dir: Path) -> str:
    """``WARDEN_TOKEN``, else ``<data dir>/admin.token``; exits with a hint when neither exists."""
    token = os.environ.get("WARDEN_TOKEN", "").strip()
    if token:
        return token
    path = admin_token_path(data_dir)
    try:
        token = path.read_text().strip()
    except FileNotFoundError:
        fail(
            f"no operator token: set WARDEN_TOKEN, or point --data-dir (WARDEN_DATA_DIR) at the "
            f"server's data folder (`{path}` does not exist)"
        )
    except OSError as exc:
        fail(f"cannot read the operator token from `{path}`: {exc.strerror or exc}")
    if not token:
        fail(f"the operator token file `{path}` is empty")
    return token


def located_errors(errors: list[Any]) -> str:
    """Policy errors as a compiler prints them: ``file:line:col: message`` and the snippet."""
    out: list[str] = []
    for e in errors:
        if not isinstance(e, dict):
            continue
        message = str(e.get("message"))
        named = e.get("policy") and not message.startswith(f"policy `{e['policy']}`")
        who = f" policy `{e['policy']}`:" if named else ""
        out.append(f"{e.get('file')}:{e.get('line')}:{e.get('column')}:{who} {message}")
        out.extend(f"    {line}" for line in str(e.get("snippet") or "").splitlines())
    return "\n".join(out)


def error_text(response: httpx.Response) -> str:
    """``<code>: <message>`` from a Warden (ErrorV1) or OAuth (RFC 6749 §5.2) error body."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        err = body.get("error")
        if isinstance(err, dict):
            text = f"{err.get('code', 'error')}: {err.get('message', '')}".rstrip(": ")
            details = err.get("details")
            located = details.get("errors") if isinstance(details, dict) else None
            if isinstance(located, list) and located:
                text += "\n" + located_errors(located)
            return text
        if isinstance(err, str):  # OAuth endpoints
            return f"{err}: {body.get('error_description', '')}".rstrip(": ")
        if isinstance(body.get("detail"), str):  # framework-level errors (e.g. 404 route)
            return f"http_{response.status_code}: {body['detail']}"
    text = response.text.strip().replace("\n", " ")[:300]
    return f"http_{response.status_code}: {text or response.reason_phrase}"


class WardenClient:
    """Synchronous client over the management API; every failure ends the command cleanly."""

    def __init__(
        self,
        url: str = DEFAULT_URL,
        data_dir: Path = DEFAULT_DATA_DIR,
        *,
        token: str | None = None,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self.data_dir = Path(data_dir)
        self._token = token
        self._http = httpx.Client(
            base_url=self.url,
            timeout=timeout,
            headers={"User-Agent": f"warden-cli/{warden.__version__}"},
            transport=transport,
        )

    def __enter__(self) -> WardenClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    @property
    def token(self) -> str:
        if self._token is None:
            self._token = operator_token(self.data_dir)
        return self._token

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        auth: bool = True,
    ) -> Any:
        headers = {"Authorization": f"Bearer {self.token}"} if auth else {}
        query = {k: v for k, v in (params or {}).items() if v is not None}
        try:
            response = self._http.request(method, path, json=json, params=query, headers=headers)
        except httpx.ConnectError:
            fail(f"cannot connect to {self.url}: is `warden serve` running at {self.url}?")
        except httpx.TimeoutException:
            fail(f"{method} {path}: no answer from {self.url} in time")
        except httpx.HTTPError as exc:
            fail(f"{method} {path} failed: {exc}")
        if response.status_code >= 400:
            fail(error_text(response))
        if not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            fail(f"{method} {path}: the server sent a response that is not json")

    def events(self, path: str, **params: Any) -> Iterator[dict[str, Any]]:
        """Follow a server-sent event stream: each event's JSON data, until interrupted.

        Reconnects (with ``Last-Event-ID``) when the connection drops, as a browser would.
        """
        import json as jsonlib
        import time

        last = ""
        query = {k: v for k, v in params.items() if v is not None}
        while True:
            headers = {"Authorization": f"Bearer {self.token}", "Accept": "text/event-stream"}
            if last:
                headers["Last-Event-ID"] = last
            try:
                with self._http.stream(
                    "GET", path, params=query, headers=headers, timeout=httpx.Timeout(5, read=60)
                ) as response:
                    if response.status_code >= 400:
                        response.read()
                        fail(error_text(response))
                    data: list[str] = []
                    for line in response.iter_lines():
                        if line.startswith("id:"):
                            last = line[3:].strip()
                        elif line.startswith("data:"):
                            data.append(line[5:].strip())
                        elif not line and data:
                            yield jsonlib.loads("\n".join(data))
                            data = []
            except (httpx.TransportError, httpx.TimeoutException):
                time.sleep(1)  # the server restarted or the network blinked: resume

    def get(self, path: str, **params: Any) -> Any:
        return self.request("GET", path, params=params)

    def post(self, path: str, body: Any = None) -> Any:
        return self.request("POST", path, json=body if body is not None else {})

    def patch(self, path: str, body: Any) -> Any:
        return self.request("PATCH", path, json=body)

    def put(self, path: str, body: Any) -> Any:
        return self.request("PUT", path, json=body)


def seg(value: str) -> str:
    """One URL path segment, percent-encoded (names and ids never change the path)."""
    from urllib.parse import quote

    return quote(value, safe="")

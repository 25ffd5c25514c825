"""``warden serve``: run the Warden HTTP server (uvicorn; ``--workers N``: cli/workers.py).

``--dev`` (what ``make run`` uses) adds what a laptop needs to try Warden end to end: a dev
SPIFFE trust domain ``example.org`` under ``<data dir>/dev-trust/`` (when none is configured),
the packaged example policies (when no ``--policies``) and an example agent ``demo-agent``.
"""

from __future__ import annotations

import functools
import logging
import re
import shlex
import signal
from dataclasses import replace
from importlib.resources import files
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from warden.cli.client import DEFAULT_URL, admin_token_path
from warden.cli.dev import DEV_TRUST_DOMAIN, JWT_TOKEN_TYPE, TOKEN_EXCHANGE, dev_trust_dir
from warden.cli.output import console, err_console, esc, fail
from warden.service.events import configure_logging

if TYPE_CHECKING:
    from collections.abc import Callable

    from warden.bootstrap import Warden
    from warden.config import Settings

log = logging.getLogger("warden.cli")

WORKLOAD_SOCKET = "workload.sock"
MAX_SOCKET_PATH = 104  # sun_path is 108 bytes on Linux, 104 on the BSDs

EXAMPLE_AGENT: dict[str, Any] = {
    "name": "demo-agent",
    "owner": "alice@example.com",
    "purpose": "summarise support tickets",
    "risk_tier": "medium",
    "entitlements": ["tickets.read", "tickets.summarise", "email.send"],
    "groups": ["support"],
}


def example_policies_dir() -> Path:
    """The packaged example policy folder (src/warden/examples/policies)."""
    return Path(str(files("warden.examples") / "policies"))


def apply_dev_settings(settings: Settings) -> Settings:
    """Dev defaults: a dev trust domain when none is configured, example policies when none."""
    from warden.config import TrustDomainConfig
    from warden.tokens.svid import DevTrustDomain

    if not settings.trust_domains:
        domain = DevTrustDomain.load_or_create(DEV_TRUST_DOMAIN, dev_trust_dir(settings.data_dir))
        settings = replace(
            settings, trust_domains=(TrustDomainConfig(DEV_TRUST_DOMAIN, domain.bundle_path),)
        )
    if settings.policies_dir is None:
        settings = replace(settings, policies_dir=example_policies_dir())
    if settings.workload_socket is None:
        socket_path = settings.data_dir / WORKLOAD_SOCKET
        if len(str(socket_path.absolute())) < MAX_SOCKET_PATH:
            settings = replace(settings, workload_socket=socket_path)
    return settings


def seed_example_agent(w: Warden) -> bool:
    """Register ``demo-agent`` unless an agent of that name exists; True when it was created."""
    from warden.errors import NotFoundError

    try:
        w.agents.get(EXAMPLE_AGENT["name"])
        return False
    except NotFoundError:
        pass
    w.agents.register(dict(EXAMPLE_AGENT), "warden")
    return True


def masked_url(url: str) -> str:
    """A database URL with its password hidden."""
    return re.sub(r"(://[^:/@]+:)[^@]*@", r"\1***@", url)


def base_url(host: str, port: int) -> str:
    shown = "127.0.0.1" if host in ("0.0.0.0", "") else host  # noqa: S104  (display only)
    if ":" in shown:
        shown = f"[{shown}]"
    return f"http://{shown}:{port}"


def banner(w: Warden, *, dev: bool, token_written: bool) -> None:
    from warden.storage.sql import sqlite_url_for

    s = w.settings
    url = base_url(s.host, s.port)
    data_dir = s.data_dir
    token_file = admin_token_path(data_dir)
    q_token = shlex.quote(str(token_file))
    lps = w.pdp.policy_set
    count = len(lps.policy_ids) if lps is not None else 0
    database = masked_url(s.database_url) if s.database_url else sqlite_url_for(data_dir)

    say = functools.partial(console.print, soft_wrap=True)
    say()
    say(f"[bold green]Warden is running[/] at [bold]{esc(url)}[/]")
    say(f"  operator console    {esc(url)}/console  (sign in with an operator token)")
    say(f"  API docs (OpenAPI)  {esc(url)}/docs")
    if token_file.exists():
        note = " (created now)" if token_written else ""
        say(f"  admin token         {esc(token_file)}{note}")
        say(f"                      export WARDEN_TOKEN=$(cat {esc(q_token)})")
    else:
        say(
            "  admin token         an admin exists but its token file is gone; "
            f"expected {esc(token_file)}"
        )
    say(f"  data dir            {esc(data_dir.absolute())}")
    say(f"  database            {esc(database)}")
    if s.policies_dir is not None:
        say(f"  policies            {esc(s.policies_dir)}")
        say(f"                      revision {esc(w.pdp.revision)} ({count} policies)")
    else:
        say("  policies            none (every decision is deny); use --policies DIR")
    for td in s.trust_domains:
        say(f"  trust domain        {esc(td.name)} (bundle {esc(td.source)})")
    for issuer in s.oidc_issuers:
        say(f"  oidc issuer         {esc(issuer.issuer)} ({esc(issuer.kind)})")
    if s.workload_socket is not None:
        sock, own = esc(s.workload_socket), esc(s.workload_trust_domain)
        say(f"  workload socket     {sock} (trust domain {own})")
        quoted = esc(shlex.quote(str(s.workload_socket)))
        say(f"                      warden agent-identity --socket {quoted}")
    if s.tls_cert_file is not None:
        say(f"  tls                 {esc(s.tls_cert_file)} (client certificates: x509-svids)")
    if dev:
        dd = "" if data_dir == Path(".warden") else f" --data-dir {shlex.quote(str(data_dir))}"
        if url != DEFAULT_URL:
            dd += f" --url {url}"
        agent = EXAMPLE_AGENT["name"]
        details = '[{"type":"agent_task","purpose":"summarise open tickets","category":"support"}]'
        say()
        say("[bold]Dev mode[/] — try it:")
        say(f"  export WARDEN_TOKEN=$(cat {esc(q_token)})")
        say(f"  warden agents show {agent}{esc(dd)}")
        say(f"  SVID=$(warden dev svid {agent}{esc(dd)})")
        say(
            esc(
                f"  curl -s {url}/oauth2/token \\\n"
                f"    -d grant_type={TOKEN_EXCHANGE} \\\n"
                f"    -d subject_token_type={JWT_TOKEN_TYPE} \\\n"
                '    --data-urlencode "subject_token=$SVID" \\\n'
                "    --data-urlencode 'scope=tickets.read tickets.summarise' \\\n"
                f"    --data-urlencode 'authorization_details={details}'"
            ),
        )
        say("  warden demo    (the whole story on a throw-away server)")
    say("Press Ctrl-C to stop.")
    say()


def _server_class() -> type[Any]:
    import uvicorn

    class Server(uvicorn.Server):
        """uvicorn's server, calling ``on_started`` once the sockets listen."""

        def __init__(
            self,
            config: uvicorn.Config,
            on_started: Callable[[], None],
            on_stopping: Callable[[], None] = lambda: None,
        ) -> None:
            super().__init__(config)
            self._on_started = on_started
            self._on_stopping = on_stopping

        async def startup(self, sockets: Any = None) -> None:
            await super().startup(sockets=sockets)
            if self.started:
                self._on_started()

        async def shutdown(self, sockets: Any = None) -> None:
            # end the open event streams first: uvicorn waits for every response to finish
            self._on_stopping()
            await super().shutdown(sockets=sockets)

    return Server


def serve(
    host: Annotated[
        str | None, typer.Option("--host", help="Address to bind.", show_default="127.0.0.1")
    ] = None,
    port: Annotated[
        int | None, typer.Option("--port", help="Port to listen on.", show_default="8080")
    ] = None,
    data_dir: Annotated[
        Path | None,
        typer.Option(
            "--data-dir", help="State folder (SQLite, keys, admin token).", show_default="./.warden"
        ),
    ] = None,
    database_url: Annotated[
        str | None,
        typer.Option("--database-url", help="postgresql://… (default: SQLite in the data dir)."),
    ] = None,
    policies: Annotated[
        Path | None, typer.Option("--policies", help="Policy folder to load and hot-reload.")
    ] = None,
    config: Annotated[
        Path | None, typer.Option("--config", help="YAML config file (flags and env win).")
    ] = None,
    dev: Annotated[
        bool,
        typer.Option("--dev", help="Dev trust domain, example policies and an example agent."),
    ] = False,
    workload_socket: Annotated[
        Path | None,
        typer.Option(
            "--workload-socket",
            help="Serve the local workload API on this Unix socket (process attestation).",
        ),
    ] = None,
    tls_cert: Annotated[
        Path | None, typer.Option("--tls-cert", help="Serve HTTPS with this certificate (PEM).")
    ] = None,
    tls_key: Annotated[
        Path | None, typer.Option("--tls-key", help="The private key of --tls-cert (PEM).")
    ] = None,
    tls_client_ca: Annotated[
        list[str] | None,
        typer.Option(
            "--tls-client-ca",
            help="TRUST_DOMAIN=PATH: PEM roots of that trust domain's X.509-SVIDs (repeat).",
        ),
    ] = None,
    workers: Annotated[
        int,
        typer.Option(
            "--workers",
            envvar="WARDEN_WORKERS",
            help="Server processes sharing the port, each a replica (ADR 0142).",
        ),
    ] = 1,
) -> None:
    """Run the Warden server."""
    import uvicorn

    from warden.api.app import create_app
    from warden.bootstrap import Warden
    from warden.config import load_settings
    from warden.errors import WardenError

    if config is not None and not config.is_file():
        fail(f"config file `{config}` does not exist")
    try:
        settings = load_settings(
            config,
            host=host,
            port=port,
            data_dir=data_dir,
            database_url=database_url,
            policies_dir=policies,
            workload_socket=workload_socket,
            tls_cert_file=tls_cert,
            tls_key_file=tls_key,
        )
        settings = with_client_cas(settings, tls_client_ca or [])
        if (settings.tls_cert_file is None) != (settings.tls_key_file is None):
            fail("give --tls-cert and --tls-key together")
        if dev:
            settings = apply_dev_settings(settings)
        if settings.policies_dir is not None and not settings.policies_dir.is_dir():
            fail(f"policy folder `{settings.policies_dir}` does not exist")
        if workers != 1:  # N processes, each one Warden built from these settings
            from warden.cli.workers import supervise

            raise typer.Exit(supervise(settings, dev=dev, workers=workers))
        w = Warden(settings)
    except WardenError as exc:
        fail(f"{exc.code}: {exc.message}")
    configure_logging(settings.log_level, settings.log_format)
    try:
        token_file = w.operators.bootstrap(settings.data_dir)
        if dev and seed_example_agent(w):
            log.info("registered the example agent `%s`", EXAMPLE_AGENT["name"])
        # the app's lifespan starts Warden's loops and closes everything on shutdown
        app = create_app(w)
        uv_config = uvicorn.Config(
            app,
            host=settings.host,
            port=settings.port,
            log_level="info",
            access_log=False,
            workers=1,
            **connection_options(settings),
            **tls_options(w),
        )
        server = _server_class()(
            uv_config,
            lambda: banner(w, dev=dev, token_written=token_file is not None),
            w.feed.close,
        )
        workload_server = start_workload_socket(w)
    except WardenError as exc:
        w.close()
        fail(f"{exc.code}: {exc.message}")
    except BaseException:
        w.close()
        raise
    # uvicorn shuts down gracefully on SIGINT/SIGTERM, then re-raises the signal: end quietly
    previous = signal.signal(signal.SIGTERM, _stopped)
    try:
        server.run()
    except (KeyboardInterrupt, _StoppedError):
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        if workload_server is not None:
            workload_server.stop()
    if w.writer.unwritten:  # logged by the writer with the exact count (ADR 0090)
        err_console.print(
            f"Warden stopped with {w.writer.unwritten} audit record(s) not written.", markup=False
        )
        raise typer.Exit(1)
    if server.started:
        console.print("Warden stopped.")
    else:
        raise typer.Exit(1)


class _StoppedError(Exception):
    """SIGTERM after uvicorn's graceful shutdown."""


def _stopped(signum: int, frame: Any) -> None:
    raise _StoppedError()


def with_client_cas(settings: Settings, values: list[str]) -> Settings:
    """Apply ``--tls-client-ca TD=PATH``: PEM roots for that trust domain's X.509-SVIDs."""
    from warden.config import TrustDomainConfig

    domains = {td.name: td for td in settings.trust_domains}
    for value in values:
        name, sep, path = value.partition("=")
        if not sep or not name or not path:
            fail(f"--tls-client-ca `{value}`: use TRUST_DOMAIN=PATH")
        current = domains.get(name) or TrustDomainConfig(name)
        domains[name] = replace(current, x509_bundle_file=Path(path))
    return replace(settings, trust_domains=tuple(domains.values()))


def connection_options(settings: Settings) -> dict[str, Any]:
    """uvicorn options bounding slow and surplus clients (ADR 0095): Warden's protocol class
    enforces the header and body deadlines and the connection cap; uvicorn the keep-alive."""
    from warden.api.transport import ConnectionLimits, protocol_class, raise_file_limit

    raise_file_limit(settings.max_connections)
    limits = ConnectionLimits(
        header_timeout=settings.header_timeout,
        body_timeout=settings.body_timeout,
        max_connections=settings.max_connections,
    )
    return {"http": protocol_class(limits), "timeout_keep_alive": settings.keep_alive_timeout}


def tls_options(w: Warden) -> dict[str, Any]:
    """uvicorn TLS options: the server pair, and every trust domain's X.509 roots as client CAs.

    Client certificates are optional at the TLS layer (``CERT_OPTIONAL``) so clients using other
    attestation methods still connect; a presented certificate must chain to one of the roots
    (the handshake fails otherwise) and the token endpoint re-checks it against its own trust
    domain. The roots are read at start: restart to pick up a root a bundle endpoint adds later.
    """
    import ssl

    from cryptography.hazmat.primitives.serialization import Encoding

    s = w.settings
    if s.tls_cert_file is None or s.tls_key_file is None:
        return {}
    options: dict[str, Any] = {
        "ssl_certfile": str(s.tls_cert_file),
        "ssl_keyfile": str(s.tls_key_file),
    }
    roots = w.attestation.x509.roots() if w.attestation.x509 is not None else []
    if roots:
        ca_file = s.data_dir / "tls-client-ca.pem"
        ca_file.write_bytes(b"".join(r.public_bytes(Encoding.PEM) for r in roots))
        options.update(ssl_ca_certs=str(ca_file), ssl_cert_reqs=ssl.CERT_OPTIONAL)
    return options


class WorkloadSocketServer:
    """The workload API on a Unix socket: uvicorn in a thread of its own (no signal handling)."""

    def __init__(self, w: Warden, path: Path) -> None:
        import threading

        import uvicorn

        from warden.api.transport import protocol_class
        from warden.api.workload import create_workload_app

        self.path = path
        if path.is_socket():
            path.unlink()  # a stale socket from a previous run
        elif path.exists():
            fail(f"--workload-socket `{path}` exists and is not a socket")
        config = uvicorn.Config(
            create_workload_app(w),
            uds=str(path),
            log_level="warning",
            access_log=False,
            http=protocol_class(),
            lifespan="off",
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, name="warden-workload", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(10)
        try:
            self.path.unlink(missing_ok=True)
        except OSError as exc:  # e.g. a read-only disk: shutting down must still finish
            log.warning("cannot remove the workload socket %s: %s", self.path, exc)


def start_workload_socket(w: Warden) -> WorkloadSocketServer | None:
    path = w.settings.workload_socket
    if path is None:
        return None
    if len(str(path.absolute())) >= MAX_SOCKET_PATH:
        fail(f"--workload-socket `{path}` is too long for a unix socket path")
    path.parent.mkdir(parents=True, exist_ok=True)
    return WorkloadSocketServer(w, path)

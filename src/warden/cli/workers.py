"""``warden serve --workers N``: N server processes on one listening socket (ADR 0142).

Python runs one decision at a time per process (the GIL), so a second core needs a second
process. Each worker is a full Warden replica — its own memory state, policy engine and audit
writer, following the others through the change feed (PostgreSQL LISTEN/NOTIFY, or SQLite's
polled ``change_log``) exactly as replicas on several hosts do — and all of them accept from the
one socket the supervisor bound (a worker busy deciding does not accept, so the idle one gets
the next connection).

The supervisor (this module's ``supervise``) binds the socket, starts worker 0 and waits until it
listens: worker 0 migrates the database, writes the admin token and seeds the dev agent, so the
others start on a ready database; the ``workers`` line is printed once every worker listens.
Worker 0 is the *primary*: only it runs the once-per-host chores (housekeeping, governance
reminders, checkpoints, export, Shared Signals push) and the workload socket. If any worker
exits, the supervisor stops the rest and exits non-zero: a half-running server would hide the
failure from whatever restarts it. SIGINT/SIGTERM stop every worker gracefully.
"""

from __future__ import annotations

import logging
import multiprocessing
import signal
import socket
import sys
import time
from typing import TYPE_CHECKING, Any

from warden.cli.output import console

if TYPE_CHECKING:
    from multiprocessing.process import BaseProcess
    from multiprocessing.synchronize import Event

    from warden.config import Settings

log = logging.getLogger("warden.cli")

__all__ = ["MAX_WORKERS", "supervise"]

MAX_WORKERS = 64
READY_TIMEOUT = 600.0  # a big world loads for minutes; worker 0 must listen before the rest start
STOP_GRACE = 20.0


def run_worker(
    settings: Settings, dev: bool, index: int, sock: socket.socket, ready: Event
) -> None:
    """One worker process: a Warden replica serving on the inherited socket."""
    import uvicorn

    from warden.api.app import create_app
    from warden.bootstrap import Warden
    from warden.cli.serve import (
        EXAMPLE_AGENT,
        _server_class,
        banner,
        connection_options,
        seed_example_agent,
        start_workload_socket,
        tls_options,
    )
    from warden.errors import WardenError
    from warden.service.events import configure_logging

    primary = index == 0
    configure_logging(settings.log_level, settings.log_format)
    try:
        w = Warden(settings, primary=primary)
    except WardenError as exc:
        log.error("worker %d: %s: %s", index, exc.code, exc.message)
        sys.exit(1)
    workload = None
    try:
        token_file = w.operators.bootstrap(settings.data_dir) if primary else None
        if primary and dev and seed_example_agent(w):
            log.info("registered the example agent `%s`", EXAMPLE_AGENT["name"])
        uv_config = uvicorn.Config(
            create_app(w),
            log_level="info" if primary else "warning",
            access_log=False,
            **connection_options(settings),  # the slow-client bounds, per worker
            **tls_options(w),
        )

        def started() -> None:
            if primary:
                banner(w, dev=dev, token_written=token_file is not None)
            ready.set()

        server = _server_class()(uv_config, started, w.feed.close)
        workload = start_workload_socket(w) if primary else None
    except BaseException:
        w.close()
        raise
    try:
        server.run(sockets=[sock])  # uvicorn handles SIGINT/SIGTERM: graceful shutdown
    except KeyboardInterrupt:
        pass
    finally:
        if workload is not None:
            workload.stop()
    sys.exit(0 if server.started else 1)


def _listen(host: str, port: int) -> socket.socket:
    """The listening socket every worker accepts from."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise OSError(f"cannot listen on {host}:{port}: {exc.strerror}") from exc
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


class _StopError(Exception):
    """SIGTERM or SIGINT reached the supervisor."""


def _on_signal(signum: int, frame: Any) -> None:
    raise _StopError()


def supervise(settings: Settings, *, dev: bool, workers: int) -> int:
    """Run ``workers`` worker processes until a signal or a worker's exit; the exit code."""
    from warden.cli.output import fail
    from warden.service.events import configure_logging

    if not 2 <= workers <= MAX_WORKERS:
        fail(f"--workers must be between 1 and {MAX_WORKERS}, not {workers}")
    configure_logging(settings.log_level, settings.log_format)
    try:
        sock = _listen(settings.host, settings.port)
    except OSError as exc:
        fail(str(exc))
    ctx = multiprocessing.get_context("spawn")  # a fresh interpreter: no threads, no connections
    procs: list[BaseProcess] = []
    readies: list[Event] = []
    previous = {s: signal.signal(s, _on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    code = 0
    try:
        for index in range(workers):
            ready = ctx.Event()
            proc = ctx.Process(
                target=run_worker,
                args=(settings, dev, index, sock, ready),
                name=f"warden-worker-{index}",
                daemon=False,
            )
            proc.start()
            procs.append(proc)
            readies.append(ready)
            if index == 0 and not _wait_ready(proc, ready):
                return 1
        for later, ready in zip(procs[1:], readies[1:], strict=True):
            if not _wait_ready(later, ready):
                return 1
        console.print(
            f"  workers             {workers} processes "
            f"(pids {', '.join(str(p.pid) for p in procs)}), one socket"
        )
        sys.stdout.flush()
        while True:
            for worker in procs:
                if not worker.is_alive():
                    log.error(
                        "%s exited (code %s): stopping the others", worker.name, worker.exitcode
                    )
                    code = 1
                    return code
            time.sleep(0.2)
    except _StopError:
        return code
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        _stop_all(procs)
        sock.close()


def _wait_ready(proc: BaseProcess, ready: Event) -> bool:
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if ready.wait(0.2):
            return True
        if not proc.is_alive():
            log.error("%s failed to start (code %s)", proc.name, proc.exitcode)
            return False
    log.error("%s did not start listening within %.0f s", proc.name, READY_TIMEOUT)
    return False


def _stop_all(procs: list[BaseProcess]) -> None:
    for proc in procs:
        if proc.is_alive() and proc.pid is not None:
            proc.terminate()  # SIGTERM: uvicorn shuts down gracefully, Warden closes
    deadline = time.monotonic() + STOP_GRACE
    for proc in procs:
        proc.join(max(0.1, deadline - time.monotonic()))
        if proc.is_alive():
            proc.kill()
            proc.join(5)

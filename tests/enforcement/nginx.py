"""A real nginx (Debian's package) on loopback, in front of a small upstream, asking Warden's
forward-auth endpoint before every request (``auth_request``)."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from warden.demo.server import free_port

NGINX_CANDIDATES = ("nginx", "/usr/sbin/nginx")


def find_nginx() -> str | None:
    for candidate in NGINX_CANDIDATES:
        found = shutil.which(candidate)
        if found:
            return found
    return None


def ensure_nginx() -> str:
    """nginx, installing Debian's package when missing and allowed (root with apt-get)."""
    found = find_nginx()
    if found:
        return found
    if os.geteuid() == 0 and shutil.which("apt-get"):
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(
            ["apt-get", "install", "-y", "--no-install-recommends", "nginx"],
            env=env,
            capture_output=True,
            timeout=600,
            check=False,
        )
        found = find_nginx()
        if found:
            return found
    pytest.skip("nginx is not installed and could not be installed (needs root and apt-get)")


class _Echo(BaseHTTPRequestHandler):
    """The upstream API: answers with what reached it (so tests see nginx's headers)."""

    def _answer(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        if length:
            self.rfile.read(length)
        body = json.dumps(
            {
                "method": self.command,
                "path": self.path,
                "agent": self.headers.get("x-warden-agent"),
                "task": self.headers.get("x-warden-task"),
                "decision": self.headers.get("x-warden-decision"),
                "authorization": self.headers.get("authorization"),
            }
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_DELETE = do_PUT = _answer  # noqa: N815 - http.server's names

    def log_message(self, *args: object) -> None:
        pass


NGINX_CONF = """
worker_processes 1;
daemon off;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 64; }}
http {{
  access_log off;
  client_body_temp_path {prefix}/body;
  proxy_temp_path {prefix}/proxy;
  fastcgi_temp_path {prefix}/fastcgi;
  uwsgi_temp_path {prefix}/uwsgi;
  scgi_temp_path {prefix}/scgi;
  server {{
    listen 127.0.0.1:{port};
    location / {{
      auth_request /_warden;
      auth_request_set $warden_agent $upstream_http_x_warden_agent;
      auth_request_set $warden_task $upstream_http_x_warden_task;
      auth_request_set $warden_decision $upstream_http_x_warden_decision;
      proxy_set_header X-Warden-Agent $warden_agent;
      proxy_set_header X-Warden-Task $warden_task;
      proxy_set_header X-Warden-Decision $warden_decision;
      proxy_set_header Authorization "";
      proxy_pass http://127.0.0.1:{upstream};
    }}
    location = /_warden {{
      internal;
      proxy_pass {warden}/v1/forward-auth;
      proxy_pass_request_body off;
      proxy_set_header Content-Length "";
      proxy_set_header X-Original-Method $request_method;
      proxy_set_header X-Original-URI $request_uri;
      proxy_set_header X-Forwarded-Host $host;
      proxy_set_header X-Forwarded-Proto $scheme;
    }}
  }}
}}
"""


def _wait_port(port: int, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"nginx exited: {log.read_text(errors='replace')[-2000:]}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError("nginx did not start listening")


@contextmanager
def nginx_in_front(warden_url: str, workdir: Path) -> Iterator[str]:
    """nginx → (auth_request → Warden) → echo upstream; yields nginx's base URL."""
    binary = ensure_nginx()
    upstream = ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    threading.Thread(target=upstream.serve_forever, daemon=True).start()
    prefix = workdir / "nginx"
    prefix.mkdir()
    port = free_port()
    conf = prefix / "nginx.conf"
    conf.write_text(
        NGINX_CONF.format(
            prefix=prefix, port=port, upstream=upstream.server_address[1], warden=warden_url
        )
    )
    log = prefix / "stderr.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [binary, "-p", str(prefix), "-c", str(conf)], stdout=out, stderr=subprocess.STDOUT
        )
    try:
        _wait_port(port, proc, log)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()  # SIGTERM: nginx's fast shutdown
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        upstream.shutdown()
        upstream.server_close()

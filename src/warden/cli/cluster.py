"""Several real ``warden serve`` replicas on one PostgreSQL, on this machine.

Used by the demo, the P5 benchmark and the replica tests. ``temporary_schema`` gives a fresh
PostgreSQL schema (dropped afterwards) so a run never touches anything else in the database;
``local_cluster`` starts N replicas on it, sharing one data folder (the operator token, the
dev trust domain, and the key-encryption key that unseals the signing keys in the database),
each on its own loopback port, and stops them all afterwards.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from warden.cli.client import admin_token_path
from warden.demo.server import ServerProcess, free_port, server_command

# PostgreSQL itself is spoken to by the storage layer only (ADR 0153); re-exported for the
# tests, benchmarks and demo that take them from here
from warden.storage.postgres_admin import postgres_unreachable, temporary_schema

__all__ = [
    "DEFAULT_PG_URL",
    "Cluster",
    "ReplicaClient",
    "dev_svid",
    "local_cluster",
    "postgres_unreachable",
    "postgres_url",
    "replica_command",
    "temporary_schema",
]

DEFAULT_PG_URL = "postgresql://postgres@127.0.0.1:5432/test"


def postgres_url() -> str:
    return os.environ.get("WARDEN_TEST_DATABASE_URL", DEFAULT_PG_URL)


@dataclass
class Cluster:
    replicas: list[ServerProcess]
    data_dir: Path
    database_url: str

    @property
    def admin_token(self) -> str:
        return admin_token_path(self.data_dir).read_text().strip()

    @property
    def urls(self) -> list[str]:
        return [r.url for r in self.replicas]


def replica_command(port: int, data_dir: Path, database_url: str, config: Path) -> list[str]:
    return [
        *server_command(port, data_dir),
        "--database-url",
        database_url,
        "--config",
        str(config),
    ]


def _start(
    index: int, port: int, data_dir: Path, database_url: str, config: Path, env: dict[str, str]
) -> ServerProcess:
    log_file = data_dir / f"replica-{index}.log"
    with log_file.open("wb") as log:
        process = subprocess.Popen(  # noqa: S603  (our own interpreter and module)
            replica_command(port, data_dir, database_url, config),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            cwd=data_dir,
            start_new_session=True,
        )
    return ServerProcess(process, f"http://127.0.0.1:{port}", data_dir, log_file)


@contextmanager
def local_cluster(
    database_url: str,
    data_dir: Path,
    *,
    replicas: int = 2,
    config: dict[str, Any] | None = None,
    ready_timeout: float = 40.0,
) -> Iterator[Cluster]:
    """Start ``replicas`` servers on ``database_url`` (see the module docstring).

    Replicas must agree on the issuer (the public URL behind the load balancer): unless
    ``config`` names one, it is the first replica's URL.
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    config = dict(config or {})
    server_section = dict(config.get("server") or {})
    ports = [free_port() for _ in range(replicas)]
    server_section.setdefault("issuer", f"http://127.0.0.1:{ports[0]}")
    config["server"] = server_section
    config_file = data_dir / "cluster.yaml"
    config_file.write_text(yaml.safe_dump(config))
    env = {k: v for k, v in os.environ.items() if not k.startswith("WARDEN_")}
    started: list[ServerProcess] = []
    try:
        # the first one alone: it creates the schema, the operator, the dev trust domain, the keys
        started.append(_start(0, ports[0], data_dir, database_url, config_file, env))
        started[0].wait_ready(ready_timeout)
        for index in range(1, replicas):
            started.append(_start(index, ports[index], data_dir, database_url, config_file, env))
        for replica in started[1:]:
            replica.wait_ready(ready_timeout)
        yield Cluster(started, data_dir, database_url)
    finally:
        for replica in started:
            replica.stop()


class ReplicaClient:
    """Plain HTTP calls against one replica (for the demo, the benchmark and tests)."""

    def __init__(self, url: str, admin_token: str, *, timeout: float = 10.0) -> None:
        import httpx

        self.url = url
        self.admin = {"Authorization": f"Bearer {admin_token}"}
        self.http = httpx.Client(base_url=url, timeout=timeout)

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> ReplicaClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def register(self, name: str, entitlements: list[str], **extra: Any) -> dict[str, Any]:
        body = {
            "name": name,
            "owner": "alice@example.com",
            "purpose": f"{name} (replica demo)",
            "risk_tier": "medium",
            "entitlements": entitlements,
            "groups": ["support"],
            **extra,
        }
        r = self.http.post("/v1/agents", json=body, headers=self.admin)
        r.raise_for_status()
        out: dict[str, Any] = r.json()
        return out

    def start_task(
        self, svid: str, scope: str, *, purpose: str = "replica work", **form: str
    ) -> dict[str, Any]:
        import json

        from warden.cli.dev import JWT_TOKEN_TYPE, TOKEN_EXCHANGE

        data = {
            "grant_type": TOKEN_EXCHANGE,
            "subject_token": svid,
            "subject_token_type": JWT_TOKEN_TYPE,
            "scope": scope,
            "authorization_details": json.dumps(
                [{"type": "agent_task", "purpose": purpose, "category": "support"}]
            ),
            **form,
        }
        r = self.http.post("/oauth2/token", data=data)
        if r.status_code != 200:
            raise RuntimeError(f"token exchange failed: {r.status_code} {r.text[:300]}")
        out: dict[str, Any] = r.json()
        return out

    def allowed(
        self,
        spiffe_id: str,
        token: str,
        tool: str,
        *,
        context: dict[str, Any] | None = None,
        dpop: str | None = None,
    ) -> bool:
        """One AuthZEN evaluation in agent mode; True for an allow."""
        properties: dict[str, Any] = {"token": token}
        if dpop is not None:
            properties["dpop"] = dpop
        body = {
            "subject": {"type": "agent", "id": spiffe_id, "properties": properties},
            "action": {"name": "tools/call"},
            "resource": {"type": "tool", "id": tool},
            "context": context or {},
        }
        r = self.http.post("/access/v1/evaluation", json=body)
        r.raise_for_status()
        return bool(r.json()["decision"])

    def admin_post(self, path: str, body: Any = None) -> dict[str, Any]:
        r = self.http.post(path, json=body if body is not None else {}, headers=self.admin)
        r.raise_for_status()
        out: dict[str, Any] = r.json() if r.content else {}
        return out

    def admin_get(self, path: str) -> dict[str, Any]:
        r = self.http.get(path, headers=self.admin)
        r.raise_for_status()
        out: dict[str, Any] = r.json()
        return out


def dev_svid(data_dir: Path, agent: str, *, ttl: float = 600, **claims: Any) -> str:
    """A JWT-SVID for ``agent`` from the dev trust domain the replicas share."""
    from warden.cli.dev import DEV_TRUST_DOMAIN, dev_trust_dir
    from warden.tokens.svid import DevTrustDomain

    domain = DevTrustDomain.load(DEV_TRUST_DOMAIN, dev_trust_dir(data_dir))
    return domain.mint(
        f"spiffe://{DEV_TRUST_DOMAIN}/agent/{agent}", "warden", ttl=ttl, extra_claims=claims or None
    )

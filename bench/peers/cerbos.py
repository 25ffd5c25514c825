"""Cerbos (a Go PDP) as a server process: the binary from npm, a generated config and policy.

``make bench-peers`` installs ``@cerbos/cerbos-linux-x64`` (which ships the binary) under
``.venv-peers/cerbos``. ``CerbosServe`` writes the resource policy for one rule set to a disk
store, a config listening on 127.0.0.1 (HTTP and gRPC on free ports, audit and telemetry off,
no file watching) and runs ``cerbos server``; it is ready when ``/_cerbos/health`` answers.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from bench import _common as c
from bench._serve import ServerProcess
from bench.peers import rules as r

REPO = Path(__file__).resolve().parents[2]
BINARY = REPO / ".venv-peers/cerbos/node_modules/@cerbos/cerbos-linux-x64/cerbos-linux-x64"


class CerbosServe(ServerProcess):
    health = "/_cerbos/health"
    name = "cerbos"

    def __init__(self, binary: Path, root: Path, rules: r.RuleSet, *, cpu: int = -1) -> None:
        super().__init__(root, cpu=cpu, timeout=120)
        self.binary = binary.resolve()
        policies = root / "cerbos-policies"
        policies.mkdir(parents=True, exist_ok=True)
        (policies / "tool.yaml").write_text(r.cerbos_policy(rules))
        self.config = root / "cerbos.yaml"
        self.config.write_text(
            json.dumps(  # JSON is YAML
                {
                    "server": {
                        "httpListenAddr": f"127.0.0.1:{self.port}",
                        "grpcListenAddr": f"127.0.0.1:{c.free_port()}",
                    },
                    "storage": {
                        "driver": "disk",
                        "disk": {"directory": str(policies), "watchForChanges": False},
                    },
                    "audit": {"enabled": False},
                    "telemetry": {"disabled": True},
                }
            )
        )

    def command(self) -> list[str]:
        return [str(self.binary), "server", f"--config={self.config}", "--log-level=warn"]

    def env(self) -> dict[str, str]:
        return {**os.environ, "CERBOS_NO_TELEMETRY": "1"}


def version(binary: Path) -> str:
    import subprocess

    try:
        out = subprocess.run(
            [str(binary), "--version"], capture_output=True, text=True, timeout=30, check=False
        ).stdout
    except OSError as exc:
        return f"unavailable ({exc})"
    return out.split()[0] if out.split() else "unknown"

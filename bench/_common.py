"""Shared helpers for the benchmarks: machine line, percentiles, interleaved timing, fixtures.

Nothing here asserts: benchmarks print what they measured. Every helper that creates a process
or a temporary folder also removes it (context managers / ``close``).
"""

from __future__ import annotations

import contextlib
import gc
import json
import math
import os
import platform
import shutil
import socket
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

QUICK = False  # set by bench.__main__ (--quick)
PROFILE = False  # set by bench.__main__ (--profile)

TRUST_DOMAIN = "example.org"
SVID_AUDIENCE = "warden"
TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"  # noqa: S105 - a URN
JWT_TYPE = "urn:ietf:params:oauth:token-type:jwt"


# =========================================================================== machine


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "absent"


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def usable_cpus() -> list[int]:
    try:
        return sorted(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return list(range(os.cpu_count() or 1))


def cpu_split() -> tuple[int, int]:
    """(server cpu, client cpu) for the HTTP benchmarks: the first two usable cores, or
    (-1, -1) (not pinned) on a one-core machine."""
    cpus = usable_cpus()
    return (cpus[0], cpus[1]) if len(cpus) >= 2 else (-1, -1)


def machine_line() -> str:
    return (
        f"machine: cpu={cpu_model()!r} cores={os.cpu_count()} usable={len(usable_cpus())} "
        f"python={platform.python_version()} cedarpy={_version('cedarpy')} "
        f"cryptography={_version('cryptography')} uvicorn={_version('uvicorn')} "
        f"uvloop={_version('uvloop')} httptools={_version('httptools')} "
        f"fastapi={_version('fastapi')} starlette={_version('starlette')}"
    )


# =========================================================================== statistics


def percentile(samples: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of unsorted ``samples``."""
    if not samples:
        return math.nan
    ordered = sorted(samples)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return float(ordered[min(rank, len(ordered)) - 1])


@dataclass(frozen=True)
class Summary:
    n: int
    p50: float  # µs
    p99: float
    mean: float

    def line(self, name: str) -> str:
        return (
            f"  {name:<34} n={self.n:<6} p50={self.p50:8.1f} µs  p99={self.p99:8.1f} µs  "
            f"mean={self.mean:8.1f} µs"
        )


def summarize(samples_ns: Sequence[int]) -> Summary:
    us = [s / 1000 for s in samples_ns]
    return Summary(len(us), percentile(us, 50), percentile(us, 99), statistics.fmean(us))


def ratio(a: float, b: float) -> float:
    return a / b if b else math.inf


# =========================================================================== timing


Op = Callable[[int], Any]


def interleave(
    ops: Sequence[tuple[str, Op]], *, batches: int, batch: int, warmup: int
) -> dict[str, list[int]]:
    """Time each op call by call (ns), alternating batches so noise hits every op alike.

    Each op is called with its own running call index (0, 1, 2, … including warm-up), so an
    op can consume pre-built inputs (a fresh token per call). Warm-up calls are not recorded.
    The order of the ops is reversed every other batch. A full collection runs before timing;
    the collector stays enabled (it is part of the real cost).
    """
    counters = dict.fromkeys((name for name, _ in ops), 0)
    for name, fn in ops:
        for _ in range(warmup):
            fn(counters[name])
            counters[name] += 1
    gc.collect()
    samples: dict[str, list[int]] = {name: [] for name, _ in ops}
    clock = time.perf_counter_ns
    for b in range(batches):
        order = ops if b % 2 == 0 else list(reversed(ops))
        for name, fn in order:
            out = samples[name]
            i = counters[name]
            for _ in range(batch):
                t0 = clock()
                fn(i)
                out.append(clock() - t0)
                i += 1
            counters[name] = i
    return samples


def profile(label: str, fn: Op, n: int, *, top: int = 25) -> None:
    """With ``--profile``: run ``fn`` ``n`` times under cProfile and print the top functions
    by own time (cProfile inflates pure-Python calls; read it for where, not how much)."""
    if not PROFILE:
        return
    import cProfile
    import io
    import pstats

    prof = cProfile.Profile()
    prof.enable()
    for i in range(n):
        fn(i)
    prof.disable()
    out = io.StringIO()
    pstats.Stats(prof, stream=out).sort_stats("tottime").print_stats(top)
    print(f"  --profile: {label}, {n} calls, top {top} by own time")
    for line in out.getvalue().splitlines():
        if line.strip():
            print(f"    {line}")


def sizes(full: tuple[int, int, int], quick: tuple[int, int, int]) -> tuple[int, int, int]:
    """(batches, batch, warmup) for the current mode."""
    return quick if QUICK else full


# =========================================================================== temp + processes


@contextlib.contextmanager
def temp_dir(prefix: str) -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix=f"warden-bench-{prefix}-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def proc_status(pid: int) -> dict[str, str]:
    out: dict[str, str] = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            out[key] = value.strip()
    except OSError:
        pass
    return out


def proc_cpu_seconds(pid: int) -> float:
    """utime + stime of a process (all threads), in seconds."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return math.nan
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def kib(value: str) -> float:
    """'123456 kB' -> MB (MiB)."""
    return int(value.split()[0]) / 1024 if value else math.nan


# =========================================================================== policies

# The request every in-process benchmark makes: tool `tickets.read` by an agent in group
# `support`. Every policy below is in the slice of that request, so the bare cedarpy
# denominator evaluates exactly the policies Warden evaluates.
AGENT_POLICIES = """\
// bench: agent-mode policies; all four are in the slice of the measured request.

@id("support-read")
permit (
  principal in Group::"support",
  action in [Action::"tickets.read", Action::"tickets.summarise"],
  resource
);

@id("support-tools")
permit (principal, action == Action::"tickets.read", resource is Tool)
when {
  context.warden.task.category == "support" &&
  context.warden.scope.contains("tickets.read") &&
  principal.risk_tier == "medium"
};

@id("no-bulk-reads")
forbid (principal, action, resource)
when { context has arguments && context.arguments has limit && context.arguments.limit > 500 };

@id("active-only")
forbid (principal, action, resource)
unless { principal.status == "active" };
"""

AGENT_ENTITIES = [{"uid": {"type": "Group", "id": "support"}, "attrs": {}, "parents": []}]

AGENT_BODY: dict[str, Any] = {
    "name": "support-bot",
    "owner": "alice@example.com",
    "purpose": "summarise support tickets",
    "risk_tier": "medium",
    "entitlements": ["tickets.read", "tickets.summarise", "email.send"],
    "groups": ["support"],
}
TASK_SCOPE = "tickets.read tickets.summarise"
PEP_CONTEXT: dict[str, Any] = {"arguments": {"ticket": "T-1001", "limit": 20}}
TOOL = "tickets.read"


def write_agent_policies(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "agents.cedar").write_text(AGENT_POLICIES)
    (folder / "entities.json").write_text(json.dumps(AGENT_ENTITIES))
    return folder


def agent_name(i: int) -> str:
    return f"agent{i:05d}"


def agent_spiffe(i: int) -> str:
    return f"spiffe://{TRUST_DOMAIN}/agent/{agent_name(i)}"


def tool_name(j: int) -> str:
    return f"tool{j}.call"


def group_name(k: int) -> str:
    return f"team{k}"


N_GROUPS = 50


def write_scale_policies(
    folder: Path, n_policies: int, *, n_agents: int | None = None, per_file: int = 1000
) -> dict[str, int]:
    """A realistic policy folder of exactly ``n_policies`` policies (performance.md §3 T3).

    * 1 global forbid (context guard) — in every slice;
    * ``n // 10`` per-tool permits: ``principal in Group::"team<j % 50>"`` on tool ``j``;
    * the rest are per-agent permits ``principal == Agent::…`` on one tool each, ``tools per
      agent`` = 10 unless ``n_agents`` spreads them thinner.

    Agent 0 (in group team0) calling tool 0 matches exactly three policies at every size.
    """
    folder.mkdir(parents=True, exist_ok=True)
    n_tool_permits = max(1, n_policies // 10)
    n_agent_permits = n_policies - 1 - n_tool_permits
    n_tools = max(10, n_tool_permits)
    if n_agents is None:
        per_agent = 10
        n_agents = math.ceil(n_agent_permits / per_agent)
    else:
        per_agent = max(1, math.ceil(n_agent_permits / n_agents))
    texts = [
        '@id("global-amount-guard")\n'
        "forbid (principal, action, resource)\n"
        "when { context has arguments && context.arguments has amount && "
        "context.arguments.amount > 1000 };\n"
    ]
    for j in range(n_tool_permits):
        tool = tool_name(j)
        texts.append(
            f'permit (principal in Group::"{group_name(j % N_GROUPS)}", '
            f'action == Action::"{tool}", resource == Tool::"{tool}")\n'
            'when { context.warden.task.category == "support" };\n'
        )
    for idx in range(n_agent_permits):
        agent = idx // per_agent
        tool = tool_name((agent + idx % per_agent) % n_tools)
        texts.append(
            f'permit (principal == Agent::"{agent_spiffe(agent)}", '
            f'action == Action::"{tool}", resource)\n'
            f'when {{ context.warden.scope.contains("{tool}") }};\n'
        )
    for start in range(0, len(texts), per_file):
        chunk = texts[start : start + per_file]
        (folder / f"p{start // per_file:04d}.cedar").write_text("\n".join(chunk))
    groups = [
        {"uid": {"type": "Group", "id": group_name(k)}, "attrs": {}, "parents": []}
        for k in range(N_GROUPS)
    ]
    (folder / "entities.json").write_text(json.dumps(groups))
    return {"policies": len(texts), "agents": n_agents, "tools": n_tools}


# =========================================================================== Warden fixture


@dataclass
class AgentWorld:
    """One Warden with one registered agent and one started task (a live credential)."""

    warden: Any  # warden.bootstrap.Warden
    trust: Any  # warden.tokens.svid.DevTrustDomain
    agent: Any  # warden.core.model.Agent
    token: str
    task_id: str
    started: bool

    def evaluation(self, token: str | None = None) -> Any:
        from warden.authz.authzen import ActionInput, EntityInput, EvaluationInput

        return EvaluationInput(
            subject=EntityInput("agent", self.agent.spiffe_id, {"token": token or self.token}),
            action=ActionInput("tools/call"),
            resource=EntityInput("tool", TOOL),
            context=PEP_CONTEXT,
        )

    def issue_tokens(self, n: int) -> list[str]:
        """``n`` fresh credentials for the same task (same claims shape as the exchange's)."""
        w = self.warden
        task = w.state.tasks[self.task_id]
        cred = w.verifier.verify(self.token)
        return [
            w.issuer.issue(
                subject=cred.subject,
                audience=cred.audience,
                task_id=task.id,
                scope=sorted(cred.scope),
                ttl=w.settings.credential_ttl,
                not_after=task.expires_at,
            ).token
            for _ in range(n)
        ]

    def close(self) -> None:
        self.warden.close()


def open_warden(root: Path, policies: Path) -> tuple[Any, Any]:
    """(Warden, DevTrustDomain): Warden built like ``warden serve`` builds it (SQLite in
    ``root``), trusting a dev SPIFFE trust domain; background loops not started yet."""
    from warden.bootstrap import Warden
    from warden.config import Settings, TrustDomainConfig
    from warden.tokens.svid import DevTrustDomain

    trust = DevTrustDomain.create(TRUST_DOMAIN, root / "trust")
    settings = Settings(
        data_dir=root / "data",
        policies_dir=policies,
        trust_domains=(TrustDomainConfig(TRUST_DOMAIN, trust.bundle_path),),
        svid_audience=SVID_AUDIENCE,
        # P16 compares audit durability modes and databases (bench/p16_durable_audit.py)
        audit_durability=os.environ.get("BENCH_AUDIT_DURABILITY", "durable"),
        database_url=os.environ.get("BENCH_DATABASE_URL") or None,
    )
    return Warden(settings), trust


def start_task(w: Any, trust: Any, body: dict[str, Any], scope: str) -> tuple[Any, str, str]:
    """Register the agent ``body`` and start a task with ``scope`` through the token exchange:
    (agent, task credential, task id)."""
    agent = w.agents.register(dict(body), "bench")
    svid = trust.mint(agent.spiffe_id, SVID_AUDIENCE, ttl=3600)
    form = {
        "grant_type": [TOKEN_EXCHANGE],
        "subject_token": [svid],
        "subject_token_type": [JWT_TYPE],
        "scope": [scope],
        "authorization_details": [
            json.dumps([{"type": "agent_task", "purpose": "triage", "category": "support"}])
        ],
    }
    from warden.api.oauth_requests import exchange

    answer = exchange(w.tasks, w.credentials, form)
    return agent, answer["access_token"], answer["task_id"]


def make_agent_world(root: Path, *, policies: Path | None = None, start: bool = True) -> AgentWorld:
    """Build Warden like ``warden serve`` does (SQLite in ``root``), register the agent, start a
    task through the token exchange. ``start`` runs the background loops (audit writer thread,
    policy watcher, expiry sweeper) as in production."""
    w, trust = open_warden(root, policies or write_agent_policies(root / "policies"))
    try:
        agent, token, task_id = start_task(w, trust, AGENT_BODY, TASK_SCOPE)
        if start:
            w.start()
    except BaseException:
        w.close()
        raise
    return AgentWorld(w, trust, agent, token, task_id, start)


def capture_cedar_request(world: AgentWorld, ev: Any) -> tuple[Any, Any]:
    """Run one decision and return (the AuthzRequest the PDP saw, the Outcome)."""
    pdp = world.warden.pdp
    seen: list[Any] = []
    original = pdp.evaluate

    def spy(request: Any) -> Any:
        seen.append(request)
        return original(request)

    pdp.evaluate = spy
    try:
        outcome = world.warden.decisions.evaluate(ev)
    finally:
        del pdp.evaluate  # back to the class method
    return (seen[0] if seen else None), outcome


@dataclass
class BareCedar:
    """The denominator: ``cedarpy.is_authorized`` with pre-parsed handles and dict EUIDs."""

    request: dict[str, Any]
    policies: Any
    entities: Any
    n_policies: int

    def __call__(self, _i: int = 0) -> Any:
        import cedarpy

        return cedarpy.is_authorized(self.request, self.policies, self.entities)


def bare_cedar_for(req: Any, policy_text: str, base_entities: list[dict[str, Any]]) -> BareCedar:
    """A bare cedarpy call on the same principal/action/resource/context and entities as the
    Warden AuthzRequest ``req`` (principal attributes and parents included)."""
    import cedarpy
    import orjson

    principal = {
        "uid": {"type": req.principal.type, "id": req.principal.id},
        "attrs": dict(req.principal_attrs or {}),
        "parents": [{"type": p.type, "id": p.id} for p in req.principal_parents],
    }
    entities = [*base_entities, principal]
    request = {
        "principal": {"type": req.principal.type, "id": req.principal.id},
        "action": {"type": "Action", "id": req.action},
        "resource": {"type": req.resource.type, "id": req.resource.id},
        "context": json.loads(json.dumps(req.context)),
    }
    ps = cedarpy.PolicySet.from_str(policy_text)
    ents = cedarpy.Entities.from_json_str(json.dumps(entities))
    n = len(orjson.loads(cedarpy.policies_to_json_str(policy_text))["staticPolicies"])
    return BareCedar(request, ps, ents, n)


def slice_size(lps: Any, req: Any) -> str:
    """``"<slice> of <all>"``: policies Warden evaluates for ``req`` (informational)."""
    try:
        sl = lps.slice_for(
            req.principal.type,
            req.principal.id,
            req.principal_parents,
            req.action,
            req.resource.type,
            req.resource.id,
        )
        return f"{len(sl.ids)} of {len(lps.policy_ids)}"
    except Exception as exc:  # the slicing API is internal and may change
        return f"? of {len(getattr(lps, 'policy_ids', ()))} (slice not inspectable: {exc!r:.60})"


def print_header(title: str) -> None:
    print()
    print(f"== {title}")
    sys.stdout.flush()

"""``warden agents …``: the agent inventory (register, list, show, update, kill switch)."""

from __future__ import annotations

import time
from typing import Annotated, Any

import typer

from warden.cli.client import (
    DEFAULT_DATA_DIR,
    DEFAULT_URL,
    DataDirOption,
    JsonOption,
    UrlOption,
    WardenClient,
    seg,
)
from warden.cli.output import (
    col,
    console,
    err_console,
    esc,
    fail,
    joined,
    more_by_limit,
    print_json,
    show_list,
    show_record,
    when,
)

app = typer.Typer(
    help="Register and manage agents (the inventory and the kill switch).", no_args_is_help=True
)

AGENT_FIELDS = [
    ("name", "name"),
    ("status", "status"),
    ("spiffe id", "spiffe_id"),
    ("owner", "owner"),
    ("purpose", "purpose"),
    ("risk tier", "risk_tier"),
    ("entitlements", "entitlements"),
    ("groups", "groups"),
    ("created", "created_at"),
    ("updated", "updated_at"),
]

NameArg = Annotated[str, typer.Argument(help="The agent's name.")]
EntitlementOption = Annotated[
    list[str] | None,
    typer.Option(
        "--entitlement",
        "-e",
        help="A tool the agent may ever be granted (repeat, or space-separate).",
    ),
]
GroupOption = Annotated[
    list[str] | None, typer.Option("--group", "-g", help="A group the agent belongs to (repeat).")
]
RiskTierOption = Annotated[
    str | None, typer.Option("--risk-tier", help="low, medium, high or critical.")
]
ReasonOption = Annotated[str, typer.Option("--reason", help="Why (recorded in the audit log).")]


def _split(values: list[str] | None) -> list[str] | None:
    if values is None:
        return None
    return [part for value in values for part in value.replace(",", " ").split()]


def _show(agent: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print_json(agent)
    else:
        show_record(agent, AGENT_FIELDS)


@app.command("register")
def register(
    name: NameArg,
    owner: Annotated[str, typer.Option("--owner", help="Accountable human (email).")],
    purpose: Annotated[str, typer.Option("--purpose", help="What the agent is for.")],
    risk_tier: Annotated[
        str, typer.Option("--risk-tier", help="low, medium, high or critical.")
    ] = ("medium"),
    entitlement: EntitlementOption = None,
    group: GroupOption = None,
    spiffe_id: Annotated[
        str | None,
        typer.Option("--spiffe-id", help="Default: spiffe://<trust domain>/agent/<name>."),
    ] = None,
    as_json: JsonOption = False,
    url: UrlOption = DEFAULT_URL,
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
) -> None:
    """Register an agent with its accountable owner, purpose, risk tier and entitlements."""
    body: dict[str, Any] = {
        "name": name,
        "owner": owner,
        "purpose": purpose,
        "risk_tier": risk_tier,
        "entitlements": _split(entitlement) or [],
        "groups": _split(group) or [],
    }
    if spiffe_id:
        body["spiffe_id"] = spiffe_id
    with WardenClient(url, data_dir) as client:
        agent = client.post("/v1/agents", body)
    if as_json:
        print_json(agent)
        return
    console.print(f"registered agent [bold]{esc(agent['name'])}[/] as {esc(agent['spiffe_id'])}")
    _show(agent, False)


@app.command("list")
def list_agents(
    status: Annotated[
        str | None, typer.Option("--status", help="active, suspended or decommissioned.")
    ] = None,
    owner: Annotated[str | None, typer.Option("--owner", help="Only this owner's agents.")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=1000)] = 100,
    as_json: JsonOption = False,
    url: UrlOption = DEFAULT_URL,
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
) -> None:
    """List registered agents."""
    with WardenClient(url, data_dir) as client:
        page = client.get("/v1/agents", status=status, owner=owner, limit=limit)
    show_list(
        page,
        "agents",
        [
            col("name"),
            col("status"),
            col("owner"),
            col("risk", "risk_tier"),
            col("entitlements", fmt=joined),
            col("groups", fmt=joined),
            col("spiffe id", "spiffe_id"),
        ],
        as_json=as_json,
        empty="no agents",
        more=more_by_limit,
    )


@app.command("show")
def show(
    name: NameArg,
    as_json: JsonOption = False,
    url: UrlOption = DEFAULT_URL,
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
) -> None:
    """Show one agent."""
    with WardenClient(url, data_dir) as client:
        agent = client.get(f"/v1/agents/{seg(name)}")
    _show(agent, as_json)


@app.command("update")
def update(
    name: NameArg,
    owner: Annotated[str | None, typer.Option("--owner")] = None,
    purpose: Annotated[str | None, typer.Option("--purpose")] = None,
    risk_tier: RiskTierOption = None,
    entitlement: EntitlementOption = None,
    group: GroupOption = None,
    as_json: JsonOption = False,
    url: UrlOption = DEFAULT_URL,
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
) -> None:
    """Change an agent's owner, purpose, risk tier, entitlements or groups.

    --entitlement and --group replace the whole list.
    """
    body: dict[str, Any] = {}
    if owner is not None:
        body["owner"] = owner
    if purpose is not None:
        body["purpose"] = purpose
    if risk_tier is not None:
        body["risk_tier"] = risk_tier
    if entitlement is not None:
        body["entitlements"] = _split(entitlement)
    if group is not None:
        body["groups"] = _split(group)
    if not body:
        fail("nothing to update: give --owner, --purpose, --risk-tier, --entitlement or --group")
    with WardenClient(url, data_dir) as client:
        agent = client.patch(f"/v1/agents/{seg(name)}", body)
    if not as_json:
        console.print(f"updated agent [bold]{esc(agent['name'])}[/]")
    _show(agent, as_json)


@app.command("suspend")
def suspend(
    name: NameArg,
    reason: ReasonOption = "",
    wait: Annotated[
        bool,
        typer.Option("--wait/--no-wait", help="Wait until every replica's memory shows the kill."),
    ] = True,
    timeout: Annotated[
        float, typer.Option("--timeout", help="Seconds to wait for the replicas.", min=0.1)
    ] = 10.0,
    as_json: JsonOption = False,
    url: UrlOption = DEFAULT_URL,
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
) -> None:
    """Kill switch: suspend the agent, end all its tasks (and their subtasks) and leases.

    Reports how long the cascade took on the replica that ran it and, with --wait, when each
    live replica's in-memory state showed the agent suspended with no active task.
    """
    with WardenClient(url, data_dir) as client:
        started = time.perf_counter()
        agent = client.post(f"/v1/agents/{seg(name)}/suspend", {"reason": reason})
        answered = (time.perf_counter() - started) * 1000
        seen: list[dict[str, Any]] = []
        if wait:
            replicas = client.get("/v1/replicas").get("replicas", [])
            seen = [_wait_for_kill(client, r, name, started, timeout) for r in replicas]
    if as_json:
        print_json({**agent, "replicas": seen, "answered_ms": round(answered, 2)})
        return
    ended = agent.get("tasks_ended", 0)
    leases = agent.get("leases") or {}
    revoked, pending = leases.get("revoked", []), leases.get("pending", [])
    console.print(
        f"suspended agent [bold]{esc(agent['name'])}[/]: {ended} task{'s' if ended != 1 else ''} "
        f"ended (subtasks included), their credentials and {len(revoked)} "
        f"lease{'s' if len(revoked) != 1 else ''} revoked"
    )
    took = agent.get("cascade_ms")
    if took is not None:
        console.print(f"  cascade on the replica that ran it: {took} ms")
    if pending:
        console.print(
            f"  [bold yellow]{len(pending)} lease(s) not yet confirmed revoked[/]: "
            f"{esc(', '.join(pending))} (the reaper keeps retrying)"
        )
    if not wait:
        return
    reached = [r for r in seen if r.get("ms") is not None]
    if reached:
        slowest = max(r["ms"] for r in reached)
        console.print(
            f"  seen by {len(reached)}/{len(seen)} replicas within {slowest:.1f} ms of the request"
        )
    for r in seen:
        shown = f"{r['ms']:.1f} ms" if r.get("ms") is not None else f"NOT YET ({r['error']})"
        console.print(f"    {esc(r['url'])}  {shown}")
    if len(reached) < len(seen):
        fail("the kill did not reach every replica in time")


def _wait_for_kill(
    client: WardenClient,
    replica: dict[str, Any],
    name: str,
    started: float,
    timeout: float,
) -> dict[str, Any]:
    """Poll one replica's in-memory view of the agent until it shows the kill."""
    import httpx

    url = str(replica.get("url", "")).rstrip("/")
    headers = {"Authorization": f"Bearer {client.token}"}
    last = "no answer"
    deadline = started + timeout
    with httpx.Client(timeout=2.0) as http:
        while time.perf_counter() < deadline:
            try:
                r = http.get(f"{url}/v1/replica/agents/{seg(name)}", headers=headers)
                body = r.json() if r.status_code == 200 else {}
                if body.get("status") == "suspended" and body.get("active_tasks") == 0:
                    return {"url": url, "ms": (time.perf_counter() - started) * 1000}
                last = f"HTTP {r.status_code}" if r.status_code != 200 else "still active"
            except (httpx.HTTPError, ValueError) as exc:
                last = type(exc).__name__
            time.sleep(0.005)
    return {"url": url, "ms": None, "error": last}


@app.command("reactivate")
def reactivate(
    name: NameArg,
    reason: ReasonOption = "",
    as_json: JsonOption = False,
    url: UrlOption = DEFAULT_URL,
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
) -> None:
    """Let a suspended agent start tasks again (its ended tasks stay ended)."""
    with WardenClient(url, data_dir) as client:
        agent = client.post(f"/v1/agents/{seg(name)}/reactivate", {"reason": reason})
    if as_json:
        print_json(agent)
        return
    console.print(f"reactivated agent [bold]{esc(agent['name'])}[/] (status {agent['status']})")


@app.command("decommission")
def decommission(
    name: NameArg,
    reason: ReasonOption = "",
    as_json: JsonOption = False,
    url: UrlOption = DEFAULT_URL,
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
) -> None:
    """Retire an agent for good: end its tasks; it can never act again."""
    with WardenClient(url, data_dir) as client:
        agent = client.post(f"/v1/agents/{seg(name)}/decommission", {"reason": reason})
    if as_json:
        print_json(agent)
        return
    ended = agent.get("tasks_ended", 0)
    console.print(
        f"decommissioned agent [bold]{esc(agent['name'])}[/] "
        f"({ended} task{'s' if ended != 1 else ''} ended) at {when(agent.get('updated_at'))}"
    )


# -- registration entries and join tokens -----------------------------------------------------

entries_app = typer.Typer(
    help="Registration entries: which workload identities may act as an agent.",
    no_args_is_help=True,
)
app.add_typer(entries_app, name="entries")


@entries_app.command("list")
def list_entries(
    name: NameArg,
    as_json: JsonOption = False,
    url: UrlOption = DEFAULT_URL,
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
) -> None:
    """List an agent's registration entries."""
    with WardenClient(url, data_dir) as client:
        page = client.get(f"/v1/agents/{seg(name)}/entries")
    show_list(
        page,
        "entries",
        [
            col("id"),
            col("selectors", fmt=joined),
            col("description"),
            col("created", "created_at", when),
        ],
        as_json=as_json,
        empty=f"agent {esc(name)} has no entries (its own SPIFFE ID still matches)",
    )


@entries_app.command("add")
def add_entry(
    name: NameArg,
    selector: Annotated[
        list[str],
        typer.Option(
            "--selector",
            "-s",
            help="A selector such as k8s:ns:payments or unix:uid:1000 (repeat; all must match).",
        ),
    ],
    description: Annotated[str, typer.Option("--description", help="What this is.")] = "",
    as_json: JsonOption = False,
    url: UrlOption = DEFAULT_URL,
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
) -> None:
    """Add an entry: a workload carrying every selector may act as the agent."""
    body = {"selectors": selector, "description": description}
    with WardenClient(url, data_dir) as client:
        entry = client.post(f"/v1/agents/{seg(name)}/entries", body)
    if as_json:
        print_json(entry)
        return
    console.print(
        f"added entry [bold]{esc(entry['id'])}[/] to agent {esc(name)}: "
        f"{esc(' + '.join(entry['selectors']))}"
    )


@entries_app.command("remove")
def remove_entry(
    name: NameArg,
    entry_id: Annotated[str, typer.Argument(help="The entry id (ent_…).")],
    url: UrlOption = DEFAULT_URL,
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
) -> None:
    """Remove an entry (workloads matching only it can no longer act as the agent)."""
    with WardenClient(url, data_dir) as client:
        client.request("DELETE", f"/v1/agents/{seg(name)}/entries/{seg(entry_id)}")
    console.print(f"removed entry {esc(entry_id)} from agent {esc(name)}")


@app.command("join-token")
def join_token(
    name: NameArg,
    ttl: Annotated[
        str, typer.Option("--ttl", help="How long it stays usable: 90s, 10m, 1h (max 1d).")
    ] = "10m",
    as_json: JsonOption = False,
    url: UrlOption = DEFAULT_URL,
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
) -> None:
    """Create a one-time join token for an agent on a host with no other attestation.

    The token is printed once; Warden keeps only its hash. Exchange it at /oauth2/token with
    subject_token_type=urn:warden:params:oauth:token-type:join-token.
    """
    from warden.cli.timeparse import parse_duration

    try:
        seconds = parse_duration(ttl)
    except ValueError as exc:
        fail(str(exc))
    with WardenClient(url, data_dir) as client:
        created = client.post(f"/v1/agents/{seg(name)}/join-tokens", {"ttl": seconds})
    if as_json:
        print_json(created)
        return
    typer.echo(created["token"])
    err_console.print(
        f"join token {esc(created['id'])} for agent {esc(name)}, usable once until "
        f"{when(created['expires_at'])}"
    )

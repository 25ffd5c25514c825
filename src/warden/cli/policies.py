"""``warden policies …``: check policy folders locally, inspect and steer the server's policies."""

from __future__ import annotations

from collections.abc import Mapping
from operator import itemgetter
from pathlib import Path
from typing import Annotated, Any

import typer

from warden.cli.client import (
    DEFAULT_DATA_DIR,
    DEFAULT_URL,
    DataDirOption,
    JsonOption,
    UrlOption,
    WardenClient,
    located_errors,
)
from warden.cli.output import (
    Column,
    col,
    console,
    esc,
    fail,
    joined,
    print_json,
    show_table,
)

app = typer.Typer(help="Validate, test and manage Cedar policies.", no_args_is_help=True)

FolderArg = Annotated[
    Path,
    typer.Argument(help="A policy folder (*.cedar, optional *.cedarschema and entities.json)."),
]
MODES = ("enforce", "monitor", "default")


def _policy_error(folder: Path, exc: Exception) -> str:
    message = getattr(exc, "message", str(exc))
    detail = getattr(exc, "detail", None) or {}
    located = detail.get("errors")
    if isinstance(located, list) and located:
        return f"{folder}: {message}\n" + located_errors(located)
    extra = "; ".join(f"{k}={v}" for k, v in detail.items() if k not in ("message",))
    return f"{folder}: {message}" + (f" ({extra})" if extra else "")


@app.command("validate")
def validate(
    folder: FolderArg,
    as_json: JsonOption = False,
) -> None:
    """Check a policy folder without a server: parse, validate against the schema, list ids."""
    from warden.authz.policy_set import load_policy_dir
    from warden.errors import PolicyError

    if not folder.is_dir():
        fail(f"`{folder}` is not a folder")
    try:
        lps = load_policy_dir(folder)
    except PolicyError as exc:
        if as_json:
            print_json(
                {"ok": False, "folder": str(folder), "error": exc.message, **(exc.detail or {})}
            )
            raise typer.Exit(1) from None
        fail(f"policy_invalid: {_policy_error(folder, exc)}")
    infos = [lps.policies[pid] for pid in lps.policy_ids]
    if as_json:
        print_json(
            {
                "ok": True,
                "folder": str(folder),
                "revision": lps.revision,
                "files": list(lps.files),
                "notes": list(lps.schema_notes),
                "policies": [
                    {
                        "id": p.id,
                        "effect": p.effect,
                        "source": p.source,
                        "line": p.line,
                        "annotations": dict(p.annotations),
                    }
                    for p in infos
                ],
            }
        )
        return
    n = len(infos)
    console.print(f"ok: {n} polic{'y' if n == 1 else 'ies'} in {esc(folder)}")
    console.print(f"revision {esc(lps.revision)}")
    for note in lps.schema_notes:
        console.print(f"note: {esc(note)}")
    show_table(
        infos,
        [
            Column("id", lambda p: p.id),
            Column("effect", lambda p: p.effect + (" (monitor)" if p.mode == "monitor" else "")),
            Column("file", lambda p: p.source),
            Column("annotations", lambda p: _annotations(p.annotations)),
        ],
    )


@app.command("test")
def test_cases(
    folder: FolderArg,
    cases: Annotated[Path, typer.Argument(help="A cases file (YAML or JSON).")],
    require_coverage: Annotated[
        bool, typer.Option("--require-coverage", help="Fail when a policy is not exercised.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Run data-driven cases (request + expected decision) against a policy folder.

    Also reports the policies no case exercises (none of them determined, was overridden in,
    or was monitored in any case); with --require-coverage those fail the run.
    """
    from warden.authz.cases import load_cases, run_loaded_cases, unexercised
    from warden.authz.policy_set import load_policy_dir
    from warden.errors import WardenError

    if not folder.is_dir():
        fail(f"`{folder}` is not a folder")
    if not cases.is_file():
        fail(f"`{cases}` is not a file")
    try:
        loaded = load_policy_dir(folder)
        results = run_loaded_cases(loaded, load_cases(cases))
    except WardenError as exc:
        fail(f"{exc.code}: {_policy_error(cases, exc)}")
    failed = [r for r in results if not r.passed]
    untested = unexercised(loaded, results)
    if as_json:
        print_json(
            {
                "passed": len(results) - len(failed),
                "failed": len(failed),
                "unexercised": [
                    {
                        "id": pid,
                        "file": loaded.policies[pid].source,
                        "line": loaded.policies[pid].line,
                    }
                    for pid in untested
                ],
                "cases": [
                    {
                        "name": r.name,
                        "passed": r.passed,
                        "expected": r.expected,
                        "actual": r.actual,
                        "reasons": list(r.reasons),
                        "message": r.message,
                    }
                    for r in results
                ],
            }
        )
    else:
        show_table(
            results,
            [
                Column("", lambda r: "✔" if r.passed else "✘"),
                Column("case", lambda r: r.name),
                Column("expected", lambda r: r.expected),
                Column("actual", lambda r: r.actual),
                Column("reasons", lambda r: joined(r.reasons)),
            ],
        )
        for r in failed:
            console.print(f"✘ {esc(r.name)}: {esc(r.message)}")
        verdict = "ok" if not failed else "FAILED"
        console.print(f"{verdict}: {len(results) - len(failed)} passed, {len(failed)} failed")
        if untested:
            console.print(
                f"{len(untested)} polic{'y' if len(untested) == 1 else 'ies'} no case exercises:"
            )
            for pid in untested:
                info = loaded.policies[pid]
                console.print(f"  {esc(pid)}  ({esc(info.source)}:{info.line})")
        else:
            console.print("every policy is exercised by at least one case")
    if failed or (require_coverage and untested):
        raise typer.Exit(1)


@app.command("show")
def show(
    as_json: JsonOption = False,
    url: UrlOption = DEFAULT_URL,
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
) -> None:
    """The policies the server is enforcing, its revision and the enforcement modes."""
    with WardenClient(url, data_dir) as client:
        body = client.get("/v1/policies")
    if as_json:
        print_json(body)
        return
    console.print(f"folder    {esc(body.get('folder') or '(none)')}")
    console.print(f"revision  {esc(body.get('revision') or '(no policies loaded)')}")
    if body.get("last_error"):
        console.print(f"[red]last rejected change:[/] {esc(body['last_error'])}")
    policies = body.get("policies", [])
    if policies:
        show_table(
            policies,
            [
                col("id"),
                col("effect"),
                col("annotations", fmt=lambda a: _annotations(a or {})),
                col("source"),
            ],
        )
    _print_modes(body.get("modes") or {})


def _print_modes(modes: dict[str, Any]) -> None:
    rows = [("agent", k, v) for k, v in (modes.get("agents") or {}).items()]
    rows += [("risk tier", k, v) for k, v in (modes.get("risk_tiers") or {}).items()]
    if not rows:
        console.print("modes     everything enforced (no monitor-mode settings)")
        return
    show_table(rows, MODE_COLUMNS, title="enforcement modes")


MODE_COLUMNS = (
    Column("kind", itemgetter(0)),
    Column("value", itemgetter(1)),
    Column("mode", itemgetter(2)),
)


def _annotations(annotations: Mapping[str, Any]) -> str:
    return joined(f"{k}={v}" for k, v in annotations.items() if k != "id")


@app.command("mode")
def mode(
    new_mode: Annotated[str, typer.Argument(metavar="enforce|monitor|default")],
    agent: Annotated[str | None, typer.Option("--agent", help="Set the mode of one agent.")] = None,
    risk_tier: Annotated[
        str | None, typer.Option("--risk-tier", help="Set the mode of a risk tier.")
    ] = None,
    as_json: JsonOption = False,
    url: UrlOption = DEFAULT_URL,
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
) -> None:
    """Run an agent or a risk tier in enforce or monitor mode (default: clear the setting)."""
    if new_mode not in MODES:
        fail(f"mode must be one of {', '.join(MODES)}, not `{new_mode}`")
    if (agent is None) == (risk_tier is None):
        fail("give exactly one of --agent NAME or --risk-tier TIER")
    kind, value = ("agent", agent) if agent is not None else ("risk_tier", risk_tier)
    with WardenClient(url, data_dir) as client:
        body = client.put("/v1/policies/modes", {"kind": kind, "value": value, "mode": new_mode})
    if as_json:
        print_json(body)
        return
    what = f"{kind.replace('_', ' ')} {value}"
    if new_mode == "default":
        console.print(f"cleared the mode of {esc(what)}")
    else:
        console.print(f"{esc(what)} now runs in [bold]{new_mode}[/] mode")
    _print_modes(body or {})


@app.command("reload")
def reload(
    as_json: JsonOption = False,
    url: UrlOption = DEFAULT_URL,
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
) -> None:
    """Reload the server's policy folder now (an invalid change is rejected)."""
    with WardenClient(url, data_dir) as client:
        body = client.post("/v1/policies/reload")
    if as_json:
        print_json(body)
        return
    console.print(f"reloaded: revision {esc(body.get('revision'))}")


@app.command("schema")
def schema(
    folder: Annotated[
        Path | None,
        typer.Argument(help="A policy folder: print the schema it is validated against."),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Cedar's JSON schema format (Warden's part).")
    ] = False,
) -> None:
    """Print the Cedar schema of Warden's model (generated from the PDP's own definitions)."""
    from warden.authz.policy_set import load_policy_dir
    from warden.authz.schema import render_json, render_text
    from warden.errors import PolicyError

    if as_json:
        print_json(render_json())
        return
    if folder is None:
        typer.echo(render_text(), nl=False)
        return
    try:
        lps = load_policy_dir(folder)
    except PolicyError as exc:
        fail(f"policy_invalid: {_policy_error(folder, exc)}")
    typer.echo(lps.schema_text, nl=not lps.schema_text.endswith("\n"))


@app.command("explain")
def explain(
    request_file: Annotated[
        Path,
        typer.Argument(
            metavar="REQUEST.json",
            help="An AuthZEN request, a case ({request, warden, subject_parents}), or a "
            "decision record's `cedar` request (from `warden audit show`).",
        ),
    ],
    policies: Annotated[
        Path | None,
        typer.Option("--policies", "-p", help="Policy folder (default: the server's set)."),
    ] = None,
    as_json: JsonOption = False,
    url: UrlOption = DEFAULT_URL,
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
) -> None:
    """Why a request is allowed or denied: determining, overridden and monitored policies,
    and the context fields the policies read."""
    from warden.authz.explain import explain_file
    from warden.authz.policy_set import load_policy_dir, load_policy_files
    from warden.errors import WardenError

    try:
        if policies is not None:
            lps = load_policy_dir(policies)
        else:
            with WardenClient(url, data_dir) as client:
                body = client.get("/v1/policies/bundle")
            files = {str(k): str(v).encode() for k, v in (body.get("files") or {}).items()}
            lps = load_policy_files(files, origin=f"<server {url}>")
        out = explain_file(lps, request_file)
    except WardenError as exc:
        fail(f"{exc.code}: {_policy_error(request_file, exc)}")
    if as_json:
        print_json(out)
        return
    verdict = "ALLOW" if out["allowed"] else "DENY"
    console.print(f"[bold]{verdict}[/]  revision {esc(out['revision'][:16])}")
    _policy_lines("determining", out["determining"], out["policies"])
    _policy_lines("matched but overridden", out["overridden"], out["policies"])
    _policy_lines("monitored (would deny)", out["monitored"], out["policies"])
    if out["errors"]:
        console.print("errors:")
        for message in out["errors"]:
            console.print(f"  {esc(message)}")
    considered = out["considered"]
    console.print(f"considered: {len(considered)} polic{'y' if len(considered) == 1 else 'ies'}")
    if out["reads"]:
        console.print("context fields read:")
        for path, present in out["reads"].items():
            console.print(f"  {esc(path)}  {'present' if present else '[yellow]absent[/]'}")


def _policy_lines(title: str, ids: list[str], info: dict[str, Any]) -> None:
    if not ids:
        return
    console.print(f"{title}:")
    for pid in ids:
        p = info.get(pid) or {}
        console.print(
            f"  {esc(pid)}  ({p.get('effect', '')}, {esc(p.get('source', ''))}:{p.get('line', '')})"
        )


@app.command("replay")
def replay(
    candidate: Annotated[Path, typer.Argument(help="The candidate policy folder.")],
    since: Annotated[str, typer.Option("--since", help="How far back: 24h, 90m, 7d.")] = "24h",
    until: Annotated[
        str | None, typer.Option("--until", help="Stop this long ago (default: now).")
    ] = None,
    agent: Annotated[
        str | None, typer.Option("--agent", help="Only this agent's decisions.")
    ] = None,
    max_changes: Annotated[
        int | None, typer.Option("--max-changes", help="Fail above N changed decisions.")
    ] = None,
    max_allow_to_deny: Annotated[int | None, typer.Option("--max-allow-to-deny")] = None,
    max_deny_to_allow: Annotated[int | None, typer.Option("--max-deny-to-allow")] = None,
    max_new_approvals: Annotated[int | None, typer.Option("--max-new-approvals")] = None,
    max_uncertain: Annotated[int | None, typer.Option("--max-uncertain")] = None,
    examples: Annotated[
        int, typer.Option("--examples", help="Example decision ids per group.")
    ] = 5,
    as_json: JsonOption = False,
    url: UrlOption = DEFAULT_URL,
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
) -> None:
    """Replay the server's recorded decisions against a candidate policy folder.

    Reports what would change (allow→deny, deny→allow, approval newly required) by agent,
    tool and policy. Exits 1 when a --max-* threshold is crossed (a CI gate for a policy
    repository), 2 when the candidate is invalid or the server refuses.
    """
    from warden.authz.policy_set import read_policy_dir
    from warden.errors import PolicyError

    try:
        raw = read_policy_dir(candidate)
    except PolicyError as exc:
        fail(f"policy_invalid: {exc.message}", 2)
    try:
        files = {name: data.decode("utf-8") for name, data in raw.items()}
    except UnicodeDecodeError:
        fail(f"policy_invalid: {candidate}: a policy file is not valid UTF-8", 2)
    thresholds = {
        key: value
        for key, value in (
            ("changes", max_changes),
            ("allow_to_deny", max_allow_to_deny),
            ("deny_to_allow", max_deny_to_allow),
            ("new_approvals", max_new_approvals),
            ("uncertain", max_uncertain),
        )
        if value is not None
    }
    body: dict[str, Any] = {
        "files": files,
        "since": since,
        "agent": agent,
        "examples": examples,
        "thresholds": thresholds,
    }
    if until is not None:
        body["until"] = until
    try:
        with WardenClient(url, data_dir, timeout=300.0) as client:
            report = client.post("/v1/policies/replay", body)
    except typer.Exit as exc:
        raise typer.Exit(2) from exc
    if as_json:
        print_json(report)
    else:
        _print_replay(report)
    if report.get("exceeded"):
        raise typer.Exit(1)


def _print_replay(report: dict[str, Any]) -> None:
    console.print(
        f"replayed {report['replayed']} of {report['examined']} decisions against revision "
        f"{esc(report['candidate_revision'][:16])} "
        f"(serving {esc((report.get('serving_revision') or '-')[:16])})"
    )
    console.print(
        f"changed {report['changed']}, unchanged {report['unchanged']}, "
        f"uncertain {report['uncertain']}, skipped {report['skipped']} (refused before policy)"
    )
    transitions = report.get("transitions") or {}
    if transitions:
        show_table(
            list(transitions.items()),
            [
                Column("change", itemgetter(0)),
                Column("count", lambda kv: str(kv[1]["count"])),
                Column("examples", lambda kv: joined(kv[1]["examples"])),
            ],
            title="what would change",
        )
        for title, key in (
            ("by agent", "by_agent"),
            ("by tool", "by_tool"),
            ("by policy", "by_policy"),
        ):
            show_table(
                report.get(key) or [],
                [
                    col(key.removeprefix("by_"), "key"),
                    col("changes", "total", str),
                    Column("how", _how),
                    Column("examples", _examples),
                ],
                title=title,
            )
    else:
        console.print("no decision would change")
    if report.get("uncertain_examples"):
        console.print(
            "uncertain (a policy reads a value recorded only as a digest): "
            + esc(", ".join(report["uncertain_examples"]))
        )
    for crossed in report.get("exceeded") or []:
        console.print(f"[red]threshold crossed:[/] {esc(crossed)}")


def _how(row: Mapping[str, Any]) -> str:
    """A replay row's transitions and their counts (``allow→deny 3``)."""
    return joined(f"{t} {v['count']}" for t, v in row.items() if isinstance(v, dict))


def _examples(row: Mapping[str, Any]) -> str:
    """The first three examples of a replay row."""
    examples = [e for v in row.values() if isinstance(v, dict) for e in v["examples"]]
    return joined(examples[:3])

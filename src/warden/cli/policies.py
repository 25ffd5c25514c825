"""``warden policies …``: check policy folders locally, inspect and steer the server's policies."""

from __future__ import annotations

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
)
from warden.cli.output import console, emit, esc, fail, joined, print_json, table

app = typer.Typer(help="Validate, test and manage Cedar policies.", no_args_is_help=True)

FolderArg = Annotated[
    Path,
    typer.Argument(help="A policy folder (*.cedar, optional *.cedarschema and entities.json)."),
]
MODES = ("enforce", "monitor", "default")


def _policy_error(folder: Path, exc: Exception) -> str:
    message = getattr(exc, "message", str(exc))
    detail = getattr(exc, "detail", None) or {}
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
        fail(f"policy_invalid: {_policy_error(folder, exc)}")
    infos = [lps.policies[pid] for pid in lps.policy_ids]
    if as_json:
        print_json(
            {
                "ok": True,
                "folder": str(folder),
                "revision": lps.revision,
                "files": list(lps.files),
                "policies": [
                    {
                        "id": p.id,
                        "effect": p.effect,
                        "source": p.source,
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
    emit(
        table(
            ["id", "effect", "file", "annotations"],
            [
                (
                    p.id,
                    p.effect + (" (monitor)" if p.mode == "monitor" else ""),
                    p.source,
                    joined(f"{k}={v}" for k, v in p.annotations.items() if k != "id"),
                )
                for p in infos
            ],
        )
    )


@app.command("test")
def test_cases(
    folder: FolderArg,
    cases: Annotated[Path, typer.Argument(help="A cases file (YAML or JSON).")],
    as_json: JsonOption = False,
) -> None:
    """Run data-driven cases (request + expected decision) against a policy folder."""
    from warden.authz.cases import run_cases
    from warden.errors import WardenError

    if not folder.is_dir():
        fail(f"`{folder}` is not a folder")
    if not cases.is_file():
        fail(f"`{cases}` is not a file")
    try:
        results = run_cases(folder, cases)
    except WardenError as exc:
        fail(f"{exc.code}: {_policy_error(cases, exc)}")
    failed = [r for r in results if not r.passed]
    if as_json:
        print_json(
            {
                "passed": len(results) - len(failed),
                "failed": len(failed),
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
        emit(
            table(
                ["", "case", "expected", "actual", "reasons"],
                [
                    ("✔" if r.passed else "✘", r.name, r.expected, r.actual, joined(r.reasons))
                    for r in results
                ],
            )
        )
        for r in failed:
            console.print(f"✘ {esc(r.name)}: {esc(r.message)}")
        verdict = "ok" if not failed else "FAILED"
        console.print(f"{verdict}: {len(results) - len(failed)} passed, {len(failed)} failed")
    if failed:
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
        emit(
            table(
                ["id", "effect", "annotations", "source"],
                [
                    (
                        p["id"],
                        p.get("effect", ""),
                        joined(
                            f"{k}={v}" for k, v in (p.get("annotations") or {}).items() if k != "id"
                        ),
                        p.get("source", ""),
                    )
                    for p in policies
                ],
            )
        )
    _print_modes(body.get("modes") or {})


def _print_modes(modes: dict[str, Any]) -> None:
    rows = [("agent", k, v) for k, v in (modes.get("agents") or {}).items()]
    rows += [("risk tier", k, v) for k, v in (modes.get("risk_tiers") or {}).items()]
    if not rows:
        console.print("modes     everything enforced (no monitor-mode settings)")
        return
    emit(table(["kind", "value", "mode"], rows, title="enforcement modes"))


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

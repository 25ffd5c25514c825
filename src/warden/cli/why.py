"""``warden why DECISION_ID`` (and ``warden audit show``): why a decision came out as it did.

Prints what ``GET /v1/audit/decisions/{id}`` returns: the outcome and its precise reason, the
mode, the determining policies with their source at file:line, the request as the PEP sent it
(masked), the credential's delegation chain, the approval, and the audit record's place in the
hash chain with its verification.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.text import Text

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
    print_json,
    show_record,
    show_table,
    when,
)

DecisionArg = Annotated[str, typer.Argument(help="The decision id (from the PEP's answer).")]


def fetch(decision_id: str, url: str, data_dir: Any) -> dict[str, Any]:
    with WardenClient(url, data_dir) as client:
        why: dict[str, Any] = client.get(f"/v1/audit/decisions/{seg(decision_id)}")
    return why


def _check(value: Any) -> str:
    return {True: "ok", False: "BROKEN", None: "n/a"}.get(value, str(value))


def print_why(why: dict[str, Any], *, related: bool = False) -> None:
    out = Text()
    out.append(f"{str(why.get('decision', '')).upper()}", style="bold")
    if why.get("reason_code"):  # the code the PEP was given, then the precise reason in words
        out.append(f"  {why['reason_code']}", style="bold")
    out.append(f"  {why.get('reason', '')}")
    console.print(out)
    monitor = why.get("monitor") or {}
    mode = str(why.get("mode") or "")
    if monitor.get("reason"):
        mode += f" (enforcement would answer {monitor['reason']})"
    cred = why.get("credential") or {}
    task = cred.get("task") or {}
    audit = why.get("audit") or {}
    check = audit.get("verification") or {}
    checkpoint = check.get("checkpoint") or {}
    note = f" {checkpoint['note']}" if checkpoint.get("note") else ""
    show_record(
        {
            "decision_id": why.get("decision_id"),
            "ts": why.get("ts"),
            "agent": why.get("agent") or why.get("actor"),
            "mode": mode,
            "reason": why.get("reason_code"),
            "reasons": why.get("reasons") or [],
            "task": f"{task.get('id', why.get('task_id') or '')} {task.get('purpose', '')}".strip(),
            "chain": " > ".join(cred.get("chain") or []),
            "jti": cred.get("jti"),
            "revision": why.get("policy_revision"),
            "errors": why.get("errors") or [],
            "position": f"seq {audit.get('seq')} of {audit.get('head_seq')}",
            "verified": f"{_check(check.get('ok'))} (hash {_check(check.get('record_hash'))}, "
            f"previous link {_check(check.get('links_previous'))}, next link "
            f"{_check(check.get('links_next'))}, checkpoint "
            f"{_check(checkpoint.get('ok'))}{note})",
        },
        [
            ("decision", "decision_id"),
            ("time", "ts"),
            ("agent", "agent"),
            ("mode", "mode"),
            ("reason", "reason"),
            ("policies", "reasons"),
            ("task", "task"),
            ("chain", "chain"),
            ("credential", "jti"),
            ("policy revision", "revision"),
            ("errors", "errors"),
            ("audit record", "position"),
            ("verification", "verified"),
        ],
    )
    for p in why.get("policies") or []:
        where = f"{p.get('file')}:{p.get('line')}:{p.get('column')}" if p.get("loaded") else ""
        head = Text()
        head.append(f"\npolicy {p['id']}", style="bold")
        head.append(f"  {p.get('effect', '')} {p.get('mode', '')}  {where}".rstrip())
        if not p.get("loaded"):
            head.append("  (no longer loaded)")
        console.print(head)
        if p.get("text"):
            console.print(Text(p["text"]))
    console.print(Text("\nrequest (masked, as the PEP sent it)", style="bold"))
    console.print(Text(json.dumps(why.get("request"), indent=2, ensure_ascii=False)))
    if why.get("approval"):
        console.print(Text("\napproval", style="bold"))
        console.print(Text(json.dumps(why["approval"], indent=2, ensure_ascii=False)))
    rel = why.get("related") or []
    if related and rel:
        console.print(Text("\nrelated audit records", style="bold"))
        show_table(rel, [col("seq"), col("time", "ts", when), col("type"), col("actor")])


def why(
    decision_id: DecisionArg,
    as_json: JsonOption = False,
    url: UrlOption = DEFAULT_URL,
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
) -> None:
    """Why was this allowed or denied: reason, policies at file:line, chain, approval, audit."""
    found = fetch(decision_id, url, data_dir)
    if as_json:
        print_json(found)
    else:
        print_why(found)

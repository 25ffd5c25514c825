"""P15: replay 100,000 recorded decisions against a candidate policy set (target ≤ 30 s,
"well under a minute" — issue 15).

The recorded decisions are real ``authz.decision`` audit records in a SQLite store (written
through the store's own audit append, hash chain included), shaped as the decision path
writes them: 200 agents in 20 groups calling 50 tools, each record holding the Cedar request
as evaluated (``authz/recording.py``), one in ten with a masked argument. The candidate adds a
forbid and an approval rule. Timed end to end: reading the window from the database,
rebuilding every request, Cedar batch evaluation and classification.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from bench import _common as c

TARGET_SECONDS = 30.0


def _policies(folder: Path, candidate: bool) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    rules = [
        f'@id("g{k}") permit(principal in Group::"{c.group_name(k)}", action, resource)\n'
        f'when {{ context.warden.task.category == "support" }};\n'
        for k in range(20)
    ]
    rules.append(
        '@id("no-big") forbid(principal, action == Action::"tool3.call", resource)\n'
        "when { context has arguments && context.arguments has amount && "
        "context.arguments.amount > 100 };\n"
    )
    if candidate:
        rules.append(
            '@id("no-tool7") forbid(principal, action == Action::"tool7.call", resource);\n'
        )
        rules.append(
            '@id("approve-tool9") @approval("owner")\n'
            'forbid(principal, action == Action::"tool9.call", resource)\n'
            "unless { context.warden.approval.granted };\n"
        )
    (folder / "rules.cedar").write_text("\n".join(rules))


def _drafts(n: int, revision: str, now: float) -> list[object]:
    from warden.authz.recording import request_record
    from warden.authz.types import AuthzRequest, EntityRef
    from warden.core.model import AuditDraft

    drafts: list[object] = []
    for i in range(n):
        agent = i % 200
        tool = c.tool_name(i % 50)
        arguments: dict[str, object] = {"amount": (i * 37) % 300, "ticket": f"T-{i}"}
        if i % 10 == 0:
            arguments["api_token"] = f"secret-{i}"
        req = AuthzRequest(
            principal=EntityRef("Agent", c.agent_spiffe(agent)),
            principal_attrs={
                "name": c.agent_name(agent),
                "owner": "alice@example.com",
                "risk_tier": "medium",
                "purpose": "bench",
                "status": "active",
                "trust_domain": c.TRUST_DOMAIN,
            },
            principal_parents=(EntityRef("Group", c.group_name(agent % 20)),),
            action=tool,
            resource=EntityRef("Tool", tool),
            context={
                "arguments": arguments,
                "action": {},
                "warden": {
                    "now": int(now),
                    "task": {"id": f"t{agent}", "purpose": "b", "category": "support", "age": 3},
                    "scope": [tool],
                    "chain": [c.agent_spiffe(agent)],
                    "depth": 0,
                    "owner": "alice@example.com",
                    "approval": {"granted": False},
                    "behaviour": {},
                },
            },
        )
        big = tool == "tool3.call" and int(arguments["amount"]) > 100  # type: ignore[call-overload]
        drafts.append(
            AuditDraft(
                ts=now - 3600 + i * 0.01,
                type="authz.decision",
                actor=c.agent_spiffe(agent),
                data={
                    "decision": "deny" if big else "allow",
                    "reasons": ["no-big"] if big else [f"g{agent % 20}"],
                    "policy_revision": revision,
                    "cedar": request_record(req),
                    "policy_outcome": "deny" if big else "allow",
                },
                agent=c.agent_name(agent),
                task_id=f"t{agent}",
                decision_id=f"dec_{i:07d}",
            )
        )
    return drafts


def run() -> None:
    from warden.authz.policy_set import load_policy_dir
    from warden.service.replay import Replayer, ReplayQuery, recorded_decisions
    from warden.storage.sql import open_store, sqlite_url_for

    c.print_header("P15 replay of recorded decisions against a candidate policy set")
    n = 10_000 if c.QUICK else 100_000
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        _policies(root / "current", candidate=False)
        _policies(root / "candidate", candidate=True)
        current = load_policy_dir(root / "current")
        (root / "data").mkdir()
        store = open_store(sqlite_url_for(root / "data"))
        store.migrate()
        now = time.time()
        t0 = time.perf_counter()
        drafts = _drafts(n, current.revision, now)
        for start in range(0, n, 5000):
            store.append_audit(drafts[start : start + 5000])  # type: ignore[arg-type]
        del drafts
        print(f"  wrote {n} decision records in {time.perf_counter() - t0:.1f} s (setup)")
        t0 = time.perf_counter()
        candidate = load_policy_dir(root / "candidate")
        report = Replayer(candidate).run(recorded_decisions(store, ReplayQuery(since=now - 86400)))
        elapsed = time.perf_counter() - t0
        store.close()
    per_s = report.replayed / elapsed if elapsed else 0.0
    print(
        f"  replayed {report.replayed} of {report.examined}: changed {report.changed} "
        f"({', '.join(f'{k} {v.count}' for k, v in report.transitions.items())}), "
        f"uncertain {report.uncertain}"
    )
    scaled = elapsed * (100_000 / max(1, report.replayed))
    print(
        f"P15: replay_s={elapsed:.2f} decisions_per_s={per_s:.0f} "
        f"projected_100k_s={scaled:.1f} target<={TARGET_SECONDS:.0f} "
        f"{'ok' if scaled <= TARGET_SECONDS else 'MISSED'}"
    )

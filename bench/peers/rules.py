"""One logical rule set, rendered for every engine the peer benchmark compares.

Standard library only: this module is imported by the Warden side (the project's venv), by the
peer side (``.venv-peers``) and by a test, so it may not depend on any engine.

The logical rule set of size ``n`` (``n`` rules in total):

* one **guard** — deny any call whose ``amount`` argument exceeds 1,000 (a forbid that
  overrides every permit);
* ``n - 1`` **grants** — "agent *a* may call tool *t*"; agent *a* holds the ten tools
  ``(a + 0 … 9) mod T``, so there are ``ceil((n - 1) / 10)`` agents and ``T = max(10, (n-1)//10)``
  tools.

At ``n = 1`` the only rule is the grant (agent 0, tool 0). ``decide`` is the reference
evaluator: every engine must give its answer on every sample request (``sample_requests``), and
the benchmark checks they all do before it times anything.

How each engine expresses the same rules (the renderers below):

* **Cedar** (Warden, cedarpy): one ``permit (principal == Agent::…, action == Action::"tool",
  resource == Tool::"tool")`` per grant and one ``forbid … when { context.arguments.amount >
  1000 }``. The *indexed* form is the agent's own grants plus the guard (what an application
  that keys policy sets by agent would load), the *full* form is every rule in one set.
* **pycasbin**: one ``p, <agent>, <tool>`` line per grant; the guard is a term of the matcher
  (casbin has no per-line conditions without ``eval``), so the model is an ACL with an amount
  limit.
* **AGT** (``agent_os.policies.PolicyEvaluator``): one rule per grant, ``grant eq
  "<agent>|<tool>"`` (its conditions test one context field each, so the request carries the pair
  as one field), action ``allow``; the guard is ``amount gt 1000``, action ``deny``, at a higher
  priority; default action ``deny``.
* **Cerbos**: one resource policy for kind ``tool``; per grant a rule ``actions: [<tool>]``,
  ``EFFECT_ALLOW``, condition ``request.principal.id == "<agent>"``; the guard is an
  ``EFFECT_DENY`` rule on every action (Cerbos: a deny beside an allow for the same role wins).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property

TRUST_DOMAIN = "example.org"
GUARD_LIMIT = 1000
TOOLS_PER_AGENT = 10
SIZES = (1, 100, 1000, 10_000)
QUICK_SIZES = (1, 100)


def agent_name(a: int) -> str:
    return f"agent{a:05d}"


def agent_id(a: int) -> str:
    """The principal id every engine uses: the agent's SPIFFE ID (Warden's agent principal)."""
    return f"spiffe://{TRUST_DOMAIN}/agent/{agent_name(a)}"


def tool(t: int) -> str:
    return f"tool{t}.call"


@dataclass(frozen=True)
class Request:
    agent: int
    tool: int
    amount: int

    def label(self) -> str:
        return f"{agent_name(self.agent)} {tool(self.tool)} amount={self.amount}"


@dataclass(frozen=True)
class RuleSet:
    size: int

    @property
    def guard(self) -> bool:
        return self.size > 1

    @cached_property
    def n_tools(self) -> int:
        return max(TOOLS_PER_AGENT, (self.size - 1) // TOOLS_PER_AGENT)

    @cached_property
    def grants(self) -> tuple[tuple[int, int], ...]:
        """(agent, tool) pairs, ``size - 1`` of them (one at size 1)."""
        count = 1 if self.size == 1 else self.size - 1
        return tuple(
            (k // TOOLS_PER_AGENT, (k // TOOLS_PER_AGENT + k % TOOLS_PER_AGENT) % self.n_tools)
            for k in range(count)
        )

    @cached_property
    def grant_set(self) -> frozenset[tuple[int, int]]:
        return frozenset(self.grants)

    @property
    def n_agents(self) -> int:
        return self.grants[-1][0] + 1

    def tools_of(self, agent: int) -> list[int]:
        return [t for a, t in self.grants if a == agent]

    @property
    def n_rules(self) -> int:
        return len(self.grants) + (1 if self.guard else 0)


def decide(rules: RuleSet, req: Request) -> bool:
    """The reference decision: the guard denies, otherwise a grant allows, otherwise deny."""
    if rules.guard and req.amount > GUARD_LIMIT:
        return False
    return (req.agent, req.tool) in rules.grant_set


def timed_request(rules: RuleSet) -> Request:
    """The request every engine is timed on: the middle agent calling its first tool (allowed).
    The middle, because AGT and casbin scan their rules in order and stop at a match: agent 0's
    rule comes first and would make them look constant-time."""
    middle = rules.n_agents // 2
    return Request(middle, rules.tools_of(middle)[0], 20)


def sample_agents(rules: RuleSet) -> list[int]:
    return sorted({0, rules.n_agents // 2, rules.n_agents - 1})


def unknown_tool(rules: RuleSet) -> int:
    """A tool no rule grants (one past the last)."""
    return rules.n_tools


def sample_requests(rules: RuleSet) -> list[Request]:
    """Allowed and denied requests for the equality check: for agents at the start, middle and
    end, two granted tools, a tool no one holds, the next agent's tool and the guard."""
    out: list[Request] = []
    for a in sample_agents(rules):
        own = rules.tools_of(a)
        out += [Request(a, t, 20) for t in own[:2]]
        out.append(Request(a, own[0], GUARD_LIMIT + 1))  # the guard (allowed at size 1)
        out.append(Request(a, own[-1], GUARD_LIMIT))  # at the limit: allowed
        out.append(Request(a, unknown_tool(rules), 20))
        other = rules.tools_of((a + 1) % rules.n_agents)[-1]
        out.append(Request(a, other, 20))  # may or may not be one of a's own tools
    return out


def sample_tools(rules: RuleSet, agent: int) -> list[int]:
    """Every tool the sample asks ``agent`` about (Warden grants them all in the task scope, so
    its decision is Cedar's, not the scope check's)."""
    return sorted({r.tool for r in sample_requests(rules) if r.agent == agent})


# =========================================================================== Cedar

CEDAR_GUARD = (
    '@id("guard-amount")\n'
    "forbid (principal, action, resource)\n"
    "when { context has arguments && context.arguments has amount && "
    f"context.arguments.amount > {GUARD_LIMIT} }};\n"
)


def _cedar_grant(a: int, t: int) -> str:
    return (
        f'@id("grant-{a}-{t}")\n'
        f'permit (principal == Agent::"{agent_id(a)}", action == Action::"{tool(t)}", '
        f'resource == Tool::"{tool(t)}");\n'
    )


def cedar_text(rules: RuleSet) -> str:
    """Every rule in one policy set."""
    parts = [CEDAR_GUARD] if rules.guard else []
    parts += [_cedar_grant(a, t) for a, t in rules.grants]
    return "\n".join(parts)


def cedar_files(rules: RuleSet, per_file: int = 1000) -> dict[str, str]:
    """The full set split over files of ``per_file`` policies (a Warden policy folder)."""
    parts = [CEDAR_GUARD] if rules.guard else []
    parts += [_cedar_grant(a, t) for a, t in rules.grants]
    return {
        f"rules{start // per_file:04d}.cedar": "\n".join(parts[start : start + per_file])
        for start in range(0, len(parts), per_file)
    }


def cedar_agent_text(rules: RuleSet, agent: int) -> str:
    """The indexed set for one agent: its grants and the guard."""
    parts = [CEDAR_GUARD] if rules.guard else []
    parts += [_cedar_grant(agent, t) for t in rules.tools_of(agent)]
    return "\n".join(parts)


def cedar_request(req: Request) -> dict[str, object]:
    """The minimal cedarpy request: principal, action, resource and the call's arguments."""
    return {
        "principal": {"type": "Agent", "id": agent_id(req.agent)},
        "action": {"type": "Action", "id": tool(req.tool)},
        "resource": {"type": "Tool", "id": tool(req.tool)},
        "context": {"arguments": {"amount": req.amount}},
    }


# =========================================================================== casbin

CASBIN_MODEL = """\
[request_definition]
r = sub, act, amount

[policy_definition]
p = sub, act

[policy_effect]
e = some(where (p.eft == allow))

[matchers]
m = r.sub == p.sub && r.act == p.act{guard}
"""


def casbin_model(rules: RuleSet) -> str:
    return CASBIN_MODEL.format(guard=f" && r.amount <= {GUARD_LIMIT}" if rules.guard else "")


def casbin_policy_csv(rules: RuleSet) -> str:
    return "".join(f"p, {agent_id(a)}, {tool(t)}\n" for a, t in rules.grants)


def casbin_args(req: Request) -> tuple[str, str, int]:
    return (agent_id(req.agent), tool(req.tool), req.amount)


# =========================================================================== AGT


def agt_document(rules: RuleSet) -> dict[str, object]:
    """Keyword arguments for ``agent_os.policies.schema.PolicyDocument``."""
    rule_list: list[dict[str, object]] = []
    if rules.guard:
        rule_list.append(
            {
                "name": "guard-amount",
                "condition": {"field": "amount", "operator": "gt", "value": GUARD_LIMIT},
                "action": "deny",
                "priority": 100,
            }
        )
    rule_list += [
        {
            "name": f"grant-{a}-{t}",
            "condition": {"field": "grant", "operator": "eq", "value": f"{agent_id(a)}|{tool(t)}"},
            "action": "allow",
            "priority": 0,
        }
        for a, t in rules.grants
    ]
    return {
        "name": f"bench-{rules.size}",
        "rules": rule_list,
        "defaults": {"action": "deny"},
    }


def agt_context(req: Request) -> dict[str, object]:
    return {
        "grant": f"{agent_id(req.agent)}|{tool(req.tool)}",
        "agent_id": agent_id(req.agent),
        "tool_name": tool(req.tool),
        "amount": req.amount,
    }


# =========================================================================== Cerbos


def cerbos_policy(rules: RuleSet) -> str:
    """The resource policy for kind ``tool`` as a YAML document (JSON is YAML)."""
    cerbos_rules: list[dict[str, object]] = []
    if rules.guard:
        cerbos_rules.append(
            {
                "name": "guard-amount",
                "actions": ["*"],
                "effect": "EFFECT_DENY",
                "roles": ["*"],
                "condition": {"match": {"expr": f"request.resource.attr.amount > {GUARD_LIMIT}"}},
            }
        )
    cerbos_rules += [
        {
            "name": f"grant-{a}-{t}",
            "actions": [tool(t)],
            "effect": "EFFECT_ALLOW",
            "roles": ["*"],
            "condition": {"match": {"expr": f'request.principal.id == "{agent_id(a)}"'}},
        }
        for a, t in rules.grants
    ]
    doc = {
        "apiVersion": "api.cerbos.dev/v1",
        "resourcePolicy": {"resource": "tool", "version": "default", "rules": cerbos_rules},
    }
    return json.dumps(doc)


def cerbos_check(req: Request, request_id: str = "bench") -> dict[str, object]:
    """The body of ``POST /api/check/resources`` for one call."""
    return {
        "requestId": request_id,
        "principal": {"id": agent_id(req.agent), "roles": ["agent"]},
        "resources": [
            {
                "actions": [tool(req.tool)],
                "resource": {"kind": "tool", "id": tool(req.tool), "attr": {"amount": req.amount}},
            }
        ],
    }


def cerbos_allowed(answer: dict[str, object], req: Request) -> bool:
    results = answer.get("results")
    if not isinstance(results, list) or len(results) != 1:
        raise ValueError(f"unexpected Cerbos answer: {answer!r:.300}")
    actions = results[0].get("actions", {})
    return bool(actions.get(tool(req.tool)) == "EFFECT_ALLOW")


# =========================================================================== Warden over AuthZEN


def authzen_evaluation(req: Request, token: str) -> dict[str, object]:
    """The body of ``POST /access/v1/evaluation`` in agent mode."""
    return {
        "subject": {"type": "agent", "id": agent_id(req.agent), "properties": {"token": token}},
        "action": {"name": "tools/call"},
        "resource": {"type": "tool", "id": tool(req.tool)},
        "context": {"arguments": {"amount": req.amount}},
    }

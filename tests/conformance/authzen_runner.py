"""AuthZEN 1.0 conformance: the certification scenario and the interop vectors as data.

Transport-agnostic: every check takes ``post(path, body) -> dict`` that sends a JSON body
to an AuthZEN endpoint and returns the decoded 200 response, or raises
``RequestRejectedError(status, message)`` for any non-200 answer. ``tests/conformance``
runs it in-process (``inprocess.make_post``); an HTTP test can pass a ``post`` built on
``httpx`` and reuse everything here::

    def post(path, body):
        r = client.post(path, json=body)
        if r.status_code != 200:
            raise RequestRejectedError(r.status_code, r.text)
        return r.json()

    for case in certification_cases():
        check(case, post)

Sources: the certification scenario (openid/authzen
``certification/authorization-api-1_0-scenario.md``, transcribed below with its test ids)
and the interop vector files under ``shared/conformance/authzen`` (see its README).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

Post = Callable[[str, Any], dict[str, Any]]

EVALUATION = "/access/v1/evaluation"
EVALUATIONS = "/access/v1/evaluations"
SEARCH = "/access/v1/search/"

FIXTURES = Path(__file__).parent / "fixtures"


class RequestRejectedError(Exception):
    """A non-200 answer from the PDP."""

    def __init__(self, status: int, message: str = "") -> None:
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message


@dataclass(frozen=True)
class Vector:
    """One request and what the answer must be.

    ``expect`` kinds: ``decision`` (bool), ``decisions`` (list of bool, or ``None`` for
    "any boolean"; length and order must match), ``rejected`` (HTTP status), ``results``
    (exact set), ``includes`` (subset that must appear), ``repeat`` (same decision every
    time, ``value`` = the decision).
    """

    id: str
    scenario: str  # fixture folder under tests/conformance/fixtures
    path: str
    body: Any
    expect: str
    value: Any = None
    search_type: str | None = field(default=None)


# =========================================================================== checks


def check(vector: Vector, post: Post) -> None:
    """Send ``vector`` through ``post`` and assert the answer; AssertionError says why."""
    label = f"{vector.id} {vector.path}"
    if vector.expect == "rejected":
        try:
            answer = post(vector.path, vector.body)
        except RequestRejectedError as exc:
            assert exc.status == vector.value, f"{label}: expected {vector.value}, got {exc}"
            return
        raise AssertionError(f"{label}: expected HTTP {vector.value}, got 200 {answer!r}")

    if vector.expect == "repeat":
        seen = [_decision(label, post(vector.path, vector.body)) for _ in range(3)]
        assert seen == [vector.value] * 3, f"{label}: decisions {seen}"
        return

    answer = post(vector.path, vector.body)
    assert isinstance(answer, dict), f"{label}: answer is not an object: {answer!r}"
    if vector.expect == "decision":
        got = _decision(label, answer)
        assert got is vector.value, f"{label}: expected decision {vector.value}, got {got}"
    elif vector.expect == "decisions":
        items = answer.get("evaluations")
        assert isinstance(items, list), f"{label}: no `evaluations` array in {answer!r}"
        got = [_decision(label, item) for item in items]
        assert len(got) == len(vector.value), f"{label}: expected {vector.value}, got {got}"
        for want, have in zip(vector.value, got, strict=True):
            assert want is None or want is have, f"{label}: expected {vector.value}, got {got}"
    elif vector.expect in ("results", "includes"):
        results = _results(label, answer, vector)
        want = {_key(r) for r in vector.value}
        if vector.expect == "results":
            assert results == want, f"{label}: expected {sorted(want)}, got {sorted(results)}"
        else:
            missing = want - results
            assert not missing, f"{label}: missing {sorted(missing)} in {sorted(results)}"
    else:  # pragma: no cover - a typo in the tables
        raise AssertionError(f"{label}: unknown expectation {vector.expect}")


def _decision(label: str, answer: Any) -> bool:
    assert isinstance(answer, dict), f"{label}: decision is not an object: {answer!r}"
    decision = answer.get("decision")
    assert isinstance(decision, bool), f"{label}: `decision` is not a boolean: {answer!r}"
    context = answer.get("context")
    assert context is None or isinstance(context, dict), f"{label}: `context` is not an object"
    return decision


def _key(result: dict[str, Any]) -> tuple[str, ...]:
    if "name" in result and "type" not in result:
        return (str(result["name"]),)
    return (str(result["type"]), str(result["id"]))


def _results(label: str, answer: dict[str, Any], vector: Vector) -> set[tuple[str, ...]]:
    results = answer.get("results")
    assert isinstance(results, list), f"{label}: no `results` array in {answer!r}"
    page = answer.get("page")
    if page is not None:
        assert isinstance(page, dict), f"{label}: `page` is not an object"
        token = page.get("next_token")
        assert isinstance(token, str), f"{label}: `page.next_token` is not a string"
        assert token == "", f"{label}: results were paginated"
    keys: set[tuple[str, ...]] = set()
    for item in results:
        assert isinstance(item, dict), f"{label}: result is not an object: {item!r}"
        if vector.path.endswith("/action"):
            assert isinstance(item.get("name"), str), f"{label}: result without `name`: {item!r}"
        else:
            assert isinstance(item.get("type"), str) and isinstance(item.get("id"), str), (
                f"{label}: result without `type`/`id`: {item!r}"
            )
            if vector.search_type is not None:
                assert item["type"] == vector.search_type, f"{label}: wrong type in {item!r}"
        keys.add(_key(item))
    return keys


# =========================================================================== certification


def _s(subject: str, **props: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "user", "id": subject}
    if props:
        out["properties"] = props
    return out


def _r(record: str | None, **props: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "record"}
    if record is not None:
        out["id"] = record
    if props:
        out["properties"] = props
    return out


def _a(name: str, **props: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"name": name}
    if props:
        out["properties"] = props
    return out


def certification_cases() -> list[Vector]:
    """The AuthZEN 1.0 certification scenario (decision, batch and search semantics).

    Transport-level tests (content type, malformed JSON, empty body, X-Request-ID) belong
    to the HTTP layer and are not here.
    """
    cert = "certification"
    ok = {"subject": _s("alice"), "action": _a("read"), "resource": _r("record-1")}
    v: list[Vector] = []

    def add(tid: str, path: str, body: Any, expect: str, value: Any = None, **kw: Any) -> None:
        v.append(Vector(tid, cert, path, body, expect, value, **kw))

    # -- Basic: fixture rules (§c-1-4) and request acceptance (§c-2-2)
    add("c-2-2-1", EVALUATION, ok, "decision", True)
    add(
        "c-2-2-2",
        EVALUATION,
        {**ok, "subject": _s("bob"), "action": _a("write")},
        "decision",
        False,
    )
    add("c-1-4-2", EVALUATION, {**ok, "action": _a("write")}, "decision", True)
    add("c-1-4-3", EVALUATION, {**ok, "subject": _s("bob")}, "decision", True)
    add(
        "c-2-2-3",
        EVALUATION,
        {**ok, "context": {"time": "2025-06-27T18:03-07:00", "ip": "192.168.1.1"}},
        "decision",
        True,
    )
    archived = _r("record-2", status="archived")
    add(
        "c-2-2-4",
        EVALUATION,
        {"subject": _s("alice"), "action": _a("write"), "resource": archived},
        "decision",
        False,
    )
    add(
        "c-2-2-5",
        EVALUATION,
        {"subject": _s("bob", role="admin"), "action": _a("write"), "resource": archived},
        "decision",
        True,
    )
    add("c-2-2-6", EVALUATION, {**ok, "action": _a("delete", soft=True)}, "decision", True)
    add("c-2-2-7", EVALUATION, {**ok, "action": _a("delete", soft=False)}, "decision", False)
    add(
        "c-2-2-8",
        EVALUATION,
        {
            "subject": _s("alice", department="Sales", role="manager"),
            "action": _a("read", method="GET"),
            "resource": _r("record-1", status="active", owner="bob"),
        },
        "decision",
        True,
    )
    add(
        "c-2-2-9",
        EVALUATION,
        {**ok, "foo": "bar", "futureField": {"nested": True}},
        "decision",
        True,
    )
    add("c-2-6", EVALUATION, ok, "repeat", True)

    # -- Basic: errors (§c-2-4)
    for tid, body in (
        ("c-2-4-1-subject", {"action": _a("read"), "resource": _r("record-1")}),
        ("c-2-4-1-action", {"subject": _s("alice"), "resource": _r("record-1")}),
        ("c-2-4-1-resource", {"subject": _s("alice"), "action": _a("read")}),
        ("c-2-4-2-subject-type", {**ok, "subject": {"id": "alice"}}),
        ("c-2-4-2-subject-id", {**ok, "subject": {"type": "user"}}),
        ("c-2-4-2-action-name", {**ok, "action": {}}),
        ("c-2-4-2-resource-type", {**ok, "resource": {"id": "record-1"}}),
        ("c-2-4-2-resource-id", {**ok, "resource": {"type": "record"}}),
        ("c-2-4-6-subject-string", {**ok, "subject": "alice"}),
        ("c-2-4-6-name-number", {**ok, "action": {"name": 123}}),
        ("c-2-4-5-empty-object", {}),
        ("c-2-4-4-not-an-object", ["subject"]),
    ):
        add(tid, EVALUATION, body, "rejected", 400)

    # -- Batch (§c-3)
    add(
        "c-3-2-1",
        EVALUATIONS,
        {
            "subject": _s("alice"),
            "action": _a("read"),
            "evaluations": [{"resource": _r("record-1")}, {"resource": _r("record-2")}],
        },
        "decisions",
        [None, None],
    )
    add(
        "c-3-2-2",
        EVALUATIONS,
        {
            "subject": _s("bob"),
            "resource": _r("record-1"),
            "evaluations": [{"action": _a("read")}, {"action": _a("write")}],
        },
        "decisions",
        [True, False],
    )
    add(
        "c-3-2-3",
        EVALUATIONS,
        {
            "subject": _s("alice"),
            "action": _a("write"),
            "evaluations": [
                {"resource": _r("record-1", status="active")},
                {"resource": _r("record-2", status="archived")},
            ],
        },
        "decisions",
        [True, False],
    )
    add(
        "c-3-2-4",
        EVALUATIONS,
        {
            "action": _a("write"),
            "resource": archived,
            "evaluations": [{"subject": _s("alice")}, {"subject": _s("bob", role="admin")}],
        },
        "decisions",
        [False, True],
    )
    add(
        "c-3-2-5",
        EVALUATIONS,
        {
            "evaluations": [
                ok,
                {"subject": _s("bob"), "action": _a("write"), "resource": _r("record-1")},
            ]
        },
        "decisions",
        [True, False],
    )
    add(
        "c-3-2-6",
        EVALUATIONS,
        {
            "subject": _s("alice"),
            "action": _a("read"),
            "context": {"time": "2025-06-27T18:03-07:00"},
            "evaluations": [
                {"resource": _r("record-1")},
                {
                    "resource": _r("record-2"),
                    "context": {"time": "2025-06-27T19:00-07:00", "source": "batch-override"},
                },
            ],
        },
        "decisions",
        [None, None],
    )
    add(
        "c-3-2-7",
        EVALUATIONS,
        {
            "subject": _s("alice"),
            "action": _a("write"),
            "resource": {"type": "record"},
            "evaluations": [
                {"resource": {"id": "record-1", "properties": {"status": "active"}}},
                {"resource": archived},
            ],
        },
        "decisions",
        [True, False],
    )
    add(
        "c-3-2-7-no-deep-merge",
        EVALUATIONS,
        {
            # A per-item resource replaces the default wholesale: the default's
            # `status: archived` must not leak into the item (which would deny).
            "subject": _s("alice"),
            "action": _a("write"),
            "resource": _r("record-9", status="archived"),
            "evaluations": [{"resource": _r("record-9")}, {}],
        },
        "decisions",
        [True, False],
    )
    add(
        "c-3-4-1",
        EVALUATIONS,
        {
            "subject": _s("alice"),
            "action": _a("read"),
            "evaluations": [{"resource": _r("record-1")}, {}],
        },
        "decisions",
        [True, False],
    )
    add("c-3-4-2", EVALUATIONS, ok, "decision", True)
    add("c-3-4-3", EVALUATIONS, {**ok, "evaluations": []}, "decision", True)
    deny_then_more = [
        {"resource": _r("record-1")},  # alice write record-1: permit
        {"resource": archived},  # deny
        {"resource": _r("record-1")},
    ]
    add(
        "semantic-deny-on-first-deny",
        EVALUATIONS,
        {
            "subject": _s("alice"),
            "action": _a("write"),
            "options": {"evaluations_semantic": "deny_on_first_deny"},
            "evaluations": deny_then_more,
        },
        "decisions",
        [True, False],
    )
    add(
        "semantic-permit-on-first-permit",
        EVALUATIONS,
        {
            "subject": _s("alice"),
            "action": _a("write"),
            "options": {"evaluations_semantic": "permit_on_first_permit"},
            "evaluations": [{"resource": archived}, *deny_then_more],
        },
        "decisions",
        [False, True],
    )
    add(
        "semantic-unknown",
        EVALUATIONS,
        {**ok, "options": {"evaluations_semantic": "maybe"}, "evaluations": [{}]},
        "rejected",
        400,
    )

    # -- Search (§c-4)
    subj = SEARCH + "subject"
    res = SEARCH + "resource"
    act = SEARCH + "action"
    add(
        "c-4-2-1",
        subj,
        {"subject": {"type": "user"}, "action": _a("read"), "resource": _r("record-1")},
        "includes",
        [_s("alice"), _s("bob")],
        search_type="user",
    )
    add(
        "c-4-2-1-exact",
        subj,
        {"subject": {"type": "user"}, "action": _a("read"), "resource": _r("record-1")},
        "results",
        [_s("alice"), _s("bob")],
        search_type="user",
    )
    add(
        "c-4-2-2",
        subj,
        {
            "subject": {"type": "user"},
            "action": _a("read"),
            "resource": _r("record-1"),
            "context": {"time": "2025-06-27T18:03-07:00"},
        },
        "results",
        [_s("alice"), _s("bob")],
        search_type="user",
    )
    add(
        "c-4-2-3-id-ignored",
        subj,
        {
            "subject": {"type": "user", "id": "alice"},
            "action": _a("read"),
            "resource": _r("record-1"),
        },
        "results",
        [_s("alice"), _s("bob")],
        search_type="user",
    )
    add(
        "c-4-2-4",
        subj,
        {"subject": {"type": "user"}, "action": _a("write"), "resource": archived},
        "includes",
        [_s("bob")],
        search_type="user",
    )
    add(
        "c-4-3-1",
        res,
        {"subject": _s("alice"), "action": _a("read"), "resource": {"type": "record"}},
        "includes",
        [_r("record-1")],
        search_type="record",
    )
    add(
        "c-4-3-2-id-ignored",
        res,
        {"subject": _s("alice"), "action": _a("write"), "resource": _r("record-2")},
        "results",
        [_r("record-1")],
        search_type="record",
    )
    add(
        "c-4-3-3",
        res,
        {"subject": _s("bob", role="admin"), "action": _a("write"), "resource": {"type": "record"}},
        "includes",
        [_r("record-2")],
        search_type="record",
    )
    add(
        "c-4-4-1",
        act,
        {"subject": _s("alice"), "resource": _r("record-1")},
        "includes",
        [{"name": "read"}, {"name": "write"}],
    )
    add(
        "c-4-4-2",
        act,
        {"subject": _s("alice"), "resource": _r("record-1"), "context": {"ip": "10.0.0.1"}},
        "includes",
        [{"name": "read"}, {"name": "write"}],
    )
    add(
        "c-4-4-3",
        act,
        {"subject": _s("bob", role="admin"), "resource": archived},
        "includes",
        [{"name": "write"}],
    )
    add(
        "c-4-5-1",
        subj,
        {
            "subject": {"type": "user"},
            "action": _a("read"),
            "resource": _r("record-1"),
            "page": {"limit": 1},
        },
        "includes",
        [_s("alice"), _s("bob")],
        search_type="user",
    )
    add(
        "c-4-6-1",
        act,
        {"subject": _s("nonexistent-user"), "resource": _r("record-1")},
        "results",
        [],
    )
    add(
        "c-4-6-2",
        subj,
        {"subject": {"type": "spaceship"}, "action": _a("read"), "resource": _r("record-1")},
        "results",
        [],
    )
    add(
        "c-4-6-2-resource",
        res,
        {"subject": _s("alice"), "action": _a("read"), "resource": {"type": "spaceship"}},
        "results",
        [],
    )
    for tid, path, body in (
        ("c-4-7-1-subject", subj, {"subject": {"type": "user"}, "resource": _r("record-1")}),
        ("c-4-7-1-resource", res, {"action": _a("read"), "resource": {"type": "record"}}),
        ("c-4-7-1-action", act, {"subject": _s("alice")}),
        (
            "c-4-7-2-subject",
            subj,
            {"subject": {"type": "user"}, "action": _a("read"), "resource": {"type": "record"}},
        ),
        (
            "c-4-7-2-resource",
            res,
            {"subject": {"type": "user"}, "action": _a("read"), "resource": {"type": "record"}},
        ),
    ):
        add(tid, path, body, "rejected", 400)
    return v


# =========================================================================== interop vectors


def vectors_dir() -> Path | None:
    """``shared/conformance/authzen`` next to the repository (``WARDEN_AUTHZEN_VECTORS`` wins)."""
    override = os.environ.get("WARDEN_AUTHZEN_VECTORS")
    candidates = [Path(override)] if override else []
    repo = Path(__file__).resolve().parents[2]
    candidates += [
        repo.parent / "shared" / "conformance" / "authzen",
        repo / "shared" / "conformance" / "authzen",
    ]
    for candidate in candidates:
        if (candidate / "todo").is_dir():
            return candidate
    return None


def _old_todo_shape(request: dict[str, Any]) -> dict[str, Any]:
    """Pre-1.0 todo payloads (``-00``, ``decisions.json``) to the 1.0 shape.

    Those drafts put the user's email in ``subject.id`` and the opaque identity in
    ``subject.identity``, and resource attributes (``ownerID``, ``userID``) directly on the
    resource instead of under ``properties``. The questions asked are the same.
    """
    out = dict(request)
    subject = dict(request["subject"])
    if "identity" in subject:
        subject["id"] = subject.pop("identity")
    out["subject"] = subject
    resource = dict(request["resource"])
    extra = {k: resource.pop(k) for k in list(resource) if k not in ("type", "id", "properties")}
    if extra:
        resource["properties"] = {**extra, **(resource.get("properties") or {})}
    out["resource"] = resource
    return out


def _load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def interop_vectors(base: Path) -> Iterator[Vector]:
    """Every vector of every interop file under ``base``."""
    todo = base / "todo"
    for name, adapt in (
        ("decisions-authorization-api-1_0-02.json", False),
        ("decisions-authorization-api-1_0-01.json", False),
        ("decisions-authorization-api-1_0-00.json", True),
        ("decisions.json", True),
    ):
        data = _load(todo / name)
        for key in ("evaluation", "decisions"):
            for i, entry in enumerate(data.get(key, [])):
                request = _old_todo_shape(entry["request"]) if adapt else entry["request"]
                yield Vector(
                    f"todo/{name}:{key}[{i}]",
                    "todo",
                    EVALUATION,
                    request,
                    "decision",
                    entry["expected"],
                )
        for i, entry in enumerate(data.get("evaluations", [])):
            want = [item["decision"] for item in entry["expected"]]
            yield Vector(
                f"todo/{name}:evaluations[{i}]",
                "todo",
                EVALUATIONS,
                entry["request"],
                "decisions",
                want,
            )

    gateway = _load(base / "api-gateway" / "decisions.json")
    for i, entry in enumerate(gateway["evaluation"]):
        yield Vector(
            f"api-gateway/decisions.json:evaluation[{i}]",
            "api-gateway",
            EVALUATION,
            entry["request"],
            "decision",
            entry["expected"],
        )

    for kind in ("subject", "resource", "action"):
        data = _load(base / "search" / kind / "results.json")
        for i, entry in enumerate(data["evaluation"]):
            searched = entry["request"].get(kind, {}) if kind != "action" else {}
            yield Vector(
                f"search/{kind}/results.json[{i}]",
                "search",
                SEARCH + kind,
                entry["request"],
                "results",
                entry["expected"]["results"],
                search_type=searched.get("type"),
            )

    data = _load(base / "idp" / "results.json")
    for i, entry in enumerate(data["search"]):
        yield Vector(
            f"idp/results.json[{i}]",
            "idp",
            SEARCH + "resource",
            entry["request"],
            "results",
            entry["expected"]["results"],
            search_type=entry["request"]["resource"]["type"],
        )

"""The Store contract, run against SQLite and PostgreSQL (see conftest.py)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from warden.core.audit import GENESIS_HASH, verify_chain
from warden.core.model import (
    Agent,
    AgentStatus,
    AuditDraft,
    Credential,
    Human,
    HumanStatus,
    RiskTier,
    Task,
    TaskStatus,
)
from warden.errors import ConflictError, InvalidParameterError, NotFoundError
from warden.storage.sql import SQLStore
from warden.storage.sql.tables import metadata

if TYPE_CHECKING:
    from .conftest import Backend

T0 = 1_800_000_000.123456


def agent(name: str, **kw: Any) -> Agent:
    fields: dict[str, Any] = {
        "name": name,
        "spiffe_id": f"spiffe://example.org/agents/{name}",
        "owner": "alice@example.org",
        "purpose": "reads tickets",
        "risk_tier": RiskTier.MEDIUM,
        "entitlements": ("tickets.read", "tickets.comment"),
        "groups": ("support",),
        "created_at": T0,
        "updated_at": T0,
    }
    fields.update(kw)
    return Agent(**fields)


def task(task_id: str, agent_name: str = "bot", *, created_at: float = T0, **kw: Any) -> Task:
    fields: dict[str, Any] = {
        "id": task_id,
        "agent_name": agent_name,
        "spiffe_id": f"spiffe://example.org/agents/{agent_name}",
        "purpose": "triage",
        "category": "support",
        "requested_scope": ("tickets.read", "tickets.write"),
        "granted_scope": ("tickets.read",),
        "audience": ("https://tickets.example.org",),
        "created_at": created_at,
        "expires_at": created_at + 900,
        "attestation": {"method": "jwt-svid", "claims": {"sub": "x", "n": [1, 2.5, None]}},
    }
    fields.update(kw)
    return Task(**fields)


def cred(jti: str, task_id: str, *, issued_at: float = T0, ttl: float = 300) -> Credential:
    return Credential(
        jti=jti,
        task_id=task_id,
        agent_name="bot",
        issued_at=issued_at,
        expires_at=issued_at + ttl,
        kid="k1",
    )


def draft(n: int | str, **kw: Any) -> AuditDraft:
    fields: dict[str, Any] = {
        "ts": T0 + (n if isinstance(n, int) else 0) / 1000,
        "type": "authz.decision",
        "actor": "agent:bot",
        "data": {"n": n, "allowed": True, "scope": ["a", "b"], "note": "naïve ✓"},
        "agent": "bot",
        "task_id": "t-1",
        "decision_id": f"d-{n}",
    }
    fields.update(kw)
    return AuditDraft(**fields)


# -- lifecycle -------------------------------------------------------------------------------


def test_migrate_is_idempotent(store: SQLStore) -> None:
    store.create_agent(agent("bot"))
    store.append_audit([draft(1)])
    store.migrate()
    store.migrate()
    assert store.fetch_agent("bot").name == "bot"
    assert store.audit_head()[0] == 1


def test_concurrent_migrate_on_a_fresh_database(backend: Backend) -> None:
    stores = [backend.open(), backend.open()]
    errors: list[BaseException] = []

    def run(s: SQLStore) -> None:
        try:
            s.migrate()
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(s,)) for s in stores]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert stores[0].audit_head() == (0, GENESIS_HASH)


def test_migrations_match_tables(store: SQLStore) -> None:
    with store.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        diffs = compare_metadata(context, metadata)
    assert diffs == []


# -- humans ----------------------------------------------------------------------------------


def test_humans_upsert_fetch_update(store: SQLStore) -> None:
    alice = Human(id="alice@example.org", display_name="Alice", created_at=T0)
    assert store.upsert_human(alice) == alice
    # an existing row is returned unchanged
    again = store.upsert_human(replace(alice, display_name="Other", created_at=T0 + 5))
    assert again == alice
    store.update_human(replace(alice, status=HumanStatus.INACTIVE, display_name="A."))
    assert store.fetch_human(alice.id) == replace(
        alice, status=HumanStatus.INACTIVE, display_name="A."
    )
    with pytest.raises(NotFoundError):
        store.fetch_human("bob@example.org")
    with pytest.raises(NotFoundError):
        store.update_human(Human(id="bob@example.org"))


# -- agents ----------------------------------------------------------------------------------


def test_agents_create_fetch_update(store: SQLStore) -> None:
    bot = agent("bot")
    store.create_agent(bot)
    assert store.fetch_agent("bot") == bot
    assert store.fetch_agent_by_spiffe_id(bot.spiffe_id) == bot
    changed = replace(
        bot,
        status=AgentStatus.SUSPENDED,
        entitlements=("x",),
        groups=(),
        risk_tier=RiskTier.CRITICAL,
        updated_at=T0 + 1,
    )
    store.update_agent(changed)
    assert store.fetch_agent("bot") == changed
    with pytest.raises(NotFoundError):
        store.fetch_agent("nobody")
    with pytest.raises(NotFoundError):
        store.fetch_agent_by_spiffe_id("spiffe://example.org/agents/nobody")
    with pytest.raises(NotFoundError):
        store.update_agent(agent("nobody"))


def test_agent_name_and_spiffe_id_are_unique(store: SQLStore) -> None:
    store.create_agent(agent("bot"))
    store.create_agent(agent("other"))
    store.update_agent(replace(store.fetch_agent("bot"), status=AgentStatus.DECOMMISSIONED))
    with pytest.raises(ConflictError, match="`bot`"):
        store.create_agent(agent("bot", spiffe_id="spiffe://example.org/fresh"))
    with pytest.raises(ConflictError, match="SPIFFE ID"):
        store.create_agent(agent("fresh", spiffe_id=agent("bot").spiffe_id))
    with pytest.raises(ConflictError):
        store.update_agent(agent("other", spiffe_id=agent("bot").spiffe_id))
    assert store.fetch_agent("other") == agent("other")


def test_list_agents_pages_by_name_and_filters(store: SQLStore) -> None:
    names = [f"agent-{i:02d}" for i in range(7)]
    for i, name in enumerate(reversed(names)):
        store.create_agent(
            agent(
                name,
                owner="bob@example.org" if i % 2 else "alice@example.org",
                status=AgentStatus.SUSPENDED if i == 0 else AgentStatus.ACTIVE,
            )
        )
    seen: list[str] = []
    after: str | None = None
    while True:
        page = store.list_agents(after=after, limit=3)
        if not page:
            break
        assert len(page) <= 3
        seen += [a.name for a in page]
        after = page[-1].name
    assert seen == names
    assert [a.name for a in store.list_agents(status=AgentStatus.SUSPENDED)] == ["agent-06"]
    bobs = store.list_agents(owner="bob@example.org")
    assert [a.name for a in bobs] == ["agent-01", "agent-03", "agent-05"]
    assert store.list_agents(owner="bob@example.org", after="agent-01", limit=1)[0].name == (
        "agent-03"
    )
    assert store.list_agents(limit=0) == []


# -- operators and modes ----------------------------------------------------------------------


# -- tasks and credentials -----------------------------------------------------------------


def test_create_and_fetch_task(store: SQLStore) -> None:
    t = task("t-1", parent_id=None, on_behalf_of="alice@example.org")
    c = cred("j-1", "t-1")
    store.create_task(t, c)
    assert store.fetch_task("t-1") == t
    assert store.list_credentials("t-1") == [c]
    store.create_credential(cred("j-2", "t-1", issued_at=T0 + 60))
    assert [x.jti for x in store.list_credentials("t-1")] == ["j-1", "j-2"]
    with pytest.raises(ConflictError):
        store.create_task(t, cred("j-9", "t-1"))
    with pytest.raises(ConflictError):
        store.create_credential(cred("j-1", "t-1"))
    with pytest.raises(NotFoundError):
        store.create_credential(cred("j-3", "missing"))
    with pytest.raises(NotFoundError):
        store.fetch_task("missing")
    # a failed create_task leaves nothing behind
    with pytest.raises(ConflictError):
        store.create_task(task("t-2"), cred("j-1", "t-2"))
    with pytest.raises(NotFoundError):
        store.fetch_task("t-2")


def test_list_tasks_newest_first_with_keyset_paging(store: SQLStore) -> None:
    # several tasks share a created_at, so the id breaks ties
    expected: list[str] = []
    for i in range(9):
        created = T0 + (i // 3)
        tid = f"t-{i}"
        store.create_task(
            task(tid, "bot" if i % 2 else "other", created_at=created), cred(f"j-{i}", tid)
        )
        expected.append(tid)
    expected.sort(key=lambda tid: (T0 + int(tid[2:]) // 3, tid), reverse=True)

    seen: list[str] = []
    after: str | None = None
    while True:
        page = store.list_tasks(after=after, limit=2)
        if not page:
            break
        seen += [t.id for t in page]
        after = page[-1].id
    assert seen == expected

    bots = [t.id for t in store.list_tasks(agent="bot")]
    assert bots == [tid for tid in expected if int(tid[2:]) % 2]
    first, second = store.list_tasks(agent="bot", limit=1), None
    second = store.list_tasks(agent="bot", after=first[0].id, limit=1)
    assert [first[0].id, second[0].id] == bots[:2]

    store.end_task("t-4", TaskStatus.COMPLETED, ended_at=T0 + 10, reason="done")
    assert [t.id for t in store.list_tasks(status=TaskStatus.COMPLETED)] == ["t-4"]
    assert "t-4" not in {t.id for t in store.list_tasks(status=TaskStatus.ACTIVE)}
    assert {t.id for t in store.list_active_tasks()} == set(expected) - {"t-4"}
    with pytest.raises(InvalidParameterError):
        store.list_tasks(after="no-such-task")


def test_list_active_tasks_streams_beyond_one_batch(store: SQLStore) -> None:
    for i in range(25):
        tid = f"t-{i:02d}"
        store.create_task(task(tid), cred(f"j-{i}", tid))
    store.end_task("t-07", TaskStatus.FAILED, ended_at=T0 + 1, reason="crashed")
    ids = [t.id for t in store.list_active_tasks(batch=4)]
    assert ids == [f"t-{i:02d}" for i in range(25) if i != 7]
    assert [t.id for t in store.list_active_tasks()] == ids


def test_end_task_revokes_credentials_atomically(store: SQLStore) -> None:
    store.create_task(task("t-1"), cred("j-1", "t-1"))
    store.create_credential(cred("j-2", "t-1", issued_at=T0 + 30))
    store.create_task(task("t-2"), cred("j-other", "t-2"))

    ended, revoked = store.end_task(
        "t-1", TaskStatus.REVOKED, ended_at=T0 + 100, reason="operator asked"
    )
    assert ended.status is TaskStatus.REVOKED
    assert ended.ended_at == T0 + 100
    assert ended.end_reason == "operator asked"
    assert store.fetch_task("t-1") == ended
    assert [c.jti for c in revoked] == ["j-1", "j-2"]
    assert all(c.revoked_at == T0 + 100 for c in revoked)
    assert store.list_credentials("t-1") == revoked
    # the other task is untouched
    assert store.list_credentials("t-2")[0].revoked_at is None

    # a second end is a conflict and changes nothing
    with pytest.raises(ConflictError, match="`t-1`"):
        store.end_task("t-1", TaskStatus.COMPLETED, ended_at=T0 + 200, reason="again")
    assert store.fetch_task("t-1") == ended
    assert store.list_credentials("t-1") == revoked
    # and no new credential can be issued for an ended task
    with pytest.raises(ConflictError):
        store.create_credential(cred("j-3", "t-1", issued_at=T0 + 300))
    with pytest.raises(NotFoundError):
        store.end_task("missing", TaskStatus.FAILED, ended_at=T0, reason="x")


def test_end_task_keeps_earlier_revocations(store: SQLStore) -> None:
    store.create_task(task("t-1"), cred("j-1", "t-1"))
    with store.engine.begin() as conn:  # a credential revoked earlier (e.g. on rotation)
        conn.execute(sa.text("UPDATE credentials SET revoked_at = :t WHERE jti = 'j-1'"), {"t": T0})
    store.create_credential(cred("j-2", "t-1", issued_at=T0 + 1))
    _, revoked = store.end_task("t-1", TaskStatus.EXPIRED, ended_at=T0 + 50, reason="ttl")
    assert [c.jti for c in revoked] == ["j-2"]
    assert {c.jti: c.revoked_at for c in store.list_credentials("t-1")} == {
        "j-1": T0,
        "j-2": T0 + 50,
    }


def test_revoked_credentials_listed_until_they_expire(store: SQLStore) -> None:
    store.create_task(task("t-1"), cred("j-short", "t-1", ttl=60))
    store.create_credential(cred("j-long", "t-1", ttl=600))
    store.create_task(task("t-2"), cred("j-live", "t-2", ttl=600))
    store.end_task("t-1", TaskStatus.REVOKED, ended_at=T0 + 10, reason="compromised")

    at = store.list_revoked_credentials(not_expired_at=T0 + 10)
    assert [c.jti for c in at] == ["j-short", "j-long"]
    assert [c.jti for c in store.list_revoked_credentials(not_expired_at=T0 + 60)] == ["j-long"]
    assert store.list_revoked_credentials(not_expired_at=T0 + 600) == []


def test_times_round_trip_exactly(store: SQLStore) -> None:
    now = time.time() + 0.000_000_123
    t = task("t-1", created_at=now, expires_at=now + 1 / 3)
    store.create_task(t, cred("j-1", "t-1", issued_at=now))
    assert store.fetch_task("t-1").created_at == now
    assert store.fetch_task("t-1").expires_at == now + 1 / 3
    assert store.list_credentials("t-1")[0].issued_at == now


# -- audit -----------------------------------------------------------------------------------


def test_audit_chain_across_appends(store: SQLStore) -> None:
    assert store.audit_head() == (0, GENESIS_HASH)
    assert store.append_audit([]) == []
    first = store.append_audit([draft(1)])
    assert first[0].seq == 1
    assert first[0].prev_hash == GENESIS_HASH
    more = store.append_audit([draft(2), draft(3), draft(4)])
    assert [r.seq for r in more] == [2, 3, 4]
    assert more[0].prev_hash == first[0].hash
    last = store.append_audit([draft(5, agent=None, task_id=None, decision_id=None)])
    assert store.audit_head() == (5, last[0].hash)

    stored = list(store.iter_audit(batch=2))
    assert stored == first + more + last
    result = verify_chain(stored)
    assert result.ok
    assert result.records == 5
    assert result.head_hash == last[0].hash


def test_audit_records_round_trip_awkward_values(store: SQLStore) -> None:
    awkward = AuditDraft(
        ts=1_800_000_000,  # an int
        type="odd",
        actor="op:ü",
        data={"tuple": (1, 2), "nested": {"b": 1, "a": [None, 1.5, "\x00"]}, "e": ""},
    )
    (record,) = store.append_audit([awkward])
    (stored,) = store.list_audit()
    assert stored == record
    assert verify_chain(store.iter_audit()).ok


def test_append_audit_large_batch(store: SQLStore) -> None:
    store.append_audit([draft(0)])
    started = time.perf_counter()
    records = store.append_audit([draft(i) for i in range(1, 1001)])
    elapsed = time.perf_counter() - started
    assert [r.seq for r in records] == list(range(2, 1002))
    assert elapsed < 5, f"appending 1000 audit records took {elapsed:.2f}s"
    result = verify_chain(store.iter_audit(batch=333))
    assert result.ok
    assert result.records == 1001


def test_list_audit_filters(store: SQLStore) -> None:
    store.append_audit(
        [
            draft(1, type="authz.decision", agent="bot", task_id="t-1"),
            draft(2, type="authz_x", agent="bot", task_id="t-2"),
            draft(3, type="task.created", agent="other", task_id="t-1"),
            draft(4, type="authz.decision", agent="other", task_id=None),
        ]
    )

    def seqs(**kw: Any) -> list[int]:
        return [r.seq for r in store.list_audit(**kw)]

    assert seqs() == [1, 2, 3, 4]
    assert seqs(after_seq=2) == [3, 4]
    assert seqs(limit=2) == [1, 2]
    assert seqs(type_prefix="authz.") == [1, 4]  # "." is not a wildcard
    assert seqs(type_prefix="authz_") == [2]  # nor is "_"
    assert seqs(agent="other") == [3, 4]
    assert seqs(task_id="t-1") == [1, 3]
    assert seqs(since=T0 + 0.002) == [2, 3, 4]
    assert seqs(until=T0 + 0.003) == [1, 2]
    assert seqs(since=T0 + 0.002, until=T0 + 0.004, agent="other") == [3]


def test_concurrent_appenders_build_one_gap_free_chain(backend: Backend, store: SQLStore) -> None:
    # two stores = two engines (two pools) on the same database, several threads each
    stores = [store, backend.open()]
    threads_n, rounds, per_batch = 6, 15, 4
    returned: list[Any] = []
    errors: list[BaseException] = []
    lock = threading.Lock()
    start = threading.Barrier(threads_n)

    def work(i: int) -> None:
        s = stores[i % 2]
        try:
            start.wait()
            for r in range(rounds):
                got = s.append_audit(
                    [draft(f"{i}-{r}-{k}", actor=f"thread-{i}") for k in range(per_batch)]
                )
                with lock:
                    returned.extend(got)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(threads_n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []

    total = threads_n * rounds * per_batch
    stored = list(store.iter_audit(batch=64))
    assert [r.seq for r in stored] == list(range(1, total + 1))
    assert sorted(returned, key=lambda r: r.seq) == stored
    result = verify_chain(stored)
    assert result.ok, result
    assert result.records == total
    assert stores[1].audit_head() == (total, stored[-1].hash)


@pytest.mark.parametrize(
    ("column", "value"),
    [("data", '{"n":2,"allowed":false}'), ("actor", "someone-else"), ("ts", T0 + 99)],
)
def test_tampering_is_detected(store: SQLStore, column: str, value: object) -> None:
    store.append_audit([draft(1), draft(2), draft(3)])
    assert verify_chain(store.iter_audit()).ok
    with store.engine.begin() as conn:
        conn.execute(
            sa.text(f"UPDATE audit_events SET {column} = :v WHERE seq = 2"),  # noqa: S608
            {"v": value},
        )
    result = verify_chain(store.iter_audit())
    assert not result.ok
    assert result.first_bad_seq == 2


def test_deleting_a_record_is_detected(store: SQLStore) -> None:
    store.append_audit([draft(1), draft(2), draft(3)])
    with store.engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM audit_events WHERE seq = 2"))
    result = verify_chain(store.iter_audit())
    assert not result.ok
    assert result.first_bad_seq == 3


# -- threads sharing one store ---------------------------------------------------------------


def test_store_is_safe_to_share_between_threads(store: SQLStore) -> None:
    errors: list[BaseException] = []

    def work(i: int) -> None:
        try:
            for j in range(10):
                name = f"bot-{i}-{j}"
                store.create_agent(agent(name))
                tid = f"t-{i}-{j}"
                store.create_task(task(tid, name), cred(f"j-{i}-{j}", tid))
                store.fetch_agent(name)
                store.list_tasks(agent=name)
                if j % 2:
                    store.end_task(tid, TaskStatus.COMPLETED, ended_at=T0 + 1, reason="ok")
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    run_threads(work, 8)
    assert errors == []
    assert len(store.list_agents(limit=1000)) == 80
    assert len(list(store.list_active_tasks())) == 40


def run_threads(target: Callable[[int], None], n: int) -> None:
    threads = [threading.Thread(target=target, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def test_audit_data_orjson_cannot_encode_still_chains(store: SQLStore) -> None:
    """Values outside orjson's range (huge integers, non-string keys) take the stdlib path."""
    from warden.core.audit import verify_chain as _verify
    from warden.core.model import AuditDraft as _Draft

    store.append_audit(
        [
            _Draft(ts=1_800_000_000.0, type="t", actor="a", data={"big": 2**70, "s": "é"}),
            _Draft(ts=1_800_000_001.0, type="t", actor="a", data={"k": {1: "int key"}}),
        ]
    )
    records = list(store.iter_audit())
    assert records[0].data == {"big": 2**70, "s": "é"}
    assert records[1].data == {"k": {"1": "int key"}}
    assert _verify(records).ok

"""The Store contract for the credential lifecycle (issue 4), on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from dataclasses import replace

import pytest

from tests.storage.test_store import T0, agent, cred, task
from warden.core.model import (
    Change,
    Lease,
    LeaseKind,
    LeaseState,
    Replica,
    StoredKey,
    TaskStatus,
)
from warden.errors import ConflictError, NotFoundError
from warden.storage.sql import SQLStore

pytestmark = pytest.mark.lifecycle


def _tree(store: SQLStore) -> None:
    store.create_agent(agent("bot"))
    store.create_task(task("root"), cred("j-root", "root"))
    store.create_task(
        task("child", parent_id="root", chain=("spiffe://a", "spiffe://b")),
        cred("j-child", "child"),
    )
    store.create_task(task("grandchild", parent_id="child"), cred("j-grand", "grandchild"))
    store.create_task(task("other"), cred("j-other", "other"))


def test_a_task_keeps_its_chain(store: SQLStore) -> None:
    _tree(store)
    child = store.fetch_task("child")
    assert child.chain == ("spiffe://a", "spiffe://b")
    assert child.depth == 1
    root = store.fetch_task("root")
    assert root.chain == (root.spiffe_id,)
    assert [t.id for t in store.list_child_tasks("root")] == ["child"]


def test_end_task_tree_ends_every_descendant_atomically(store: SQLStore) -> None:
    _tree(store)
    ended = store.end_task_tree("root", TaskStatus.COMPLETED, ended_at=T0 + 10, reason="done")
    assert [(t.id, t.status) for t, _ in ended] == [
        ("root", TaskStatus.COMPLETED),
        ("child", TaskStatus.REVOKED),
        ("grandchild", TaskStatus.REVOKED),
    ]
    assert [[c.jti for c in creds] for _, creds in ended] == [["j-root"], ["j-child"], ["j-grand"]]
    assert store.fetch_task("grandchild").end_reason == "parent task root completed"
    assert store.fetch_task("other").status is TaskStatus.ACTIVE
    with pytest.raises(ConflictError):
        store.end_task_tree("root", TaskStatus.COMPLETED, ended_at=T0 + 11, reason="again")
    with pytest.raises(NotFoundError):
        store.end_task_tree("nope", TaskStatus.COMPLETED, ended_at=T0, reason="")


def test_end_task_tree_reaches_past_an_already_ended_child(store: SQLStore) -> None:
    _tree(store)
    store.end_task("child", TaskStatus.FAILED, ended_at=T0 + 1, reason="x")  # no cascade
    ended = store.end_task_tree("root", TaskStatus.REVOKED, ended_at=T0 + 2, reason="kill")
    assert [t.id for t, _ in ended] == ["root", "grandchild"]


def test_revoke_one_credential(store: SQLStore) -> None:
    _tree(store)
    first = store.revoke_credential("j-root", revoked_at=T0 + 5)
    assert first.revoked_at == T0 + 5
    assert store.revoke_credential("j-root", revoked_at=T0 + 9).revoked_at == T0 + 5
    assert store.fetch_credential("j-root").revoked_at == T0 + 5
    with pytest.raises(NotFoundError):
        store.revoke_credential("missing", revoked_at=T0)


def test_concurrent_first_uses_have_one_winner(backend: object, store: SQLStore) -> None:
    others = [backend.open() for _ in range(4)]  # type: ignore[attr-defined]
    results: list[bool] = []
    barrier = threading.Barrier(len(others))

    def use(s: SQLStore) -> None:
        barrier.wait()
        results.append(s.remember_proof("same", expires_at=T0 + 60, now=T0))

    threads = [threading.Thread(target=use, args=(s,)) for s in others]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [False, False, False, True]


def test_leases_crud_and_the_reapers_query(store: SQLStore) -> None:
    _tree(store)
    lease = Lease(
        id="lease_1",
        task_id="child",
        agent_name="bot",
        kind=LeaseKind.POSTGRES,
        target="reporting",
        principal="warden_abc",
        created_at=T0,
        expires_at=T0 + 600,
        updated_at=T0,
    )
    store.create_lease(lease)
    with pytest.raises(ConflictError):
        store.create_lease(lease)
    active = replace(lease, state=LeaseState.ACTIVE, attempts=1, last_error="x")
    store.update_lease(active)
    assert store.fetch_lease("lease_1") == active
    assert store.list_leases(task_id="child") == [active]
    assert store.list_leases(states=[LeaseState.REVOKED]) == []
    assert store.list_leases_of_ended_tasks() == []
    store.end_task_tree("root", TaskStatus.COMPLETED, ended_at=T0 + 1, reason="")
    assert [le.id for le in store.list_leases_of_ended_tasks()] == ["lease_1"]
    with pytest.raises(NotFoundError):
        store.update_lease(replace(lease, id="nope"))


def test_signing_keys_and_what_they_signed(store: SQLStore) -> None:
    key = StoredKey("kid-1", 1, "EdDSA", {"kty": "OKP", "x": "abc"}, "sealed", T0)
    store.create_signing_key(key)
    with pytest.raises(ConflictError):  # one key per generation
        store.create_signing_key(replace(key, kid="kid-2"))
    retired = replace(key, sealed_private=None, superseded_at=T0 + 1, retired_at=T0 + 2)
    store.update_signing_key(retired)
    assert store.list_signing_keys() == [retired]
    assert store.last_expiry_signed_by("kid-1") is None
    _tree(store)  # credentials with kid "k1" (see test_store.cred)
    assert store.last_expiry_signed_by(cred("x", "root").kid) == T0 + 300


def test_replicas_and_the_change_log(store: SQLStore) -> None:
    store.upsert_replica(Replica("r1", "http://a", T0, T0))
    store.upsert_replica(Replica("r1", "http://a2", T0, T0 + 10))
    store.upsert_replica(Replica("r2", "http://b", T0, T0 - 100))
    assert store.list_replicas(seen_since=T0) == [Replica("r1", "http://a2", T0, T0 + 10)]
    store.delete_replica("r1")
    assert store.list_replicas(seen_since=0) == [Replica("r2", "http://b", T0, T0 - 100)]
    assert store.last_change_seq() == 0
    first = store.append_change(Change("task.ended", {"tasks": {"t": 1.5}}, "r1"), ts=T0)
    second = store.append_change(Change("agent.changed", {"name": "bot"}, "r2"), ts=T0 + 5)
    assert second > first
    assert store.list_changes(after_seq=first) == [
        (second, Change("agent.changed", {"name": "bot"}, "r2"))
    ]
    assert store.prune_changes(before=T0 + 1) == 1
    assert store.last_change_seq() == second

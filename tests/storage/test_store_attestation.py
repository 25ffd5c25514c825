"""Registration entries and join tokens in the Store contract (SQLite and PostgreSQL)."""

from __future__ import annotations

import threading

import pytest

from tests.storage.test_store import T0, agent
from warden.core.model import JoinToken, RegistrationEntry
from warden.errors import ConflictError, NotFoundError
from warden.storage.sql import SQLStore

pytestmark = pytest.mark.attestation


def entry(entry_id: str, agent_name: str, *selectors: str) -> RegistrationEntry:
    return RegistrationEntry(
        id=entry_id,
        agent_name=agent_name,
        selectors=tuple(sorted(selectors)),
        created_at=T0,
        created_by="operator:admin",
        description="ci runner",
    )


def test_entries_create_list_fetch_delete(store: SQLStore) -> None:
    store.create_agent(agent("bot"))
    store.create_agent(agent("other"))
    store.create_entry(entry("ent_1", "bot", "k8s:ns:payments", "k8s:sa:bot"))
    store.create_entry(entry("ent_2", "other", "unix:uid:1000"))
    assert [e.id for e in store.list_entries()] == ["ent_1", "ent_2"]
    assert [e.id for e in store.list_entries(agent="other")] == ["ent_2"]
    got = store.fetch_entry("ent_1")
    assert got == entry("ent_1", "bot", "k8s:ns:payments", "k8s:sa:bot")
    store.delete_entry("ent_1")
    with pytest.raises(NotFoundError):
        store.fetch_entry("ent_1")
    with pytest.raises(NotFoundError):
        store.delete_entry("ent_1")


def test_entry_needs_a_known_agent_and_unique_selectors(store: SQLStore) -> None:
    with pytest.raises(NotFoundError):
        store.create_entry(entry("ent_1", "ghost", "unix:uid:1"))
    store.create_agent(agent("bot"))
    store.create_agent(agent("other"))
    store.create_entry(entry("ent_1", "bot", "unix:uid:1", "unix:path:/bin/x"))
    with pytest.raises(ConflictError, match="ent_1"):
        store.create_entry(entry("ent_2", "other", "unix:path:/bin/x", "unix:uid:1"))
    assert [e.id for e in store.list_entries()] == ["ent_1"]


def test_join_token_is_consumed_exactly_once(store: SQLStore) -> None:
    store.create_agent(agent("bot"))
    token = JoinToken("jt_1", "bot", "ab" * 32, created_at=T0, expires_at=T0 + 600)
    store.create_join_token(token)
    assert store.fetch_join_token("jt_1") == token
    used = store.consume_join_token("jt_1", now=T0 + 1)
    assert used.used_at == T0 + 1
    with pytest.raises(ConflictError, match="already used"):
        store.consume_join_token("jt_1", now=T0 + 2)
    with pytest.raises(NotFoundError):
        store.consume_join_token("jt_nope", now=T0)


def test_expired_join_token_cannot_be_consumed(store: SQLStore) -> None:
    store.create_agent(agent("bot"))
    store.create_join_token(JoinToken("jt_1", "bot", "cd" * 32, T0, T0 + 10))
    with pytest.raises(ConflictError, match="expired"):
        store.consume_join_token("jt_1", now=T0 + 10)
    assert store.fetch_join_token("jt_1").used_at is None


def test_concurrent_consumers_one_wins(store: SQLStore) -> None:
    store.create_agent(agent("bot"))
    store.create_join_token(JoinToken("jt_1", "bot", "ef" * 32, T0, T0 + 600))
    wins: list[int] = []
    losses: list[int] = []

    def consume(n: int) -> None:
        try:
            store.consume_join_token("jt_1", now=T0 + 1)
            wins.append(n)
        except ConflictError:
            losses.append(n)

    threads = [threading.Thread(target=consume, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(wins) == 1 and len(losses) == 5

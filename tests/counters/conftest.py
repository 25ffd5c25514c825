"""Real Redis for the shared-counter tests: the machine's, under a key prefix of each test's
own that is deleted afterwards (the shared Redis is never flushed)."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator

import pytest

from tests.conftest import under_ci
from warden.storage.redis_counters import RedisCounters

REDIS_URL = "redis://127.0.0.1:6379/0"


def require_redis() -> None:
    import redis

    client = redis.Redis.from_url(REDIS_URL, socket_timeout=3)
    try:
        client.ping()
    except redis.RedisError as exc:
        message = f"redis is not reachable at {REDIS_URL}: {exc}"
        if under_ci():
            pytest.fail(message)
        pytest.skip(message)
    finally:
        client.close()


@pytest.fixture
def counters() -> Iterator[Callable[[], RedisCounters]]:
    """``counters()`` opens another client on the same prefix: one per simulated replica."""
    import redis

    require_redis()
    prefix = f"wt-counters-{secrets.token_hex(6)}"
    opened: list[RedisCounters] = []

    def make() -> RedisCounters:
        c = RedisCounters(REDIS_URL, prefix=prefix, timeout=2.0)
        opened.append(c)
        return c

    yield make
    for c in opened:
        c.close()
    client = redis.Redis.from_url(REDIS_URL)
    for key in client.scan_iter(match=f"{prefix}:*", count=500):
        client.delete(key)
    client.close()

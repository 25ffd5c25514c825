"""The ``server:`` limits and ``counters:`` keys (ADR 0094, 0095) as a user writes them."""

from __future__ import annotations

from pathlib import Path

import pytest

from warden.config import Settings, load_settings
from warden.errors import InvalidParameterError


def _load(tmp_path: Path, text: str) -> Settings:
    config = tmp_path / "warden.yaml"
    config.write_text(text)
    return load_settings(config)


def test_defaults_bound_slow_clients_and_keep_counters_in_process() -> None:
    s = load_settings()
    assert (s.header_timeout, s.body_timeout, s.keep_alive_timeout) == (10.0, 30.0, 5.0)
    assert s.max_connections == 1000
    assert s.counters_url is None


def test_yaml_sets_the_limits_and_the_counters(tmp_path: Path) -> None:
    s = _load(
        tmp_path,
        "server: {header_timeout: 2s, body_timeout: 1m, keep_alive_timeout: 3, "
        "max_connections: 64}\n"
        "counters: {url: 'redis://127.0.0.1:6379/2', prefix: prod, timeout: 0.5}\n",
    )
    assert (s.header_timeout, s.body_timeout, s.keep_alive_timeout) == (2.0, 60.0, 3.0)
    assert s.max_connections == 64
    assert s.counters_url == "redis://127.0.0.1:6379/2"
    assert (s.counters_prefix, s.counters_timeout) == ("prod", 0.5)


def test_the_environment_names_the_counters(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WARDEN_COUNTERS_URL", "redis://10.0.0.5:6379/0")
    assert load_settings().counters_url == "redis://10.0.0.5:6379/0"


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("server: {header_timeout: 0}", "server.header_timeout"),
        ("server: {body_timeout: soon}", "server.body_timeout"),
        ("server: {max_connections: 0}", "server.max_connections"),
        ("counters: {url: 'http://redis'}", "counters.url"),
        ("counters: {hosts: [a]}", "counters.hosts"),
        ("counters: {prefix: 'two words'}", "counters.prefix"),
    ],
)
def test_bad_values_are_refused_naming_the_key(tmp_path: Path, text: str, names: str) -> None:
    with pytest.raises(InvalidParameterError) as info:
        _load(tmp_path, text)
    assert names in info.value.message

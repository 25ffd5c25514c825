"""The `telemetry:` and `signals:` config sections."""

from __future__ import annotations

from pathlib import Path

import pytest

from warden.config import load_settings
from warden.errors import InvalidParameterError

pytestmark = pytest.mark.signals


def _load(tmp_path: Path, text: str) -> object:
    path = tmp_path / "warden.yaml"
    path.write_text(text)
    return load_settings(path)


def test_telemetry_and_signals_sections(tmp_path: Path) -> None:
    s = load_settings()
    assert s.otlp_endpoint is None  # tracing is off unless configured
    settings = _load(
        tmp_path,
        "telemetry: {otlp_endpoint: 'http://collector:4318', sample_ratio: 0.25,"
        " headers: {x-tenant: a}, service_name: w1}\n"
        "signals: {interval: 2s, max_backoff: 5m, push_timeout: 3}\n",
    )
    assert settings.otlp_endpoint == "http://collector:4318"  # type: ignore[attr-defined]
    assert settings.otlp_sample_ratio == 0.25  # type: ignore[attr-defined]
    assert settings.otlp_headers == (("x-tenant", "a"),)  # type: ignore[attr-defined]
    assert settings.signals_interval == 2.0  # type: ignore[attr-defined]
    assert settings.signals_max_backoff == 300.0  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "text",
    [
        "telemetry: {otlp_endpoint: 'collector:4318'}",
        "telemetry: {sample_ratio: 2}",
        "telemetry: {sample_ratio: lots}",
        "telemetry: {headers: [a]}",
        "telemetry: {surprise: 1}",
        "telemetry: yes",
        "signals: {interval: soon}",
        "signals: {retries: 3}",
    ],
)
def test_bad_sections_are_refused(tmp_path: Path, text: str) -> None:
    with pytest.raises(InvalidParameterError):
        _load(tmp_path, text + "\n")


def test_the_environment_switches_tracing_on(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WARDEN_OTLP_ENDPOINT", "http://127.0.0.1:4318")
    assert load_settings().otlp_endpoint == "http://127.0.0.1:4318"

"""The approvals, behaviour and webhooks sections of the config file."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from warden.config import Settings, load_settings
from warden.errors import InvalidParameterError
from warden.webhooks import decode_secret, new_secret

pytestmark = pytest.mark.approvals


def _load(tmp_path: Path, doc: object) -> Settings:
    path = tmp_path / "warden.yaml"
    path.write_text(yaml.safe_dump(doc))
    return load_settings(path)


def test_a_full_config(tmp_path: Path) -> None:
    secret = new_secret()
    (tmp_path / "hook.secret").write_text(secret + "\n")
    s = _load(
        tmp_path,
        {
            "approvals": {
                "grant_ttl": "2m",
                "escalate_after": 30,
                "groups": {"security": ["carol@example.com"]},
                "escalation": {"high": ["group:security", "approvers"]},
                "separation_of_duties": True,
            },
            "behaviour": {
                "window": "30s",
                "rate_factor": 3,
                "high_risk_actions": ["payments.refund"],
                "intents": {"support": ["read"]},
                "thresholds": {"high": {"suspend": 4}},
            },
            "webhooks": {
                "delivery": {"max_attempts": 3, "timeout": "2s"},
                "endpoints": [
                    {
                        "url": "https://hooks.example.com/w",
                        "secret_file": "hook.secret",
                        "for": ["alice@example.com"],
                        "events": ["agent.suspended"],
                    }
                ],
            },
        },
    )
    assert s.approvals.grant_ttl == 120 and s.approvals.escalate_after == 30
    assert s.approvals.escalation["high"] == ("group:security", "approvers")
    assert s.approvals.groups["security"] == frozenset({"carol@example.com"})
    b = s.behaviour
    assert b.window == 30 and b.rate_factor == 3
    assert b.thresholds_for("high").suspend == 4 and b.thresholds_for("high").notify == 1
    (endpoint,) = s.webhooks
    assert endpoint.key == decode_secret(secret)
    assert endpoint.events == frozenset({"agent.suspended"})
    assert secret not in repr(endpoint)
    assert s.webhook_max_attempts == 3 and s.webhook_timeout == 2


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"approvals": {"grant_ttl": "soon"}}, "approvals.grant_ttl"),
        ({"approvals": {"escalation": {"high": ["boss"]}}}, "not an approval level"),
        ({"approvals": {"colour": 1}}, "approvals.colour"),
        ({"behaviour": {"window": 0}}, "behaviour.window"),
        ({"behaviour": {"thresholds": {"high": {"panic": 1}}}}, "behaviour.thresholds.high"),
        ({"webhooks": {"endpoints": [{"url": "ftp://x"}]}}, "http(s) url"),
        ({"webhooks": {"endpoints": [{"url": "https://x"}]}}, "secret_file"),
        ({"webhooks": {"endpoints": [{"url": "https://x", "secret": "nope"}]}}, "whsec_"),
        ({"webhooks": {"endpoints": [{"url": "https://x", "secret_env": "NOPE_X"}]}}, "NOPE_X"),
    ],
)
def test_bad_configs_are_refused_clearly(tmp_path: Path, doc: object, message: str) -> None:
    with pytest.raises(InvalidParameterError) as info:
        _load(tmp_path, doc)
    assert message in info.value.message

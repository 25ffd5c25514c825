"""The ``governance:`` and ``audit:`` configuration sections."""

from __future__ import annotations

from pathlib import Path

import pytest

from warden.config import load_settings
from warden.errors import InvalidParameterError

pytestmark = pytest.mark.governance


def test_governance_and_audit_sections(tmp_path: Path) -> None:
    config = tmp_path / "warden.yaml"
    config.write_text(
        """
governance:
  orphan_grace: 12h
  unused_after: 45d
  flag_grace: 3d
  interval: 30s
  certification: {window: 7d, on_timeout: suspend}
audit:
  checkpoint_interval: 1m
  checkpoint_sinks: [anchor/cp.jsonl, https://anchor.example/cp]
  export:
    - {target: siem.jsonl}
    - {target: https://siem.example/ingest, format: jsonl}
  export_interval: 10s
"""
    )
    s = load_settings(config)
    assert (s.orphan_grace, s.unused_after, s.flag_grace) == (43200, 45 * 86400, 3 * 86400)
    assert s.governance_interval == 30 and s.certification_window == 7 * 86400
    assert s.certification_on_timeout == "suspend" and s.checkpoint_interval == 60
    assert s.checkpoint_sinks == (str(tmp_path / "anchor/cp.jsonl"), "https://anchor.example/cp")
    assert s.export_sinks == (
        (str(tmp_path / "siem.jsonl"), "ocsf"),
        ("https://siem.example/ingest", "jsonl"),
    )
    assert s.export_interval == 10


@pytest.mark.parametrize(
    "text",
    [
        "governance: {certification: {on_timeout: ignore}}",
        "governance: {orphan_grace: soon}",
        "audit: {export: [{format: ocsf}]}",
        "audit: {export: [{target: x, format: xml}]}",
    ],
)
def test_bad_governance_config_is_refused(tmp_path: Path, text: str) -> None:
    config = tmp_path / "warden.yaml"
    config.write_text(text)
    with pytest.raises(InvalidParameterError):
        load_settings(config)

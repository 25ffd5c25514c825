"""The documentation stands alone and matches the code it describes."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.console

ROOT = Path(__file__).resolve().parents[2]


def test_controls_page_matches_the_catalogue() -> None:
    check = [sys.executable, str(ROOT / "tools" / "gen_controls_doc.py"), "--check"]
    assert subprocess.run(check, check=False).returncode == 0, (
        "docs/controls.md is out of date: run python tools/gen_controls_doc.py"
    )


def test_docs_do_not_point_outside_the_repository() -> None:
    pages = [ROOT / "README.md", ROOT / "CHANGELOG.md", *sorted((ROOT / "docs").rglob("*.md"))]
    assert any(p.parent.name == "adr" for p in pages)
    for page in pages:
        text = page.read_text()
        # the session's shared folder and its reference notes are not shipped with Warden
        for outside in ("../shared", "shared/conformance", "reference/"):
            assert outside not in text, (page, outside)
        for target in re.findall(r"\]\(([^)#]+)\)", text):
            if target.startswith(("http://", "https://", "mailto:")):
                continue
            assert (page.parent / target).exists(), f"{page.name}: broken link {target}"


def test_readme_screenshots_are_committed_and_small() -> None:
    shots = sorted((ROOT / "docs" / "img").glob("console-*.png"))
    assert len(shots) >= 4
    assert all(p.stat().st_size < 150_000 for p in shots)

"""``promtool`` for the metrics test: on PATH, or unpacked from Debian's ``prometheus`` package
into ``.venv/promtool`` (``apt-get download`` + ``dpkg-deb -x``: nothing is installed or started).
Under ``CI=true`` a missing promtool fails the test instead of skipping it."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

CACHE = Path(__file__).resolve().parents[2] / ".venv" / "promtool"


def promtool() -> str:
    found = shutil.which("promtool")
    if found:
        return found
    unpacked = CACHE / "usr" / "bin" / "promtool"
    if not unpacked.exists() and shutil.which("apt-get") and shutil.which("dpkg-deb"):
        with tempfile.TemporaryDirectory() as tmp:
            got = subprocess.run(
                ["apt-get", "download", "prometheus"], cwd=tmp, capture_output=True, timeout=300
            )
            debs = list(Path(tmp).glob("prometheus_*.deb"))
            if got.returncode == 0 and debs:
                CACHE.mkdir(parents=True, exist_ok=True)
                subprocess.run(["dpkg-deb", "-x", str(debs[0]), str(CACHE)], check=True)
    if unpacked.exists():
        return str(unpacked)
    message = "promtool is not available (Debian's prometheus package could not be fetched)"
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)

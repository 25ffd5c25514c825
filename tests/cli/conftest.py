"""Fixtures for the CLI suite: a CliRunner, the packaged example policies, a real server."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from warden.cli.serve import example_policies_dir
from warden.demo.server import ServerProcess, free_port, server_command


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture
def examples() -> Path:
    return example_policies_dir()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    """``warden serve --dev`` as a real process on a free port, with its own data folder."""
    import subprocess

    data_dir = tmp_path / "data"
    data_dir.mkdir()
    port = free_port()
    log_file = tmp_path / "server.log"
    with log_file.open("wb") as log:
        process = subprocess.Popen(
            server_command(port, data_dir),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=tmp_path,
        )
    srv = ServerProcess(process, f"http://127.0.0.1:{port}", data_dir, log_file)
    try:
        srv.wait_ready(timeout=25)
        yield srv
    finally:
        code = srv.stop()
        log_text = srv.log_tail(20)
        shutil.rmtree(data_dir, ignore_errors=True)
    # Ctrl-C is a clean shutdown
    assert code == 0, log_text
    assert "Warden stopped." in log_text

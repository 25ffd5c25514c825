"""``warden serve`` raises a low open-file limit towards ``server.max_connections`` (ADR 0095),
so the connection cap, not accept() failing, is what turns surplus clients away."""

from __future__ import annotations

import subprocess
import sys

SCRIPT = """
import resource, sys
from warden.api.transport import raise_file_limit
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))
print(raise_file_limit(int(sys.argv[1])), resource.getrlimit(resource.RLIMIT_NOFILE)[0], hard)
"""


def _run(max_connections: int) -> tuple[int, int, int]:
    out = subprocess.run(  # a child process: the test process keeps its own limit
        [sys.executable, "-c", SCRIPT, str(max_connections)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    returned, soft, hard = (int(x) for x in out)
    return returned, soft, hard


def test_a_low_soft_limit_is_raised_to_cover_the_connection_cap() -> None:
    returned, soft, hard = _run(300)
    assert returned == soft == min(300 + 256, hard)


def test_the_hard_limit_is_never_passed() -> None:
    returned, soft, hard = _run(10**9)
    if hard < 0:  # RLIM_INFINITY: the kernel's own ceiling applies instead
        assert returned == soft >= 256
    else:
        assert returned == soft == hard

"""P11: ``warden serve --workers 2`` decisions/s ÷ one worker on 2 cores (target ≥ 1.7x).

Not measurable until ``warden serve`` has a ``--workers`` option: this asks the installed
``warden serve --help`` and prints so, rather than a number. When the option exists the line
says that the benchmark still has to be written (bench/p11_workers.py), so it never reports a
figure it did not measure.
"""

from __future__ import annotations

import subprocess

from bench import _common as c
from bench._serve import warden_command

TARGET = 1.7


def run() -> None:
    c.print_header("P11 two workers vs one")
    help_text = subprocess.run(
        [*warden_command(), "serve", "--help"], capture_output=True, text=True, check=False
    ).stdout
    if "--workers" not in help_text:
        print(f"P11: not measurable: warden serve has no --workers option yet target={TARGET}")
    else:
        print(
            "P11: not measured: warden serve has --workers now, but bench/p11_workers.py does not"
            f" drive it yet target={TARGET}"
        )

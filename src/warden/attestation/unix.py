"""Local process attestation (method ``unix``): who is on the other end of a Unix socket.

The kernel tells the workload API socket who connected: ``SO_PEERCRED`` gives the pid, uid and
gid of the process that called ``connect()``. From the pid, ``/proc/<pid>/exe`` gives the
executable's path, and reading the executable *through that link* gives its SHA-256 (the file
the process runs, even if the path was replaced since). Selectors: ``unix:uid:<n>``,
``unix:gid:<n>``, ``unix:path:<exe>``, ``unix:sha256:<hex>``.

**The pid-reuse race.** A pid is only a number: between the kernel's ``SO_PEERCRED`` answer and
our reads of ``/proc/<pid>``, the caller may exit and the kernel may hand its pid to a new
process, whose executable we would then attest in the caller's name (an attacker connects,
exits, and makes a trusted binary start at the same pid). The guard:

1. a pidfd pins the *process*, not the number: ``SO_PEERPIDFD`` (Linux 6.5+) gives one for the
   exact peer atomically; elsewhere ``pidfd_open(pid)`` right when the connection is accepted;
2. the process's start time (``/proc/<pid>/stat`` field 22) must not be later than the moment
   the connection was accepted: a process born after the connection cannot be its peer (this
   closes the window between ``SO_PEERCRED`` and ``pidfd_open``);
3. after reading ``exe`` and hashing it, the pidfd must still refer to a live process
   (``pidfd_send_signal(pidfd, 0)``) and the start time must be unchanged; otherwise the
   process we inspected may not be the one that connected (``process_exited``,
   ``pid_reused``).

Limits (documented, not hidden): the evidence is what the connecting process *was running* at
attestation time; a process that connected and later ``exec``s something else keeps its
socket. Pair path/digest selectors with ``unix:uid`` and keep the SVID TTL short.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import signal
import socket
import struct
import threading
from collections.abc import Callable
from dataclasses import dataclass

from warden.attestation.base import WorkloadIdentity, attestation_error, evidence_hash
from warden.errors import AttestationError

METHOD = "unix"
SO_PEERPIDFD = getattr(socket, "SO_PEERPIDFD", 77)  # Linux 6.5+
_CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _fail(reason: str, message: str) -> AttestationError:
    return attestation_error(reason, message, method=METHOD)


@dataclass(frozen=True)
class PeerCredentials:
    """What the kernel said about a connected peer, captured when the connection was accepted."""

    pid: int
    uid: int
    gid: int
    pidfd: int | None  # owned by the connection; closed when it closes
    connected_at: float  # wall clock, seconds
    pidfd_source: str  # "SO_PEERPIDFD", "pidfd_open" or "none"


def peer_credentials(sock: socket.socket, now: float) -> PeerCredentials:
    """Read SO_PEERCRED (and a pidfd) from a connected AF_UNIX socket."""
    raw = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    pid, uid, gid = struct.unpack("3i", raw)
    pidfd: int | None = None
    source = "none"
    try:
        pidfd = struct.unpack("i", sock.getsockopt(socket.SOL_SOCKET, SO_PEERPIDFD, 4))[0]
        source = "SO_PEERPIDFD"
    except OSError:
        with contextlib.suppress(OSError, AttributeError):
            pidfd = os.pidfd_open(pid)
            source = "pidfd_open"
    return PeerCredentials(pid, uid, gid, pidfd, now, source)


def _boot_time() -> float:
    with open("/proc/stat", "rb") as handle:
        for line in handle:
            if line.startswith(b"btime "):
                return float(line.split()[1])
    raise OSError("no btime in /proc/stat")


def process_start_time(pid: int) -> float:
    """When the process started (wall clock seconds, 1/CLK_TCK resolution)."""
    with open(f"/proc/{pid}/stat", "rb") as handle:
        data = handle.read()
    # the command name (field 2) may hold spaces and parentheses: split after the last `)`
    fields = data[data.rindex(b")") + 2 :].split()
    return _boot_time() + int(fields[19]) / _CLK_TCK


def _alive(pidfd: int | None, pid: int) -> bool:
    try:
        if pidfd is not None:
            signal.pidfd_send_signal(pidfd, 0)
        else:
            os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    return True


class _DigestCache:
    """SHA-256 of executables, keyed by (device, inode, size, mtime): hash each binary once."""

    def __init__(self, size: int = 256) -> None:
        self._lock = threading.Lock()
        self._items: dict[tuple[int, int, int, int], str] = {}
        self._size = size

    def digest(self, pid: int) -> str:
        with open(f"/proc/{pid}/exe", "rb") as handle:
            st = os.fstat(handle.fileno())
            key = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
            with self._lock:
                cached = self._items.get(key)
            if cached is not None:
                return cached
            digest = hashlib.file_digest(handle, "sha256").hexdigest()
        with self._lock:
            if len(self._items) >= self._size:
                self._items.pop(next(iter(self._items)))
            self._items[key] = digest
        return digest


_DIGESTS = _DigestCache()
START_SLACK = 2 / _CLK_TCK  # start times have tick resolution


def attest_peer(
    peer: PeerCredentials, *, inspecting: Callable[[PeerCredentials], None] | None = None
) -> WorkloadIdentity:
    """The identity of the peer process, or AttestationError (see the module docstring).

    ``inspecting`` runs between reading the kernel's answer and inspecting ``/proc`` (tests use
    it to make the peer exit exactly there).
    """
    pid = peer.pid
    if pid <= 0:
        raise _fail("no_peer", "the kernel did not name the peer process")
    try:
        started = process_start_time(pid)
    except (OSError, ValueError, IndexError):
        raise _fail("process_exited", "the peer process is gone") from None
    if started > peer.connected_at + START_SLACK:
        raise _fail("pid_reused", "the process at the peer's pid started after it connected")
    if inspecting is not None:
        inspecting(peer)
    try:
        exe = os.readlink(f"/proc/{pid}/exe")
        digest = _DIGESTS.digest(pid)
        after = process_start_time(pid)
    except PermissionError:
        raise _fail("inspection_denied", "cannot inspect the peer process") from None
    except (OSError, ValueError, IndexError):
        raise _fail("process_exited", "the peer process exited during attestation") from None
    if not _alive(peer.pidfd, pid):
        raise _fail("process_exited", "the peer process exited during attestation")
    if after != started:
        raise _fail("pid_reused", "the peer's pid now belongs to another process")
    if exe.endswith(" (deleted)"):
        exe = exe[: -len(" (deleted)")]
    facts = {"pid": pid, "uid": peer.uid, "gid": peer.gid, "path": exe, "sha256": digest}
    return WorkloadIdentity(
        spiffe_id=None,
        method=METHOD,
        evidence_hash=evidence_hash(
            f"{pid}:{started}:{peer.uid}:{peer.gid}:{exe}:{digest}".encode()
        ),
        trust_domain=None,
        expires_at=None,
        claims=facts,
        selectors=frozenset(
            {
                f"unix:uid:{peer.uid}",
                f"unix:gid:{peer.gid}",
                f"unix:path:{exe}",
                f"unix:sha256:{digest}",
            }
        ),
        details={"pidfd": peer.pidfd_source},
    )

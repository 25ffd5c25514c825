"""Hot reload of a policy folder.

``PolicyWatcher`` polls the folder's policy files (``*.cedar``, the schema,
``entities.json``) by name, size and modification time. On a change it loads and validates
the folder and activates the new set; if validation fails, the last good set keeps
serving and ``on_error`` is told (once per distinct bad state of the folder).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

from warden.errors import PolicyError

from .pdp import PolicyDecisionPoint
from .policy_set import LoadedPolicySet, load_policy_dir

__all__ = ["PolicyWatcher"]

_Signature = tuple[tuple[str, int, int], ...]
_WATCHED_SUFFIXES = (".cedar", ".cedarschema", ".cedarschema.json")


def _signature(folder: Path) -> _Signature:
    entries: list[tuple[str, int, int]] = []
    try:
        paths = list(folder.iterdir())
    except OSError:
        return ()
    for p in paths:
        name = p.name
        if not (name.endswith(_WATCHED_SUFFIXES) or name == "entities.json"):
            continue
        try:
            st = p.stat()
        except OSError:
            continue
        entries.append((name, st.st_mtime_ns, st.st_size))
    return tuple(sorted(entries))


def _ignore(_: object) -> None:
    return None


class PolicyWatcher:
    """Poll ``path`` every ``interval`` seconds and hot-reload ``pdp`` on change."""

    def __init__(
        self,
        path: Path | str,
        pdp: PolicyDecisionPoint,
        *,
        interval: float = 1.0,
        on_loaded: Callable[[LoadedPolicySet], None] = _ignore,
        on_error: Callable[[Exception], None] = _ignore,
        activate: Callable[[LoadedPolicySet], None] | None = None,
    ) -> None:
        self.path = Path(path)
        self.pdp = pdp
        # how a loaded set becomes active (default: swap it into the PDP); a replicated server
        # activates and publishes in one step (service.policy_sync.PolicySync.adopt)
        self._activate = activate or pdp.activate
        self.interval = interval
        self._on_loaded = on_loaded
        self._on_error = on_error
        self._seen: _Signature | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the polling thread (loads the folder first if nothing is active)."""
        if self._thread is not None:
            return
        if self.pdp.policy_set is None:
            self.check_now()
        else:
            self._seen = _signature(self.path)
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="warden-policy-watcher", daemon=True)
        self._thread.start()

    def stop(self, timeout: float | None = 5.0) -> None:
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.check_now()

    def check_now(self) -> LoadedPolicySet | None:
        """Reload now if the folder changed; return the newly activated set, if any."""
        with self._lock:
            signature = _signature(self.path)
            if signature == self._seen:
                return None
            self._seen = signature
            try:
                loaded = load_policy_dir(self.path)
            except PolicyError as exc:
                self._report(exc)
                return None
            except Exception as exc:  # never let the watcher thread die
                self._report(PolicyError(f"cannot load policy folder `{self.path}`: {exc}"))
                return None
            self._activate(loaded)
        try:
            self._on_loaded(loaded)
        except Exception:  # noqa: S110 - a failing callback must not stop reloads
            pass
        return loaded

    def load_now(self) -> LoadedPolicySet:
        """Load and activate the folder now, changed or not (an explicit reload).

        Under the polling's lock: two loads of one folder must activate in the order they read
        it, or an older read activated last would undo a newer one. Raises ``PolicyError``
        (the caller reports it; the poll will not report the same folder again)."""
        with self._lock:
            self._seen = _signature(self.path)
            loaded = load_policy_dir(self.path)
            self._activate(loaded)
        return loaded

    def _report(self, exc: Exception) -> None:
        try:
            self._on_error(exc)
        except Exception:  # noqa: S110 - a failing callback must not stop reloads
            pass

"""Hot reload: a bad edit keeps the last good set, a good edit is picked up."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

from warden.authz.pdp import PolicyDecisionPoint
from warden.authz.policy_set import LoadedPolicySet
from warden.authz.types import AuthzRequest, EntityRef
from warden.authz.watcher import PolicyWatcher
from warden.errors import PolicyError

from .conftest import WriteDir

REQ = AuthzRequest(principal=EntityRef("User", "u"), action="read", resource=EntityRef("Doc", "d"))


def _touch(path: Path, text: str) -> None:
    before = path.stat().st_mtime_ns if path.exists() else 0
    path.write_text(text, encoding="utf-8")
    st = path.stat()
    if st.st_mtime_ns == before:  # coarse clocks: make the change visible
        os.utime(path, ns=(st.st_atime_ns, before + 1_000_000))


def test_check_now_reloads_and_keeps_last_good(write_dir: WriteDir) -> None:
    folder = write_dir({"p.cedar": "permit(principal, action, resource);"})
    pdp = PolicyDecisionPoint()
    loaded: list[LoadedPolicySet] = []
    errors: list[Exception] = []
    watcher = PolicyWatcher(folder, pdp, on_loaded=loaded.append, on_error=errors.append)

    first = watcher.check_now()
    assert first is not None and pdp.policy_set is first and loaded == [first]
    assert pdp.evaluate(REQ).allowed
    assert watcher.check_now() is None  # nothing changed

    _touch(folder / "p.cedar", "permit(principal, action")  # bad edit
    assert watcher.check_now() is None
    assert pdp.policy_set is first and pdp.evaluate(REQ).allowed
    assert len(errors) == 1 and isinstance(errors[0], PolicyError)
    assert "`p.cedar`" in str(errors[0])
    assert watcher.check_now() is None and len(errors) == 1  # reported once

    _touch(folder / "p.cedar", "forbid(principal, action, resource);")  # good edit
    second = watcher.check_now()
    assert second is not None and pdp.policy_set is second
    assert second.revision != first.revision
    assert not pdp.evaluate(REQ).allowed

    (folder / "entities.json").write_text("[]", encoding="utf-8")  # new file is a change
    assert watcher.check_now() is not None
    (folder / "notes.txt").write_text("ignored", encoding="utf-8")
    assert watcher.check_now() is None


def test_background_thread_picks_up_changes(write_dir: WriteDir) -> None:
    folder = write_dir({"p.cedar": "forbid(principal, action, resource);"})
    pdp = PolicyDecisionPoint()
    reloaded = threading.Event()
    watcher = PolicyWatcher(folder, pdp, interval=0.02, on_loaded=lambda _lps: reloaded.set())
    watcher.start()
    try:
        assert pdp.policy_set is not None and not pdp.evaluate(REQ).allowed  # loaded at start
        reloaded.clear()
        _touch(folder / "p.cedar", "permit(principal, action, resource);")
        assert reloaded.wait(5)
        deadline = time.monotonic() + 5
        while not pdp.evaluate(REQ).allowed and time.monotonic() < deadline:
            time.sleep(0.01)
        assert pdp.evaluate(REQ).allowed
    finally:
        watcher.stop()
    watcher.stop()  # idempotent


def test_start_with_active_set_does_not_reload(write_dir: WriteDir) -> None:
    from warden.authz.policy_set import load_policy_dir

    folder = write_dir({"p.cedar": "permit(principal, action, resource);"})
    lps = load_policy_dir(folder)
    pdp = PolicyDecisionPoint(lps)
    watcher = PolicyWatcher(folder, pdp, interval=60)
    watcher.start()
    watcher.start()  # second start is a no-op
    try:
        assert pdp.policy_set is lps
        assert watcher.check_now() is None
    finally:
        watcher.stop()


def test_callbacks_that_raise_do_not_break_reloads(write_dir: WriteDir) -> None:
    folder = write_dir({"p.cedar": "permit(principal, action"})
    pdp = PolicyDecisionPoint()

    def explode(_: object) -> None:
        raise RuntimeError("callback bug")

    watcher = PolicyWatcher(folder, pdp, on_loaded=explode, on_error=explode)
    assert watcher.check_now() is None
    _touch(folder / "p.cedar", "permit(principal, action, resource);")
    assert watcher.check_now() is not None and pdp.policy_set is not None


def test_missing_folder_is_reported(tmp_path: Path) -> None:
    errors: list[Exception] = []
    watcher = PolicyWatcher(tmp_path / "missing", PolicyDecisionPoint(), on_error=errors.append)
    assert watcher.check_now() is None
    assert len(errors) == 1 and "does not exist" in str(errors[0])

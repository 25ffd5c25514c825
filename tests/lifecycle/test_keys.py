"""Signing keys: sealed in the database (never in clear), rotated on demand, published while
anything they signed can still be valid, then retired."""

from __future__ import annotations

import base64
import secrets
import time
from pathlib import Path

import pytest
import sqlalchemy as sa
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

from tests.api.helpers import unverified
from tests.lifecycle.conftest import LifecycleWorld, WorldFactory
from warden.bootstrap import Warden
from warden.config import Settings
from warden.core.clock import FrozenClock
from warden.errors import KeySealError
from warden.storage.sql.tables import signing_keys

pytestmark = pytest.mark.lifecycle


def _kids(lw: LifecycleWorld) -> list[str]:
    return [k["kid"] for k in lw.client.get("/.well-known/jwks.json").json()["keys"]]


def test_private_keys_are_never_in_the_database_in_clear(lw: LifecycleWorld) -> None:
    key = lw.warden.keys.current()
    raw = key.private_key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    pem = key.private_key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    db = Path(lw.warden.settings.data_dir) / "warden.db"
    content = b"".join(p.read_bytes() for p in db.parent.glob("warden.db*"))
    for form in (raw, pem, base64.b64encode(raw), base64.urlsafe_b64encode(raw).rstrip(b"=")):
        assert form not in content
    with lw.warden.store.engine.connect() as conn:  # type: ignore[attr-defined]
        row = conn.execute(sa.select(signing_keys)).mappings().one()
    assert row["kid"] == key.kid
    assert row["sealed_private"] and row["public_jwk"]
    kek = Path(lw.warden.settings.data_dir) / "keys" / "kek"
    assert kek.stat().st_mode & 0o777 == 0o600


def test_the_wrong_or_a_missing_kek_refuses_to_start(tmp_path: Path) -> None:
    data = tmp_path / "data"
    Warden(Settings(data_dir=data)).close()
    kek = data / "keys" / "kek"
    good = kek.read_text()
    kek.write_text(base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode())
    with pytest.raises(KeySealError, match="wrong key-encryption key"):
        Warden(Settings(data_dir=data))
    kek.unlink()
    with pytest.raises(KeySealError, match="missing"):
        Warden(Settings(data_dir=data))
    # the KEK may come from the environment instead of the file
    w = Warden(Settings(data_dir=data, key_encryption_key=good.strip()))
    w.close()


def test_rotation_signs_with_the_new_key_and_keeps_the_old_one_published(
    lw: LifecycleWorld,
) -> None:
    before = lw.start("worker", "tickets.read")
    old = unverified(before["access_token"])[0]["kid"]
    r = lw.client.post("/v1/keys/rotate", headers=lw.admin)
    assert r.status_code == 200, r.text
    new = r.json()["current"]
    assert new != old
    assert _kids(lw) == [new, old]
    after = lw.start("worker", "tickets.read")
    assert unverified(after["access_token"])[0]["kid"] == new
    # credentials signed by the old key keep working until they expire
    assert lw.decide(before["access_token"], before["spiffe_id"], "tickets.read")["decision"]
    statuses = {k["kid"]: k["status"] for k in r.json()["keys"]}
    assert statuses == {old: "published", new: "current"}
    rotated = lw.audit("key.rotated")[-1]
    assert rotated["data"] == {"kid": new, "previous": old, "generation": 2}


def test_a_key_retires_only_once_everything_it_signed_has_expired(lw: LifecycleWorld) -> None:
    task = lw.start("worker", "tickets.read")  # credential TTL 300 s
    old = unverified(task["access_token"])[0]["kid"]
    lw.client.post("/v1/keys/rotate", headers=lw.admin)
    lw.clock.advance(120)
    lw.warden.housekeeping()
    assert old in _kids(lw)  # still needed: the credential is valid for 180 s more
    listed = {k["kid"]: k for k in lw.client.get("/v1/keys", headers=lw.admin).json()["keys"]}
    assert listed[old]["retires_after"] >= lw.clock.now() + 180
    lw.clock.advance(200)
    lw.warden.housekeeping()
    assert old not in _kids(lw)
    listed = {k["kid"]: k for k in lw.client.get("/v1/keys", headers=lw.admin).json()["keys"]}
    assert listed[old]["status"] == "retired"
    with lw.warden.store.engine.connect() as conn:  # type: ignore[attr-defined]
        sealed = conn.execute(
            sa.select(signing_keys.c.sealed_private).where(signing_keys.c.kid == old)
        ).scalar_one()
    assert sealed is None  # the private half is destroyed
    assert lw.audit("key.retired")[-1]["data"]["kid"] == old
    # the current key is never retired
    lw.clock.advance(10_000)
    lw.warden.housekeeping()
    assert len(_kids(lw)) == 1


def test_rotation_needs_an_admin(lw: LifecycleWorld) -> None:
    assert lw.client.post("/v1/keys/rotate").status_code == 401
    assert lw.client.get("/v1/keys").status_code == 401


def test_two_processes_on_one_database_share_the_ring(tmp_path: Path) -> None:
    """What a second replica sees: the same keys, and a rotation after ``reload``."""
    data = tmp_path / "data"
    clock = FrozenClock(time.time())
    a = Warden(Settings(data_dir=data), clock=clock)
    b = Warden(Settings(data_dir=data), clock=clock)
    try:
        assert a.keys.current().kid == b.keys.current().kid
        new = a.key_service.rotate("test")
        assert b.keys.current().kid != new.kid
        b.key_service.reload()
        assert b.keys.current().kid == new.kid
        assert [k["kid"] for k in b.keys.jwks()["keys"]] == [
            k["kid"] for k in a.keys.jwks()["keys"]
        ]
    finally:
        a.close()
        b.close()


def test_the_kek_from_settings_must_be_32_bytes(tmp_path: Path, make_world: WorldFactory) -> None:
    from warden.errors import InvalidParameterError

    with pytest.raises(InvalidParameterError, match="32 bytes"):
        Warden(Settings(data_dir=tmp_path / "x", key_encryption_key="c2hvcnQ"))

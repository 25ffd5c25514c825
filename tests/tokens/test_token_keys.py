"""Key managers: thumbprint kids, JWKS, rotation, and keys on disk."""

from __future__ import annotations

import base64
import json
import os
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
)

from tests.tokens.token_forge import AUDIENCE, ISSUER, START
from warden.core.clock import FrozenClock
from warden.errors import InvalidParameterError
from warden.tokens import (
    DiskKeyManager,
    KeyManager,
    MemoryKeyManager,
    TaskCredentialIssuer,
    TaskCredentialVerifier,
    jwk_thumbprint,
    kid_for,
)

VECTORS = Path(__file__).parent / "vectors"


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _issue(keys: KeyManager, clock: FrozenClock) -> str:
    issuer = TaskCredentialIssuer(keys, ISSUER, clock)
    return issuer.issue(
        subject="spiffe://example.org/agent/a",
        audience=[AUDIENCE],
        task_id="task_1",
        scope=["search"],
        ttl=300,
        not_after=START + 600,
    ).token


def _verifier(keys: KeyManager, clock: FrozenClock) -> TaskCredentialVerifier:
    return TaskCredentialVerifier(keys, issuer=ISSUER, audiences={AUDIENCE}, clock=clock)


def test_kid_is_the_rfc7638_thumbprint_rfc8037_vector() -> None:
    vector = json.loads((VECTORS / "rfc.json").read_text())["rfc8037_ed25519"]
    seed = base64.urlsafe_b64decode(vector["private_jwk"]["d"] + "=")
    key = Ed25519PrivateKey.from_private_bytes(seed)
    assert kid_for(key.public_key()) == vector["thumbprint"]


def test_ec_thumbprint_rfc9449_vector() -> None:
    vector = json.loads((VECTORS / "rfc.json").read_text())["rfc9449_ec_thumbprint"]
    assert jwk_thumbprint(vector["jwk"]) == vector["thumbprint"]


def test_memory_key_manager_publishes_a_jwks(clock: FrozenClock) -> None:
    keys = MemoryKeyManager(clock)
    current = keys.current()
    assert current.created_at == START
    assert current.kid == kid_for(current.public_key)
    (jwk,) = keys.jwks()["keys"]
    assert jwk == {
        "kty": "OKP",
        "crv": "Ed25519",
        "x": jwk["x"],
        "kid": current.kid,
        "alg": "EdDSA",
        "use": "sig",
    }
    assert "d" not in jwk
    assert jwk_thumbprint(jwk) == current.kid
    assert keys.public_key(current.kid) is not None
    assert keys.public_key("nope") is None


def test_signing_key_repr_hides_the_private_key(clock: FrozenClock) -> None:
    assert "private_key" not in repr(MemoryKeyManager(clock).current())


def test_rotate_adds_a_newest_key_and_keeps_the_old(clock: FrozenClock) -> None:
    keys = MemoryKeyManager(clock)
    old = keys.current()
    token = _issue(keys, clock)
    clock.advance(10)
    new = keys.rotate()
    assert keys.current() == new
    assert new.kid != old.kid
    assert new.created_at == START + 10
    assert [jwk["kid"] for jwk in keys.jwks()["keys"]] == [new.kid, old.kid]
    assert keys.public_key(old.kid) is not None
    assert _verifier(keys, clock).verify(token).kid == old.kid


def test_jwks_is_a_copy(clock: FrozenClock) -> None:
    keys = MemoryKeyManager(clock)
    keys.jwks()["keys"][0]["kid"] = "changed"
    assert keys.jwks()["keys"][0]["kid"] == keys.current().kid


# -- DiskKeyManager --------------------------------------------------------------------------


def test_disk_first_start_creates_a_private_directory_and_key(
    tmp_path: Path, clock: FrozenClock
) -> None:
    directory = tmp_path / "data" / "keys"
    keys = DiskKeyManager(directory, clock)
    assert _mode(directory) == 0o700
    (file,) = directory.iterdir()
    assert _mode(file) == 0o600
    assert file.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")  # PKCS#8
    assert keys.current().kid in file.name


def test_disk_keys_persist_across_instances(tmp_path: Path, clock: FrozenClock) -> None:
    first = DiskKeyManager(tmp_path, clock)
    token = _issue(first, clock)
    second = DiskKeyManager(tmp_path, clock)
    assert second.current().kid == first.current().kid
    assert second.current().created_at == first.current().created_at
    assert second.jwks() == first.jwks()
    assert _verifier(second, clock).verify(token).kid == first.current().kid


def test_disk_rotate_writes_a_key_and_old_tokens_still_verify(
    tmp_path: Path, clock: FrozenClock
) -> None:
    keys = DiskKeyManager(tmp_path, clock)
    old_token = _issue(keys, clock)
    clock.advance(60)
    new = keys.rotate()
    files = sorted(tmp_path.iterdir())
    assert len(files) == 2
    assert all(_mode(f) == 0o600 for f in files)
    reopened = DiskKeyManager(tmp_path, clock)
    assert reopened.current().kid == new.kid
    assert len(reopened.jwks()["keys"]) == 2
    verifier = _verifier(reopened, clock)
    assert verifier.verify(old_token)
    assert verifier.verify(_issue(reopened, clock)).kid == new.kid


def test_disk_newest_is_by_generation_even_if_the_clock_went_back(
    tmp_path: Path, clock: FrozenClock
) -> None:
    keys = DiskKeyManager(tmp_path, clock)
    clock.set(START - 1000)
    new = keys.rotate()
    assert DiskKeyManager(tmp_path, clock).current().kid == new.kid


def test_disk_reload_sees_keys_rotated_by_another_replica(
    tmp_path: Path, clock: FrozenClock
) -> None:
    one = DiskKeyManager(tmp_path, clock)
    two = DiskKeyManager(tmp_path, clock)
    new = two.rotate()
    assert one.public_key(new.kid) is None
    one.reload()
    assert one.public_key(new.kid) is not None
    assert one.current().kid == new.kid
    assert one.rotate().kid not in {new.kid}
    assert len(DiskKeyManager(tmp_path, clock).jwks()["keys"]) == 3


@pytest.mark.skipif(os.name != "posix", reason="file modes are posix")
def test_disk_refuses_a_key_file_others_can_read(tmp_path: Path, clock: FrozenClock) -> None:
    DiskKeyManager(tmp_path, clock)
    (file,) = tmp_path.iterdir()
    file.chmod(0o644)
    with pytest.raises(InvalidParameterError, match="chmod 600"):
        DiskKeyManager(tmp_path, clock)


def test_disk_refuses_a_file_that_does_not_hold_its_named_key(
    tmp_path: Path, clock: FrozenClock
) -> None:
    DiskKeyManager(tmp_path, clock)
    (file,) = tmp_path.iterdir()
    other = Ed25519PrivateKey.generate()
    file.write_bytes(other.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()))
    with pytest.raises(InvalidParameterError, match="does not hold"):
        DiskKeyManager(tmp_path, clock)


def test_disk_refuses_a_broken_key_file(tmp_path: Path, clock: FrozenClock) -> None:
    DiskKeyManager(tmp_path, clock)
    (file,) = tmp_path.iterdir()
    file.write_bytes(b"not a key")
    with pytest.raises(InvalidParameterError, match="pem"):
        DiskKeyManager(tmp_path, clock)


def test_disk_ignores_unrelated_files(tmp_path: Path, clock: FrozenClock) -> None:
    (tmp_path / "README").write_text("keys live here")
    (tmp_path / "other.pem").write_text("not ours")
    keys = DiskKeyManager(tmp_path, clock)
    assert len(keys.jwks()["keys"]) == 1
    assert len(DiskKeyManager(tmp_path, clock).jwks()["keys"]) == 1

"""DevTrustDomain: the JWT-SVID minting helper used by the demo and the attestation tests."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from tests.tokens.token_forge import decode_segment
from warden.errors import InvalidParameterError
from warden.tokens import DevTrustDomain, jwk_thumbprint


def test_create_writes_a_private_key_and_a_spiffe_bundle(tmp_path: Path) -> None:
    domain = DevTrustDomain.create("example.org", tmp_path / "td")
    assert domain.key_path == tmp_path / "td" / "example.org.key.pem"
    assert domain.bundle_path == tmp_path / "td" / "example.org.bundle.json"
    assert stat.S_IMODE(domain.key_path.stat().st_mode) == 0o600
    bundle = json.loads(domain.bundle_path.read_text())
    (key,) = bundle["keys"]
    assert set(key) == {"use", "kty", "kid", "crv", "x", "y"}
    assert key["use"] == "jwt-svid"
    assert (key["kty"], key["crv"]) == ("EC", "P-256")
    assert key["kid"] == domain.kid == jwk_thumbprint(key)
    assert bundle["spiffe_sequence"] == 1
    assert bundle["spiffe_refresh_hint"] == 300


def test_load_reads_the_same_key(tmp_path: Path) -> None:
    created = DevTrustDomain.create("example.org", tmp_path)
    loaded = DevTrustDomain.load("example.org", tmp_path)
    assert loaded.kid == created.kid
    assert loaded.bundle_path == created.bundle_path
    assert DevTrustDomain.load_or_create("example.org", tmp_path).kid == created.kid
    assert DevTrustDomain.load_or_create("other.org", tmp_path).trust_domain == "other.org"


def test_load_without_a_key_fails_clearly(tmp_path: Path) -> None:
    with pytest.raises(InvalidParameterError, match="no key"):
        DevTrustDomain.load("example.org", tmp_path)


@pytest.mark.parametrize("name", ["", "Example.org", "example.org:443", "a/b", "spiffe://x"])
def test_trust_domain_names_are_checked(tmp_path: Path, name: str) -> None:
    with pytest.raises(InvalidParameterError):
        DevTrustDomain.create(name, tmp_path)


def test_mint_produces_a_jwt_svid(tmp_path: Path) -> None:
    domain = DevTrustDomain.create("example.org", tmp_path)
    token = domain.mint(
        "spiffe://example.org/agent/a",
        "warden",
        ttl=120,
        now=1_800_000_000.5,
        extra_claims={"jti": "x"},
    )
    assert decode_segment(token, 0) == {"alg": "ES256", "kid": domain.kid, "typ": "JWT"}
    assert decode_segment(token, 1) == {
        "sub": "spiffe://example.org/agent/a",
        "aud": "warden",
        "iat": 1_800_000_000,
        "exp": 1_800_000_120,
        "jti": "x",
    }
    multi = domain.mint("spiffe://example.org/a", ["warden", "other"])
    assert decode_segment(multi, 1)["aud"] == ["warden", "other"]
    assert decode_segment(domain.mint("spiffe://example.org/a", ["warden"]), 1)["aud"] == "warden"


def test_mint_refuses_extra_claims_that_replace_svid_claims(tmp_path: Path) -> None:
    domain = DevTrustDomain.create("example.org", tmp_path)
    with pytest.raises(InvalidParameterError, match="sub"):
        domain.mint("spiffe://example.org/a", "warden", extra_claims={"sub": "x"})


def test_sign_can_drop_and_add_headers(tmp_path: Path) -> None:
    domain = DevTrustDomain.create("example.org", tmp_path)
    token = domain.sign({"sub": "x"}, headers={"kid": None, "typ": None, "jku": "https://x"})
    assert decode_segment(token, 0) == {"alg": "ES256", "jku": "https://x"}

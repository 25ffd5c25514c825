"""JWT-SVID attestation: what is accepted, and a stable reason for everything that is not."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from warden.attestation import (
    TOKEN_TYPE_JWT,
    TOKEN_TYPE_JWT_SVID,
    JWTSVIDAttestor,
    WorkloadIdentity,
)
from warden.core.clock import FrozenClock
from warden.errors import AttestationError, InvalidParameterError
from warden.tokens import DevTrustDomain

AUDIENCE = "warden"
AGENT = "spiffe://example.org/agent/researcher"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def compact(header: Any, claims: Any, signature: bytes = b"") -> str:
    """A JWS Compact token built by hand (any header, any signature bytes)."""
    head, body = (b64(json.dumps(doc).encode()) for doc in (header, claims))
    return f"{head}.{body}.{b64(signature)}"


def refused(
    attestor: JWTSVIDAttestor, token: Any, reason: str, token_type: str = TOKEN_TYPE_JWT
) -> None:
    with pytest.raises(AttestationError) as info:
        attestor.attest(token, token_type)
    error = info.value
    assert error.detail["reason"] == reason, error.message
    assert error.code == "attestation_failed"
    assert error.detail["method"] == "jwt_svid"
    if isinstance(token, str) and len(token) > 20:
        assert token not in error.message
    assert not error.message.endswith(".")
    assert error.message == error.message.lower() or "`" in error.message


# -- accepted ------------------------------------------------------------------------------


def test_minted_svid_attests_to_its_spiffe_id(
    attestor: JWTSVIDAttestor, domain: DevTrustDomain, now: float
) -> None:
    token = domain.mint(AGENT, AUDIENCE, ttl=300, now=now)
    identity = attestor.attest(token, TOKEN_TYPE_JWT)
    assert isinstance(identity, WorkloadIdentity)
    assert identity.spiffe_id == AGENT
    assert identity.method == "jwt_svid"
    assert identity.trust_domain == "example.org"
    assert identity.evidence_hash == hashlib.sha256(token.encode()).hexdigest()
    assert identity.expires_at == float(int(now) + 300)
    assert identity.claims == {
        "sub": AGENT,
        "aud": AUDIENCE,
        "iat": int(now),
        "exp": int(now) + 300,
    }
    assert token not in repr(identity)


def test_both_token_types_are_accepted(
    attestor: JWTSVIDAttestor, domain: DevTrustDomain, now: float
) -> None:
    assert attestor.token_types == {TOKEN_TYPE_JWT, TOKEN_TYPE_JWT_SVID}
    token = domain.mint(AGENT, AUDIENCE, now=now)
    assert attestor.attest(token, TOKEN_TYPE_JWT_SVID).spiffe_id == AGENT


def test_audience_may_be_one_of_several(
    attestor: JWTSVIDAttestor, domain: DevTrustDomain, now: float
) -> None:
    token = domain.mint(AGENT, ["other", AUDIENCE], now=now)
    assert attestor.attest(token, TOKEN_TYPE_JWT).claims["aud"] == ["other", AUDIENCE]


def test_trust_domain_itself_is_a_valid_spiffe_id(
    attestor: JWTSVIDAttestor, domain: DevTrustDomain, now: float
) -> None:
    identity = attestor.attest(
        domain.mint("spiffe://example.org", AUDIENCE, now=now), TOKEN_TYPE_JWT
    )
    assert identity.spiffe_id == "spiffe://example.org"


def test_several_trust_domains(
    domain: DevTrustDomain, stranger: DevTrustDomain, now: float
) -> None:
    attestor = JWTSVIDAttestor(
        {"example.org": domain.bundle_path, "other.org": stranger.bundle_path}, AUDIENCE
    )
    other = attestor.attest(
        stranger.mint("spiffe://other.org/w", AUDIENCE, now=now), TOKEN_TYPE_JWT
    )
    assert other.trust_domain == "other.org"
    assert attestor.trust_domains == {"example.org", "other.org"}


# -- time and audience --------------------------------------------------------------------


def test_expired_svid_is_refused(
    attestor: JWTSVIDAttestor, domain: DevTrustDomain, now: float
) -> None:
    refused(attestor, domain.mint(AGENT, AUDIENCE, ttl=300, now=now - 1000), "expired")


def test_expiry_follows_the_injected_clock(domain: DevTrustDomain, now: float) -> None:
    clock = FrozenClock(now + 3600)
    attestor = JWTSVIDAttestor({"example.org": domain.bundle_path}, AUDIENCE, clock=clock)
    refused(attestor, domain.mint(AGENT, AUDIENCE, ttl=300, now=now), "expired")


def test_expiry_found_by_py_spiffe_is_named_too(domain: DevTrustDomain, now: float) -> None:
    """Warden's clock thinks the SVID is fine; the wall clock py-spiffe uses does not."""
    clock = FrozenClock(now - 3600)
    attestor = JWTSVIDAttestor({"example.org": domain.bundle_path}, AUDIENCE, clock=clock)
    refused(attestor, domain.mint(AGENT, AUDIENCE, ttl=300, now=now - 3600), "expired")


def test_svid_not_valid_yet_is_refused(
    attestor: JWTSVIDAttestor, domain: DevTrustDomain, now: float
) -> None:
    token = domain.mint(AGENT, AUDIENCE, now=now, extra_claims={"nbf": int(now) + 120})
    refused(attestor, token, "not_yet_valid")


def test_wrong_audience_is_refused(
    attestor: JWTSVIDAttestor, domain: DevTrustDomain, now: float
) -> None:
    refused(attestor, domain.mint(AGENT, "someone-else", now=now), "wrong_audience")
    refused(attestor, domain.mint(AGENT, ["a", "b"], now=now), "wrong_audience")


@pytest.mark.parametrize("missing", ["sub", "aud", "exp"])
def test_missing_required_claim_is_refused(
    attestor: JWTSVIDAttestor, domain: DevTrustDomain, now: float, missing: str
) -> None:
    claims = {"sub": AGENT, "aud": AUDIENCE, "exp": int(now) + 300, "iat": int(now)}
    del claims[missing]
    refused(attestor, domain.sign(claims), "missing_claim")


def test_non_numeric_exp_is_refused(
    attestor: JWTSVIDAttestor, domain: DevTrustDomain, now: float
) -> None:
    for exp in (str(int(now) + 300), True, 10**400):
        refused(attestor, domain.sign({"sub": AGENT, "aud": AUDIENCE, "exp": exp}), "malformed")


# -- keys and trust domains ------------------------------------------------------------------


def test_svid_of_an_unconfigured_trust_domain_is_refused(
    attestor: JWTSVIDAttestor, stranger: DevTrustDomain, now: float
) -> None:
    refused(
        attestor, stranger.mint("spiffe://other.org/w", AUDIENCE, now=now), "unknown_trust_domain"
    )


def test_another_domains_key_claiming_this_domain_is_refused(
    attestor: JWTSVIDAttestor, stranger: DevTrustDomain, now: float
) -> None:
    """other.org's key signs an SVID whose sub says example.org: its kid is not in the bundle."""
    refused(attestor, stranger.mint(AGENT, AUDIENCE, now=now), "unknown_key")


def test_another_domains_key_with_this_domains_kid_is_refused(
    attestor: JWTSVIDAttestor, domain: DevTrustDomain, stranger: DevTrustDomain, now: float
) -> None:
    """Same, with the kid forged to name example.org's key: the signature does not verify."""
    claims = {"sub": AGENT, "aud": AUDIENCE, "exp": int(now) + 300, "iat": int(now)}
    refused(attestor, stranger.sign(claims, headers={"kid": domain.kid}), "bad_signature")


def test_tampered_signature_is_refused(
    attestor: JWTSVIDAttestor, domain: DevTrustDomain, now: float
) -> None:
    token = domain.mint(AGENT, AUDIENCE, now=now)
    head, body, sig = token.split(".")
    flipped = sig[:10] + ("A" if sig[10] != "A" else "B") + sig[11:]
    refused(attestor, f"{head}.{body}.{flipped}", "bad_signature")


def test_tampered_subject_is_refused(
    attestor: JWTSVIDAttestor, domain: DevTrustDomain, now: float
) -> None:
    token = domain.mint(AGENT, AUDIENCE, now=now)
    head, _, sig = token.split(".")
    claims = {"sub": "spiffe://example.org/agent/admin", "aud": AUDIENCE, "exp": int(now) + 300}
    refused(attestor, f"{head}.{b64(json.dumps(claims).encode())}.{sig}", "bad_signature")


def test_unknown_kid_is_refused(
    attestor: JWTSVIDAttestor, domain: DevTrustDomain, now: float
) -> None:
    claims = {"sub": AGENT, "aud": AUDIENCE, "exp": int(now) + 300}
    refused(attestor, domain.sign(claims, headers={"kid": "not-in-the-bundle"}), "unknown_key")


def test_missing_kid_is_refused(
    attestor: JWTSVIDAttestor, domain: DevTrustDomain, now: float
) -> None:
    claims = {"sub": AGENT, "aud": AUDIENCE, "exp": int(now) + 300}
    refused(attestor, domain.sign(claims, headers={"kid": None}), "missing_kid")
    refused(attestor, domain.sign(claims, headers={"kid": ""}), "missing_kid")


# -- subjects that are not SPIFFE IDs ---------------------------------------------------------


@pytest.mark.parametrize(
    "sub",
    [
        "SPIFFE://example.org/agent/researcher",  # scheme is lowercase only
        "Spiffe://example.org/agent/researcher",
        "spiffe://EXAMPLE.org/agent/researcher",  # trust domain is lowercase only
        "spiffe://example.org/agent/researcher?admin=1",  # query
        "spiffe://example.org/agent/researcher#frag",  # fragment
        "spiffe://example.org:8443/agent/researcher",  # port
        "spiffe://user@example.org/agent/researcher",  # userinfo
        "spiffe://example.org/agent/../admin",  # dot segments
        "spiffe://example.org/./agent",
        "spiffe://example.org/agent/.",
        "spiffe://example.org/agent/researcher/",  # trailing slash
        "spiffe://example.org/",
        "spiffe://example.org//agent",  # empty segment
        "spiffe://example.org/agent/%72esearcher",  # percent-encoding
        "spiffe://example.org/agent/rés",
        "spiffe://",
        "spiffe:///agent",
        "https://example.org/agent/researcher",
        "example.org/agent/researcher",
        "",
        "spiffe://example.org/" + "a" * 2048,  # longer than 2048 bytes
        42,
        ["spiffe://example.org/agent/researcher"],
    ],
)
def test_invalid_spiffe_id_is_refused(
    attestor: JWTSVIDAttestor, domain: DevTrustDomain, now: float, sub: Any
) -> None:
    claims = {"sub": sub, "aud": AUDIENCE, "exp": int(now) + 300}
    refused(attestor, domain.sign(claims), "invalid_spiffe_id")


# -- algorithms and headers --------------------------------------------------------------------


def test_alg_none_is_refused(attestor: JWTSVIDAttestor, domain: DevTrustDomain, now: float) -> None:
    claims = {"sub": AGENT, "aud": AUDIENCE, "exp": int(now) + 300}
    refused(attestor, compact({"alg": "none", "kid": domain.kid}, claims), "unsupported_algorithm")


def test_hs256_is_refused(attestor: JWTSVIDAttestor, domain: DevTrustDomain, now: float) -> None:
    """HMAC keyed with the published bundle: the classic public-key-as-secret confusion."""
    claims = {"sub": AGENT, "aud": AUDIENCE, "exp": int(now) + 300}
    header = {"alg": "HS256", "kid": domain.kid, "typ": "JWT"}
    unsigned = compact(header, claims).rsplit(".", 1)[0]
    secret = domain.bundle_path.read_bytes()
    mac = hmac.new(secret, unsigned.encode(), hashlib.sha256).digest()
    refused(attestor, f"{unsigned}.{b64(mac)}", "unsupported_algorithm")


def test_eddsa_is_not_a_jwt_svid_algorithm(
    attestor: JWTSVIDAttestor, domain: DevTrustDomain, now: float
) -> None:
    claims = {"sub": AGENT, "aud": AUDIENCE, "exp": int(now) + 300}
    header = {"alg": "EdDSA", "kid": domain.kid}
    unsigned = compact(header, claims).rsplit(".", 1)[0]
    signature = Ed25519PrivateKey.generate().sign(unsigned.encode())
    refused(attestor, f"{unsigned}.{b64(signature)}", "unsupported_algorithm")


def test_alg_that_does_not_fit_the_key_is_refused(
    attestor: JWTSVIDAttestor, domain: DevTrustDomain, now: float
) -> None:
    """The bundle key is P-256: RS256 or ES384 in the header cannot be right."""
    claims = {"sub": AGENT, "aud": AUDIENCE, "exp": int(now) + 300}
    for alg in ("RS256", "PS256", "ES384"):
        refused(
            attestor,
            compact({"alg": alg, "kid": domain.kid}, claims, b"\x01" * 64),
            "unsupported_algorithm",
        )


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("jku", "https://attacker.example/jwks.json"),
        ("x5u", "https://attacker.example/cert.pem"),
        ("jwk", {"kty": "EC", "crv": "P-256", "x": "AAAA", "y": "AAAA"}),
        ("x5c", ["MIIB"]),
        ("crit", ["exp"]),
        ("cty", "JWT"),
    ],
)
def test_headers_outside_the_jwt_svid_profile_are_refused(
    attestor: JWTSVIDAttestor, domain: DevTrustDomain, now: float, name: str, value: Any
) -> None:
    claims = {"sub": AGENT, "aud": AUDIENCE, "exp": int(now) + 300}
    refused(attestor, domain.sign(claims, headers={name: value}), "forbidden_header")


def test_typ_must_be_jwt_or_jose(
    attestor: JWTSVIDAttestor, domain: DevTrustDomain, now: float
) -> None:
    claims = {"sub": AGENT, "aud": AUDIENCE, "exp": int(now) + 300}
    assert attestor.attest(domain.sign(claims, headers={"typ": "JOSE"}), TOKEN_TYPE_JWT)
    assert attestor.attest(domain.sign(claims, headers={"typ": None}), TOKEN_TYPE_JWT)
    refused(attestor, domain.sign(claims, headers={"typ": "at+jwt"}), "malformed")


# -- shape -------------------------------------------------------------------------------------


def test_oversized_token_is_refused(domain: DevTrustDomain, now: float) -> None:
    attestor = JWTSVIDAttestor({"example.org": domain.bundle_path}, AUDIENCE, max_token_bytes=1024)
    token = domain.mint(AGENT, AUDIENCE, now=now, extra_claims={"pad": "x" * 1024})
    refused(attestor, token, "too_large")
    refused(attestor, "é" * 600, "too_large")


def test_default_size_limit_is_8k(
    attestor: JWTSVIDAttestor, domain: DevTrustDomain, now: float
) -> None:
    token = domain.mint(AGENT, AUDIENCE, now=now, extra_claims={"pad": "x" * 8192})
    refused(attestor, token, "too_large")


@pytest.mark.parametrize(
    "garbage",
    [
        "",
        "garbage",
        "a.b.c",
        "a.b",
        "..",
        "e30.e30.e30.e30",
        '{"payload":"e30","signatures":[]}',  # JWS JSON serialization
        "ünïcödé.x.y",
        "\ud800.\udfff.x",
        None,
        b"a.b.c",
    ],
)
def test_garbage_is_refused(attestor: JWTSVIDAttestor, garbage: Any) -> None:
    with pytest.raises(AttestationError) as info:
        attestor.attest(garbage, TOKEN_TYPE_JWT)
    assert info.value.detail["reason"] in {"malformed", "unsupported_algorithm"}


def test_garbage_with_a_valid_looking_header_is_malformed(attestor: JWTSVIDAttestor) -> None:
    refused(attestor, "a.b.c", "malformed")
    refused(attestor, "not-a-jwt", "malformed")


def test_other_token_types_are_refused(
    attestor: JWTSVIDAttestor, domain: DevTrustDomain, now: float
) -> None:
    token = domain.mint(AGENT, AUDIENCE, now=now)
    refused(attestor, token, "unsupported_token_type", "urn:ietf:params:oauth:token-type:id_token")


# -- bundles and configuration -------------------------------------------------------------------


def test_bundle_keys_for_other_uses_are_ignored(
    tmp_path: Path, domain: DevTrustDomain, now: float
) -> None:
    bundle = domain.bundle()
    bundle["keys"].append(  # an X.509 root: no kid, which py-spiffe alone would refuse
        {"use": "x509-svid", "kty": "EC", "crv": "P-256", "x": "AA", "y": "AA", "x5c": ["MIIB"]}
    )
    path = tmp_path / "full.bundle.json"
    path.write_text(json.dumps(bundle))
    attestor = JWTSVIDAttestor({"example.org": path}, AUDIENCE)
    assert attestor.attest(domain.mint(AGENT, AUDIENCE, now=now), TOKEN_TYPE_JWT).spiffe_id == AGENT


def test_a_bundle_without_jwt_keys_accepts_nothing(
    tmp_path: Path, domain: DevTrustDomain, now: float
) -> None:
    path = tmp_path / "empty.bundle.json"
    path.write_text(json.dumps({"keys": [], "spiffe_sequence": 2}))
    attestor = JWTSVIDAttestor({"example.org": path}, AUDIENCE)
    refused(attestor, domain.mint(AGENT, AUDIENCE, now=now), "unknown_key")


def test_reload_picks_up_a_new_bundle(tmp_path: Path, now: float) -> None:
    old = DevTrustDomain.create("example.org", tmp_path)
    attestor = JWTSVIDAttestor({"example.org": old.bundle_path}, AUDIENCE)
    old_token = old.mint(AGENT, AUDIENCE, now=now)
    new = DevTrustDomain.create("example.org", tmp_path)  # replaces key and bundle
    new_token = new.mint(AGENT, AUDIENCE, now=now)
    refused(attestor, new_token, "unknown_key")
    attestor.reload()
    assert attestor.attest(new_token, TOKEN_TYPE_JWT).spiffe_id == AGENT
    refused(attestor, old_token, "unknown_key")


def test_failed_reload_keeps_the_last_good_bundles(
    attestor: JWTSVIDAttestor, domain: DevTrustDomain, now: float
) -> None:
    domain.bundle_path.write_text("{not json")
    with pytest.raises(InvalidParameterError, match=r"example\.org"):
        attestor.reload()
    assert attestor.attest(domain.mint(AGENT, AUDIENCE, now=now), TOKEN_TYPE_JWT)


@pytest.mark.parametrize(
    "content", ["{not json", "[]", '{"keys": 3}', '{"keys": [{"use": "jwt-svid", "kty": "EC"}]}']
)
def test_broken_bundle_files_are_configuration_errors(tmp_path: Path, content: str) -> None:
    path = tmp_path / "b.json"
    path.write_text(content)
    with pytest.raises(InvalidParameterError, match=r"example\.org"):
        JWTSVIDAttestor({"example.org": path}, AUDIENCE)


def test_missing_bundle_file_is_a_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(InvalidParameterError, match="cannot read"):
        JWTSVIDAttestor({"example.org": tmp_path / "absent.json"}, AUDIENCE)


@pytest.mark.parametrize("name", ["Example.org", "example.org:443", "", "spiffe://example.org"])
def test_trust_domain_names_must_be_canonical(domain: DevTrustDomain, name: str) -> None:
    with pytest.raises(InvalidParameterError, match="trust domain"):
        JWTSVIDAttestor({name: domain.bundle_path}, AUDIENCE)


def test_audience_is_required(domain: DevTrustDomain) -> None:
    with pytest.raises(InvalidParameterError, match="audience"):
        JWTSVIDAttestor({"example.org": domain.bundle_path}, "")

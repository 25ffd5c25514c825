"""AttestorRegistry dispatch and the `spiffe` config section."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from warden.attestation import (
    TOKEN_TYPE_JWT,
    TOKEN_TYPE_JWT_SVID,
    Attestor,
    AttestorRegistry,
    Channel,
    JWTSVIDAttestor,
    WorkloadIdentity,
    from_config,
)
from warden.errors import AttestationError, InvalidParameterError
from warden.tokens import DevTrustDomain

AUDIENCE = "warden"
AGENT = "spiffe://example.org/agent/researcher"
JOIN = "urn:warden:token-type:join"


class JoinTokenAttestor:
    """A stand-in for a later method, to show the seam."""

    method = "join_token"
    token_types = frozenset({JOIN})

    def attest(
        self, token: str, token_type: str, channel: Channel | None = None
    ) -> WorkloadIdentity:
        if token != "let-me-in":
            raise AttestationError("join token is unknown", detail={"reason": "unknown_token"})
        return WorkloadIdentity(
            spiffe_id="spiffe://example.org/joined",
            method=self.method,
            evidence_hash=hashlib.sha256(token.encode()).hexdigest(),
            trust_domain="example.org",
            expires_at=None,
            claims={},
        )


class BrokenAttestor:
    method = "broken"
    token_types = frozenset({"urn:test:broken"})

    def attest(
        self, token: str, token_type: str, channel: Channel | None = None
    ) -> WorkloadIdentity:
        raise RuntimeError("bug")


def test_registry_dispatches_by_token_type(
    attestor: JWTSVIDAttestor, domain: DevTrustDomain, now: float
) -> None:
    registry = AttestorRegistry([attestor])
    registry.register(JoinTokenAttestor())
    assert isinstance(attestor, Attestor)
    assert registry.token_types == {TOKEN_TYPE_JWT, TOKEN_TYPE_JWT_SVID, JOIN}
    assert registry.methods == {"jwt_svid", "join_token"}
    svid = domain.mint(AGENT, AUDIENCE, now=now)
    assert registry.attest(svid, TOKEN_TYPE_JWT_SVID).method == "jwt_svid"
    assert registry.attest("let-me-in", JOIN).method == "join_token"
    with pytest.raises(AttestationError) as info:
        registry.attest("nope", JOIN)
    assert info.value.detail["reason"] == "unknown_token"


def test_unknown_token_type_is_refused(attestor: JWTSVIDAttestor) -> None:
    registry = AttestorRegistry([attestor])
    for token_type in ("urn:ietf:params:oauth:token-type:id_token", "", None):
        with pytest.raises(AttestationError) as info:
            registry.attest("x", token_type)  # type: ignore[arg-type]
        assert info.value.detail["reason"] == "unsupported_token_type"


def test_empty_registry_refuses_everything() -> None:
    with pytest.raises(AttestationError) as info:
        AttestorRegistry().attest("x", TOKEN_TYPE_JWT)
    assert info.value.detail["reason"] == "unsupported_token_type"


def test_a_token_type_has_one_attestor(attestor: JWTSVIDAttestor) -> None:
    registry = AttestorRegistry([attestor])
    with pytest.raises(InvalidParameterError, match="jwt_svid"):
        registry.register(attestor)


def test_an_attestor_bug_is_a_refusal_not_an_identity() -> None:
    registry = AttestorRegistry([BrokenAttestor()])
    with pytest.raises(AttestationError) as info:
        registry.attest("x", "urn:test:broken")
    assert info.value.detail["reason"] == "attestor_error"
    assert isinstance(info.value.__cause__, RuntimeError)


# -- from_config ---------------------------------------------------------------------------------


def test_from_config_reads_the_spiffe_section(
    tmp_path: Path, domain: DevTrustDomain, now: float
) -> None:
    relative = domain.bundle_path.relative_to(tmp_path)
    section = {
        "audience": AUDIENCE,
        "trust_domains": {"example.org": {"bundle_file": str(relative)}},
    }
    built = from_config(section, base_dir=tmp_path)
    assert built.audience == AUDIENCE
    assert built.trust_domains == {"example.org"}
    assert built.attest(domain.mint(AGENT, AUDIENCE, now=now), TOKEN_TYPE_JWT).spiffe_id == AGENT
    wrapped = from_config({"spiffe": section}, base_dir=tmp_path)
    assert wrapped.trust_domains == {"example.org"}


def test_from_config_limits(tmp_path: Path, domain: DevTrustDomain, now: float) -> None:
    section = {
        "audience": AUDIENCE,
        "max_token_bytes": 512,
        "leeway": 0,
        "trust_domains": {"example.org": {"bundle_file": str(domain.bundle_path)}},
    }
    built = from_config(section)
    token = domain.mint(AGENT, AUDIENCE, now=now, extra_claims={"pad": "x" * 512})
    with pytest.raises(AttestationError) as info:
        built.attest(token, TOKEN_TYPE_JWT)
    assert info.value.detail["reason"] == "too_large"


@pytest.mark.parametrize(
    ("section", "key"),
    [
        ({"trust_domains": {"example.org": {"bundle_file": "b.json"}}}, "audience"),
        ({"audience": "", "trust_domains": {"example.org": {"bundle_file": "b.json"}}}, "audience"),
        ({"audience": "warden"}, "trust_domains"),
        ({"audience": "warden", "trust_domains": {}}, "trust_domains"),
        ({"audience": "warden", "trust_domains": {"example.org": "b.json"}}, "bundle_file"),
        ({"audience": "warden", "trust_domains": {"example.org": {}}}, "bundle_file"),
        (
            {"audience": "warden", "trust_domains": {"x": {"bundle_file": "b"}}, "bundles": 1},
            "bundles",
        ),
        (
            {"audience": "w", "max_token_bytes": 0, "trust_domains": {"x": {"bundle_file": "b"}}},
            "max_token_bytes",
        ),
        ({"audience": "w", "leeway": -1, "trust_domains": {"x": {"bundle_file": "b"}}}, "leeway"),
    ],
)
def test_from_config_names_the_bad_key(section: dict[str, object], key: str) -> None:
    with pytest.raises(InvalidParameterError, match=key):
        from_config(section)

"""TaskCredentialIssuer: the credential format, and what it refuses to sign."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest

from tests.tokens.token_forge import AUDIENCE, ISSUER, START, SUBJECT, decode_segment
from warden.core.clock import FrozenClock
from warden.errors import InvalidParameterError
from warden.tokens import (
    REGISTERED_CLAIMS,
    IssuedCredential,
    MemoryKeyManager,
    TaskCredentialIssuer,
    peek_header,
)

Issue = Callable[..., IssuedCredential]


def test_header_is_eddsa_at_jwt_with_kid(issue: Issue, keys: MemoryKeyManager) -> None:
    issued = issue()
    assert decode_segment(issued.token, 0) == {
        "alg": "EdDSA",
        "typ": "at+jwt",
        "kid": keys.current().kid,
    }
    assert peek_header(issued.token)["kid"] == issued.kid == keys.current().kid


def test_claims_are_as_specified(issue: Issue) -> None:
    issued = issue(extra_claims={"act": {"sub": "spiffe://example.org/agent/parent"}})
    claims = decode_segment(issued.token, 1)
    assert claims == issued.claims
    assert claims == {
        "iss": ISSUER,
        "sub": SUBJECT,
        "aud": AUDIENCE,
        "iat": int(START),
        "nbf": int(START),
        "exp": int(START) + 300,
        "jti": issued.jti,
        "task": "task_0123456789abcdef01234567",
        "scope": "search read_file",
        "ver": 1,
        "act": {"sub": "spiffe://example.org/agent/parent"},
    }
    assert issued.issued_at == START
    assert issued.expires_at == START + 300


def test_time_claims_are_integers(issue: Issue, clock: FrozenClock) -> None:
    clock.set(START + 0.75)
    claims = decode_segment(issue(ttl=10.9).token, 1)
    assert claims["iat"] == claims["nbf"] == int(START)
    assert claims["exp"] == int(START) + 10
    assert all(type(claims[name]) is int for name in ("iat", "nbf", "exp"))


def test_several_audiences_are_a_list(issue: Issue) -> None:
    claims = decode_segment(issue(audience=["a", "b", "a"]).token, 1)
    assert claims["aud"] == ["a", "b"]


def test_scope_is_space_separated_without_duplicates(issue: Issue) -> None:
    claims = decode_segment(issue(scope=["b", "a", "b"]).token, 1)
    assert claims["scope"] == "b a"
    assert decode_segment(issue(scope=[]).token, 1)["scope"] == ""


def test_jti_is_random_url_safe_and_128_bits(issue: Issue) -> None:
    jtis = {issue().jti for _ in range(200)}
    assert len(jtis) == 200
    for jti in jtis:
        assert re.fullmatch(r"[A-Za-z0-9_-]{22,}", jti)


def test_expiry_never_passes_not_after(issue: Issue) -> None:
    issued = issue(ttl=300, not_after=START + 100.9)
    assert issued.expires_at == START + 100
    assert decode_segment(issued.token, 1)["exp"] == int(START) + 100
    for not_after in (START + 1, START + 299, START + 300, START + 301, START + 10**6):
        assert issue(ttl=300, not_after=not_after).expires_at <= not_after


def test_a_task_that_has_expired_gets_no_credential(issue: Issue) -> None:
    for not_after in (START - 1, START, START + 0.99):
        with pytest.raises(InvalidParameterError, match="expire"):
            issue(not_after=not_after)


@pytest.mark.parametrize("ttl", [0, -1, float("nan"), float("inf"), True, "300"])
def test_ttl_must_be_a_positive_number(issue: Issue, ttl: Any) -> None:
    with pytest.raises(InvalidParameterError):
        issue(ttl=ttl)


@pytest.mark.parametrize("claim", sorted(REGISTERED_CLAIMS))
def test_extra_claims_cannot_replace_registered_ones(issue: Issue, claim: str) -> None:
    with pytest.raises(InvalidParameterError, match=claim):
        issue(extra_claims={claim: "spoofed"})


def test_extra_claims_must_be_json(issue: Issue) -> None:
    with pytest.raises(InvalidParameterError, match="json"):
        issue(extra_claims={"when": object()})


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("subject", ""),
        ("subject", None),
        ("task_id", ""),
        ("audience", []),
        ("audience", "warden"),  # a bare string is a mistake, not a list of characters
        ("audience", [""]),
        ("audience", [3]),
        ("scope", "search read"),
        ("scope", ["has space"]),
        ("scope", ['quote"']),
        ("not_after", float("nan")),
    ],
)
def test_invalid_arguments_are_refused(issue: Issue, field: str, value: Any) -> None:
    with pytest.raises(InvalidParameterError):
        issue(**{field: value})


def test_signs_with_the_newest_key(issue: Issue, keys: MemoryKeyManager) -> None:
    before = issue().kid
    rotated = keys.rotate()
    assert issue().kid == rotated.kid != before


def test_token_is_kept_out_of_repr(issue: Issue) -> None:
    issued = issue()
    assert issued.token not in repr(issued)


def test_issuer_must_be_named(keys: MemoryKeyManager, clock: FrozenClock) -> None:
    with pytest.raises(InvalidParameterError):
        TaskCredentialIssuer(keys, "", clock)

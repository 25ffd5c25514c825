"""TaskCredentialVerifier: every RFC 8725 rule is its own test, plus the verified-token cache."""

from __future__ import annotations

import base64
import json
import string
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from tests.tokens.token_forge import (
    AUDIENCE,
    ISSUER,
    START,
    b64,
    ed25519_signer,
    es256_signer,
    forge,
    good_claims,
    hs256_signer,
    replace_segment,
    rs256_signer,
    segment,
)
from warden.core.clock import FrozenClock
from warden.errors import (
    AlgorithmNotAllowedError,
    AudienceMismatchError,
    ForbiddenHeaderError,
    IssuerMismatchError,
    KeyNotFoundError,
    TokenExpiredError,
    TokenInvalidError,
    TokenNotYetValidError,
    TokenTooLargeError,
)
from warden.tokens import (
    REQUIRED_CLAIMS,
    IssuedCredential,
    MemoryKeyManager,
    TaskCredentialVerifier,
    VerifiedCredential,
    _jose,
    peek_unverified,
)

Issue = Callable[..., IssuedCredential]
Sign = Callable[..., str]
VECTORS = Path(__file__).parent / "vectors"


def rejected(
    verifier: TaskCredentialVerifier, token: Any, error: type[TokenInvalidError]
) -> TokenInvalidError:
    """Verification fails with exactly ``error`` (not a sibling, not the base class by accident)
    and the message never repeats the token."""
    with pytest.raises(TokenInvalidError) as info:
        verifier.verify(token)
    assert type(info.value) is error, f"{type(info.value).__name__}: {info.value.message}"
    if isinstance(token, str) and len(token) > 20:
        assert token not in info.value.message
    assert info.value.message == info.value.message.strip()
    assert not info.value.message.endswith(".")
    return info.value


# -- the happy path ----------------------------------------------------------------------------


def test_issue_then_verify_round_trip(issue: Issue, verifier: TaskCredentialVerifier) -> None:
    issued = issue(extra_claims={"act": {"sub": "spiffe://example.org/agent/parent"}})
    cred = verifier.verify(issued.token)
    assert isinstance(cred, VerifiedCredential)
    assert cred.jti == issued.jti
    assert cred.subject == "spiffe://example.org/agent/researcher"
    assert cred.audience == (AUDIENCE,)
    assert cred.task_id == "task_0123456789abcdef01234567"
    assert cred.scope == frozenset({"search", "read_file"})
    assert cred.issued_at == issued.issued_at == START
    assert cred.expires_at == issued.expires_at == START + 300
    assert cred.kid == issued.kid
    assert cred.claims == issued.claims
    assert cred.claims["act"] == {"sub": "spiffe://example.org/agent/parent"}


def test_any_configured_audience_is_enough(
    issue: Issue, keys: MemoryKeyManager, clock: FrozenClock
) -> None:
    verifier = TaskCredentialVerifier(
        keys, issuer=ISSUER, audiences={"https://mcp.example", "other"}, clock=clock
    )
    cred = verifier.verify(issue(audience=["https://tools.example", "https://mcp.example"]).token)
    assert cred.audience == ("https://tools.example", "https://mcp.example")


def test_typ_header_is_optional(sign_good: Sign, verifier: TaskCredentialVerifier) -> None:
    assert verifier.verify(sign_good(typ=None)).jti == good_claims()["jti"]


def test_empty_scope_verifies_to_an_empty_set(
    sign_good: Sign, verifier: TaskCredentialVerifier
) -> None:
    assert verifier.verify(sign_good(good_claims(scope=""))).scope == frozenset()


def test_tokens_of_a_rotated_out_key_still_verify(
    issue: Issue, keys: MemoryKeyManager, verifier: TaskCredentialVerifier
) -> None:
    old = issue()
    keys.rotate()
    new = issue()
    assert new.kid != old.kid
    assert verifier.verify(old.token).kid == old.kid
    assert verifier.verify(new.token).kid == new.kid


# -- size and shape ------------------------------------------------------------------------------


def test_oversized_token_is_refused_before_anything_else(
    keys: MemoryKeyManager, clock: FrozenClock
) -> None:
    verifier = TaskCredentialVerifier(
        keys, issuer=ISSUER, audiences={AUDIENCE}, clock=clock, max_token_bytes=100
    )
    rejected(verifier, "x" * 101, TokenTooLargeError)  # garbage, but too large first
    rejected(verifier, "é" * 60, TokenTooLargeError)  # 60 characters, 120 bytes


def test_default_size_limit_is_8k(sign_good: Sign, verifier: TaskCredentialVerifier) -> None:
    padded = sign_good(good_claims(padding="p" * 8200))
    rejected(verifier, padded, TokenTooLargeError)


def test_truncated_token_is_refused(issue: Issue, verifier: TaskCredentialVerifier) -> None:
    token = issue().token
    rejected(verifier, token[:-1], TokenInvalidError)


def test_token_without_signature_segment_is_refused(
    issue: Issue, verifier: TaskCredentialVerifier
) -> None:
    token = issue().token
    rejected(verifier, token.rsplit(".", 1)[0], TokenInvalidError)
    rejected(verifier, token.rsplit(".", 1)[0] + ".", TokenInvalidError)


@pytest.mark.parametrize(
    "garbage",
    [
        "",
        "garbage",
        "a.b.c",
        "..",
        "a.b.c.d.e",
        "ünïcödé.x.y",
        "{}.{}.{}",
        "e30.e30.e30",
        "\ud800.\udfff.x",  # lone surrogates: not even encodable
    ],
)
def test_garbage_is_refused(verifier: TaskCredentialVerifier, garbage: str) -> None:
    with pytest.raises(TokenInvalidError):
        verifier.verify(garbage)


def test_non_string_token_is_refused(verifier: TaskCredentialVerifier) -> None:
    for value in (None, 42, b"a.b.c", ["a"]):
        rejected(verifier, value, TokenInvalidError)


def test_header_must_be_a_json_object(
    keys: MemoryKeyManager, verifier: TaskCredentialVerifier
) -> None:
    token = forge(["EdDSA"], good_claims(), ed25519_signer(keys.current().private_key))
    rejected(verifier, token, TokenInvalidError)


def test_claims_must_be_a_json_object(sign_good: Sign, verifier: TaskCredentialVerifier) -> None:
    rejected(verifier, sign_good([good_claims()]), TokenInvalidError)


def test_padded_base64_is_refused(issue: Issue, verifier: TaskCredentialVerifier) -> None:
    token = issue().token
    head, body, sig = token.split(".")
    rejected(verifier, f"{head}=.{body}.{sig}", TokenInvalidError)
    rejected(verifier, f"{head}.{body}.{sig}==", TokenInvalidError)


@pytest.mark.parametrize("bad", ["ab+c", "ab/c", "ab c", "ab\nc", "abc=", "a", "ab.c", "ábc"])
def test_base64url_decoding_is_strict(bad: str) -> None:
    with pytest.raises(TokenInvalidError):
        _jose.b64url_decode(bad)


def test_standard_base64_alphabet_is_refused(
    issue: Issue, verifier: TaskCredentialVerifier
) -> None:
    token = issue().token
    # about 1 signature in 15 has neither `-` nor `_`: then the swap would change nothing
    while not {"-", "_"} & set(token.rsplit(".", 1)[1]):
        token = issue().token
    head, body, sig = token.split(".")
    rejected(
        verifier, f"{head}.{body}.{sig.replace('-', '+').replace('_', '/')}", TokenInvalidError
    )
    rejected(verifier, f"{head[:-2]}+/.{body}.{sig}", TokenInvalidError)


# -- algorithms (RFC 8725 §2.1, §3.1, §3.2) --------------------------------------------------------


def test_alg_none_is_refused(keys: MemoryKeyManager, verifier: TaskCredentialVerifier) -> None:
    token = forge({"alg": "none", "typ": "at+jwt", "kid": keys.current().kid}, good_claims())
    rejected(verifier, token, AlgorithmNotAllowedError)


@pytest.mark.parametrize("alg", ["none", "None", "NONE", "nOnE"])
def test_alg_none_spellings_with_a_real_signature_are_refused(
    sign_good: Sign, verifier: TaskCredentialVerifier, alg: str
) -> None:
    rejected(verifier, sign_good(alg=alg), AlgorithmNotAllowedError)


def _public_raw(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)


def test_hs256_signed_with_the_public_key_bytes_is_refused(
    keys: MemoryKeyManager, verifier: TaskCredentialVerifier
) -> None:
    current = keys.current()
    header = {"alg": "HS256", "typ": "at+jwt", "kid": current.kid}
    token = forge(header, good_claims(), hs256_signer(_public_raw(current.public_key)))
    rejected(verifier, token, AlgorithmNotAllowedError)


def test_hs256_signed_with_the_public_key_pem_is_refused(
    keys: MemoryKeyManager, verifier: TaskCredentialVerifier
) -> None:
    current = keys.current()
    pem = current.public_key.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    header = {"alg": "HS256", "typ": "at+jwt", "kid": current.kid}
    rejected(verifier, forge(header, good_claims(), hs256_signer(pem)), AlgorithmNotAllowedError)


def test_hs256_signed_with_the_published_jwk_is_refused(
    keys: MemoryKeyManager, verifier: TaskCredentialVerifier
) -> None:
    jwk = json.dumps(keys.jwks()["keys"][0]).encode()
    header = {"alg": "HS256", "typ": "at+jwt", "kid": keys.current().kid}
    rejected(verifier, forge(header, good_claims(), hs256_signer(jwk)), AlgorithmNotAllowedError)


def test_rs256_token_is_refused(keys: MemoryKeyManager, verifier: TaskCredentialVerifier) -> None:
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    header = {"alg": "RS256", "typ": "at+jwt", "kid": keys.current().kid}
    rejected(
        verifier, forge(header, good_claims(), rs256_signer(rsa_key)), AlgorithmNotAllowedError
    )


def test_es256_token_is_refused(keys: MemoryKeyManager, verifier: TaskCredentialVerifier) -> None:
    ec_key = ec.generate_private_key(ec.SECP256R1())
    header = {"alg": "ES256", "typ": "at+jwt", "kid": keys.current().kid}
    rejected(verifier, forge(header, good_claims(), es256_signer(ec_key)), AlgorithmNotAllowedError)


@pytest.mark.parametrize("alg", ["Ed25519", "eddsa", "EdDSA ", "ES256K", "PS256", "HS512", 1, None])
def test_any_other_alg_is_refused(
    sign_good: Sign, verifier: TaskCredentialVerifier, alg: Any
) -> None:
    rejected(verifier, sign_good(alg=alg), AlgorithmNotAllowedError)  # None: no alg at all


# -- header parameters that would take the key from the token (RFC 8725 §3.10) -------------------


def test_jku_header_is_refused(sign_good: Sign, verifier: TaskCredentialVerifier) -> None:
    rejected(verifier, sign_good(jku="https://attacker.example/jwks.json"), ForbiddenHeaderError)


def test_x5u_header_is_refused(sign_good: Sign, verifier: TaskCredentialVerifier) -> None:
    rejected(verifier, sign_good(x5u="https://attacker.example/cert.pem"), ForbiddenHeaderError)


def test_embedded_jwk_header_is_refused(
    keys: MemoryKeyManager, verifier: TaskCredentialVerifier
) -> None:
    attacker = Ed25519PrivateKey.generate()
    jwk = {"kty": "OKP", "crv": "Ed25519", "x": b64(_public_raw(attacker.public_key()))}
    header = {"alg": "EdDSA", "typ": "at+jwt", "kid": keys.current().kid, "jwk": jwk}
    rejected(verifier, forge(header, good_claims(), ed25519_signer(attacker)), ForbiddenHeaderError)


def test_x5c_header_is_refused(sign_good: Sign, verifier: TaskCredentialVerifier) -> None:
    rejected(verifier, sign_good(x5c=["MIIBszCCAVmgAwIBAgIU"]), ForbiddenHeaderError)


def test_crit_header_is_refused(sign_good: Sign, verifier: TaskCredentialVerifier) -> None:
    rejected(verifier, sign_good(crit=["b64"], b64=False), ForbiddenHeaderError)


def test_other_typ_is_refused(sign_good: Sign, verifier: TaskCredentialVerifier) -> None:
    """RFC 8725 §3.11: a JWT of another kind signed by the same key is not a credential."""
    for typ in ("JWT", "dpop+jwt", "application/jwt", ""):
        rejected(verifier, sign_good(typ=typ), TokenInvalidError)


# -- keys ----------------------------------------------------------------------------------------


def test_missing_kid_is_refused(sign_good: Sign, verifier: TaskCredentialVerifier) -> None:
    rejected(verifier, sign_good(kid=None), KeyNotFoundError)
    rejected(verifier, sign_good(kid=""), KeyNotFoundError)
    rejected(verifier, sign_good(kid=7), KeyNotFoundError)


def test_unknown_kid_is_refused(sign_good: Sign, verifier: TaskCredentialVerifier) -> None:
    rejected(
        verifier, sign_good(kid="kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"), KeyNotFoundError
    )


def test_token_of_another_key_manager_is_refused(
    clock: FrozenClock, verifier: TaskCredentialVerifier
) -> None:
    from warden.tokens import TaskCredentialIssuer

    stranger = TaskCredentialIssuer(MemoryKeyManager(clock), ISSUER, clock)
    token = stranger.issue(
        subject="spiffe://example.org/a",
        audience=[AUDIENCE],
        task_id="t",
        scope=[],
        ttl=60,
        not_after=START + 60,
    ).token
    rejected(verifier, token, KeyNotFoundError)


def test_known_kid_signed_by_another_key_is_refused(
    keys: MemoryKeyManager, verifier: TaskCredentialVerifier
) -> None:
    header = {"alg": "EdDSA", "typ": "at+jwt", "kid": keys.current().kid}
    token = forge(header, good_claims(), ed25519_signer(Ed25519PrivateKey.generate()))
    rejected(verifier, token, TokenInvalidError)


# -- integrity -----------------------------------------------------------------------------------


def test_tampered_payload_is_refused(issue: Issue, verifier: TaskCredentialVerifier) -> None:
    issued = issue()
    widened = dict(issued.claims, scope="search read_file delete_everything")
    rejected(verifier, replace_segment(issued.token, 1, segment(widened)), TokenInvalidError)


def test_tampered_header_is_refused(issue: Issue, verifier: TaskCredentialVerifier) -> None:
    issued = issue()
    header = {"alg": "EdDSA", "kid": issued.kid, "typ": "at+jwt", "x": 1}
    rejected(verifier, replace_segment(issued.token, 0, segment(header)), TokenInvalidError)


def test_tampered_signature_is_refused(issue: Issue, verifier: TaskCredentialVerifier) -> None:
    token = issue().token
    sig = token.split(".")[2]
    flipped = sig[:20] + ("A" if sig[20] != "A" else "B") + sig[21:]
    rejected(verifier, replace_segment(token, 2, flipped), TokenInvalidError)


def test_non_canonical_signature_encoding_is_refused(
    issue: Issue, verifier: TaskCredentialVerifier
) -> None:
    """The last character of an Ed25519 signature has 4 unused bits; setting them must not give a
    second valid spelling of the same token."""
    token = issue().token
    sig = token.split(".")[2]
    alias = sig[:-1] + {"A": "B", "Q": "R", "g": "h", "w": "x"}[sig[-1]]
    assert base64.urlsafe_b64decode(alias + "==") == base64.urlsafe_b64decode(sig + "==")
    rejected(verifier, replace_segment(token, 2, alias), TokenInvalidError)


def test_every_single_character_change_of_the_token_is_refused(
    issue: Issue, verifier: TaskCredentialVerifier
) -> None:
    """Property-style: replace each character of each segment with others; none verifies."""
    token = issue().token
    alphabet = string.ascii_letters + string.digits + "-_"
    verifier.clear_cache()
    accepted = []
    for position, char in enumerate(token):
        if char == ".":
            continue
        for replacement in {alphabet[(alphabet.index(char) + step) % 64] for step in (1, 17, 33)}:
            candidate = token[:position] + replacement + token[position + 1 :]
            try:
                verifier.verify(candidate)
            except TokenInvalidError:
                continue
            accepted.append(position)
    assert accepted == []


def test_every_byte_of_the_signature_flipped_is_refused(
    issue: Issue, verifier: TaskCredentialVerifier
) -> None:
    token = issue().token
    head, body, sig = token.split(".")
    raw = base64.urlsafe_b64decode(sig + "==")
    for index in range(len(raw)):
        for bit in (0x01, 0x80):
            flipped = bytearray(raw)
            flipped[index] ^= bit
            with pytest.raises(TokenInvalidError):
                verifier.verify(f"{head}.{body}.{b64(bytes(flipped))}")


# -- claims --------------------------------------------------------------------------------------


@pytest.mark.parametrize("claim", REQUIRED_CLAIMS)
def test_missing_required_claim_is_refused(
    sign_good: Sign, verifier: TaskCredentialVerifier, claim: str
) -> None:
    claims = good_claims()
    del claims[claim]
    error = rejected(verifier, sign_good(claims), TokenInvalidError)
    assert f"`{claim}`" in error.message or claim == "ver"


@pytest.mark.parametrize("version", [0, 2, "1", 1.0, True, None, [1]])
def test_wrong_format_version_is_refused(
    sign_good: Sign, verifier: TaskCredentialVerifier, version: Any
) -> None:
    rejected(verifier, sign_good(good_claims(ver=version)), TokenInvalidError)


def test_wrong_issuer_is_refused(sign_good: Sign, verifier: TaskCredentialVerifier) -> None:
    rejected(verifier, sign_good(good_claims(iss="https://attacker.example")), IssuerMismatchError)
    rejected(verifier, sign_good(good_claims(iss=[ISSUER])), IssuerMismatchError)


def test_wrong_audience_is_refused(issue: Issue, verifier: TaskCredentialVerifier) -> None:
    rejected(verifier, issue(audience=["https://other.example"]).token, AudienceMismatchError)


def test_audience_of_wrong_type_is_refused(
    sign_good: Sign, verifier: TaskCredentialVerifier
) -> None:
    for aud in ([], [AUDIENCE, 3], {"a": AUDIENCE}, 3):
        rejected(verifier, sign_good(good_claims(aud=aud)), TokenInvalidError)


@pytest.mark.parametrize("claim", ["exp", "iat", "nbf"])
@pytest.mark.parametrize("value", ["1800000300", None, True, [1], 10**400])
def test_time_claims_must_be_numbers(
    sign_good: Sign, verifier: TaskCredentialVerifier, claim: str, value: Any
) -> None:
    rejected(verifier, sign_good(good_claims(**{claim: value})), TokenInvalidError)


def test_nan_is_not_a_time(keys: MemoryKeyManager, verifier: TaskCredentialVerifier) -> None:
    body = b64(json.dumps(good_claims(exp=float("nan"))).encode())  # json.dumps writes NaN
    header = {"alg": "EdDSA", "typ": "at+jwt", "kid": keys.current().kid}
    token = forge(header, None, ed25519_signer(keys.current().private_key), raw_payload=body)
    rejected(verifier, token, TokenInvalidError)


@pytest.mark.parametrize("claim", ["sub", "jti", "task"])
def test_identifying_claims_must_be_non_empty_strings(
    sign_good: Sign, verifier: TaskCredentialVerifier, claim: str
) -> None:
    rejected(verifier, sign_good(good_claims(**{claim: ""})), TokenInvalidError)
    rejected(verifier, sign_good(good_claims(**{claim: 12})), TokenInvalidError)


def test_scope_must_be_a_string(sign_good: Sign, verifier: TaskCredentialVerifier) -> None:
    rejected(verifier, sign_good(good_claims(scope=["search"])), TokenInvalidError)


# -- time ----------------------------------------------------------------------------------------


def test_expired_token_is_refused(
    issue: Issue, verifier: TaskCredentialVerifier, clock: FrozenClock
) -> None:
    token = issue(ttl=60).token
    clock.advance(60 + 5)
    rejected(verifier, token, TokenExpiredError)


def test_expiry_tolerates_the_leeway(
    issue: Issue, keys: MemoryKeyManager, clock: FrozenClock
) -> None:
    verifier = TaskCredentialVerifier(
        keys, issuer=ISSUER, audiences={AUDIENCE}, clock=clock, leeway=5
    )
    token = issue(ttl=60).token
    clock.advance(64.9)
    verifier.verify(token)
    clock.advance(0.1)
    rejected(verifier, token, TokenExpiredError)


def test_zero_leeway_expires_at_exp(
    issue: Issue, keys: MemoryKeyManager, clock: FrozenClock
) -> None:
    verifier = TaskCredentialVerifier(
        keys, issuer=ISSUER, audiences={AUDIENCE}, clock=clock, leeway=0
    )
    token = issue(ttl=60).token
    clock.advance(60)
    rejected(verifier, token, TokenExpiredError)


def test_not_yet_valid_token_is_refused(sign_good: Sign, verifier: TaskCredentialVerifier) -> None:
    rejected(verifier, sign_good(good_claims(nbf=int(START) + 6)), TokenNotYetValidError)


def test_nbf_tolerates_the_leeway(sign_good: Sign, verifier: TaskCredentialVerifier) -> None:
    verifier.verify(sign_good(good_claims(nbf=int(START) + 5)))


def test_token_issued_in_the_future_is_refused(
    sign_good: Sign, verifier: TaskCredentialVerifier
) -> None:
    claims = good_claims(iat=int(START) + 60)
    del claims["nbf"]
    rejected(verifier, sign_good(claims), TokenNotYetValidError)


def test_token_of_a_clock_running_fast_is_refused(
    issue: Issue, verifier: TaskCredentialVerifier, clock: FrozenClock
) -> None:
    token = issue().token
    clock.set(START - 60)
    rejected(verifier, token, TokenNotYetValidError)


# -- the verified-token cache -----------------------------------------------------------------


def test_cache_returns_the_same_credential(issue: Issue, verifier: TaskCredentialVerifier) -> None:
    token = issue().token
    first = verifier.verify(token)
    assert verifier.cache_len == 1
    assert verifier.verify(token) is first


def test_cache_stops_at_expiry(
    issue: Issue, verifier: TaskCredentialVerifier, clock: FrozenClock
) -> None:
    token = issue(ttl=60).token
    first = verifier.verify(token)
    clock.advance(59.9)
    assert verifier.verify(token) is first
    clock.advance(0.1)  # now == exp: the cache no longer answers; the leeway still does
    second = verifier.verify(token)
    assert second is not first
    assert second == first
    clock.advance(5)
    rejected(verifier, token, TokenExpiredError)


def test_cache_is_bounded(issue: Issue, keys: MemoryKeyManager, clock: FrozenClock) -> None:
    verifier = TaskCredentialVerifier(
        keys, issuer=ISSUER, audiences={AUDIENCE}, clock=clock, cache_size=10
    )
    tokens = [issue().token for _ in range(25)]
    for token in tokens:
        verifier.verify(token)
        assert verifier.cache_len <= 10
    assert verifier.verify(tokens[-1]) is verifier.verify(tokens[-1])
    for token in tokens:  # evicted ones are simply verified again
        assert verifier.verify(token).jti


def test_cache_drops_expired_entries_first(
    issue: Issue, keys: MemoryKeyManager, clock: FrozenClock
) -> None:
    verifier = TaskCredentialVerifier(
        keys, issuer=ISSUER, audiences={AUDIENCE}, clock=clock, cache_size=4
    )
    short = [issue(ttl=10).token for _ in range(3)]
    for token in short:
        verifier.verify(token)
    long_lived = issue(ttl=600).token
    first = verifier.verify(long_lived)
    clock.advance(11)
    fresh = issue(ttl=600).token
    verifier.verify(fresh)
    assert verifier.cache_len == 2
    assert verifier.verify(long_lived) is first


def test_cache_can_be_disabled(issue: Issue, keys: MemoryKeyManager, clock: FrozenClock) -> None:
    verifier = TaskCredentialVerifier(
        keys, issuer=ISSUER, audiences={AUDIENCE}, clock=clock, cache_size=0
    )
    token = issue().token
    assert verifier.verify(token) is not verifier.verify(token)
    assert verifier.cache_len == 0


def test_rejected_tokens_are_not_cached(sign_good: Sign, verifier: TaskCredentialVerifier) -> None:
    token = sign_good(good_claims(aud="https://other.example"))
    for _ in range(2):
        rejected(verifier, token, AudienceMismatchError)
    assert verifier.cache_len == 0


def test_invalidate_and_clear_cache(issue: Issue, verifier: TaskCredentialVerifier) -> None:
    token = issue().token
    first = verifier.verify(token)
    verifier.invalidate(token)
    second = verifier.verify(token)
    assert second is not first
    verifier.clear_cache()
    assert verifier.cache_len == 0
    assert verifier.verify(token) is not second


def test_cache_does_not_bypass_the_size_limit(
    issue: Issue, keys: MemoryKeyManager, clock: FrozenClock
) -> None:
    token = issue().token
    small = TaskCredentialVerifier(
        keys, issuer=ISSUER, audiences={AUDIENCE}, clock=clock, max_token_bytes=len(token) - 1
    )
    rejected(small, token, TokenTooLargeError)


# -- construction and peeking ----------------------------------------------------------------


def test_an_empty_audience_set_is_a_programming_error(
    keys: MemoryKeyManager, clock: FrozenClock
) -> None:
    with pytest.raises(ValueError, match="audience"):
        TaskCredentialVerifier(keys, issuer=ISSUER, audiences=set(), clock=clock)
    with pytest.raises(ValueError, match="audience"):
        TaskCredentialVerifier(keys, issuer=ISSUER, audiences=AUDIENCE, clock=clock)
    with pytest.raises(ValueError, match="issuer"):
        TaskCredentialVerifier(keys, issuer="", audiences={AUDIENCE}, clock=clock)


def test_peek_unverified_reads_claims_without_trusting_them(
    keys: MemoryKeyManager, verifier: TaskCredentialVerifier
) -> None:
    header = {"alg": "EdDSA", "typ": "at+jwt", "kid": keys.current().kid}
    forged = forge(header, good_claims(sub="spiffe://example.org/forged"))  # unsigned
    assert verifier.peek_unverified(forged)["sub"] == "spiffe://example.org/forged"
    assert peek_unverified(forged)["jti"] == good_claims()["jti"]
    with pytest.raises(TokenInvalidError):
        verifier.peek_unverified("garbage")
    with pytest.raises(TokenTooLargeError):
        verifier.peek_unverified("a" * 9000)


# -- data-file vectors (RFC 8037 key) -------------------------------------------------------


class _StaticKeys:
    """A key manager holding one fixed public key (the KeyManager protocol, verify side)."""

    def __init__(self, kid: str, key: Ed25519PublicKey) -> None:
        self._kid, self._key = kid, key

    def public_key(self, kid: str) -> Ed25519PublicKey | None:
        return self._key if kid == self._kid else None

    def current(self) -> Any:
        raise NotImplementedError

    def jwks(self) -> dict[str, Any]:
        raise NotImplementedError

    def rotate(self) -> Any:
        raise NotImplementedError


def _vector_verifier() -> tuple[TaskCredentialVerifier, list[dict[str, Any]]]:
    document = json.loads((VECTORS / "negative.json").read_text())
    rfc = json.loads((VECTORS / "rfc.json").read_text())["rfc8037_ed25519"]
    public = Ed25519PublicKey.from_public_bytes(
        base64.urlsafe_b64decode(rfc["private_jwk"]["x"] + "=")
    )
    verifier = TaskCredentialVerifier(
        _StaticKeys(document["kid"], public),
        issuer=document["issuer"],
        audiences={document["audience"]},
        clock=FrozenClock(document["now"]),
        leeway=document["leeway"],
    )
    return verifier, document["vectors"]


_VECTORS = _vector_verifier()[1]


@pytest.mark.parametrize("vector", _VECTORS, ids=[v["name"] for v in _VECTORS])
def test_vector(vector: dict[str, Any]) -> None:
    verifier, _ = _vector_verifier()
    if vector["expect"] is None:
        assert verifier.verify(vector["token"]).jti
        return
    with pytest.raises(TokenInvalidError) as info:
        verifier.verify(vector["token"])
    assert info.value.code == vector["expect"], info.value.message

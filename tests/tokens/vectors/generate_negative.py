"""Regenerate ``negative.json``: ``.venv/bin/python tests/tokens/vectors/generate_negative.py``.

Every token is signed with the RFC 8037 A.1 Ed25519 key (or, for the attacks, a fixed second
key), so the output is deterministic and the file can be checked byte for byte in review.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))  # the repository root

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from tests.tokens.token_forge import (
    AUDIENCE,
    ISSUER,
    START,
    b64,
    ed25519_signer,
    forge,
    good_claims,
    hs256_signer,
    replace_segment,
    segment,
)

from warden.tokens import _jose

HERE = Path(__file__).resolve().parent
RFC = json.loads((HERE / "rfc.json").read_text())["rfc8037_ed25519"]
key = Ed25519PrivateKey.from_private_bytes(_jose.b64url_decode(RFC["private_jwk"]["d"]))
attacker = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
KID = RFC["thumbprint"]
H = {"alg": "EdDSA", "typ": "at+jwt", "kid": KID}
sign = ed25519_signer(key)
pub_raw = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
pub_pem = key.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
vec: list[dict[str, Any]] = []


def add(name: str, description: str, token: str, expect: str | None) -> None:
    vec.append({"name": name, "description": description, "token": token, "expect": expect})


C = good_claims()
add("valid", "a well-formed credential", forge(H, C, sign), None)
add("valid_without_typ", "typ is optional", forge({"alg": "EdDSA", "kid": KID}, C, sign), None)
add(
    "alg_none",
    "unsecured JWS (RFC 8725 §2.1)",
    forge({**H, "alg": "none"}, C),
    "token_algorithm_not_allowed",
)
add(
    "alg_none_signed",
    "alg none with a real signature attached",
    forge({**H, "alg": "none"}, C, sign),
    "token_algorithm_not_allowed",
)
add(
    "alg_hs256_raw_public_key",
    "HMAC keyed with the raw public key (key confusion)",
    forge({**H, "alg": "HS256"}, C, hs256_signer(pub_raw)),
    "token_algorithm_not_allowed",
)
add(
    "alg_hs256_pem_public_key",
    "HMAC keyed with the PEM public key (key confusion)",
    forge({**H, "alg": "HS256"}, C, hs256_signer(pub_pem)),
    "token_algorithm_not_allowed",
)
add(
    "alg_rs256",
    "RS256 header",
    forge({**H, "alg": "RS256"}, C, lambda b: b"\x01" * 256),
    "token_algorithm_not_allowed",
)
add(
    "alg_es256",
    "ES256 header",
    forge({**H, "alg": "ES256"}, C, lambda b: b"\x01" * 64),
    "token_algorithm_not_allowed",
)
add(
    "alg_ed25519_fully_specified",
    "the RFC 9864 name is not on the allow-list",
    forge({**H, "alg": "Ed25519"}, C, sign),
    "token_algorithm_not_allowed",
)
add(
    "alg_missing",
    "no alg",
    forge({"typ": "at+jwt", "kid": KID}, C, sign),
    "token_algorithm_not_allowed",
)
add(
    "header_jku",
    "jku header",
    forge({**H, "jku": "https://attacker.example/jwks"}, C, sign),
    "token_forbidden_header",
)
add(
    "header_x5u",
    "x5u header",
    forge({**H, "x5u": "https://attacker.example/cert"}, C, sign),
    "token_forbidden_header",
)
ajwk = _jose.ed25519_public_jwk(attacker.public_key())
add(
    "header_jwk_embedded_attacker_key",
    "signed by an embedded jwk",
    forge({**H, "jwk": ajwk}, C, ed25519_signer(attacker)),
    "token_forbidden_header",
)
add("header_x5c", "x5c header", forge({**H, "x5c": ["MIIB"]}, C, sign), "token_forbidden_header")
add("header_crit", "crit header", forge({**H, "crit": ["exp"]}, C, sign), "token_forbidden_header")
add("typ_jwt", "typ other than at+jwt", forge({**H, "typ": "JWT"}, C, sign), "token_invalid")
add(
    "kid_missing",
    "no kid",
    forge({"alg": "EdDSA", "typ": "at+jwt"}, C, sign),
    "token_key_not_found",
)
add(
    "kid_unknown",
    "kid of a key the verifier does not hold",
    forge({**H, "kid": "unknown-key"}, C, sign),
    "token_key_not_found",
)
add(
    "signature_other_key",
    "known kid, signed by another key",
    forge(H, C, ed25519_signer(attacker)),
    "token_invalid",
)
add(
    "expired",
    "exp well in the past",
    forge(H, good_claims(iat=int(START) - 900, nbf=int(START) - 900, exp=int(START) - 600), sign),
    "token_expired",
)
add(
    "nbf_future",
    "nbf in the future",
    forge(H, good_claims(nbf=int(START) + 60), sign),
    "token_not_yet_valid",
)
add(
    "iat_future",
    "iat in the future",
    forge(H, good_claims(iat=int(START) + 60, nbf=int(START)), sign),
    "token_not_yet_valid",
)
add(
    "aud_wrong",
    "another audience",
    forge(H, good_claims(aud="https://other.example"), sign),
    "token_audience_mismatch",
)
add(
    "iss_wrong",
    "another issuer",
    forge(H, good_claims(iss="https://attacker.example"), sign),
    "token_issuer_mismatch",
)
t = forge(H, C, sign)
add(
    "payload_tampered",
    "scope widened after signing",
    replace_segment(t, 1, segment(good_claims(scope="search read_file delete_all"))),
    "token_invalid",
)
sig = t.split(".")[2]
add(
    "signature_tampered",
    "one signature character changed",
    replace_segment(t, 2, sig[:10] + ("A" if sig[10] != "A" else "B") + sig[11:]),
    "token_invalid",
)
noncanon = sig[:-1] + {"A": "B", "Q": "R", "g": "h", "w": "x"}[sig[-1]]
add(
    "signature_noncanonical",
    "same signature bytes, non-zero padding bits",
    replace_segment(t, 2, noncanon),
    "token_invalid",
)
add("signature_padded", "base64 padding in the signature", t + "==", "token_invalid")
add("truncated_signature", "last character cut", t[:-1], "token_invalid")
add("truncated_two_segments", "signature segment missing", t.rsplit(".", 1)[0], "token_invalid")
add("empty_signature", "empty signature segment", t.rsplit(".", 1)[0] + ".", "token_invalid")
for claim in ["iss", "sub", "aud", "exp", "iat", "jti", "task", "scope", "ver"]:
    cl = good_claims()
    del cl[claim]
    add(f"missing_{claim}", f"required claim {claim} absent", forge(H, cl, sign), "token_invalid")
add("ver_2", "unknown format version", forge(H, good_claims(ver=2), sign), "token_invalid")
add("ver_string", "ver as a string", forge(H, good_claims(ver="1"), sign), "token_invalid")
add("ver_true", "ver as a boolean", forge(H, good_claims(ver=True), sign), "token_invalid")
add(
    "exp_string",
    "exp as a string",
    forge(H, good_claims(exp=str(int(START) + 300)), sign),
    "token_invalid",
)
nan_payload = b64(json.dumps(good_claims()).replace(str(int(START) + 300), "NaN").encode())
add("exp_nan", "exp NaN (not JSON)", forge(H, None, sign, raw_payload=nan_payload), "token_invalid")
add("payload_not_object", "claims set is a JSON array", forge(H, [1, 2], sign), "token_invalid")
add("header_not_object", "header is a JSON string", forge("EdDSA", C, sign), "token_invalid")
add("garbage", "not a JWS", "not-a-token", "token_invalid")
doc: dict[str, Any] = {
    "issuer": ISSUER,
    "audience": AUDIENCE,
    "now": START,
    "leeway": 5,
    "kid": KID,
    "note": "tokens signed with the RFC 8037 A.1 key (private_jwk in rfc.json) "
    "by tests/tokens/vectors/generate_negative.py",
    "vectors": vec,
}
(HERE / "negative.json").write_text(json.dumps(doc, indent=1))

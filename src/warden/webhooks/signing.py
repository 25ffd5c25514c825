"""Webhook signatures in the Standard Webhooks format (standardwebhooks.com).

Headers on every delivery:

* ``webhook-id`` — the message id (the same on every retry, so receivers can deduplicate);
* ``webhook-timestamp`` — integer epoch seconds of this attempt (receivers reject old ones);
* ``webhook-signature`` — ``v1,<base64 HMAC-SHA256(secret, "{id}.{timestamp}.{body}")>``.

Secrets are ``whsec_`` + base64 of at least 24 random bytes.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets

SECRET_PREFIX = "whsec_"  # noqa: S105 - a public prefix, not a secret
MIN_SECRET_BYTES = 24


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def decode_secret(secret: str) -> bytes:
    """The key bytes of a ``whsec_…`` secret; ValueError (without the secret) when malformed."""
    text = secret.strip()
    if not text.startswith(SECRET_PREFIX):
        raise ValueError("a webhook secret must start with `whsec_`")
    try:
        key = base64.b64decode(text[len(SECRET_PREFIX) :] + "==", validate=False)
    except (binascii.Error, ValueError):
        raise ValueError("a webhook secret must be `whsec_` + base64") from None
    if len(key) < MIN_SECRET_BYTES:
        raise ValueError(f"a webhook secret must hold at least {MIN_SECRET_BYTES} bytes")
    return key


def sign(key: bytes, msg_id: str, timestamp: int, body: bytes) -> str:
    signed = msg_id.encode() + b"." + str(int(timestamp)).encode() + b"." + body
    digest = hmac.new(key, signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()

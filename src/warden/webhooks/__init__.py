"""Signed webhooks (Standard Webhooks format): HMAC-SHA256, timestamped, retried with backoff.

``WebhookDispatcher.submit`` never blocks: deliveries run on their own threads.
"""

from warden.webhooks.dispatcher import Delivery, WebhookDispatcher, WebhookEndpoint
from warden.webhooks.signing import decode_secret, new_secret, sign

__all__ = [
    "Delivery",
    "WebhookDispatcher",
    "WebhookEndpoint",
    "decode_secret",
    "new_secret",
    "sign",
]

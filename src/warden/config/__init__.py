"""Settings: one small object per feature, the flat ``Settings`` that holds them all, and the
loader (YAML file + environment + defaults). ``from warden.config import Settings,
TrustDomainConfig, load_settings`` is the entry point (ADR 0151).
"""

from warden.config.audit import AuditSettings
from warden.config.counters import CountersSettings
from warden.config.governance import GovernanceSettings
from warden.config.identity import IdentitySettings, TrustDomainConfig
from warden.config.loader import load_settings
from warden.config.observability import (
    LOG_FORMATS,
    LOG_LEVELS,
    LogSettings,
    SignalsSettings,
    TelemetrySettings,
)
from warden.config.replication import LeaseSettings, ReplicationSettings
from warden.config.server import DatabaseSettings, PolicySettings, ServerSettings
from warden.config.settings import Settings
from warden.config.tokens import KeySettings, TokenSettings
from warden.config.webhooks import WebhookSettings

__all__ = [
    "LOG_FORMATS",
    "LOG_LEVELS",
    "AuditSettings",
    "CountersSettings",
    "DatabaseSettings",
    "GovernanceSettings",
    "IdentitySettings",
    "KeySettings",
    "LeaseSettings",
    "LogSettings",
    "PolicySettings",
    "ReplicationSettings",
    "ServerSettings",
    "Settings",
    "SignalsSettings",
    "TelemetrySettings",
    "TokenSettings",
    "TrustDomainConfig",
    "WebhookSettings",
    "load_settings",
]

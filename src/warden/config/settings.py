"""``Settings``: every key, flat, and one small settings object per feature (ADR 0151).

The flat fields are the construction surface — ``Settings(data_dir=..., credential_ttl=...)``
in tests and embedding code, ``with_overrides`` for flags — and keep their names. Components
read the feature they need: ``settings.server``, ``.database``, ``.policies``, ``.tokens``,
``.keys``, ``.identity``, ``.replication``, ``.leases``, ``.counters``, ``.audit``,
``.governance``, ``.webhook_delivery``, ``.log``, ``.telemetry``, ``.signals`` (each defined
with its YAML section in its own module), and ``.approvals`` / ``.behaviour`` (already objects).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from warden.approvals import ApprovalSettings
from warden.attestation.oidc import OIDCIssuer
from warden.behaviour import BehaviourSettings
from warden.config.audit import AuditSettings
from warden.config.counters import CountersSettings
from warden.config.governance import GovernanceSettings
from warden.config.identity import IdentitySettings, TrustDomainConfig
from warden.config.observability import LogSettings, SignalsSettings, TelemetrySettings
from warden.config.replication import LeaseSettings, ReplicationSettings
from warden.config.server import DatabaseSettings, PolicySettings, ServerSettings
from warden.config.tokens import KeySettings, TokenSettings
from warden.config.webhooks import WebhookSettings
from warden.webhooks import WebhookEndpoint

__all__ = ["Settings"]


@dataclass(frozen=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 8080
    data_dir: Path = Path(".warden")
    database_url: str | None = None
    policies_dir: Path | None = None
    issuer: str | None = None  # defaults to http://{host}:{port}
    # credentials
    credential_ttl: float = 300.0
    operator_token_ttl: float = 30 * 86400.0  # operator bearer tokens expire (issue 10)
    credential_max_ttl: float = 3600.0
    task_ttl: float = 3600.0
    task_max_ttl: float = 86400.0
    audiences: tuple[str, ...] = ()  # extra audiences credentials may be issued for
    # workload identity
    svid_audience: str = "warden"
    trust_domains: tuple[TrustDomainConfig, ...] = ()
    oidc_issuers: tuple[OIDCIssuer, ...] = ()
    # the local workload API (a Unix socket) and Warden's own trust domain
    workload_socket: Path | None = None
    workload_trust_domain: str = "warden.local"
    workload_svid_ttl: float = 300.0
    # TLS for the HTTP listener (X.509-SVIDs are client certificates)
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None
    # enforcement modes by risk tier (agent-level modes live in the database)
    tier_modes: dict[str, str] = field(default_factory=dict)
    # limits and loops
    max_body_bytes: int = 256 * 1024
    # slow and surplus clients (ADR 0095): headers due within header_timeout of the connection
    # or the previous response, the body within body_timeout of the headers
    header_timeout: float = 10.0
    body_timeout: float = 30.0
    keep_alive_timeout: float = 5.0
    max_connections: int = 1000
    # shared counters for budgets, rate windows and deny streaks across replicas (ADR 0094):
    # redis://… ; None keeps them in this process
    counters_url: str | None = None
    counters_timeout: float = 0.25
    counters_prefix: str = "warden"
    policy_reload_interval: float = 1.0  # also how often a replica checks the active revision
    # a replica that could not confirm it serves the active policy revision for longer than
    # this says so (/readyz 503, ADR 0120)
    policy_max_staleness: float = 10.0
    expiry_sweep_interval: float = 1.0
    pep_api_keys: tuple[str, ...] = ()  # required from PEPs when not bound to loopback
    seed_examples: bool = False
    config_dir: Path = Path(".")
    # delegation and proof of possession (docs/lifecycle.md)
    max_delegation_depth: int = 3
    dpop_required_tiers: tuple[str, ...] = ()
    dpop_max_age: float = 60.0
    # signing keys: sealed in the database under a key-encryption key kept outside it
    key_encryption_key: str | None = field(default=None, repr=False)
    kek_file: Path | None = None  # default <data dir>/keys/kek
    key_retire_grace: float = 60.0
    housekeeping_interval: float = 30.0
    # replicas
    advertise_url: str | None = None  # the URL other replicas and the CLI reach this one at
    serves_api: bool = True  # False: an in-process Warden (embedded PDP, MCP proxy) nobody can
    # reach, so it follows the change feed but is not listed as a replica
    resync_interval: float = 300.0  # a full re-read; notifications and reconnects cover the rest
    heartbeat_interval: float = 5.0
    # past this without a confirmed freshness round a replica refuses agent decisions with
    # `state_stale` and /readyz is 503 (ADR 0092); rounds run every min(1 s, bound / 5)
    replication_max_staleness: float = 5.0
    # leases: raw target/service definitions, validated when Warden starts
    lease_postgres: dict[str, dict[str, Any]] = field(default_factory=dict)
    lease_services: dict[str, dict[str, Any]] = field(default_factory=dict)
    lease_reaper_interval: float = 30.0
    # governance (issue 7): lifecycle checks, certification, checkpoints, export
    orphan_grace: float = 86400.0
    unused_after: float = 30 * 86400.0
    flag_grace: float = 7 * 86400.0
    governance_interval: float = 60.0
    certification_window: float = 14 * 86400.0
    certification_on_timeout: str = "reduce"
    checkpoint_interval: float = 300.0
    checkpoint_sinks: tuple[str, ...] = ()
    export_sinks: tuple[tuple[str, str], ...] = ()  # (file path or http(s) url, ocsf | jsonl)
    export_interval: float = 5.0
    # durable: answer only once the audit record is committed; async: an embedded PDP's explicit
    # choice to answer first (loss window: what is in memory). docs/reliability.md, ADR 0090
    audit_durability: str = "durable"
    audit_max_wait: float = 5.0  # longer than this not durable: audit_unavailable
    # step-up approvals, behavioural governance and the webhooks that tell people about them
    approvals: ApprovalSettings = field(default_factory=ApprovalSettings)
    behaviour: BehaviourSettings = field(default_factory=BehaviourSettings)
    webhooks: tuple[WebhookEndpoint, ...] = ()
    webhook_max_attempts: int = 6
    webhook_base_delay: float = 0.5
    webhook_timeout: float = 5.0
    # the server log (docs/console.md): its level, the level of the one line per decision,
    # approval, kill or policy change, and text or JSON (auto: JSON when stderr is not a TTY)
    log_level: str = "info"
    log_events_level: str = "info"
    log_format: str = "auto"
    # traces and Shared Signals (docs/observability.md)
    otlp_endpoint: str | None = None  # OTLP/HTTP collector base URL; None: tracing off
    otlp_headers: tuple[tuple[str, str], ...] = ()
    otlp_service_name: str = "warden"
    otlp_sample_ratio: float = 1.0
    signals_interval: float = 0.5  # how often the outbox is filled and pushed
    signals_max_backoff: float = 60.0  # push retries back off up to this
    signals_push_timeout: float = 5.0

    @property
    def effective_issuer(self) -> str:
        scheme = "https" if self.tls_cert_file is not None else "http"
        return self.issuer or f"{scheme}://{self.host}:{self.port}"

    @property
    def accepted_audiences(self) -> tuple[str, ...]:
        return (self.effective_issuer, *self.audiences)

    @property
    def effective_kek_file(self) -> Path:
        return self.kek_file or self.data_dir / "keys" / "kek"

    @property
    def effective_advertise_url(self) -> str:
        if self.advertise_url:
            return self.advertise_url.rstrip("/")
        host = "127.0.0.1" if self.host in ("0.0.0.0", "", "::") else self.host  # noqa: S104
        return f"http://{f'[{host}]' if ':' in host else host}:{self.port}"

    @property
    def loopback(self) -> bool:
        return self.host in {"127.0.0.1", "localhost", "::1"}

    def with_overrides(self, **kwargs: Any) -> Settings:
        return replace(self, **{k: v for k, v in kwargs.items() if v is not None})

    # -- one object per feature ------------------------------------------------------------------
    @property
    def server(self) -> ServerSettings:
        return ServerSettings(
            host=self.host,
            port=self.port,
            issuer=self.effective_issuer,
            tls_cert_file=self.tls_cert_file,
            tls_key_file=self.tls_key_file,
            pep_api_keys=self.pep_api_keys,
            max_body_bytes=self.max_body_bytes,
            header_timeout=self.header_timeout,
            body_timeout=self.body_timeout,
            keep_alive_timeout=self.keep_alive_timeout,
            max_connections=self.max_connections,
        )

    @property
    def database(self) -> DatabaseSettings:
        return DatabaseSettings(url=self.database_url, data_dir=self.data_dir)

    @property
    def policies(self) -> PolicySettings:
        return PolicySettings(
            folder=self.policies_dir,
            reload_interval=self.policy_reload_interval,
            max_staleness=self.policy_max_staleness,
        )

    @property
    def tokens(self) -> TokenSettings:
        return TokenSettings(
            credential_ttl=self.credential_ttl,
            credential_max_ttl=self.credential_max_ttl,
            task_ttl=self.task_ttl,
            task_max_ttl=self.task_max_ttl,
            operator_token_ttl=self.operator_token_ttl,
            accepted_audiences=self.accepted_audiences,
            max_delegation_depth=self.max_delegation_depth,
            dpop_required_tiers=frozenset(self.dpop_required_tiers),
            dpop_max_age=self.dpop_max_age,
        )

    @property
    def keys(self) -> KeySettings:
        return KeySettings(
            key_encryption_key=self.key_encryption_key,
            kek_file=self.effective_kek_file,
            retire_grace=self.key_retire_grace,
        )

    @property
    def identity(self) -> IdentitySettings:
        return IdentitySettings(
            svid_audience=self.svid_audience,
            trust_domains=self.trust_domains,
            oidc_issuers=self.oidc_issuers,
            workload_socket=self.workload_socket,
            workload_trust_domain=self.workload_trust_domain,
            workload_svid_ttl=self.workload_svid_ttl,
        )

    @property
    def replication(self) -> ReplicationSettings:
        return ReplicationSettings(
            advertise_url=self.effective_advertise_url if self.serves_api else None,
            resync_interval=self.resync_interval,
            heartbeat_interval=self.heartbeat_interval,
            housekeeping_interval=self.housekeeping_interval,
            max_staleness=self.replication_max_staleness,
        )

    @property
    def leases(self) -> LeaseSettings:
        return LeaseSettings(
            postgres=self.lease_postgres,
            services=self.lease_services,
            reaper_interval=self.lease_reaper_interval,
        )

    @property
    def counters(self) -> CountersSettings:
        return CountersSettings(
            url=self.counters_url, timeout=self.counters_timeout, prefix=self.counters_prefix
        )

    @property
    def audit(self) -> AuditSettings:
        return AuditSettings(
            durability=self.audit_durability,
            max_wait=self.audit_max_wait,
            checkpoint_interval=self.checkpoint_interval,
            checkpoint_sinks=self.checkpoint_sinks,
            export_sinks=self.export_sinks,
            export_interval=self.export_interval,
        )

    @property
    def governance(self) -> GovernanceSettings:
        return GovernanceSettings(
            orphan_grace=self.orphan_grace,
            unused_after=self.unused_after,
            flag_grace=self.flag_grace,
            interval=self.governance_interval,
            certification_window=self.certification_window,
            certification_on_timeout=self.certification_on_timeout,
        )

    @property
    def webhook_delivery(self) -> WebhookSettings:
        return WebhookSettings(
            endpoints=self.webhooks,
            max_attempts=self.webhook_max_attempts,
            base_delay=self.webhook_base_delay,
            timeout=self.webhook_timeout,
        )

    @property
    def log(self) -> LogSettings:
        return LogSettings(
            level=self.log_level, events_level=self.log_events_level, format=self.log_format
        )

    @property
    def telemetry(self) -> TelemetrySettings:
        return TelemetrySettings(
            otlp_endpoint=self.otlp_endpoint,
            headers=self.otlp_headers,
            service_name=self.otlp_service_name,
            sample_ratio=self.otlp_sample_ratio,
        )

    @property
    def signals(self) -> SignalsSettings:
        return SignalsSettings(
            interval=self.signals_interval,
            max_backoff=self.signals_max_backoff,
            push_timeout=self.signals_push_timeout,
        )

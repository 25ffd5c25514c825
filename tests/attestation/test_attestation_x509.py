"""X.509-SVIDs as TLS client certificates to a real HTTPS token endpoint (uvicorn, real TLS)."""

from __future__ import annotations

import json
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from cryptography.x509.oid import ExtendedKeyUsageOID

from tests.api.conftest import TOKEN_EXCHANGE, World
from tests.attestation.conftest import MakeWorld
from tests.attestation.pki import CA, pem, write_pair
from warden.api.app import create_app
from warden.api.transport import protocol_class
from warden.attestation.base import Channel
from warden.attestation.bundles import FileBundleSource
from warden.attestation.x509_svid import TOKEN_TYPE_TLS_CLIENT_CERT, X509SVIDAttestor
from warden.cli.serve import tls_options
from warden.config import TrustDomainConfig
from warden.errors import AttestationError

pytestmark = pytest.mark.attestation


@dataclass
class TLSWorld:
    world: World
    url: str
    ca: CA  # example.org
    other: CA  # other.org
    server_ca: Path
    tmp: Path

    def client_cert(self, ca: CA, uri: str, **kw: Any) -> tuple[Path, Path, str]:
        cert, key = ca.issue([uri], **kw)
        stem = f"c{time.monotonic_ns()}"
        cert_path, key_path = write_pair(self.tmp, stem, cert, key)
        return cert_path, key_path, pem(cert).decode()

    def exchange(self, cert: tuple[Path, Path] | None, subject_token: str) -> httpx.Response:
        context = ssl.create_default_context(cafile=str(self.server_ca))
        if cert is not None:
            context.load_cert_chain(str(cert[0]), str(cert[1]))
        with httpx.Client(verify=context, timeout=10) as client:
            return client.post(
                f"{self.url}/oauth2/token",
                data={
                    "grant_type": TOKEN_EXCHANGE,
                    "subject_token": subject_token,
                    "subject_token_type": TOKEN_TYPE_TLS_CLIENT_CERT,
                    "scope": "tickets.read",
                    "authorization_details": json.dumps([{"type": "agent_task", "purpose": "tls"}]),
                },
            )


@pytest.fixture
def tls(make_world: MakeWorld, tmp_path: Path) -> Iterator[TLSWorld]:
    ca, other, server_ca = CA.create("example.org"), CA.create("other.org"), CA.create("srv")
    cert, key = server_ca.issue(ips=["127.0.0.1"], dns=["localhost"])
    server_cert, server_key = write_pair(tmp_path, "server", cert, key)
    seed = make_world()  # for the example.org JWT bundle file
    world = make_world(
        trust_domains=(
            TrustDomainConfig("example.org", seed.trust.bundle_path, ca.write(tmp_path)),
            TrustDomainConfig("other.org", x509_bundle_file=other.write(tmp_path)),
        ),
        tls_cert_file=server_cert,
        tls_key_file=server_key,
    )
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = uvicorn.Config(
        create_app(world.warden, manage_lifecycle=False),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        lifespan="off",
        http=protocol_class(),
        **tls_options(world.warden),
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    try:
        yield TLSWorld(
            world, f"https://127.0.0.1:{port}", ca, other, server_ca.write(tmp_path), tmp_path
        )
    finally:
        server.should_exit = True
        thread.join(10)


def test_x509_svid_over_mtls_starts_a_task(tls: TLSWorld) -> None:
    agent = tls.world.register("support-bot")
    cert, key, leaf = tls.client_cert(tls.ca, agent["spiffe_id"])
    r = tls.exchange((cert, key), leaf)
    assert r.status_code == 200, r.text
    task = tls.world.client.get(f"/v1/tasks/{r.json()['task_id']}", headers=tls.world.admin).json()
    assert task["attestation"]["method"] == "x509_svid"
    assert task["attestation"]["spiffe_id"] == agent["spiffe_id"]
    assert task["attestation"]["entry"]["id"] == "implicit:spiffe-id"
    # the issuer of a TLS deployment is https
    assert tls.world.warden.settings.effective_issuer.startswith("https://")


def test_refusals_over_mtls(tls: TLSWorld) -> None:
    agent = tls.world.register("support-bot")
    cert, key, leaf = tls.client_cert(tls.ca, agent["spiffe_id"])
    other_cert, other_key, other_leaf = tls.client_cert(tls.ca, agent["spiffe_id"])

    def refused(response: httpx.Response) -> str:
        assert response.status_code == 400, response.text
        return str(tls.world.audit("task.refused")[-1]["data"]["reason"])

    assert refused(tls.exchange(None, leaf)) == "no_client_certificate"
    assert refused(tls.exchange((cert, key), other_leaf)) == "certificate_mismatch"
    # other.org's CA signing a certificate that claims example.org: the TLS layer accepts the
    # chain (other.org is trusted), the token endpoint does not
    cross, cross_key, cross_leaf = tls.client_cert(tls.other, agent["spiffe_id"])
    assert refused(tls.exchange((cross, cross_key), cross_leaf)) == "untrusted_chain"
    # an unregistered SPIFFE ID of a trusted domain chains fine but maps to no agent
    ghost, ghost_key, ghost_leaf = tls.client_cert(tls.other, "spiffe://other.org/ghost")
    assert refused(tls.exchange((ghost, ghost_key), ghost_leaf)) == "unknown_agent"
    server_only = tls.client_cert(tls.ca, agent["spiffe_id"], eku=[ExtendedKeyUsageOID.SERVER_AUTH])
    with pytest.raises(httpx.HTTPError):  # OpenSSL refuses a non-client cert at the handshake
        tls.exchange(server_only[:2], server_only[2])
    del other_cert, other_key


def attestor_for(tls: TLSWorld) -> X509SVIDAttestor:
    sources = {
        "example.org": FileBundleSource("example.org", None, tls.tmp / "example.org.ca.pem"),
    }
    return X509SVIDAttestor(sources)


@pytest.mark.parametrize(
    ("uris", "options", "reason"),
    [
        (["spiffe://example.org/a", "spiffe://example.org/b"], {}, "invalid_spiffe_id"),
        ([], {"dns": ["example.org"]}, "invalid_spiffe_id"),
        (["spiffe://example.org"], {}, "invalid_spiffe_id"),
        (["spiffe://EXAMPLE.org/a"], {}, "invalid_spiffe_id"),
        (["spiffe://example.org/a/../b"], {}, "invalid_spiffe_id"),
        (["https://example.org/a"], {}, "invalid_spiffe_id"),
        (["spiffe://example.org/a"], {"ca": True}, "invalid_svid"),
        (["spiffe://example.org/a"], {"digital_signature": False}, "invalid_svid"),
        (["spiffe://example.org/a"], {"key_cert_sign": True}, "invalid_svid"),
        (["spiffe://example.org/a"], {"eku": [ExtendedKeyUsageOID.SERVER_AUTH]}, "invalid_svid"),
        (["spiffe://unknown.org/a"], {}, "unknown_trust_domain"),
    ],
)
def test_leaf_rules(tls: TLSWorld, uris: list[str], options: dict[str, Any], reason: str) -> None:
    cert, _ = tls.ca.issue(uris, **options)
    der = cert.public_bytes(__import__("cryptography").hazmat.primitives.serialization.Encoding.DER)
    with pytest.raises(AttestationError) as info:
        attestor_for(tls).attest(pem(cert).decode(), TOKEN_TYPE_TLS_CLIENT_CERT, Channel((der,)))
    assert info.value.detail["reason"] == reason


def test_expired_svid_is_refused(tls: TLSWorld) -> None:
    import datetime as dt

    from cryptography.hazmat.primitives.serialization import Encoding

    past = dt.datetime.now(dt.UTC) - dt.timedelta(hours=2)
    cert, _ = tls.ca.issue(
        ["spiffe://example.org/a"], not_before=past, not_after=past + dt.timedelta(minutes=30)
    )
    with pytest.raises(AttestationError) as info:
        attestor_for(tls).attest(
            pem(cert).decode(),
            TOKEN_TYPE_TLS_CLIENT_CERT,
            Channel((cert.public_bytes(Encoding.DER),)),
        )
    assert info.value.detail["reason"] == "expired"

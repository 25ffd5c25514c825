"""SPIFFE bundle endpoints over real HTTPS on loopback: refresh on the hint, keep the last good."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.attestation.pki import CA, write_pair
from tests.attestation.servers import loopback
from warden.attestation.bundles import EndpointBundleSource
from warden.core.clock import FrozenClock
from warden.tokens import DevTrustDomain

pytestmark = pytest.mark.attestation


def test_endpoint_bundle_refreshes_and_keeps_the_last_good(tmp_path: Path) -> None:
    server_ca = CA.create("srv")
    cert, key = server_ca.issue(ips=["127.0.0.1"])
    pair = write_pair(tmp_path, "server", cert, key)
    one = DevTrustDomain.create("example.org", tmp_path / "one")
    two = DevTrustDomain.create("example.org", tmp_path / "two")
    with loopback(tls=pair) as server:
        server.json("/bundle", {**one.bundle(), "spiffe_sequence": 1, "spiffe_refresh_hint": 60})
        clock = FrozenClock(time.time())
        source = EndpointBundleSource(
            "example.org", f"{server.url}/bundle", ca_file=server_ca.write(tmp_path), clock=clock
        )
        first = source.current()
        assert first is not None and first.jwt is not None
        assert first.jwt.get_jwt_authority(one.kid) is not None
        server.json("/bundle", {**two.bundle(), "spiffe_sequence": 2, "spiffe_refresh_hint": 60})
        clock.advance(30)
        assert source.current() is first  # not due yet
        clock.advance(31)
        rotated = source.current()
        assert rotated is not None and rotated.jwt is not None
        assert rotated.jwt.get_jwt_authority(two.kid) is not None
        assert rotated.jwt.get_jwt_authority(one.kid) is None
        # an outage, then garbage, then a replayed older bundle: the last good one stays
        server.raw("/bundle", 503, b"down")
        clock.advance(61)
        assert source.current() is rotated and source.last_error
        server.raw("/bundle", 200, b"not json")
        clock.advance(61)
        assert source.current() is rotated
        server.json("/bundle", {**one.bundle(), "spiffe_sequence": 1})
        clock.advance(61)
        assert source.current() is rotated and "older" in str(source.last_error)
    # a server we cannot verify (no private CA given) never yields a bundle
    with loopback(tls=pair) as server:
        server.json("/bundle", one.bundle())
        untrusted = EndpointBundleSource("example.org", f"{server.url}/bundle")
        assert untrusted.current() is None and untrusted.last_error

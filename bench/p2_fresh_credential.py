"""P2: in-process decision with a fresh credential every call (target ≤ 1.2x p50).

Warden side: ``warden.decisions.evaluate`` in agent mode with a credential it has never seen
(pre-issued for the same task before timing; each used once), so the full verification path
runs: compact-JWS split, header-segment cache, Ed25519 verify, claims decode and checks, the
verified-token cache insert, then everything P1 does. Background loops running.

Bare side, on the same token: ``Ed25519PublicKey.verify(signature, signing_input)`` with the
signature already decoded and the signing input already encoded (nothing but the signature
check), plus the bare cedarpy call of P1.
"""

from __future__ import annotations

import time

from bench import _common as c
from warden.tokens import _jose


def run() -> None:
    c.print_header("P2 in-process decision, fresh credential, vs bare Ed25519 verify + cedarpy")
    batches, batch, warmup = c.sizes((30, 150, 500), (10, 100, 200))
    with c.temp_dir("p2") as root:
        world = c.make_agent_world(root)
        try:
            _measure(world, batches, batch, warmup)
        finally:
            world.close()


def _measure(world: c.AgentWorld, batches: int, batch: int, warmup: int) -> None:
    w = world.warden
    n = warmup + batches * batch
    t0 = time.perf_counter()
    tokens = world.issue_tokens(n)
    print(f"  pre-issued {n} credentials for one task in {time.perf_counter() - t0:.1f} s")
    # same AuthZEN input object shape as P1, one per token (built before timing)
    evs = [world.evaluation(tok) for tok in tokens]
    req, outcome = c.capture_cedar_request(world, world.evaluation())
    bare = c.bare_cedar_for(req, c.AGENT_POLICIES, c.AGENT_ENTITIES)

    kid = w.verifier.verify(world.token).kid
    key = w.keys.public_key(kid)
    pre: list[tuple[bytes, bytes]] = []
    for tok in tokens:
        header, payload, signature = tok.split(".")
        pre.append((_jose.b64url_decode(signature), f"{header}.{payload}".encode("ascii")))
    print(f"  token: {len(tokens[0])} bytes, EdDSA, kid {kid}; warden allowed={outcome.allowed}")
    print(
        "  warden side: full fresh verify (JWS parse + Ed25519 + claims) + verified-token cache"
        " insert + P1 path; audit writer thread running"
    )
    evaluate = w.decisions.evaluate
    verify = key.verify

    def warden_op(i: int) -> object:
        return evaluate(evs[i])

    def bare_op(i: int) -> object:
        sig, signing_input = pre[i]
        verify(sig, signing_input)
        return bare()

    def bare_verify(i: int) -> None:
        sig, signing_input = pre[i]
        verify(sig, signing_input)

    cache_before = w.verifier.cache_len
    samples = c.interleave(
        [
            ("warden.decisions.evaluate", warden_op),
            ("bare verify + cedarpy", bare_op),
            ("  (bare Ed25519 verify alone)", bare_verify),
            ("  (bare cedarpy alone)", bare),
        ],
        batches=batches,
        batch=batch,
        warmup=warmup,
    )
    fresh = w.verifier.cache_len - cache_before
    summaries = {name: c.summarize(s) for name, s in samples.items()}
    for name, s in summaries.items():
        print(s.line(name))
    ws = summaries["warden.decisions.evaluate"]
    bs = summaries["bare verify + cedarpy"]
    print(
        f"  p99 ratio={c.ratio(ws.p99, bs.p99):.2f}; {fresh} distinct credentials entered the "
        f"token cache (every warden call verified a new token)"
    )
    print(
        f"P2: p50={ws.p50:.1f} bare={bs.p50:.1f} ratio={c.ratio(ws.p50, bs.p50):.2f} target=1.2"
    )

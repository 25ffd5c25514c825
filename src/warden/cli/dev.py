"""``warden dev …``: development helpers (mint JWT-SVIDs from the dev trust domain)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from warden.cli.client import (
    DEFAULT_DATA_DIR,
    DEFAULT_URL,
    DataDirOption,
    UrlOption,
    WardenClient,
    seg,
)
from warden.cli.output import fail

app = typer.Typer(help="Development helpers (not for production).", no_args_is_help=True)

DEV_TRUST_DIR = "dev-trust"
DEV_TRUST_DOMAIN = "example.org"
# OAuth URNs (RFC 8693), not secrets
TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"  # noqa: S105
JWT_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:jwt"  # noqa: S105


def dev_trust_dir(data_dir: Path) -> Path:
    return Path(data_dir) / DEV_TRUST_DIR


def trust_domain_of(spiffe_id: str) -> str:
    prefix = "spiffe://"
    if not spiffe_id.startswith(prefix) or not spiffe_id[len(prefix) :].split("/", 1)[0]:
        raise ValueError(f"`{spiffe_id}` is not a SPIFFE ID (spiffe://<trust domain>/<path>)")
    return spiffe_id[len(prefix) :].split("/", 1)[0]


@app.command("svid")
def svid(
    name: Annotated[str, typer.Argument(help="The agent to mint a JWT-SVID for.")],
    audience: Annotated[str, typer.Option("--audience", help="The SVID audience.")] = "warden",
    ttl: Annotated[float, typer.Option("--ttl", min=1, help="Lifetime in seconds.")] = 300,
    spiffe_id: Annotated[
        str | None,
        typer.Option("--spiffe-id", help="Use this SPIFFE ID instead of asking the server."),
    ] = None,
    url: UrlOption = DEFAULT_URL,
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
) -> None:
    """Print a JWT-SVID for an agent, signed by the dev trust domain in <data dir>/dev-trust.

    Use it as the subject_token of a token exchange: SVID=$(warden dev svid demo-agent)
    """
    from warden.errors import InvalidParameterError
    from warden.tokens.svid import DevTrustDomain

    if spiffe_id is None:
        with WardenClient(url, data_dir) as client:
            spiffe_id = str(client.get(f"/v1/agents/{seg(name)}")["spiffe_id"])
    try:
        domain_name = trust_domain_of(spiffe_id)
    except ValueError as exc:
        fail(str(exc))
    directory = dev_trust_dir(data_dir)
    try:
        domain = DevTrustDomain.load(domain_name, directory)
    except InvalidParameterError as exc:
        fail(
            f"{exc.message}: the dev trust domain is created by `warden serve --dev` "
            f"(agents must be in trust domain `{DEV_TRUST_DOMAIN}` to use it)"
        )
    typer.echo(domain.mint(spiffe_id, audience, ttl=ttl))

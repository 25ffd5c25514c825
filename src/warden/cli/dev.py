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


def _digest_option(value: str | None, what: str) -> str | None:
    """A ``sha256:…`` digest as given, or the digest of the file it names."""
    from warden.core.manifest import check_digest, digest_of

    if value is None:
        return None
    if value.startswith("sha256:"):
        try:
            return check_digest(value, what)
        except Exception as exc:  # an InvalidParameterError, shown as a sentence
            fail(str(exc))
    path = Path(value)
    if not path.is_file():
        fail(f"{what}: `{value}` is neither a sha256:… digest nor a file")
    return digest_of(path.read_bytes())


@app.command("manifest")
def manifest(
    agent: Annotated[str, typer.Argument(help="The agent: its SPIFFE ID, or its name.")],
    key: Annotated[
        Path,
        typer.Option("--key", help="Ed25519 signing key (PEM); created with KEY.pub if missing."),
    ] = Path("manifest-signer.pem"),
    model: Annotated[
        str | None, typer.Option("--model", help="The model it runs: id@version.")
    ] = None,
    system_prompt: Annotated[
        str | None, typer.Option("--system-prompt", help="A file, or its sha256:… digest.")
    ] = None,
    tools: Annotated[
        str | None,
        typer.Option("--tool-manifest", help="The tool manifest: a file, or its sha256:… digest."),
    ] = None,
    code: Annotated[str | None, typer.Option("--code", help="A file, or sha256:….")] = None,
    image: Annotated[str | None, typer.Option("--image", help="An image digest sha256:….")] = None,
    ttl: Annotated[
        float | None, typer.Option("--ttl", min=1, help="Seconds until the manifest expires.")
    ] = None,
    declaration: Annotated[
        bool,
        typer.Option(
            "--declaration",
            help="Print the matching registration declaration (`manifest` of the agent) instead.",
        ),
    ] = False,
    url: UrlOption = DEFAULT_URL,
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
) -> None:
    """Sign a development agent manifest (a DSSE envelope to send as `agent_manifest`).

    MANIFEST=$(warden dev manifest demo-agent --model gpt-4o@2024-08-06 --system-prompt p.txt)
    """
    import json
    import time

    from warden.core.manifest import PAYLOAD_TYPE, build_statement
    from warden.errors import InvalidParameterError
    from warden.tokens import dsse

    if key.exists():
        try:
            private = dsse.load_private_key(key.read_text())
        except InvalidParameterError as exc:
            fail(f"{key}: {exc.message}")
    else:
        private = dsse.generate_private_key()
        key.write_text(dsse.private_key_pem(private))
        key.chmod(0o600)
        Path(f"{key}.pub").write_text(dsse.public_signer(private).pem())
    signer = dsse.public_signer(private)
    digests = {
        field: value
        for field, value in (
            ("system_prompt", _digest_option(system_prompt, "--system-prompt")),
            ("tool_manifest", _digest_option(tools, "--tool-manifest")),
            ("code", _digest_option(code, "--code")),
            ("image", _digest_option(image, "--image")),
        )
        if value is not None
    }
    if declaration:
        plural = {
            "system_prompt": "system_prompts",
            "tool_manifest": "tool_manifests",
            "code": "code",
            "image": "images",
        }
        body: dict[str, object] = {plural[f]: [v] for f, v in digests.items()}
        if model:
            body["models"] = [model]
        body["signers"] = [{"keyid": signer.keyid, "public_key": signer.pem()}]
        typer.echo(json.dumps(body, indent=2))
        return
    if not agent.startswith("spiffe://"):
        with WardenClient(url, data_dir) as client:
            agent = str(client.get(f"/v1/agents/{seg(agent)}")["spiffe_id"])
    try:
        statement = build_statement(
            agent,
            model=model,
            digests=digests,
            expires_at=time.time() + ttl if ttl else None,
        )
    except InvalidParameterError as exc:
        fail(exc.message)
    payload = json.dumps(statement, sort_keys=True, separators=(",", ":")).encode()
    typer.echo(json.dumps(dsse.sign_envelope(payload, PAYLOAD_TYPE, private, signer.keyid)))

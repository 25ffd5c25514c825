"""Copy a server's active policy files into a folder, for an embedded PDP to watch.

revision = sync_policies(client, "policies/", operator_token=token)
pdp = EmbeddedPDP.open("policies/")      # warden.embedded: hot-reloads the folder
"""

from __future__ import annotations

from pathlib import Path

from warden.errors import DecisionUnavailableError

from . import _wire
from .client import WardenClient

__all__ = ["sync_policies"]


def sync_policies(client: WardenClient, folder: Path | str, *, operator_token: str) -> str:
    """Copy a server's active policy files into ``folder`` (``GET /v1/policies/bundle``).

    Files are written next to each other and then renamed into place, so a watching
    ``EmbeddedPDP`` never reads half a set; returns the server's policy revision.
    """
    response = client._send(
        "GET", "/v1/policies/bundle", headers={"Authorization": f"Bearer {operator_token}"}
    )
    body = _wire.read_body(response)
    files = body.get("files") if isinstance(body, dict) else None
    if not isinstance(files, dict):
        raise DecisionUnavailableError("the server sent no policy bundle")
    target = Path(folder)
    target.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        if (
            not isinstance(name, str)
            or "/" in name
            or name.startswith(".")
            or not isinstance(text, str)
        ):
            raise DecisionUnavailableError(f"refusing policy file name `{name}`")
        staged = target / f".{name}.sync"
        staged.write_text(text)
        staged.replace(target / name)
    for old in target.iterdir():
        if old.is_file() and old.name not in files and old.suffix in (".cedar", ".cedarschema"):
            old.unlink()
    return str(body.get("revision", ""))

"""OCSF 1.8.0 export of the audit log: typed models, the record → event mapping, the schema."""

from __future__ import annotations

import json
from functools import cache
from importlib.resources import files
from typing import Any

from warden.ocsf.mapping import builder_for, register, to_ocsf
from warden.ocsf.models import OCSF_VERSION

__all__ = ["OCSF_VERSION", "builder_for", "register", "schema", "to_ocsf"]


@cache
def schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of every class Warden emits, compiled from OCSF 1.8.0."""
    text = (files("warden.ocsf") / f"ocsf-{OCSF_VERSION}.schema.json").read_text()
    loaded: dict[str, Any] = json.loads(text)
    return loaded

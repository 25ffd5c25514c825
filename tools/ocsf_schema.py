"""Compile the OCSF event classes Warden emits into one JSON Schema (draft 2020-12).

Usage::

    git clone https://github.com/ocsf/ocsf-schema && git -C ocsf-schema checkout v1.8.0
    python tools/ocsf_schema.py ocsf-schema > src/warden/ocsf/ocsf-1.8.0.schema.json

The input is the OCSF schema *source* (``dictionary.json``, ``events/``, ``objects/``,
``profiles/``), not a pre-built export, so the result follows the definitions exactly:

- a class is its own attributes merged over its ``extends`` chain (``base_event`` → category →
  class) plus every ``$include``-d profile; objects likewise (``object`` → ``_entity`` → …);
- an attribute's type comes from ``dictionary.json`` (``*_t`` scalar types resolve to their base
  type; anything else is an object, referenced as ``$defs/<object>``), ``is_array`` makes arrays;
- integer attributes with an ``enum`` (``activity_id``, ``class_uid``, ``type_id`` …) only take
  the listed values; a class pins ``class_uid``/``category_uid`` to its own and ``type_uid`` to
  ``class_uid * 100 + activity_id`` (one if/then per activity);
- ``requirement: required`` attributes are required (those a profile brings only when the
  event applies the profile, so they are allowed but not required here); object
  ``constraints`` (``at_least_one``, ``just_one``) become ``anyOf``/``oneOf`` of required sets;
- unknown attributes are rejected (``additionalProperties: false``), except inside ``unmapped``
  and ``json_t`` values, so a misspelt field fails validation instead of vanishing in a SIEM.

Descriptions are left out to keep the file small; the OCSF browser has them.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

# (category folder, class file) of every class Warden emits; see warden.ocsf.mapping.
CLASSES = [
    ("iam", "account_change"),
    ("iam", "authentication"),
    ("iam", "entity_management"),
    ("iam", "user_access"),
    ("application", "api_activity"),
    ("findings", "detection_finding"),
    ("findings", "compliance_finding"),
]

SCALARS = {
    "string_t": {"type": "string"},
    "integer_t": {"type": "integer"},
    "long_t": {"type": "integer"},
    "float_t": {"type": "number"},
    "boolean_t": {"type": "boolean"},
    "json_t": {},
}


class Source:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.dictionary = self._load("dictionary.json")["attributes"]
        self.types = self._load("dictionary.json")["types"]["attributes"]
        self.categories = self._load("categories.json")["attributes"]
        self.version = self._load("version.json")["version"]
        self.defs: dict[str, Any] = {}

    def _load(self, rel: str) -> dict[str, Any]:
        data: dict[str, Any] = json.loads((self.root / rel).read_text())
        return data

    # -- merging ------------------------------------------------------------------------------
    def _merge(self, base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
        out = {k: dict(v) for k, v in base.items()}
        for name, attr in over.items():
            if name == "$include":
                continue
            merged = {**out.get(name, {}), **(attr or {})}
            if "profile" in (attr or {}) and attr["profile"] is None:
                merged.pop("_profile", None)  # the class adopts the attribute as its own
            if "enum" in out.get(name, {}) and "enum" in (attr or {}):
                merged["enum"] = {**out[name]["enum"], **attr["enum"]}
            out[name] = merged
        return out

    def _includes(self, attrs: dict[str, Any]) -> dict[str, Any]:
        merged: dict[str, Any] = {}
        for rel in attrs.get("$include", []):
            profile = {k: {**v, "_profile": rel} for k, v in self._load(rel)["attributes"].items()}
            merged = self._merge(merged, profile)
        return merged

    def event(self, folder: str, name: str) -> tuple[dict[str, Any], dict[str, Any]]:
        """(class definition, merged attributes) following ``extends``."""
        path = f"events/{folder}/{name}.json" if folder else f"events/{name}.json"
        spec = self._load(path)
        parent = spec.get("extends")
        attrs: dict[str, Any] = {}
        if parent:
            parent_folder = "" if parent == "base_event" else folder
            parent_spec, attrs = self.event(parent_folder, parent)
            spec = {"category": parent_spec.get("category"), **spec}
        own = spec.get("attributes", {})
        attrs = self._merge(attrs, self._includes(own))
        attrs = self._merge(attrs, own)
        return spec, attrs

    def object_spec(self, name: str) -> tuple[dict[str, Any], dict[str, Any]]:
        spec = self._load(f"objects/{name}.json")
        attrs: dict[str, Any] = {}
        constraints = spec.get("constraints")
        parent = spec.get("extends")
        if parent:
            parent_spec, attrs = self.object_spec(parent)
            constraints = constraints or parent_spec.get("constraints")
        own = spec.get("attributes", {})
        attrs = self._merge(attrs, self._includes(own))
        attrs = self._merge(attrs, own)
        return {**spec, "constraints": constraints}, attrs

    # -- compiling ------------------------------------------------------------------------------
    def _scalar(self, type_name: str) -> dict[str, Any]:
        while type_name not in SCALARS:
            type_name = self.types[type_name]["type"]
        return dict(SCALARS[type_name])

    def attribute(self, name: str, attr: dict[str, Any]) -> dict[str, Any]:
        entry = {**self.dictionary.get(name, {}), **attr}
        type_name = entry.get("type") or self.dictionary.get(name, {}).get("type")
        if type_name is None:
            raise SystemExit(f"attribute `{name}` has no type")
        if type_name.endswith("_t"):
            schema = self._scalar(type_name)
            enum = attr.get("enum") or self.dictionary.get(name, {}).get("enum")
            if enum and schema.get("type") == "integer":
                schema["enum"] = sorted(int(k) for k in enum)
        elif type_name == "object":
            schema = {"type": "object"}
        else:
            self.compile_object(type_name)
            schema = {"$ref": f"#/$defs/{type_name}"}
        if entry.get("is_array"):
            schema = {"type": "array", "items": schema}
        return schema

    def _properties(self, attrs: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
        props: dict[str, Any] = {}
        required: list[str] = []
        for name in sorted(attrs):
            attr = attrs[name]
            if attr.get("@deprecated"):
                continue
            props[name] = self.attribute(name, attr)
            # a profile's required attributes bind only events that apply the profile
            if attr.get("requirement") == "required" and "_profile" not in attr:
                required.append(name)
        return props, required

    def compile_object(self, name: str) -> None:
        if name in self.defs:
            return
        self.defs[name] = {}  # placeholder: objects refer to each other
        spec, attrs = self.object_spec(name)
        props, required = self._properties(attrs)
        schema: dict[str, Any] = {
            "type": "object",
            "properties": props,
            "additionalProperties": name == "object",
        }
        if required:
            schema["required"] = required
        constraints = spec.get("constraints") or {}
        if constraints.get("at_least_one"):
            schema["anyOf"] = [{"required": [a]} for a in constraints["at_least_one"]]
        if constraints.get("just_one"):
            schema["oneOf"] = [{"required": [a]} for a in constraints["just_one"]]
        self.defs[name] = schema

    def compile_class(self, folder: str, name: str) -> dict[str, Any]:
        spec, attrs = self.event(folder, name)
        category_uid = self.categories[spec["category"]]["uid"]
        class_uid = category_uid * 1000 + spec["uid"]
        props, required = self._properties(attrs)
        props["class_uid"] = {"const": class_uid}
        props["category_uid"] = {"const": category_uid}
        activities = sorted(int(k) for k in attrs["activity_id"].get("enum", {}))
        props["type_uid"] = {"enum": [class_uid * 100 + a for a in activities]}
        props["unmapped"] = {"type": "object"}
        return {
            "title": f"{spec['caption']} [{class_uid}]",
            "type": "object",
            "properties": props,
            "required": required,
            "additionalProperties": False,
            # type_uid = class_uid * 100 + activity_id, spelt out per activity
            "allOf": [
                {
                    "if": {
                        "properties": {"activity_id": {"const": a}},
                        "required": ["activity_id"],
                    },
                    "then": {"properties": {"type_uid": {"const": class_uid * 100 + a}}},
                }
                for a in activities
            ],
        }


def compile_schema(root: Path) -> dict[str, Any]:
    src = Source(root)
    classes = {}
    for folder, name in CLASSES:
        compiled = src.compile_class(folder, name)
        classes[str(compiled["properties"]["class_uid"]["const"])] = compiled
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"https://warden.dev/schemas/ocsf-{src.version}.json",
        "title": f"OCSF {src.version} event classes emitted by Warden",
        "x-ocsf-version": src.version,
        "x-classes": sorted(int(k) for k in classes),
        "oneOf": [{"$ref": f"#/$defs/class_{uid}"} for uid in sorted(classes)],
        "$defs": {
            **{f"class_{uid}": schema for uid, schema in classes.items()},
            **src.defs,
        },
    }


def main() -> None:
    if len(sys.argv) != 2:
        raise SystemExit("usage: ocsf_schema.py <ocsf-schema source folder>")
    json.dump(compile_schema(Path(sys.argv[1])), sys.stdout, sort_keys=True, separators=(",", ":"))
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()

"""JSON Schemas of every contract model, and the check that a model still reads what it read before.

`python -m schemas.compat write` regenerates `schemas/jsonschema/`; `check` compares the models with the committed
files and fails on an incompatible change. Compatible means: every document valid under the committed schema is
still accepted, so no property removed, no property newly required, no type narrowed, no enum value removed, no
bound tightened. A compatible change must still be committed (the check also asks for the files to be current).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from schemas.certificate import CERTIFICATE_ADAPTER
from schemas.envelope import Envelope
from schemas.events import EVENT_TYPES

SCHEMA_DIR = Path(__file__).parent / "jsonschema"
JsonSchema = dict[str, Any]


def current_schemas() -> dict[str, JsonSchema]:
    """File name → JSON Schema for every contract model."""
    schemas: dict[str, JsonSchema] = {
        "certificate.v1.json": CERTIFICATE_ADAPTER.json_schema(),
        "envelope.v1.json": _envelope_schema(),
    }
    for event_type, model in EVENT_TYPES.items():
        schemas[f"event.{event_type}.v{model.major_version}.json"] = model.model_json_schema()
    return schemas


def _envelope_schema() -> JsonSchema:
    """The envelope with `data` as any object: each payload has a schema file of its own."""
    schema = Envelope.model_json_schema()
    schema["properties"]["data"] = {
        "type": "object",
        "description": "The payload: see event.<type>.v<major>.json",
    }
    schema.pop("$defs", None)
    return schema


def _resolve(schema: JsonSchema, root: JsonSchema) -> JsonSchema:
    while "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        schema = {**root.get("$defs", {})[name], **{k: v for k, v in schema.items() if k != "$ref"}}
    return schema


def _types(schema: JsonSchema, root: JsonSchema) -> set[str]:
    schema = _resolve(schema, root)
    if "anyOf" in schema or "oneOf" in schema:
        out: set[str] = set()
        for option in schema.get("anyOf", []) + schema.get("oneOf", []):
            out |= _types(option, root)
        return out
    if "const" in schema:
        return {f"const:{json.dumps(schema['const'])}"}
    if "enum" in schema:
        return {f"const:{json.dumps(v)}" for v in schema["enum"]}
    declared = schema.get("type")
    return {declared} if isinstance(declared, str) else set(declared or ["any"])


_TIGHTER_IF_LARGER = ("minLength", "minItems", "minimum", "exclusiveMinimum")
_TIGHTER_IF_SMALLER = ("maxLength", "maxItems", "maximum", "exclusiveMaximum")


def incompatibilities(old: JsonSchema, new: JsonSchema) -> list[str]:
    """Reasons a document valid under `old` could be refused by `new` (empty when compatible)."""
    problems: list[str] = []
    _compare(old, new, old, new, "$", problems, set())
    return problems


def _compare(
    old: JsonSchema,
    new: JsonSchema,
    old_root: JsonSchema,
    new_root: JsonSchema,
    path: str,
    out: list[str],
    seen: set[tuple[str, str]],
) -> None:
    key = (json.dumps(old, sort_keys=True), json.dumps(new, sort_keys=True))
    if key in seen:
        return
    seen.add(key)
    old, new = _resolve(old, old_root), _resolve(new, new_root)
    old_types, new_types = _types(old, old_root), _types(new, new_root)
    if "any" not in new_types:
        widened = {t for t in new_types if not t.startswith("const:")}
        if "number" in widened:
            widened.add("integer")  # every integer is a number
        lost = {
            t
            for t in old_types - new_types
            if t not in widened and not (t.startswith("const:") and _const_type(t) in widened)
        }
        if lost:
            out.append(f"{path}: no longer accepts {sorted(lost)}")
    if new.get("format") and new.get("format") != old.get("format"):
        out.append(f"{path}: format {new['format']} added")
    if new.get("additionalProperties") is False and old.get("additionalProperties") is not False:
        out.append(f"{path}: no longer accepts unknown properties")
    for bound in _TIGHTER_IF_LARGER:
        if bound in new and new[bound] > old.get(bound, float("-inf")):
            out.append(f"{path}: {bound} tightened to {new[bound]}")
    for bound in _TIGHTER_IF_SMALLER:
        if bound in new and new[bound] < old.get(bound, float("inf")):
            out.append(f"{path}: {bound} tightened to {new[bound]}")
    if new.get("pattern") and new.get("pattern") != old.get("pattern"):
        out.append(f"{path}: pattern changed")
    old_props, new_props = old.get("properties", {}), new.get("properties", {})
    for name in old_props:
        if name not in new_props and new.get("additionalProperties") is False:
            out.append(f"{path}.{name}: property removed")
    for name in set(new.get("required", [])) - set(old.get("required", [])):
        out.append(f"{path}.{name}: newly required")
    for name in set(old_props) & set(new_props):
        _compare(old_props[name], new_props[name], old_root, new_root, f"{path}.{name}", out, seen)
    if isinstance(old.get("items"), dict) and isinstance(new.get("items"), dict):
        _compare(old["items"], new["items"], old_root, new_root, f"{path}[]", out, seen)
    new_options = new.get("anyOf", []) + new.get("oneOf", [])
    for i, option in enumerate(old.get("anyOf", []) + old.get("oneOf", [])):
        match = _matching_option(option, old_root, new_options, new_root)
        if match is None:
            if "any" not in new_types and not (_types(option, old_root) <= new_types):
                continue  # already reported as a lost type
            if new_options:
                out.append(f"{path}<{_option_name(option, i)}>: option removed")
        else:
            _compare(option, match, old_root, new_root, f"{path}<{_option_name(option, i)}>", out, seen)


def _option_name(option: JsonSchema, index: int) -> str:
    return str(option["$ref"]).rsplit("/", 1)[-1] if "$ref" in option else str(index)


def _discriminant(option: JsonSchema, root: JsonSchema) -> str | None:
    """The const a union option is told apart by (pydantic's discriminated unions: the `type` literal)."""
    for name, prop in _resolve(option, root).get("properties", {}).items():
        prop = _resolve(prop, root)
        if "const" in prop:
            return f"{name}={json.dumps(prop['const'])}"
    return None


def _matching_option(
    option: JsonSchema, root: JsonSchema, candidates: list[JsonSchema], candidates_root: JsonSchema
) -> JsonSchema | None:
    """The new union option that stands for an old one: same discriminant, same $ref name, or the one same type."""
    tag = _discriminant(option, root)
    if tag is not None:
        tagged = [c for c in candidates if _discriminant(c, candidates_root) == tag]
        if tagged:
            return tagged[0]
    if "$ref" in option:
        named = [c for c in candidates if c.get("$ref", "").rsplit("/", 1)[-1] == option["$ref"].rsplit("/", 1)[-1]]
        if named:
            return named[0]
    typed = [c for c in candidates if _types(c, candidates_root) & _types(option, root)]
    return typed[0] if len(typed) == 1 else None


def _const_type(tag: str) -> str:
    value = json.loads(tag.removeprefix("const:"))
    return {str: "string", bool: "boolean", int: "integer", float: "number"}.get(type(value), "null")


def write() -> None:
    SCHEMA_DIR.mkdir(exist_ok=True)
    for name, schema in current_schemas().items():
        (SCHEMA_DIR / name).write_text(json.dumps(schema, indent=2, ensure_ascii=False, sort_keys=True) + "\n")


def check() -> list[str]:
    """Every problem with the committed schemas: incompatible changes, missing or stale files."""
    problems: list[str] = []
    for name, schema in current_schemas().items():
        committed_file = SCHEMA_DIR / name
        if not committed_file.exists():
            problems.append(f"{name}: not committed (run `make schemas`)")
            continue
        committed = json.loads(committed_file.read_text())
        problems += [f"{name}: {p}" for p in incompatibilities(committed, schema)]
        if committed != json.loads(json.dumps(schema)):
            problems.append(f"{name}: changed compatibly but not regenerated (run `make schemas`)")
    return problems


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["write", "check"])
    if parser.parse_args().command == "write":
        write()
        return
    problems = check()
    for p in problems:
        print(p, file=sys.stderr)
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()

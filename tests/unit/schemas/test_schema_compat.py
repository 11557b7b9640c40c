"""The schema compatibility guard (schemas.compat): the committed schemas, and what counts as incompatible."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import Field

from schemas import compat
from schemas.base import Frozen

JsonSchema = dict[str, Any]


def committed(name: str) -> JsonSchema:
    loaded: JsonSchema = json.loads((compat.SCHEMA_DIR / name).read_text())
    return loaded


def obj(properties: JsonSchema, *, required: list[str] | None = None, closed: bool = True) -> JsonSchema:
    schema: JsonSchema = {"type": "object", "properties": properties, "required": required or []}
    if closed:
        schema["additionalProperties"] = False
    return schema


# --- the real guard ------------------------------------------------------------------------------------------


def test_committed_schemas_match_the_models() -> None:
    assert compat.check() == []


def test_every_contract_model_has_a_committed_schema() -> None:
    committed_files = {p.name for p in compat.SCHEMA_DIR.glob("*.json")}

    assert set(compat.current_schemas()) <= committed_files


def test_check_reports_missing_stale_and_incompatible_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(compat, "SCHEMA_DIR", tmp_path)
    compat.write()
    assert compat.check() == []

    (tmp_path / "envelope.v1.json").unlink()
    given = json.loads((tmp_path / "event.consent.given.v1.json").read_text())
    given["properties"]["channel"]["maxLength"] = 64  # the committed schema was looser
    (tmp_path / "event.consent.given.v1.json").write_text(json.dumps(given))
    withdrawn = json.loads((tmp_path / "event.consent.withdrawn.v1.json").read_text())
    withdrawn["properties"]["channel"]["maxLength"] = 16  # the model is looser: compatible but stale
    (tmp_path / "event.consent.withdrawn.v1.json").write_text(json.dumps(withdrawn))

    problems = compat.check()

    assert "envelope.v1.json: not committed (run `make schemas`)" in problems
    assert "event.consent.given.v1.json: $.channel: maxLength tightened to 32" in problems
    assert any(p.startswith("event.consent.withdrawn.v1.json: changed compatibly") for p in problems)
    assert not any(p.startswith("event.consent.withdrawn.v1.json: $") for p in problems)


# --- incompatible changes ------------------------------------------------------------------------------------

BASE = obj(
    {
        "name": {"type": "string", "maxLength": 50, "minLength": 1},
        "code": {"type": "string", "pattern": "^[A-Z]+$"},
        "kind": {"type": "string", "enum": ["A", "B"]},
        "count": {"type": "integer", "minimum": 0},
        "note": {"anyOf": [{"type": "string"}, {"type": "null"}]},
        "tags": {"type": "array", "items": {"type": "string", "maxLength": 10}, "maxItems": 5},
    },
    required=["name"],
)


def changed(path: list[str], value: Any) -> JsonSchema:
    """BASE with the value at `path` replaced (or removed when value is ...)."""
    schema = copy.deepcopy(BASE)
    target = schema
    for key in path[:-1]:
        target = target[key]
    if value is ...:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return schema


def test_identical_schemas_are_compatible() -> None:
    assert compat.incompatibilities(BASE, copy.deepcopy(BASE)) == []


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        (["properties", "code"], ..., "$.code: property removed"),
        (["required"], ["name", "code"], "$.code: newly required"),
        (["properties", "note"], {"type": "string"}, "$.note: no longer accepts ['null']"),
        (["properties", "count", "type"], "string", "$.count: no longer accepts ['integer']"),
        (["properties", "kind", "enum"], ["A"], "$.kind: no longer accepts ['const:\"B\"']"),
        (["properties", "name", "maxLength"], 40, "$.name: maxLength tightened to 40"),
        (["properties", "name", "minLength"], 2, "$.name: minLength tightened to 2"),
        (["properties", "count", "minimum"], 1, "$.count: minimum tightened to 1"),
        (["properties", "count", "maximum"], 100, "$.count: maximum tightened to 100"),
        (["properties", "code", "pattern"], "^[A-Z]{2}$", "$.code: pattern changed"),
        (["properties", "kind", "pattern"], "^A$", "$.kind: pattern changed"),
        (["properties", "tags", "maxItems"], 4, "$.tags: maxItems tightened to 4"),
        (["properties", "tags", "items", "maxLength"], 5, "$.tags[]: maxLength tightened to 5"),
        (
            ["properties", "note"],
            {"anyOf": [{"type": "string", "maxLength": 3}, {"type": "null"}]},
            "$.note<0>: maxLength tightened to 3",
        ),
    ],
)
def test_incompatible_change_is_reported(path: list[str], value: Any, expected: str) -> None:
    assert compat.incompatibilities(BASE, changed(path, value)) == [expected]


def test_several_incompatible_changes_are_all_reported() -> None:
    new = changed(["properties", "name", "maxLength"], 10)
    new["required"] = ["name", "kind"]
    del new["properties"]["tags"]

    assert sorted(compat.incompatibilities(BASE, new)) == [
        "$.kind: newly required",
        "$.name: maxLength tightened to 10",
        "$.tags: property removed",
    ]


def test_refs_are_followed() -> None:
    old = {"$defs": {"Inner": obj({"x": {"type": "string"}})}, **obj({"inner": {"$ref": "#/$defs/Inner"}})}
    new = copy.deepcopy(old)
    new["$defs"]["Inner"]["properties"]["x"]["maxLength"] = 3

    assert compat.incompatibilities(old, new) == ["$.inner.x: maxLength tightened to 3"]


# --- compatible changes --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (["properties", "extra"], {"type": "string"}),  # a new optional property
        (["properties", "count", "type"], ["integer", "null"]),  # widened
        (["properties", "count"], {"anyOf": [{"type": "integer"}, {"type": "string"}]}),
        (["properties", "kind", "enum"], ["A", "B", "C"]),  # a value added
        (["properties", "kind"], {"type": "string"}),  # enum relaxed to any string
        (["properties", "name", "maxLength"], 100),
        (["properties", "name", "minLength"], ...),
        (["properties", "code", "pattern"], ...),
        (["properties", "tags", "maxItems"], ...),
        (["required"], []),
        (["additionalProperties"], ...),
        (["properties", "note"], {}),  # anything
    ],
)
def test_compatible_change_is_not_reported(path: list[str], value: Any) -> None:
    assert compat.incompatibilities(BASE, changed(path, value)) == []


def test_removing_a_property_is_fine_when_unknown_properties_are_allowed() -> None:
    old = obj({"a": {"type": "string"}, "b": {"type": "string"}}, closed=False)
    new = obj({"a": {"type": "string"}}, closed=False)

    assert compat.incompatibilities(old, new) == []


def test_widening_integer_to_number_is_not_reported() -> None:
    assert compat.incompatibilities(BASE, changed(["properties", "count", "type"], "number")) == []


# --- gaps: incompatible changes the guard misses -------------------------------------------------------------


@pytest.mark.parametrize("name", ["certificate.v1.json", "event.certificate.issued.v1.json"])
def test_incompatible_change_inside_the_certificate_union_is_reported(name: str) -> None:
    old = committed(name)
    new = copy.deepcopy(old)
    del new["$defs"]["Patient"]["properties"]["family_name"]

    assert compat.incompatibilities(old, new) != []


def test_closing_an_open_object_is_reported() -> None:
    old = obj({"a": {"type": "string"}}, closed=False)
    new = obj({"a": {"type": "string"}}, closed=True)

    assert compat.incompatibilities(old, new) != []


def test_adding_a_format_is_reported() -> None:
    assert compat.incompatibilities({"type": "string"}, {"type": "string", "format": "uuid"}) != []


# --- schemas derived from real models ------------------------------------------------------------------------


def test_removing_a_property_from_a_committed_event_schema_is_reported() -> None:
    old = committed("event.consent.given.v1.json")
    new = copy.deepcopy(old)
    del new["properties"]["channel"]
    new["required"].remove("channel")

    assert compat.incompatibilities(old, new) == ["$.channel: property removed"]


def test_removing_an_enum_value_from_a_committed_event_schema_is_reported() -> None:
    old = committed("event.dispatch.failed.v1.json")
    new = copy.deepcopy(old)
    new["properties"]["reason_code"]["enum"].remove("NO_CONSENT")

    assert compat.incompatibilities(old, new) == ["$.reason_code: no longer accepts ['const:\"NO_CONSENT\"']"]


class NoteV1(Frozen):
    text: str
    note: str | None = None
    level: int = 0


class NoteTighter(Frozen):
    text: str = Field(max_length=10)
    note: str | None = Field(None, max_length=20)
    level: int


class NoteLooser(Frozen):
    text: str
    note: str | None = None
    level: int | str = 0
    extra: list[str] | None = None


def test_tightening_a_pydantic_model_is_reported() -> None:
    problems = compat.incompatibilities(NoteV1.model_json_schema(), NoteTighter.model_json_schema())

    assert sorted(problems) == [
        "$.level: newly required",
        "$.note<0>: maxLength tightened to 20",
        "$.text: maxLength tightened to 10",
    ]


def test_loosening_a_pydantic_model_is_not_reported() -> None:
    assert compat.incompatibilities(NoteV1.model_json_schema(), NoteLooser.model_json_schema()) == []

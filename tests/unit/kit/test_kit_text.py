"""The edge's text types and the JSON content-type rule (services/kit/text.py, services/kit/http.py)."""

from __future__ import annotations

import re
from typing import Annotated

import pytest
from pydantic import BaseModel, Field, ValidationError

from services.kit.http import has_body, is_json
from services.kit.text import LINE_PATTERN, MESSAGE_PATTERN, Line, Message


class Form(BaseModel):
    id: Annotated[Line, Field(max_length=64)]
    message: Message


@pytest.mark.parametrize(
    ("field", "value", "says"),
    [
        ("id", "a\x00b", "must not contain a NUL character"),
        ("id", "a\nb", "must not contain control characters (U+000A at position 1)"),
        ("id", "a\x85", "must not contain control characters (U+0085 at position 1)"),
        ("message", "rad\x00", "must not contain a NUL character"),
        ("message", "\x1b[31m", "must not contain control characters (U+001B at position 0)"),
    ],
)
def test_control_characters_are_refused_and_named(field: str, value: str, says: str) -> None:
    good = {"id": "SE-1", "message": "hej"}
    with pytest.raises(ValidationError) as caught:
        Form.model_validate({**good, field: value})
    assert [(e["loc"], e["msg"]) for e in caught.value.errors()] == [((field,), says)]


def test_line_breaks_are_text_in_a_message_and_the_schema_says_what_is_refused() -> None:
    assert Form(id="åäö-1", message="rad ett\r\nrad två\tslut").message.startswith("rad ett")
    schema = Form.model_json_schema()["properties"]
    assert schema["id"]["pattern"] == LINE_PATTERN
    assert schema["message"]["pattern"] == MESSAGE_PATTERN
    assert re.fullmatch(LINE_PATTERN, "SE-1")
    assert not re.fullmatch(LINE_PATTERN, "a\x00")
    assert re.fullmatch(MESSAGE_PATTERN, "a\nb")
    assert not re.fullmatch(MESSAGE_PATTERN, "a\x00")


@pytest.mark.parametrize(
    ("content_type", "json"),
    [(b"application/json", True), (b"Application/JSON; charset=utf-8", True), (b"application/jsonx", False),
     (b"application/json-seq", False), (b"text/plain", False), (b"", False)],
)  # fmt: skip
def test_only_application_json_is_json(content_type: bytes, json: bool) -> None:
    assert is_json(content_type) is json


def test_a_chunked_body_is_a_body() -> None:
    assert has_body({b"transfer-encoding": b"chunked"})
    assert has_body({b"content-length": b"12"})
    assert not has_body({b"content-length": b"0"})
    assert not has_body({})

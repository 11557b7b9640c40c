"""Text as the services accept it at the edge: no control characters.

PostgreSQL cannot store NUL in text, so a NUL that got past validation became a 500 on save; other control
characters have no place in an id or a message either. `Line` refuses every control character (ids, reasons, single
fields); `Message` allows tab, line feed and carriage return (free text a citizen writes). The JSON schema carries the
rule as a pattern, so the OpenAPI documents say what is refused.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, Field
from pydantic_core import PydanticCustomError

# C0 controls and DEL; C1 controls (U+0080-U+009F) are control characters too.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_CONTROL_BUT_LINE_BREAKS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
LINE_PATTERN = r"^[^\x00-\x1f\x7f-\x9f]*$"
MESSAGE_PATTERN = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]*$"


def control_character_problem(value: str, *, line_breaks: bool = False) -> str | None:
    """What is wrong with `value` (it has a control character, NUL named as such), or None."""
    found = (_CONTROL_BUT_LINE_BREAKS if line_breaks else _CONTROL).search(value)
    if found is None:
        return None
    if found[0] == "\x00":
        return "must not contain a NUL character"
    return f"must not contain control characters (U+{ord(found[0]):04X} at position {found.start()})"


def _line(value: str) -> str:
    if (problem := control_character_problem(value)) is not None:
        raise PydanticCustomError("control_character", problem)
    return value


def _message(value: str) -> str:
    if (problem := control_character_problem(value, line_breaks=True)) is not None:
        raise PydanticCustomError("control_character", problem)
    return value


Line = Annotated[str, AfterValidator(_line), Field(json_schema_extra={"pattern": LINE_PATTERN})]
"""Text without any control character (one line)."""

Message = Annotated[str, AfterValidator(_message), Field(json_schema_extra={"pattern": MESSAGE_PATTERN})]
"""Free text: tab and line breaks allowed, no other control character."""

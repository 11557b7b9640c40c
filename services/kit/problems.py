"""Errors as every service answers them: `{"detail"}`, and for invalid input every problem as `{path, message}`.

A problem never repeats the input it is about: that input may hold a personnummer.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from fastapi.responses import JSONResponse

from schemas.base import Frozen
from schemas.certificate_types import CERTIFICATE_TYPES

# The certificate types schemas/certificate.py describes (the discriminated union's tags).
DESCRIBED_TYPES = sorted(code for code, t in CERTIFICATE_TYPES.items() if t.accepted_by_intake)


class HasPathAndMessage(Protocol):
    @property
    def path(self) -> str: ...

    @property
    def message(self) -> str: ...


class ErrorBody(Frozen):
    """The body of every error answer (for OpenAPI)."""

    detail: str


class ProblemItem(Frozen):
    path: str
    message: str


class ValidationErrorBody(Frozen):
    """The body of a 422 (for OpenAPI)."""

    detail: str
    problems: list[ProblemItem]


@dataclass(frozen=True)
class Problem:
    path: str
    message: str


def error_response(status: int, detail: str, headers: Mapping[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status, headers=dict(headers) if headers else None)


def problems_response(problems: Iterable[HasPathAndMessage], detail: str = "the request is invalid") -> JSONResponse:
    """422 with every problem."""
    return JSONResponse(
        {"detail": detail, "problems": [{"path": p.path, "message": p.message} for p in problems]}, status_code=422
    )


def problem_from_pydantic(error: Any, *, prefix: str | None = None) -> Problem:
    """A pydantic error as {path, message}: FastAPI's `body` and the certificate union's tag dropped."""
    loc = [str(part) for part in error.get("loc", ())]
    if loc[:1] == ["body"]:
        loc = loc[1:]
    if loc and loc[0] in CERTIFICATE_TYPES:
        loc = loc[1:]
    kind = error.get("type")
    if kind in ("union_tag_invalid", "union_tag_not_found"):
        return Problem(_join(prefix, "type"), f"must be one of {', '.join(DESCRIBED_TYPES)}")
    if kind == "json_invalid":
        at = f" at position {loc[0]}" if loc else ""
        return Problem("body", f"malformed JSON{at}: {error.get('ctx', {}).get('error', 'cannot be parsed')}")
    message = "unknown field" if kind == "extra_forbidden" else str(error.get("msg", "invalid"))
    return Problem(_join(prefix, ".".join(loc)) or "body", message)


def _join(prefix: str | None, path: str) -> str:
    return ".".join(p for p in (prefix, path) if p)

"""The event envelope: CloudEvents 1.0 attributes (structured JSON mode) around a typed payload.

On Kafka an event travels in the binding's structured mode: the value is the whole event in the JSON format and the
`content-type` header says `application/cloudevents+json`; no `ce_*` header (the binding keeps those for binary
mode, and a reader that sees one takes the message as binary). Optional attributes without a value are left out
(the JSON format reads a null as an error, not as absent). Extension attributes — `tracestate`, or any a producer
adds — are kept as they are, provided they are well-formed (lower-case letters and digits, a string, integer or
boolean value)."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, Literal, Self
from uuid import UUID, uuid4

import orjson
from pydantic import (
    AwareDatetime,
    ConfigDict,
    Field,
    SerializeAsAny,
    TypeAdapter,
    ValidationError,
    create_model,
    model_validator,
)

from schemas.base import Frozen
from schemas.events import EVENT_TYPES, EventData, dataschema_uri

CONTENT_TYPE = "application/cloudevents+json"

# Upcasters turn the raw data of an older major version into the current one, keyed by (type, old major).
UPCASTERS: dict[tuple[str, int], Callable[[dict[str, Any]], dict[str, Any]]] = {}


# CloudEvents 1.0: an extension's name is lower-case ASCII letters and digits (at most 20 is the spec's advice; 64
# here, so that a producer's longer name is not a reason to dead-letter its event), its value a string, integer or
# boolean (binary, URI and timestamp values are strings in the JSON format). 4096 characters bound a value.
_EXTENSION_NAME = re.compile(r"[a-z0-9]{1,64}")
_EXTENSION_MAX = 4096
_INT32 = range(-(2**31), 2**31)


class Envelope(Frozen):
    """One event as it travels on a topic; attributes beyond the declared ones are CloudEvents extensions."""

    model_config = ConfigDict(
        frozen=True,
        extra="allow",
        json_schema_extra={
            "propertyNames": {"pattern": "^[a-z0-9]{1,64}$"},
            "additionalProperties": {
                "description": "A CloudEvents extension attribute (e.g. tracestate)",
                "type": ["string", "integer", "boolean"],
            },
        },
    )

    specversion: Literal["1.0"] = "1.0"
    id: UUID
    type: str
    source: Annotated[str, Field(min_length=1, max_length=200)]
    time: AwareDatetime
    subject: Annotated[str, Field(max_length=200)] | None = None
    dataschema: str
    datacontenttype: Literal["application/json"] = "application/json"
    correlationid: Annotated[str, Field(min_length=1, max_length=100)]
    traceparent: Annotated[str, Field(max_length=55)] | None = None
    data: SerializeAsAny[EventData] = Field(
        json_schema_extra={"description": "The payload: see event.<type>.v<major>.json"}
    )

    @model_validator(mode="after")
    def _extensions_are_well_formed(self) -> Self:
        extensions = self.__pydantic_extra__
        if extensions:
            for name, value in extensions.items():
                if not _EXTENSION_NAME.fullmatch(name):
                    raise ValueError("an extension attribute's name is lower-case letters and digits (CloudEvents)")
                if isinstance(value, bool) or value is None:
                    continue
                if isinstance(value, int) and value in _INT32:
                    continue
                if not isinstance(value, str) or len(value) > _EXTENSION_MAX:
                    raise ValueError(f"extension attribute {name}: a string, integer or boolean")
        return self

    @property
    def extensions(self) -> dict[str, Any]:
        """The extension attributes (those CloudEvents does not define and this envelope does not declare)."""
        return {k: v for k, v in (self.__pydantic_extra__ or {}).items() if v is not None}

    def __eq__(self, other: object) -> bool:
        """Equal by attributes, whichever typed form of the envelope (see `decode`) either side is."""
        if not isinstance(other, Envelope):
            return NotImplemented
        return (
            all(getattr(self, name) == getattr(other, name) for name in Envelope.model_fields)
            and self.extensions == other.extensions
        )

    def __hash__(self) -> int:
        return hash(self.id)


class InvalidEvent(ValueError):
    """Bytes that are not a well-formed envelope of a known event type."""


def new_envelope(
    data: EventData,
    *,
    source: str,
    time: datetime,
    correlation_id: str,
    subject: str | None = None,
    traceparent: str | None = None,
) -> Envelope:
    """Wrap a payload in a fresh envelope with a new event id."""
    return Envelope(
        id=uuid4(),
        type=data.event_type,
        source=source,
        time=time,
        subject=subject,
        dataschema=dataschema_uri(type(data)),
        correlationid=correlation_id,
        traceparent=traceparent,
        data=data,
    )


def encode(envelope: Envelope, raw: dict[str, str | bytes] | None = None) -> bytes:
    """Serialise an envelope to the bytes put on a topic.

    `raw` gives payload fields already serialised as JSON (a certificate the caller dumped anyway): they are
    spliced in as they are instead of being serialised again, each where the payload's model puts it (the same
    bytes as serialising it). They must be the JSON of the very same values.
    """
    document = envelope.model_dump(mode="json", exclude={"data": set(raw)} if raw else None)
    if raw:
        dumped = document["data"]
        data = {
            name: orjson.Fragment(raw[name]) if name in raw else dumped[name]
            for name in type(envelope.data).model_fields
            if name in raw or name in dumped
        }
        document["data"] = data | dumped
    # Attributes without a value are absent (a null is not a CloudEvents value); `data` itself is never null here.
    return orjson.dumps({name: value for name, value in document.items() if value is not None})


_JSON_TIME: TypeAdapter[datetime] = TypeAdapter(AwareDatetime)


def json_time(value: datetime) -> str:
    """An aware datetime as an envelope carries it in JSON (pydantic's form), for `encode_fresh`."""
    text: str = _JSON_TIME.dump_python(value, mode="json")
    return text


def encode_fresh(
    event_type: type[EventData],
    data: dict[str, Any] | orjson.Fragment,
    *,
    event_id: UUID,
    source: str,
    time: str,
    correlation_id: str,
    subject: str | None = None,
    traceparent: str | None = None,
) -> bytes:
    """The bytes `encode(new_envelope(...))` gives, built without the models, for a service emitting thousands of
    events a second from input it has validated (building and dumping the two models costs more than the rest
    of the gate's work per event).

    `data` is the payload's JSON (`orjson.Fragment(payload.model_dump_json())`), or its fields in declaration order
    in their JSON form (JSON types, `json_time` for datetimes, `orjson.Fragment` for JSON already serialised);
    `time` is `json_time` of the event time. The
    caller vouches that the values satisfy the models' constraints; tests hold the bytes to `encode`'s.
    """
    document: dict[str, Any] = {
        "specversion": "1.0",
        "id": str(event_id),
        "type": event_type.event_type,
        "source": source,
        "time": time,
    }
    if subject is not None:
        document["subject"] = subject
    document["dataschema"] = dataschema_uri(event_type)
    document["datacontenttype"] = "application/json"
    document["correlationid"] = correlation_id
    if traceparent is not None:
        document["traceparent"] = traceparent
    document["data"] = data
    return orjson.dumps(document)


def _typed_envelope(cls: type[EventData]) -> type[Envelope]:
    """An envelope whose type, schema version and payload are fixed, for one-pass parsing of the bytes."""
    model: type[Envelope] = create_model(
        f"{cls.__name__}Envelope",
        __base__=Envelope,
        type=(Literal[cls.event_type], ...),  # type: ignore[arg-type]
        dataschema=(Literal[dataschema_uri(cls)], ...),  # type: ignore[arg-type]
        data=(cls, ...),
    )
    return model


_TYPED_ENVELOPES = {event_type: _typed_envelope(cls) for event_type, cls in EVENT_TYPES.items()}
_TYPE_PEEK = re.compile(rb'"type"\s*:\s*"([a-z_]+\.[a-z_]+)"')


def decode(raw: bytes) -> Envelope:
    """Parse topic bytes into an envelope with its typed payload, upcasting older major versions."""
    # Fast path: the type is peeked from the bytes and verified by the typed model, which parses in one pass.
    # Anything else (another version, a peek that was wrong, invalid input) takes the careful path below.
    peeked = _TYPE_PEEK.search(raw, 0, 512)
    typed = _TYPED_ENVELOPES.get(peeked[1].decode()) if peeked else None
    if typed is not None:
        try:
            return typed.model_validate_json(raw)
        except ValidationError:
            pass
    try:
        document = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidEvent(f"not JSON: {exc.msg}") from exc
    if not isinstance(document, dict):
        raise InvalidEvent("not a JSON object")
    event_type = document.get("type")
    if not isinstance(event_type, str) or event_type not in EVENT_TYPES:
        shown = event_type[:60] if isinstance(event_type, str) and event_type.isprintable() else "?"
        raise InvalidEvent(f"unknown event type {shown!r}")
    model = EVENT_TYPES[event_type]
    data = document.get("data")
    major = _major_version(document.get("dataschema"))
    if major != model.major_version:
        upcaster = UPCASTERS.get((event_type, major))
        if upcaster is None or not isinstance(data, dict):
            raise InvalidEvent(f"no upcaster for {event_type} v{major}")
        data = upcaster(data)
    try:
        payload = model.model_validate(data)
        return Envelope.model_validate({**document, "dataschema": dataschema_uri(model), "data": payload})
    except ValidationError as exc:
        where = "; ".join(".".join(str(p) for p in e["loc"]) + ": " + _message(e) for e in exc.errors())
        raise InvalidEvent(f"invalid {event_type}: {where}") from None


def _message(error: Any) -> str:
    """A pydantic error message that never repeats the input value."""
    if error["type"] in ("union_tag_invalid", "union_tag_not_found"):
        return f"unknown or missing {error.get('ctx', {}).get('discriminator', 'tag')}"
    return str(error["msg"])


def _major_version(dataschema: object) -> int:
    if not isinstance(dataschema, str) or ":v" not in dataschema:
        raise InvalidEvent("dataschema without a major version")
    try:
        return int(dataschema.rsplit(":v", 1)[1])
    except ValueError as exc:
        raise InvalidEvent(f"bad dataschema {dataschema!r}") from exc

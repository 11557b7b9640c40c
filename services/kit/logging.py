"""structlog JSON logging with a correlation id, the current trace and span ids, and masking of anything shaped like
a personnummer."""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Mapping, MutableMapping
from typing import Any

import orjson
import structlog
from opentelemetry import trace

# 10 or 12 digits, optionally with - or + before the last four: the shapes a personnummer is written in. Not the
# organisation number of an HSA-id (SE2321000016-15CQ), nor groups of a UUID (12345678-1234-4..., ...-123456789012).
_PERSONNUMMER_SHAPE = re.compile(
    r"(?<![0-9])(?<!SE)(?<![0-9A-Fa-f]{4}-)(?:\d{2})?\d{6}[-+]?\d{4}(?![0-9]|-[0-9A-Fa-f])"
)
MASK = "[personnummer]"
# Hex identifiers we log (citizen refs, trace and span ids): 16 or more hex characters, at least one a letter. Digit
# runs inside them are not numbers anyone wrote, and masking them would make the identifiers unsearchable.
_HEX_IDENTIFIER = re.compile(r"(?<![0-9A-Za-z])((?=[0-9A-Fa-f]*[A-Fa-f])[0-9A-Fa-f]{16,})(?![0-9A-Za-z])")


def mask_personnummer(text: str) -> str:
    """Replace every personnummer-shaped run of digits in `text` (outside hex identifiers)."""
    parts = _HEX_IDENTIFIER.split(text)  # text, identifier, text, identifier, ..., text
    return "".join(part if i % 2 else _PERSONNUMMER_SHAPE.sub(MASK, part) for i, part in enumerate(parts))


def _mask(value: Any) -> Any:
    if isinstance(value, str):
        return mask_personnummer(value)
    if isinstance(value, BaseException):
        return mask_personnummer(f"{type(value).__name__}: {value}")
    if isinstance(value, Mapping):
        return {k: _mask(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_mask(v) for v in value]
    return value


def mask_processor(_logger: Any, _name: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """structlog processor: mask personnummer shapes in every value, exceptions included."""
    return {key: _mask(value) for key, value in event_dict.items()}


def trace_processor(_logger: Any, _name: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """structlog processor: the trace and span ids of the current span (a hop, see services/kit/tracing.py)."""
    context = trace.get_current_span().get_span_context()
    if context.is_valid:
        event_dict["trace_id"] = f"{context.trace_id:032x}"
        event_dict["span_id"] = f"{context.span_id:016x}"
    return event_dict


def _render_json(_logger: Any, _name: str, event_dict: MutableMapping[str, Any]) -> str:
    return orjson.dumps(event_dict, default=str).decode()


def configure_logging(service: str, level: str = "INFO", json: bool = True) -> None:
    """Route structlog and the standard library (uvicorn, aiokafka) through one masked renderer."""
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        trace_processor,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
        mask_processor,
    ]
    renderer: Any = _render_json if json else structlog.dev.ConsoleRenderer(colors=False)
    structlog.configure(
        # filter_by_level first: an event below the level is dropped before the processors (timestamp, masking)
        # run on it, instead of being rendered and then discarded by the standard library's handler.
        processors=[structlog.stdlib.filter_by_level, *shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        # Not cached: a logger cached on first use keeps the processors of the configuration it first saw, so a
        # later configuration (a service started again in the same process, a test capturing logs) would never
        # reach it. The lazy proxy costs a microsecond or two per call, on lines logged per batch, not per event.
        cache_logger_on_first_use=False,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("aiokafka", "kafka"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
    structlog.contextvars.bind_contextvars(service=service)

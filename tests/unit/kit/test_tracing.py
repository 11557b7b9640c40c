"""Trace context: each hop keeps the caller's trace and gets its own span."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from services.kit.tracing import child_traceparent, current_traceparent, hop, trace_id

PARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def test_a_child_keeps_the_trace_and_the_flags_and_gets_a_new_span() -> None:
    child = child_traceparent(PARENT)
    version, trace, span, flags = child.split("-")
    assert (version, trace, flags) == ("00", "0af7651916cd43dd8448eb211c80319c", "01")
    assert span != "b7ad6b7169203331"
    assert len(span) == 16
    assert child_traceparent(PARENT) != child  # every hop is its own span


def test_unsampled_parents_stay_unsampled() -> None:
    assert child_traceparent(PARENT[:-2] + "00").endswith("-00")


@given(st.one_of(st.none(), st.text(max_size=60)))
def test_anything_else_starts_a_new_well_formed_trace(garbage: str | None) -> None:
    child = child_traceparent(garbage)
    assert trace_id(child) is not None
    if trace_id(garbage) is None:
        assert trace_id(child) != trace_id(PARENT)


def test_all_zero_ids_are_not_a_parent() -> None:
    assert trace_id("00-00000000000000000000000000000000-b7ad6b7169203331-01") is None
    assert trace_id("00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01") is None


def test_a_hop_is_the_current_span_only_inside_it() -> None:
    assert current_traceparent() is None
    with hop(PARENT) as mine:
        assert current_traceparent() == mine
        assert trace_id(mine) == trace_id(PARENT)
    assert current_traceparent() is None


@given(
    st.one_of(st.none(), st.text(max_size=60), st.from_regex(r"\A[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}\Z"))
)
def test_headers_are_read_as_opentelemetrys_propagator_reads_them(header: str | None) -> None:
    from opentelemetry import trace as otel_trace
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    theirs = otel_trace.get_current_span(
        TraceContextTextMapPropagator().extract({"traceparent": header} if header else {})
    ).get_span_context()
    assert trace_id(header) == (f"{theirs.trace_id:032x}" if theirs.is_valid else None)

"""Masking of personnummer in log output (services.kit.logging)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
import structlog

from services.kit.logging import MASK, configure_logging, mask_personnummer, mask_processor


@pytest.mark.parametrize(
    "value",
    ["191212121212", "19121212-1212", "1212121212", "121212-1212", "121212+1212", "19850372-2384", "850372+2384"],
)
def test_personnummer_shapes_are_masked(value: str) -> None:
    assert mask_personnummer(value) == MASK


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("patient 19121212-1212 saknas", f"patient {MASK} saknas"),
        ("pnr=191212121212,", f"pnr={MASK},"),
        ("(121212+1212)", f"({MASK})"),
        ("a191212121212b", f"a{MASK}b"),
        ("191212121212 and 850372-2384", f"{MASK} and {MASK}"),
        ("line1\n121212-1212\nline3", f"line1\n{MASK}\nline3"),
    ],
)
def test_personnummer_inside_text_is_masked(text: str, expected: str) -> None:
    assert mask_personnummer(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "6f1c2d3e-4b5a-4c6d-8e7f-9a0b1c2d3e4f",
        "b76bbb8a-47ec-4bfc-ac1d-7eac21a8e02c",
        "2026-11-25T20:56:17.123456+00:00",
        "2026-11-25T20:56:17Z",
        "20261125T205617Z",
        "2026-11-25",
        "offset 12345",
        "12345678",
        "12345678901",  # 11 digits
        "1234567890123",  # 13 digits
        "12345678901234567890",
        "121212-12123",
        "08-587 010 00",
        "",
    ],
)
def test_other_numbers_are_left_alone(text: str) -> None:
    assert mask_personnummer(text) == text


@pytest.mark.parametrize("text", ["6f1c2d3e-4b5a-4c6d-8e7f-123456789012", "12345678-1234-4234-8234-a23456789abc"])
def test_uuid_with_decimal_groups_is_left_alone(text: str) -> None:
    assert mask_personnummer(text) == text


def test_hsa_id_is_left_alone() -> None:
    assert mask_personnummer("care_unit=SE2321000016-15CQ") == "care_unit=SE2321000016-15CQ"


def test_mask_processor_masks_nested_values() -> None:
    event = {
        "event": "intake.rejected 19121212-1212",
        "patient": {"personnummer": "191212121212", "names": ["Anna", "121212+1212"]},
        "pair": ("x", "121212-1212"),
        "count": 3,
        "ok": True,
        "missing": None,
    }

    masked = mask_processor(None, "info", event)

    assert masked == {
        "event": f"intake.rejected {MASK}",
        "patient": {"personnummer": MASK, "names": ["Anna", MASK]},
        "pair": ["x", MASK],
        "count": 3,
        "ok": True,
        "missing": None,
    }
    assert event["patient"] == {"personnummer": "191212121212", "names": ["Anna", "121212+1212"]}  # not mutated


# --- the configured pipeline ---------------------------------------------------------------------------------


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """configure_logging changes process-wide state: put it back so other tests are unaffected."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    noisy = {name: logging.getLogger(name).level for name in ("aiokafka", "kafka")}
    try:
        yield
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
        for name, old in noisy.items():
            logging.getLogger(name).setLevel(old)
        structlog.reset_defaults()
        structlog.contextvars.clear_contextvars()


def json_lines(err: str) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in err.splitlines() if line.strip()]


@pytest.mark.usefixtures("restore_logging")
def test_structlog_values_and_exceptions_are_masked(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("unit-test")
    log = structlog.get_logger("unit")

    log.info("citizen.lookup", personnummer="19121212-1212", nested={"ids": ["191212121212"]})
    try:
        raise ValueError("no such patient 121212+1212")
    except ValueError:
        log.exception("citizen.lookup.failed")

    err = capsys.readouterr().err
    lines = json_lines(err)
    assert "1212121212" not in err.replace("-", "").replace("+", "")
    assert lines[0]["personnummer"] == MASK
    assert lines[0]["nested"] == {"ids": [MASK]}
    assert lines[0]["event"] == "citizen.lookup"
    assert lines[0]["service"] == "unit-test"
    assert lines[1]["level"] == "error"
    assert f"ValueError: no such patient {MASK}" in lines[1]["exception"]


@pytest.mark.usefixtures("restore_logging")
def test_standard_library_records_are_masked(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("unit-test")
    std = logging.getLogger("unit.stdlib")

    std.warning("lookup of %s failed", "191212121212")
    try:
        raise KeyError("19121212-1212")
    except KeyError:
        std.exception("boom")

    err = capsys.readouterr().err
    lines = json_lines(err)
    assert lines[0]["event"] == f"lookup of {MASK} failed"
    assert MASK in lines[1]["exception"]
    assert "1212121212" not in err.replace("-", "")


@pytest.mark.usefixtures("restore_logging")
def test_console_renderer_is_masked_too(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("unit-test", level="debug", json=False)

    structlog.get_logger("unit").debug("citizen.seen", personnummer="191212121212")

    err = capsys.readouterr().err
    assert "citizen.seen" in err
    assert MASK in err
    assert "191212121212" not in err


@pytest.mark.usefixtures("restore_logging")
def test_level_filters_records(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("unit-test", level="warning")

    structlog.get_logger("unit").info("not.shown")
    structlog.get_logger("unit").warning("shown")

    assert [line["event"] for line in json_lines(capsys.readouterr().err)] == ["shown"]


@pytest.mark.usefixtures("restore_logging")
def test_exception_object_as_a_value_is_masked(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("unit-test")

    structlog.get_logger("unit").warning("citizen.lookup.failed", error=ValueError("no patient 191212121212"))

    assert "191212121212" not in capsys.readouterr().err


def test_digit_runs_inside_hex_identifiers_are_left_alone() -> None:
    trace = "1d0ff198505121234c27e0123456789ab"
    ref = "ab" + "1985051212" + "cd" * 26
    assert mask_personnummer(f"trace_id={trace} citizen_ref={ref}") == f"trace_id={trace} citizen_ref={ref}"
    assert mask_personnummer("pnr 198505121234, 8505121234 och 850512-1234") == (
        "pnr [personnummer], [personnummer] och [personnummer]"
    )

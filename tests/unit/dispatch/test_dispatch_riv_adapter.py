"""Dispatch's RIV-TA adapter to Försäkringskassan without a network: how each answer is classified for the ledger,
and the round trip RIV-TA in (intake) → our model → the event on the topic → dispatch's copy → RIV-TA out to FK,
equal field by field (the time it is sent to Försäkringskassan is the one field that is new)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import pytest
from lxml import etree

from schemas.certificate import County
from schemas.envelope import decode, encode, new_envelope
from schemas.events import CertificateReleased
from schemas.riv import client, soap, xml
from schemas.riv import namespaces as ns
from schemas.riv.mapping import to_certificate, utc_to_swedish_time
from schemas.riv.receiver import answer
from schemas.riv.transport import Intyg, Result
from schemas.riv.wsdl import REGISTER_CERTIFICATE
from services.dispatch.adapters import Delivered, Failed, FkRivAdapter, Rejected, SendAnswer, classify
from services.dispatch.domain import Recipient
from tests.harness.riv import lisjp

SENT = datetime(2026, 12, 3, 16, 45, 10, tzinfo=UTC)


@pytest.mark.parametrize(
    ("result", "expected"),
    [
        (Result("OK"), Delivered(None)),
        (Result("INFO", None, "Intyget är redan registrerat"), Delivered(None)),  # already there: never resent
        (Result("ERROR", "TECHNICAL_ERROR", "Tekniskt fel"), Failed("ERROR/TECHNICAL_ERROR Tekniskt fel", False)),
        (Result("ERROR", "VALIDATION_ERROR", "fel"), Rejected("ERROR/VALIDATION_ERROR fel")),
        (Result("ERROR", "APPLICATION_ERROR", "okänt"), Rejected("ERROR/APPLICATION_ERROR okänt")),
        (Result("ERROR", "REVOKED"), Rejected("ERROR/REVOKED")),
        (Result(client.FAULT, "HTTP 503", "nere"), Failed("HTTP 503 nere", maybe_delivered=False)),
        (Result(client.FAULT, "HTTP 429", "för många"), Failed("HTTP 429 för många", maybe_delivered=False)),
        (Result(client.FAULT, "HTTP 500", "x"), Failed("HTTP 500 x", maybe_delivered=True)),
        (Result(client.FAULT, "HTTP 504", "timeout"), Failed("HTTP 504 timeout", maybe_delivered=True)),
        (Result(client.FAULT, "HTTP 403", "cert"), Failed("HTTP 403 cert", maybe_delivered=False)),
        (Result(client.FAULT, "HTTP 400", "kontraktet"), Rejected("HTTP 400 kontraktet")),
        (Result(client.FAULT, "HTTP 200", "no result in the answer"), Rejected("HTTP 200 no result in the answer")),
    ],
)
def test_each_answer_is_classified_as_the_json_adapters_are(result: Result, expected: SendAnswer) -> None:
    assert classify(result) == expected


def test_a_personnummer_in_the_receivers_text_is_masked() -> None:
    quoted = Result(client.FAULT, "HTTP 400", "line 9: The value '191212121212' is not accepted by the pattern")
    answer = classify(quoted)
    assert isinstance(answer, Rejected)
    assert "191212121212" not in answer.detail


def test_an_answer_is_read_from_a_response_a_fault_or_anything_else() -> None:
    info = Result("INFO", None, "Intyget är redan registrerat")
    assert client.read_answer(200, answer(REGISTER_CERTIFICATE, info)) == info
    fault = client.read_answer(400, soap.fault("Client", "LogicalAddress X tjänas inte här"))
    assert fault == Result(client.FAULT, "HTTP 400", "LogicalAddress X tjänas inte här")
    assert isinstance(classify(client.read_answer(502, b"<html>Bad gateway")), Failed)


def _adapter() -> FkRivAdapter:
    recipient = Recipient("FKASSA", "Försäkringskassan", True, frozenset({"LISJP"}), "https://fk", "fk-riv", True, 4)
    return FkRivAdapter(recipient, logical_address="FKASSA", timeout=1, max_connections=1, ssl_context=None,
                        clock=lambda: SENT)  # fmt: skip


def _through_the_topic(intyg: Intyg) -> str:
    """Intake's mapping, the release event on the topic and back: the copy dispatch keeps."""
    certificate = to_certificate(intyg, County.STOCKHOLM)
    event = CertificateReleased(
        citizen_ref="a" * 64, certificate=certificate, test_patient=False, released_at=datetime.now(UTC)
    )
    envelope = new_envelope(event, source="consent", time=datetime.now(UTC), correlation_id="c", subject=certificate.id)
    data = decode(encode(envelope)).data
    assert isinstance(data, CertificateReleased)
    return data.certificate.model_dump_json()


def test_a_round_trip_from_the_platform_to_forsakringskassan_keeps_every_field() -> None:
    original = lisjp()
    out = _adapter().intyg(_through_the_topic(original))
    # What cannot be equal: skickatTidpunkt is when Mina intyg sends it to Försäkringskassan, not when the journal
    # system sent it to the platform.
    assert out.skickat_tidpunkt == utc_to_swedish_time(SENT)
    for field in dataclasses.fields(Intyg):
        if field.name in ("skickat_tidpunkt", "svar"):
            continue
        assert getattr(out, field.name) == getattr(original, field.name), field.name
    assert [s.id for s in out.svar] == [s.id for s in original.svar]
    for sent, received in zip(out.svar, original.svar, strict=True):
        assert sent == received, f"svar {received.id}"
    # And on the wire: the RegisterCertificate v3 message dispatch sends reads back as the same Intyg, to FKASSA.
    message = client.register_message(out, "FKASSA")
    request = soap.open_envelope(xml.parse(message))
    assert request.logical_address == "FKASSA"
    xml.check(request.payload, "RegisterCertificateResponder_3.xsd")
    found = request.payload.find(f"{{{ns.REGISTER}}}intyg")
    assert found is not None
    assert xml.read_intyg(found) == out
    assert etree.QName(request.payload).localname == "RegisterCertificate"

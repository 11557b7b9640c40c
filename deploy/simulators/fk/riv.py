"""Försäkringskassan's RIV-TA endpoints, as dispatch reaches them: RegisterCertificate v3 and RevokeCertificate v2
over mutual TLS (Mina intyg's function certificate), to the logical address FKSIM_RIV_LOGICAL_ADDRESS. Strict as the
real receiver: a message that is not the contract, or not to this address, is a SOAP Fault (HTTP 400, never a 5xx);
a certificate breaking the published LISJP rules, or of a type Försäkringskassan does not take, is
ERROR/VALIDATION_ERROR. The same certificate again is INFO and no second receipt; another patient under its id is
ERROR/VALIDATION_ERROR. A revocation of a certificate never received is ERROR/APPLICATION_ERROR, a second one INFO.

Receipts are those of the JSON API (one per certificate id, the XML as received in the body), so
/v1/intyg/{id}/receipts, /v1/received and /sim/stats show them; the faults of /sim/faults act here too.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import orjson
import structlog
from fastapi import Request, Response
from lxml import etree

from deploy.simulators.fk import store
from deploy.simulators.fk.bootstrap import FkSim
from schemas.certificate_types import CERTIFICATE_TYPES
from schemas.riv import namespaces as ns
from schemas.riv import receiver, xml
from schemas.riv.receiver import Refused
from schemas.riv.rules import check as published_rules
from schemas.riv.transport import Intyg, Result
from schemas.riv.wsdl import REGISTER_CERTIFICATE, REVOKE_CERTIFICATE, Interaction
from services.kit import riv as rivhttp
from services.kit.service import app_state
from services.kit.swedish import swedish_date

log = structlog.get_logger(__name__)
_T = TypeVar("_T")


# The types whose main recipient is Försäkringskassan: LISJP, FK7263, LUSE, LUAE_NA, LUAE_FS.
FK_TYPES: frozenset[str] = frozenset(code for code, t in CERTIFICATE_TYPES.items() if t.main_recipient == "FKASSA")
INTERACTIONS = {REGISTER_CERTIFICATE.path: REGISTER_CERTIFICATE, REVOKE_CERTIFICATE.path: REVOKE_CERTIFICATE}


_fault = rivhttp.fault
_answer = rivhttp.answer


async def _open(
    request: Request, sim: FkSim, interaction: Interaction, read: Callable[[etree._Element], _T]
) -> tuple[str, bytes, _T]:
    """The sender, the body and what `read` makes of the payload; Refused (logged, no personal data) otherwise."""
    try:
        sender = rivhttp.caller(
            request,
            sim.settings.riv_senders,
            whose="avsändarens",
            unknown="klientcertifikatet tillhör ingen känd avsändare",
        )
        body = await request.body()
        payload = receiver.open_request(body, interaction, sim.settings.riv_logical_address, "Försäkringskassan")
        try:
            return sender, body, read(payload)
        except Exception as exc:  # the schema held but the content cannot be read: still the sender's message
            raise Refused(400, f"meddelandet kan inte läsas ({type(exc).__name__})") from None
    except Refused as exc:
        log.info("fksim.riv.refused", interaction=interaction.name, status=exc.status)
        raise


def _intyg(payload: etree._Element) -> Intyg:
    found = payload.find(f"{{{ns.REGISTER}}}intyg")
    if found is None:
        raise ValueError("no intyg")
    return xml.read_intyg(found)


async def register_certificate(request: Request) -> Response:
    sim = app_state(request.app, FkSim)
    try:
        sender, body, intyg = await _open(request, sim, REGISTER_CERTIFICATE, _intyg)
    except Refused as exc:
        return _fault(exc)
    certificate_id = intyg.intygs_id.extension
    kind = intyg.typ.code.strip()
    if kind not in FK_TYPES:
        return _answer(
            REGISTER_CERTIFICATE,
            receiver.validation_error([f"typ: Försäkringskassan tar inte emot {kind} ({', '.join(sorted(FK_TYPES))})"]),
        )
    try:
        violations = published_rules(intyg, swedish_date(sim.clock()))
    except Exception as exc:  # a certificate the rules cannot even be applied to is not valid
        log.warning("fksim.riv.rules_failed", certificate_id=certificate_id, error=type(exc).__name__)
        return _answer(REGISTER_CERTIFICATE, receiver.validation_error(["reglerna kunde inte prövas på intyget"]))
    if violations:
        log.info("fksim.riv.invalid", certificate_id=certificate_id, rules=[v.rule for v in violations])
        return _answer(REGISTER_CERTIFICATE, receiver.validation_error([f"{v.rule}: {v.message}" for v in violations]))
    document = {
        "riv": {
            "interaction": f"{REGISTER_CERTIFICATE.name}/{REGISTER_CERTIFICATE.version}",
            "person_id": intyg.patient.person_id.extension,
            "xml": body.decode("utf-8", "replace"),
        }
    }
    try:
        outcome, _receipt = await store.receive_riv(
            sim.pool, certificate_id=certificate_id, certificate_type=kind,
            person_id=intyg.patient.person_id.extension, sender=sender, caller=sender,
            body=orjson.dumps(document).decode(), now=sim.clock(),
        )  # fmt: skip
    except Exception as exc:
        log.exception("fksim.riv.technical_error", error=type(exc).__name__, certificate_id=certificate_id)
        return _answer(REGISTER_CERTIFICATE, receiver.technical_error())
    log.info("fksim.riv.registered", certificate_id=certificate_id, sender=sender, outcome=outcome.value)
    if outcome is store.RivOutcome.ALREADY_RECEIVED:
        return _answer(REGISTER_CERTIFICATE, Result("INFO", None, "Intyget är redan registrerat"))
    if outcome is store.RivOutcome.OTHER_PATIENT:
        return _answer(
            REGISTER_CERTIFICATE,
            Result("ERROR", "VALIDATION_ERROR", "Ett intyg med samma intygs-id är registrerat för en annan patient"),
        )
    return _answer(REGISTER_CERTIFICATE, Result("OK"))


async def revoke(request: Request) -> Response:
    sim = app_state(request.app, FkSim)
    try:
        sender, _body, revocation = await _open(request, sim, REVOKE_CERTIFICATE, xml.read_revocation)
    except Refused as exc:
        return _fault(exc)
    certificate_id = revocation.intygs_id.extension
    try:
        patient = await store.riv_patient(sim.pool, certificate_id)
        if patient is not None and patient != revocation.person_id.extension:
            return _answer(
                REVOKE_CERTIFICATE, Result("ERROR", "VALIDATION_ERROR", "Intyget är registrerat för en annan patient")
            )
        outcome, _stored = await store.revoke(
            sim.pool, idempotency_key=store.riv_revocation_key(certificate_id), certificate_id=certificate_id,
            sender=sender, caller=sender, reason=revocation.meddelande or None,
            now=sim.clock(),
        )  # fmt: skip
    except Exception as exc:
        log.exception("fksim.riv.technical_error", error=type(exc).__name__, certificate_id=certificate_id)
        return _answer(REVOKE_CERTIFICATE, receiver.technical_error())
    log.info("fksim.riv.revoked", certificate_id=certificate_id, sender=sender, outcome=outcome.value)
    if outcome is store.RevokeOutcome.UNKNOWN_CERTIFICATE:
        return _answer(
            REVOKE_CERTIFICATE,
            Result("ERROR", "APPLICATION_ERROR", f"Intyget {certificate_id} är inte mottaget av Försäkringskassan"),
        )
    if outcome is store.RevokeOutcome.ALREADY_REVOKED:
        return _answer(REVOKE_CERTIFICATE, Result("INFO", None, "Intyget är redan återkallat"))
    return _answer(REVOKE_CERTIFICATE, Result("OK"))


def technical_error(path: str) -> bytes | None:
    """An injected error's answer on a RIV-TA endpoint (ERROR/TECHNICAL_ERROR), None for any other path."""
    interaction = INTERACTIONS.get(path)
    return None if interaction is None else receiver.answer(interaction, receiver.technical_error())


ROUTES = rivhttp.routes((REGISTER_CERTIFICATE, register_certificate), (REVOKE_CERTIFICATE, revoke))

"""The JSON API under /api/v1/: the same data and actions as the pages, with the same session. State changes
need the session's CSRF token in the X-CSRF-Token header (GET /api/v1/me gives it)."""

from __future__ import annotations

from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse, Response
from pydantic import Field

from schemas.base import Frozen
from services.kit.text import Line, Message
from services.portal.deps import (
    CertId,
    Changing,
    ChangingWithoutConsent,
    Consented,
    ConsentedList,
    CorrelationId,
    ExtractAllowance,
    HandlersDep,
    LoggedIn,
    PdfAllowance,
    SettingsDep,
)
from services.portal.domain import FKASSA, RECIPIENT_NAMES
from services.portal.handlers import SendRefused
from services.portal.responses import pdf_response
from services.portal.views import filter_items

ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "Not logged in (or the session timed out)"},
    403: {"description": "No consent, or a state change without the CSRF token / from another site"},
    404: {"description": "No such certificate among the citizen's own"},
}
router = APIRouter(prefix="/api/v1", tags=["citizen"], responses=ERRORS)
LIMITED: dict[int | str, dict[str, Any]] = {
    429: {"description": "Over the citizen's limit (PORTAL_PDF_RATE_LIMIT, PORTAL_PDF_IN_FLIGHT, "
          "PORTAL_EXTRACT_RATE_LIMIT); see Retry-After"},
}  # fmt: skip


class Me(Frozen):
    given_name: str
    family_name: str
    consent_given: bool
    csrf_token: str = Field(description="Send as X-CSRF-Token on every POST")
    idle_timeout_seconds: int


class CareUnitRef(Frozen):
    hsa_id: str
    name: str


class CertificateSummary(Frozen):
    id: str
    type: str
    type_name: str
    signed_at: str
    care_unit: CareUnitRef
    issuer_name: str
    archived: bool
    replaced: bool
    send_state: str | None
    badges: list[str]


class SendRequest(Frozen):
    recipient_id: Literal["FKASSA"] = "FKASSA"
    idempotency_key: UUID = Field(description="From GET .../dispatch-preview; the same key never sends twice")


class SendResult(Frozen):
    outcome: Literal["requested", "duplicate"]


class CitizenRequest(Frozen):
    kind: Literal["RECTIFICATION", "BLOCKING"]
    message: Annotated[Message, Field(min_length=1, max_length=2000)]
    certificate_id: Annotated[Line, Field(max_length=64)] | None = None


@router.get("/me", response_model=Me, summary="The logged-in citizen and the CSRF token")
async def me(session: LoggedIn, settings: SettingsDep) -> Me:
    return Me(
        given_name=session.given_name,
        family_name=session.family_name,
        consent_given=session.consent_given,
        csrf_token=session.csrf_token,
        idle_timeout_seconds=settings.session_idle_seconds,
    )


@router.get("/consent", summary="The citizen's consent and its history")
async def get_consent(session: LoggedIn, handlers: HandlersDep) -> dict[str, Any]:
    return await handlers.consent(session)


@router.post("/consent", summary="Give consent ('Jag ger mitt samtycke')")
async def give_consent(session: ChangingWithoutConsent, handlers: HandlersDep) -> dict[str, Any]:
    return await handlers.give_consent(session)


@router.post("/consent/withdrawal", summary="Withdraw consent: the citizen's data leaves the service")
async def withdraw_consent(session: Changing, handlers: HandlersDep) -> dict[str, str]:
    await handlers.withdraw_consent(session)
    return {"outcome": "withdrawn"}


@router.get("/certificates", response_model=list[CertificateSummary], summary="The citizen's certificates")
async def list_certificates(
    session_and_list: ConsentedList,
    archived: bool = False,
    year: Annotated[int | None, Query(ge=1900, le=2999)] = None,
    type: Annotated[str | None, Query(max_length=16)] = None,
    care_unit: Annotated[str | None, Query(max_length=31)] = None,
    status: Annotated[Literal["nytt", "skickat", "ej-skickat", "ersatt"] | None, Query()] = None,
) -> list[dict[str, Any]]:
    _session, listed = session_and_list
    items = [i for i in listed if i.archived == archived]
    shown = filter_items(items, year=year, cert_type=type, care_unit=care_unit, status=status)
    return [i.as_json() for i in shown]


@router.get("/certificates/{certificate_id}", summary="One certificate with Swedish labels, history and sends")
async def get_certificate(certificate_id: CertId, session: Consented, handlers: HandlersDep) -> dict[str, Any]:
    view = await handlers.certificate(session, certificate_id)
    return view.as_json()


@router.get(
    "/certificates/{certificate_id}/pdf",
    dependencies=[PdfAllowance],
    summary="The certificate as PDF (print, or save with save=true)",
    responses={200: {"content": {"application/pdf": {}}}, **LIMITED},
)
async def get_pdf(certificate_id: CertId, session: Consented, handlers: HandlersDep, save: bool = False) -> Response:
    data, filename = await handlers.pdf(session, certificate_id, save=save)
    return pdf_response(data, filename, save=save)


@router.get("/certificates/{certificate_id}/employer-copy", summary="Preview of the employer copy")
async def employer_preview(
    certificate_id: CertId,
    session: Consented,
    handlers: HandlersDep,
    include: Annotated[list[str] | None, Query()] = None,
) -> dict[str, Any]:
    view = await handlers.certificate(session, certificate_id, action="employer_copy_preview")
    sections, left_out = handlers.employer_preview(view, include or [])
    return {
        "optional_fields": [f for f, _ in view.employer_fields],
        "customised": left_out,
        "sections": [{"title": s.title, "rows": [r.__dict__ for r in s.rows]} for s in sections],
    }


@router.get(
    "/certificates/{certificate_id}/employer-copy/pdf",
    dependencies=[PdfAllowance],
    summary="The employer copy as PDF (optional fields only when listed in include)",
    responses={200: {"content": {"application/pdf": {}}}, **LIMITED},
)
async def employer_pdf(
    certificate_id: CertId,
    session: Consented,
    handlers: HandlersDep,
    include: Annotated[list[str] | None, Query()] = None,
    save: bool = False,
) -> Response:
    data, filename = await handlers.employer_pdf(session, certificate_id, include or [], save=save)
    return pdf_response(data, filename, save=save)


@router.get("/certificates/{certificate_id}/dispatch-preview", summary="What is sent, and the key to send it with")
async def dispatch_preview(certificate_id: CertId, session: Consented, handlers: HandlersDep) -> dict[str, Any]:
    view = await handlers.certificate(session, certificate_id, action="send_preview")
    return {
        "recipient": {"id": FKASSA, "name": RECIPIENT_NAMES[FKASSA]},
        "may_send": view.may_send,
        "idempotency_key": str(handlers.new_idempotency_key()),
        "sections": view.as_json()["sections"],
    }


@router.post(
    "/certificates/{certificate_id}/dispatches",
    response_model=SendResult,
    summary="Send to a recipient (once per idempotency key)",
    responses={409: {"description": "Already sent, on its way, replaced, or a type the recipient does not take"}},
)
async def send(
    certificate_id: CertId,
    body: SendRequest,
    session: Changing,
    handlers: HandlersDep,
    correlation_id: CorrelationId,
) -> Any:
    try:
        outcome = await handlers.send(session, certificate_id, body.recipient_id, body.idempotency_key, correlation_id)
    except SendRefused:
        return JSONResponse({"detail": "intyget kan inte skickas: redan skickat, på väg, ersatt eller fel typ"}, 409)
    return SendResult(outcome=outcome)  # type: ignore[arg-type]


@router.post("/certificates/{certificate_id}/archive", summary="Archive")
async def archive(certificate_id: CertId, session: Changing, handlers: HandlersDep) -> dict[str, bool]:
    await handlers.set_archived(session, certificate_id, True)
    return {"archived": True}


@router.post("/certificates/{certificate_id}/restore", summary="Restore from the archive")
async def restore(certificate_id: CertId, session: Changing, handlers: HandlersDep) -> dict[str, bool]:
    await handlers.set_archived(session, certificate_id, False)
    return {"archived": False}


@router.get("/access-log", summary="Every access to the citizen's certificates")
async def access_log(session: Consented, handlers: HandlersDep) -> list[dict[str, Any]]:
    return await handlers.access_log(session)


@router.get("/extract", summary="Everything held about the citizen (register extract)", dependencies=[ExtractAllowance])
async def extract(session: Consented, handlers: HandlersDep) -> dict[str, Any]:
    return await handlers.extract(session)


@router.post("/requests", summary="Request rectification or blocking (spärr)")
async def citizen_request(body: CitizenRequest, session: Changing, handlers: HandlersDep) -> dict[str, Any]:
    request_id = await handlers.add_request(session, body.kind, body.certificate_id, body.message)
    return {"id": request_id, "status": "mottagen"}

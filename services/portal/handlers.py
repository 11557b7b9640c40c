"""The portal's use cases, shared by the pages and the JSON API: everything a citizen's request changes (login and
logout, consent, withdrawal, send, archive and restore, rectification and blocking requests) and every read that
is written to the access log. Another citizen's certificate id is answered as unknown. Routers call these and
nothing below them."""

from __future__ import annotations

import asyncio
import functools
import secrets
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, TypeVar
from uuid import UUID, uuid4

import structlog
from prometheus_client import Counter

from schemas.certificate import CERTIFICATE_ADAPTER, Certificate
from schemas.certificate_types import CERTIFICATE_TYPES
from schemas.envelope import new_envelope
from schemas.events import DispatchRequested
from schemas.topics import PORTAL_DISPATCH_REQUESTS
from services.kit.citizen import citizen_ref
from services.kit.db import Connection, Pool
from services.kit.outbox import add_to_outbox
from services.kit.swedish import ACCESS_ACTIONS, OUTCOMES, fmt_time, swedish_date, word
from services.kit.withdrawals import record_withdrawal
from services.portal import repo
from services.portal.consent_api import ConsentApi
from services.portal.domain import FKASSA, RECIPIENT_NAMES, employer_copy, employer_optional_fields, may_send
from services.portal.oidc import LoginRefused, OidcClient, refusal_page
from services.portal.pdf import certificate_pdf, extract_pdf
from services.portal.security import Session, new_token, session_window, token_hash
from services.portal.settings import PortalSettings
from services.portal.views import (
    FIELD_LABELS,
    ListItem,
    Section,
    actor_text,
    content_of,
    content_sections,
    dispatch_views,
    header_sections,
    history_rows,
    list_item,
    send_status,
    type_name,
)

log = structlog.get_logger(__name__)
Clock = Callable[[], datetime]
_T = TypeVar("_T")
SOURCE = "minaintyg/portal"
FOREIGN_ACCESS = Counter(
    "portal_foreign_certificate_access_total", "Attempts to reach a certificate that is not the citizen's own"
)


class NotFound(Exception):
    """Unknown, or another citizen's (indistinguishable to the caller)."""


class SendRefused(Exception):
    """Sending is not offered for this certificate (replaced, already sent, or a type the recipient does not take)."""


class LoginFailed(Exception):
    """A login that cannot go on; the citizen reads `title` and `message` (Swedish) on a page with `status`."""

    def __init__(self, title: str, message: str, status: int = 403) -> None:
        super().__init__(title)
        self.title = title
        self.message = message
        self.status = status


def login_refused(exc: LoginRefused) -> LoginFailed:
    """A refused login: its own log event per kind of failure (no personnummer), Swedish text for the citizen."""
    page = refusal_page(exc)
    log.warning(page.event, reason=exc.code, retry=exc.retry)
    return LoginFailed(page.title, exc.message, page.status)


@dataclass(frozen=True)
class LoginStarted:
    url: str  # the identity provider's authorization URL, with state, nonce and the PKCE challenge
    token: str  # the pre-login session's token, for the login cookie


@dataclass(frozen=True)
class LoginCompleted:
    session_token: str  # for the session cookie
    consent_given: bool


@dataclass(frozen=True)
class CertificateView:
    item: ListItem
    document: dict[str, Any]  # as stored (the released certificate's JSON): what the API returns
    certificate: Certificate  # the same, typed: what the sections are made of
    header: list[Section]
    content: list[Section]
    history: list[dict[str, str]]
    dispatches: list[dict[str, Any]]
    may_send: bool
    send_state: str | None
    failure: str | None
    employer_fields: list[tuple[str, str]]
    sent_at: str | None = None  # when it reached Försäkringskassan (Stockholm time), once sent

    def as_json(self) -> dict[str, Any]:
        return {
            **self.item.as_json(),
            "document": self.document,
            "sections": [
                {"title": s.title, "rows": [{"field": r.field, "label": r.label, "value": r.value} for r in s.rows]}
                for s in self.header + self.content
            ],
            "history": self.history,
            "dispatches": self.dispatches,
            "may_send_to": [FKASSA] if self.may_send else [],
            "employer_copy_optional_fields": [f for f, _ in self.employer_fields],
        }


def iso(value: object) -> object:
    return value.isoformat() if isinstance(value, datetime) else value


def session_of(id_hash: bytes, row: repo.SessionRow) -> Session:
    return Session(
        id_hash=id_hash,
        citizen_ref=row.citizen_ref,
        personnummer=row.personnummer,
        given_name=row.given_name,
        family_name=row.family_name,
        csrf_token=row.csrf_token,
        consent_given=row.consent_given,
        last_seen=row.last_seen,
    )


class Handlers:
    """The use cases of one portal process, on the request pool."""

    def __init__(
        self, pool: Pool, settings: PortalSettings, clock: Clock, consent: ConsentApi, oidc: OidcClient
    ) -> None:
        self.pool = pool
        self.settings = settings
        self.clock = clock
        self.consent_api = consent
        self.oidc = oidc
        # PDFs are pure CPU under the GIL: one worker thread makes them one after another, so the first is done
        # after one PDF's time instead of all finishing together after four, and the event loop competes with
        # one thread for the GIL, not four.
        self._pdf_worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="portal-pdf")

    async def _render(self, make: Callable[[], bytes]) -> bytes:
        """Run a PDF build on the PDF worker thread (off the event loop)."""
        return await asyncio.get_running_loop().run_in_executor(self._pdf_worker, make)

    def close(self) -> None:
        """Stop the PDF worker (PDFs not yet started are dropped)."""
        self._pdf_worker.shutdown(wait=False, cancel_futures=True)

    async def log(self, session: Session, certificate_id: str | None, action: str, outcome: str = "ok") -> None:
        await repo.log_access(self.pool, session.citizen_ref, certificate_id, action, outcome, self.clock())

    async def not_found(self, session: Session, certificate_id: str, action: str) -> NotFound:
        """Log a refused attempt; if the id is another citizen's, raise the monitoring event."""
        owner = await repo.owner_of(self.pool, certificate_id)
        await self.log(session, certificate_id[:64], action, "not_found")
        if owner is not None and owner != session.citizen_ref:
            FOREIGN_ACCESS.inc()
            log.warning("portal.access.foreign_certificate", citizen_ref=session.citizen_ref, action=action)
        return NotFound(certificate_id)

    # --- Login and logout -------------------------------------------------------------------------------

    async def start_login(self) -> LoginStarted:
        """Start a login: a pre-login session holds state, nonce and PKCE verifier; the browser goes to the IdP."""
        token, state, nonce, verifier = new_token(), new_token(), new_token(), secrets.token_urlsafe(48)
        try:
            url = await self.oidc.authorization_url(state=state, nonce=nonce, code_verifier=verifier)
        except LoginRefused as exc:
            raise login_refused(exc) from exc
        await repo.create_pre_login(
            self.pool, token_hash(token), csrf=new_token(), state=state, nonce=nonce, verifier=verifier,
            now=self.clock(),
        )  # fmt: skip
        return LoginStarted(url, token)

    async def complete_login(
        self, login_token: str | None, params: Mapping[str, str], previous_session: str | None
    ) -> LoginCompleted:
        """The IdP's answer: check state, trade the code, validate the ID token, start a new session (ending the
        browser's previous one)."""
        pre = (
            await repo.take_pre_login(self.pool, token_hash(login_token))
            if login_token and len(login_token) < 100
            else None
        )
        again = "Försök logga in igen."
        if pre is None or (self.clock() - pre.created_at).total_seconds() > self.settings.pre_login_seconds:
            raise LoginFailed(
                "Inloggningen misslyckades", f"Inloggningen hade gått ut eller kom inte härifrån. {again}", 400
            )
        # As bytes: compare_digest refuses a str with non-ASCII characters (a TypeError, so a 500) - any state may come.
        if not secrets.compare_digest(params.get("state", "").encode(), pre.oidc_state.encode()):
            log.warning("portal.login.refused", reason="state_mismatch")
            raise LoginFailed("Inloggningen misslyckades", f"Inloggningen kunde inte verifieras. {again}", 400)
        if "error" in params or not params.get("code"):
            log.info("portal.login.cancelled", error=params.get("error", "no_code")[:40])
            raise LoginFailed("Inloggningen avbröts", f"Inloggningen avbröts. {again}", 400)
        now = self.clock()
        try:
            await self.oidc.check_response_issuer(params.get("iss"))  # RFC 9207, before the code goes anywhere
            tokens = await self.oidc.exchange(params["code"], pre.code_verifier)
            identity = await self.oidc.identity(
                tokens, pre.oidc_nonce, now=int(now.timestamp()), today=swedish_date(now)
            )
        except LoginRefused as exc:
            raise login_refused(exc) from exc
        ref = citizen_ref(identity.personnummer, self.settings.citizen_ref_key.get_secret_value())
        consent = await self.consent_api.get(ref)
        if previous_session and len(previous_session) < 100:
            await repo.delete_session(self.pool, token_hash(previous_session))  # one browser, one session
        session_token = new_token()
        await repo.create_session(
            self.pool, token_hash(session_token), csrf=new_token(), citizen_ref=ref,
            personnummer=identity.personnummer, given_name=identity.given_name, family_name=identity.family_name,
            id_token="", consent_given=consent["state"] == "given", now=now,  # the ID token is not kept
        )  # fmt: skip
        log.info("portal.login.succeeded", citizen_ref=ref, loa=identity.loa)
        return LoginCompleted(session_token, consent["state"] == "given")

    async def logout(self, session: Session) -> str | None:
        """End the session here; the identity provider's logout URL to end it there too (None if it has none)."""
        await repo.delete_session(self.pool, session.id_hash)
        log.info("portal.logout", citizen_ref=session.citizen_ref)
        return await self.oidc.end_session_url(f"{self.settings.public_origin}/")

    # --- Consent ------------------------------------------------------------------------------------------

    async def consent(self, session: Session) -> dict[str, Any]:
        """The citizen's consent at the consent service: state (none, given, withdrawn), text version, history."""
        return await self.consent_api.get(session.citizen_ref)

    async def give_consent(self, session: Session) -> dict[str, Any]:
        """Give consent at the consent service; the citizen's sessions here may then show certificates."""
        result = await self.consent_api.give(session.citizen_ref)
        await repo.set_session_consent(self.pool, session.citizen_ref, True)
        log.info("portal.consent.given", citizen_ref=session.citizen_ref)
        return result

    async def withdraw_consent(self, session: Session) -> None:
        """Withdraw at the consent service, and remove the citizen's certificates here at once (the consumer does
        the same when citizen.data_withdrawn arrives)."""
        result = await self.consent_api.withdraw(session.citizen_ref)
        async with self.pool.acquire() as conn, conn.transaction():
            generation = result.get("generation")
            if isinstance(generation, int) and generation > 0:
                # Releases still on their way from before the withdrawal are dropped from now on, not only once
                # citizen.data_withdrawn is read.
                await record_withdrawal(conn, session.citizen_ref, generation, self.clock())
            await repo.delete_citizen_data(conn, session.citizen_ref)
            await repo.set_session_consent(conn, session.citizen_ref, False)
        log.info("portal.consent.withdrawn", citizen_ref=session.citizen_ref)

    # --- Certificates -------------------------------------------------------------------------------------

    async def session_and_list(self, id_hash: bytes) -> tuple[Session, list[ListItem]] | None:
        """The session `id_hash` names (its idle clock restarted) and, if it has consent, the citizen's
        certificates newest first with the listing's access-log row: one statement, one database round trip (the
        session is still read from the database every time). None: no such session, or it timed out."""
        now = self.clock()
        found = await repo.session_and_list(self.pool, id_hash, now, *session_window(self.settings, now))
        if found is None:
            return None
        days = self.settings.new_badge_days
        return session_of(id_hash, found.session), [list_item(r, now, days) for r in found.certificates]

    async def certificate(self, session: Session, certificate_id: str, action: str = "read") -> CertificateView:
        """One of the citizen's certificates as they read it; the read is logged as `action` (none if empty)."""
        row = await repo.get_certificate(self.pool, session.citizen_ref, certificate_id)
        if row is None:
            raise await self.not_found(session, certificate_id, action)
        history = await repo.history(self.pool, certificate_id)
        sends = await repo.dispatches(self.pool, certificate_id)
        if action:
            await self.log(session, certificate_id, action)
        document = row.document
        certificate = CERTIFICATE_ADAPTER.validate_python(document)
        views = dispatch_views(sends)
        failed = [d for d in sends if d.state == "FAILED"]
        state = send_status(views)
        return CertificateView(
            item=list_item(row.listed, self.clock(), self.settings.new_badge_days),
            document=document,
            certificate=certificate,
            header=header_sections(certificate),
            content=content_sections(certificate.content),
            history=history_rows(history),
            dispatches=[
                {
                    "recipient_id": d.recipient_id,
                    "recipient_name": RECIPIENT_NAMES.get(d.recipient_id, d.recipient_id),
                    "state": d.state,
                    "requested_at": d.requested_at.isoformat(),
                    "outcome_at": d.outcome_at.isoformat() if d.outcome_at else None,
                    "reason": d.reason,
                }
                for d in sends
            ],
            may_send=not row.listed.test_patient
            and may_send(certificate.type, row.listed.replaced_by is not None, views),
            send_state=state,
            failure=failed[-1].reason if failed and state == "FAILED" else None,
            employer_fields=[
                (f, FIELD_LABELS.get(f, f)) for f in employer_optional_fields(certificate.type, document["content"])
            ],
            sent_at=_sent_at(sends),
        )

    async def pdf(self, session: Session, certificate_id: str, *, save: bool) -> tuple[bytes, str]:
        """The certificate as PDF (logged as printed or saved) and its file name."""
        view = await self.certificate(session, certificate_id, action="")
        await self.log(session, certificate_id, "save" if save else "print")
        data = await self._render(
            functools.partial(
                certificate_pdf,
                font_dir=self.settings.font_dir,
                title=type_name(view.item.type),
                header=view.header,
                content=view.content,
                employer_copy=False,
                printed_at=self.clock(),
            )
        )
        return data, f"intyg-{certificate_id}.pdf"

    def employer_preview(self, view: CertificateView, include: Sequence[str]) -> tuple[list[Section], bool]:
        """The content of the employer copy: optional fields only when the citizen chose to include them."""
        optional = [f for f, _ in view.employer_fields]
        omit = [f for f in optional if f not in include]
        content, left_out = employer_copy(view.item.type, view.document["content"], omit)
        return content_sections(content_of(view.item.type, content)), left_out

    async def employer_pdf(
        self, session: Session, certificate_id: str, include: Sequence[str], *, save: bool
    ) -> tuple[bytes, str]:
        """The employer copy as PDF (logged) and its file name; NotFound for a type without one."""
        view = await self.certificate(session, certificate_id, action="")
        if not CERTIFICATE_TYPES[view.item.type].employer_facing and view.item.type != "LISJP":
            raise NotFound(certificate_id)
        content, left_out = self.employer_preview(view, include)
        await self.log(session, certificate_id, "employer_copy_save" if save else "employer_copy_print")
        header = [s for s in view.header if s.title != "Patient"] + [
            Section("Patient", [r for r in view.header[1].rows if r.field != "patient_address"])
        ]
        data = await self._render(
            functools.partial(
                certificate_pdf,
                font_dir=self.settings.font_dir,
                title=type_name(view.item.type),
                header=header,
                content=content,
                employer_copy=left_out,
                printed_at=self.clock(),
            )
        )
        return data, f"intyg-{certificate_id}-arbetsgivare.pdf"

    async def set_archived(self, session: Session, certificate_id: str, archived: bool) -> None:
        """Archive or restore one of the citizen's certificates (logged with the change, in one transaction)."""
        action = "archive" if archived else "restore"
        async with self.pool.acquire() as conn, conn.transaction():
            found = await repo.set_archived(conn, session.citizen_ref, certificate_id, archived, self.clock())
            if found:
                await repo.log_access(conn, session.citizen_ref, certificate_id, action, "ok", self.clock())
        if not found:
            raise await self.not_found(session, certificate_id, action)

    def new_idempotency_key(self) -> UUID:
        """The key a send preview hands out: sending twice with it sends once."""
        return uuid4()

    async def send(
        self, session: Session, certificate_id: str, recipient_id: str, key: UUID, correlation_id: str
    ) -> str:
        """Record a send request, its event (to the outbox) and its access-log row in one transaction.

        Returns 'requested', or 'duplicate' for the same key again (nothing more is sent); NotFound if the
        certificate is not this citizen's; SendRefused if sending is not offered."""
        citizen_ref, now = session.citizen_ref, self.clock()
        async with self.pool.acquire() as conn, conn.transaction():
            row = await repo.lock_certificate(conn, citizen_ref, certificate_id)
            if row is None:
                outcome = None
            else:
                outcome = await self._request_dispatch(conn, row, citizen_ref, recipient_id, key, now, correlation_id)
        if outcome is None:
            raise await self.not_found(session, certificate_id, "send")
        if outcome == "requested":
            log.info(
                "portal.dispatch.requested",
                citizen_ref=citizen_ref,
                certificate_id=certificate_id,
                recipient_id=recipient_id,
            )
        return outcome

    async def _request_dispatch(
        self,
        conn: Connection,
        row: repo.LockedCertificate,
        citizen_ref: str,
        recipient_id: str,
        key: UUID,
        now: datetime,
        correlation_id: str,
    ) -> str:
        """`send` inside its transaction, with the certificate locked: 'requested' or 'duplicate'."""
        certificate_id = row.id
        existing = await repo.dispatches(conn, certificate_id)
        if any(d.idempotency_key == key for d in existing):
            return "duplicate"
        # Test patients' certificates never go to a recipient (the platform marks them).
        if row.test_patient or not may_send(row.type, row.replaced_by is not None, dispatch_views(existing)):
            raise SendRefused(certificate_id)
        outcome = await repo.insert_dispatch_request(
            conn,
            idempotency_key=key,
            certificate_id=certificate_id,
            citizen_ref=citizen_ref,
            recipient_id=recipient_id,
            at=now,
        )
        if outcome == "duplicate":
            return "duplicate"
        if outcome != "requested":
            raise SendRefused(certificate_id)  # another key for this certificate, or one already on its way
        event = DispatchRequested(
            idempotency_key=key,
            certificate_id=certificate_id,
            recipient_id=recipient_id,
            citizen_ref=citizen_ref,
            requested_at=now,
        )
        envelope = new_envelope(event, source=SOURCE, time=now, correlation_id=correlation_id, subject=certificate_id)
        await add_to_outbox(conn, self.settings.topic(PORTAL_DISPATCH_REQUESTS.name), certificate_id, envelope)
        await repo.log_access(conn, citizen_ref, certificate_id, "send", "ok", now)
        return "requested"

    # --- Fetched by a party (Försäkringskassan, services/portal/riv.py) -----------------------------------------

    async def fetch_for_party(
        self,
        party: str,
        personnummer: str,
        types: Sequence[str],
        give: Callable[[Fetched], _T],
        *,
        archived: bool,
        signed_from: date | None = None,
        signed_to: date | None = None,
    ) -> list[_T]:
        """The citizen's certificates a party fetches, as `give` makes them: of `types` (all if empty), the citizen's
        archived ones or the others, signed within the dates (Swedish); each written to the citizen's access log as
        fetched by `party` once all are made. Only what consent released is here, never a revoked certificate:
        without consent the list is empty."""
        ref = citizen_ref(personnummer, self.settings.citizen_ref_key.get_secret_value())
        rows = await repo.certificates_for_party(self.pool, party, ref, types, archived)
        fetched = [Fetched(CERTIFICATE_ADAPTER.validate_python(r.document), r.sent_at) for r in rows]
        if signed_from is not None or signed_to is not None:
            fetched = [f for f in fetched if _signed_within(f.certificate, signed_from, signed_to)]
        given = [give(f) for f in fetched]
        if fetched:
            await repo.log_fetched(self.pool, ref, [f.certificate.id for f in fetched], party, self.clock())
        return given

    async def get_for_party(self, party: str, certificate_id: str, give: Callable[[Fetched], _T]) -> _T | None:
        """One certificate a party fetches, as `give` makes it (None if the portal does not hold it: no consent,
        revoked, unknown), written to its citizen's access log as fetched by `party`."""
        row = await repo.certificate_for_party(self.pool, party, certificate_id)
        if row is None:
            return None
        given = give(Fetched(CERTIFICATE_ADAPTER.validate_python(row.document), row.sent_at))
        await repo.log_fetched(self.pool, row.citizen_ref, [row.id], party, self.clock())
        return given

    # --- Om dina uppgifter --------------------------------------------------------------------------------

    async def access_log(self, session: Session) -> list[dict[str, Any]]:
        """Every access to the citizen's certificates, newest first (the latest 500)."""
        rows = await repo.access_log(self.pool, session.citizen_ref)
        return [
            {
                "certificate_id": r.certificate_id,
                "action": r.action,
                "outcome": r.outcome,
                "at": r.at.isoformat(),
                "at_text": fmt_time(r.at),
                "actor": r.actor,
                "actor_text": actor_text(r.actor, r.action),
                "action_text": word(ACCESS_ACTIONS, r.action),
                "outcome_text": word(OUTCOMES, r.outcome),
            }
            for r in rows
        ]

    async def requests(self, session: Session) -> list[repo.CitizenRequestRow]:
        """The citizen's rectification and blocking requests, oldest first."""
        return await repo.requests(self.pool, session.citizen_ref)

    async def add_request(self, session: Session, kind: str, certificate_id: str | None, message: str) -> int:
        """Record a rectification or blocking request (about one of the citizen's certificates, or all)."""
        if certificate_id:
            row = await repo.get_certificate(self.pool, session.citizen_ref, certificate_id)
            if row is None:
                raise await self.not_found(session, certificate_id, f"request_{kind.lower()}")
        request_id = await repo.add_request(self.pool, session.citizen_ref, kind, certificate_id, message, self.clock())
        log.info("portal.citizen_request.recorded", citizen_ref=session.citizen_ref, kind=kind, request_id=request_id)
        return request_id

    async def extract(self, session: Session) -> dict[str, Any]:
        """Everything held about the citizen in the portal, and their consent history (the register extract)."""
        consent = await self.consent(session)
        docs = await repo.documents(self.pool, session.citizen_ref)
        await self.log(session, None, "extract")
        history = await repo.all_history(self.pool, [d.id for d in docs])
        sends = await repo.all_dispatches(self.pool, session.citizen_ref)
        requests = await repo.requests(self.pool, session.citizen_ref)
        access = await repo.access_log(self.pool, session.citizen_ref, limit=100_000)
        return {
            "created_at": self.clock().isoformat(),
            "person": {
                "personnummer": session.personnummer,
                "given_name": session.given_name,
                "family_name": session.family_name,
            },
            "consent": consent,
            "retention": {
                "held_retention_days": consent.get("held_retention_days"),
                "text": (
                    f"Intyg som kommer när du inte har gett samtycke, eller efter att du har återkallat det, sparas i "
                    f"{consent.get('held_retention_days')} dagar utan att visas eller användas och tas sedan bort från "
                    "Mina intyg. Intygen finns kvar hos vårdenheten som utfärdade dem."
                ),
                "older_certificates_removed_at": consent.get("held_purged_at"),
            },
            "certificates": [
                {
                    "archived": d.archived,
                    "replaced_by": d.replaced_by,
                    "received_at": iso(d.released_at),
                    "document": d.document,
                }
                for d in docs
            ],
            "status_history": [_jsonable(r._asdict()) for r in history],
            "dispatches": [_jsonable(r._asdict()) for r in sends],
            "access_log": [_jsonable(r._asdict()) for r in access],
            "requests": [_jsonable(r._asdict()) for r in requests],
        }

    async def extract_pdf(self, session: Session) -> bytes:
        """The register extract as PDF."""
        data = await self.extract(session)
        return await self._render(
            functools.partial(
                extract_pdf, font_dir=self.settings.font_dir, name=session.name, extract=data, printed_at=self.clock()
            )
        )


@dataclass(frozen=True)
class Fetched:
    """A certificate a party fetched, and when it was last delivered to that party (None: never)."""

    certificate: Certificate
    sent_at: datetime | None


def _signed_within(certificate: Certificate, start: date | None, end: date | None) -> bool:
    day = swedish_date(certificate.signed_at)
    return (start is None or day >= start) and (end is None or day <= end)


def _sent_at(sends: Sequence[repo.DispatchRow]) -> str | None:
    """When the latest send that reached Försäkringskassan got there, as the citizen reads it."""
    times = [d.outcome_at for d in sends if d.recipient_id == FKASSA and d.state == "SUCCEEDED" and d.outcome_at]
    return fmt_time(max(times)) if times else None


def _jsonable(row: dict[str, Any]) -> dict[str, Any]:
    return {k: iso(v) for k, v in row.items()}


async def purge_sessions(pool: Pool, settings: PortalSettings, clock: Clock) -> int:
    """Remove sessions idle past the timeout and logins started too long ago."""
    now = clock()
    return await repo.purge_sessions(
        pool,
        now - timedelta(seconds=settings.session_idle_seconds),
        now - timedelta(seconds=settings.pre_login_seconds),
    )

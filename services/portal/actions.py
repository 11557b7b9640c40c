"""What a logged-in citizen can do, shared by the pages and the JSON API. Every read, print, save, employer
copy, send, archive and restore is written to the access log; another citizen's id is answered as unknown."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID, uuid4

import structlog
from prometheus_client import Counter

from schemas.certificate_types import CERTIFICATE_TYPES
from services.kit.db import Pool
from services.portal import handlers, repo
from services.portal.domain import FKASSA, RECIPIENT_NAMES, employer_copy, employer_optional_fields, may_send
from services.portal.pdf import certificate_pdf, extract_pdf
from services.portal.security import Session
from services.portal.settings import PortalSettings
from services.portal.views import (
    FIELD_LABELS,
    ListItem,
    Section,
    content_sections,
    dispatch_views,
    fmt_time,
    header_sections,
    history_rows,
    list_item,
    send_status,
    type_name,
)

log = structlog.get_logger(__name__)
FOREIGN_ACCESS = Counter(
    "portal_foreign_certificate_access_total", "Attempts to reach a certificate that is not the citizen's own"
)


class NotFound(Exception):
    """Unknown, or another citizen's (indistinguishable to the caller)."""


@dataclass(frozen=True)
class CertificateView:
    item: ListItem
    document: dict[str, Any]
    header: list[Section]
    content: list[Section]
    history: list[dict[str, str]]
    dispatches: list[dict[str, Any]]
    may_send: bool
    send_state: str | None
    failure: str | None
    employer_fields: list[tuple[str, str]]

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


class Actions:
    def __init__(self, pool: Pool, settings: PortalSettings, clock: Callable[[], datetime]) -> None:
        self.pool = pool
        self.settings = settings
        self.clock = clock
        # PDFs are pure CPU under the GIL: one worker thread makes them one after another, so the first is done
        # after one PDF's time instead of all finishing together after four, and the event loop competes with
        # one thread for the GIL, not four.
        self._pdf_worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="portal-pdf")

    async def _render(self, make: Callable[[], bytes]) -> bytes:
        """Run a PDF build on the PDF worker thread (off the event loop)."""
        return await asyncio.get_running_loop().run_in_executor(self._pdf_worker, make)

    def close(self) -> None:
        self._pdf_worker.shutdown(wait=False, cancel_futures=True)

    async def log(self, session: Session, certificate_id: str | None, action: str, outcome: str = "ok") -> None:
        await repo.log_access(self.pool, session.citizen_ref, certificate_id, action, outcome, self.clock())

    async def not_found(self, session: Session, certificate_id: str, action: str) -> NotFound:
        """Log a refused attempt; if the id is another citizen's, raise the monitoring event."""
        owner = await self.pool.fetchval("SELECT citizen_ref FROM certificates WHERE id = $1", certificate_id)
        await self.log(session, certificate_id[:64], action, "not_found")
        if owner is not None and owner != session.citizen_ref:
            FOREIGN_ACCESS.inc()
            log.warning("portal.access.foreign_certificate", citizen_ref=session.citizen_ref, action=action)
        return NotFound(certificate_id)

    async def list_certificates(self, session: Session) -> list[ListItem]:
        now = self.clock()
        rows = await repo.list_certificates(self.pool, session.citizen_ref, now)
        return [list_item(r, now, self.settings.new_badge_days) for r in rows]

    async def certificate(self, session: Session, certificate_id: str, action: str = "read") -> CertificateView:
        row = await repo.get_certificate(self.pool, session.citizen_ref, certificate_id)
        if row is None:
            raise await self.not_found(session, certificate_id, action)
        history = await repo.history(self.pool, certificate_id)
        sends = await repo.dispatches(self.pool, certificate_id)
        if action:
            await self.log(session, certificate_id, action)
        document: dict[str, Any] = row["document"]
        views = dispatch_views(sends)
        failed = [d for d in sends if d["state"] == "FAILED"]
        state = send_status(views)
        content = document["content"]
        return CertificateView(
            item=list_item(row, self.clock(), self.settings.new_badge_days),
            document=document,
            header=header_sections(document),
            content=content_sections(document["type"], content),
            history=history_rows(history),
            dispatches=[
                {
                    "recipient_id": d["recipient_id"],
                    "recipient_name": RECIPIENT_NAMES.get(d["recipient_id"], d["recipient_id"]),
                    "state": d["state"],
                    "requested_at": d["requested_at"].isoformat(),
                    "outcome_at": d["outcome_at"].isoformat() if d["outcome_at"] else None,
                    "reason": d["reason"],
                }
                for d in sends
            ],
            may_send=not row["test_patient"] and may_send(document["type"], row["replaced_by"] is not None, views),
            send_state=state,
            failure=failed[-1]["reason"] if failed and state == "FAILED" else None,
            employer_fields=[(f, FIELD_LABELS.get(f, f)) for f in employer_optional_fields(document["type"], content)],
        )

    async def pdf(self, session: Session, certificate_id: str, *, save: bool) -> tuple[bytes, str]:
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
        return content_sections(view.item.type, content), left_out

    async def employer_pdf(
        self, session: Session, certificate_id: str, include: Sequence[str], *, save: bool
    ) -> tuple[bytes, str]:
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
        action = "archive" if archived else "restore"
        async with self.pool.acquire() as conn, conn.transaction():
            found = await repo.set_archived(conn, session.citizen_ref, certificate_id, archived, self.clock())
            if found:
                await repo.log_access(conn, session.citizen_ref, certificate_id, action, "ok", self.clock())
        if not found:
            raise await self.not_found(session, certificate_id, action)

    def new_idempotency_key(self) -> UUID:
        return uuid4()

    async def send(
        self, session: Session, certificate_id: str, recipient_id: str, key: UUID, correlation_id: str
    ) -> str:
        """'requested' or 'duplicate'; NotFound or handlers.SendRefused otherwise."""
        outcome = await handlers.request_dispatch(
            self.pool,
            self.settings,
            citizen_ref=session.citizen_ref,
            certificate_id=certificate_id,
            recipient_id=recipient_id,
            idempotency_key=key,
            now=self.clock(),
            correlation_id=correlation_id,
        )
        if outcome is None:
            raise await self.not_found(session, certificate_id, "send")
        return outcome

    async def access_log(self, session: Session) -> list[dict[str, Any]]:
        rows = await repo.access_log(self.pool, session.citizen_ref)
        return [
            {"certificate_id": r["certificate_id"], "action": r["action"], "outcome": r["outcome"],
             "at": r["at"].isoformat(), "at_text": fmt_time(r["at"])}
            for r in rows
        ]  # fmt: skip

    async def add_request(self, session: Session, kind: str, certificate_id: str | None, message: str) -> int:
        if certificate_id:
            row = await repo.get_certificate(self.pool, session.citizen_ref, certificate_id)
            if row is None:
                raise await self.not_found(session, certificate_id, f"request_{kind.lower()}")
        request_id = await repo.add_request(self.pool, session.citizen_ref, kind, certificate_id, message, self.clock())
        log.info("portal.citizen_request.recorded", citizen_ref=session.citizen_ref, kind=kind, request_id=request_id)
        return request_id

    async def extract(self, session: Session, consent: dict[str, Any] | None) -> dict[str, Any]:
        """Everything held about the citizen in the portal (and their consent history)."""
        docs = await repo.documents(self.pool, session.citizen_ref)
        await self.log(session, None, "extract")
        history = await repo.all_history(self.pool, [d["id"] for d in docs])
        sends = await repo.all_dispatches(self.pool, session.citizen_ref)
        requests = await repo.requests(self.pool, session.citizen_ref)
        access = await repo.access_log(self.pool, session.citizen_ref, limit=100_000)
        return {
            "created_at": self.clock().isoformat(),
            "person": {"personnummer": session.personnummer, "given_name": session.given_name,
                       "family_name": session.family_name},
            "consent": consent,
            "certificates": [
                {"archived": d["archived"], "replaced_by": d["replaced_by"], "received_at": iso(d["released_at"]),
                 "document": d["document"]}
                for d in docs
            ],
            "status_history": [{k: iso(v) for k, v in r.items()} for r in history],
            "dispatches": [{k: iso(v) for k, v in r.items()} for r in sends],
            "access_log": [{k: iso(v) for k, v in r.items()} for r in access],
            "requests": [{k: iso(v) for k, v in r.items()} for r in requests],
        }  # fmt: skip

    async def extract_pdf(self, session: Session, consent: dict[str, Any] | None) -> bytes:
        data = await self.extract(session, consent)
        return await self._render(
            functools.partial(
                extract_pdf, font_dir=self.settings.font_dir, name=session.name, extract=data, printed_at=self.clock()
            )
        )

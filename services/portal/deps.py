"""The routers' FastAPI dependencies: the portal's typed state (kept by the kit's service host), and the session a
route needs (none, logged in, with consent, allowed to change state).

Every dependency is a coroutine: FastAPI runs a plain function in a worker thread."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

from fastapi import Depends, Path, Request

from services.kit.db import Pool
from services.kit.ratelimit import InFlight, RateLimit
from services.kit.service import app_state
from services.kit.text import Line
from services.portal.handlers import Handlers
from services.portal.security import NoConsent, NotLoggedIn, Session, check_csrf, load_session, session_id_hash
from services.portal.settings import PortalSettings
from services.portal.views import ListItem

Clock = Callable[[], datetime]


@dataclass(frozen=True)
class Limits:
    """Abuse limits where abuse is cheap (services/kit/ratelimit.py): logins started per client address, PDFs and
    register extracts per citizen (one PDF thread serves everyone), at most a few of a citizen's PDFs at once."""

    login: RateLimit
    pdf: RateLimit
    pdf_in_flight: InFlight
    extract: RateLimit

    @classmethod
    def of(cls, settings: PortalSettings) -> Limits:
        return cls(
            login=RateLimit(settings.login_rate_limit, "logins started from this address"),
            pdf=RateLimit(settings.pdf_rate_limit, "PDFs for this citizen"),
            pdf_in_flight=InFlight(settings.pdf_in_flight, "PDFs for this citizen at once"),
            extract=RateLimit(settings.extract_rate_limit, "register extracts for this citizen"),
        )


@dataclass(frozen=True)
class Portal:
    """The portal's state: what its routes need, wired once by `bootstrap`."""

    settings: PortalSettings
    pool: Pool  # for requests (no reset query on release)
    relay_pool: Pool  # for the relay, the consumer and housekeeping (resetting)
    handlers: Handlers
    clock: Clock
    limits: Limits


def portal_of(request: Request) -> Portal:
    """The state, for what is not a FastAPI dependency (the plain list routes, `render`)."""
    return app_state(request.app, Portal)


async def handlers_of(request: Request) -> Handlers:
    return portal_of(request).handlers


def settings_of(request: Request) -> PortalSettings:
    """The settings (a plain function: `render` calls it, no route depends on it)."""
    return portal_of(request).settings


async def settings_dependency(request: Request) -> PortalSettings:
    return settings_of(request)


async def correlation_id(request: Request) -> str:
    """The request's correlation id (bound by the kit's request middleware)."""
    value: str = request.scope["state"]["correlation_id"]
    return value


async def _load(request: Request, *, extend: bool = False) -> Session | None:
    portal = portal_of(request)
    return await load_session(request, portal.pool, portal.settings, portal.clock(), extend=extend)


async def optional_session(request: Request) -> Session | None:
    """The request's session, None if there is none (or it timed out); its idle clock restarts."""
    return await _load(request)


async def logged_in(request: Request) -> Session:
    """The request's session; NotLoggedIn if there is none (or it timed out)."""
    session = await optional_session(request)
    if session is None:
        raise NotLoggedIn
    return session


async def consented(request: Request) -> Session:
    """A session of a citizen who has given consent; NoConsent otherwise."""
    session = await logged_in(request)
    if not session.consent_given:
        raise NoConsent
    return session


async def _changing(request: Request, *, need_consent: bool, extend: bool = False) -> Session:
    session = await _load(request, extend=extend)
    if session is None:
        raise NotLoggedIn
    await check_csrf(request, session, settings_of(request))
    if need_consent and not session.consent_given:
        raise NoConsent
    return session


async def changing(request: Request) -> Session:
    """A session allowed to change state: logged in, consent given and the CSRF checks passed."""
    return await _changing(request, need_consent=True)


async def changing_without_consent(request: Request) -> Session:
    """`changing` for what a citizen may do before consent (give it, log out)."""
    return await _changing(request, need_consent=False)


async def extending(request: Request) -> Session:
    """`changing_without_consent` that restarts the idle clock at once ("stay logged in")."""
    return await _changing(request, need_consent=False, extend=True)


async def consented_list(request: Request) -> tuple[Session, list[ListItem]]:
    """`consented` and the citizen's certificates, newest first, with the listing's access-log row: one statement,
    so one database round trip for the whole check (the session is still read from the database every time)."""
    id_hash = session_id_hash(request)
    if id_hash is None:
        raise NotLoggedIn
    found = await portal_of(request).handlers.session_and_list(id_hash)
    if found is None:
        raise NotLoggedIn
    if not found[0].consent_given:
        raise NoConsent
    return found


async def login_allowance(request: Request) -> None:
    """Within the rate of logins started from this client address (the proxy's forwarded address: uvicorn's
    FORWARDED_ALLOW_IPS names the trusted proxies)."""
    portal_of(request).limits.login.hit(request.client.host if request.client else "unknown")


async def pdf_allowance(request: Request) -> AsyncIterator[None]:
    """Within the citizen's PDF rate, and one of at most `pdf_in_flight` of their PDFs at once (held while the
    route renders)."""
    session = await consented(request)
    limits = portal_of(request).limits
    limits.pdf.hit(session.citizen_ref)
    with limits.pdf_in_flight.slot(session.citizen_ref):
        yield


async def extract_allowance(request: Request) -> None:
    """Within the citizen's rate of register extracts (each reads everything held about them)."""
    session = await consented(request)
    portal_of(request).limits.extract.hit(session.citizen_ref)


HandlersDep = Annotated[Handlers, Depends(handlers_of)]
SettingsDep = Annotated[PortalSettings, Depends(settings_dependency)]
CorrelationId = Annotated[str, Depends(correlation_id)]
MaybeSession = Annotated[Session | None, Depends(optional_session)]
LoggedIn = Annotated[Session, Depends(logged_in)]
Consented = Annotated[Session, Depends(consented)]
Changing = Annotated[Session, Depends(changing)]
ChangingWithoutConsent = Annotated[Session, Depends(changing_without_consent)]
Extending = Annotated[Session, Depends(extending)]
ConsentedList = Annotated[tuple[Session, list[ListItem]], Depends(consented_list)]
LoginAllowance = Depends(login_allowance)
PdfAllowance = Depends(pdf_allowance)
ExtractAllowance = Depends(extract_allowance)
# A certificate id in a path: no control character (PostgreSQL refuses NUL), checked after the session.
CertId = Annotated[Line, Path(max_length=64, description="Certificate id")]

"""Sessions, CSRF protection and the security headers every response carries."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import asyncpg
from fastapi import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.kit.db import Pool
from services.portal import repo
from services.portal.settings import PortalSettings

SESSION_COOKIE = "__Host-minaintyg-session"
LOGIN_COOKIE = "__Host-minaintyg-login"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"


def new_token() -> str:
    return secrets.token_urlsafe(32)


def token_hash(token: str) -> bytes:
    """Sessions are stored under the SHA-256 of the cookie's token, never the token itself."""
    return hashlib.sha256(token.encode()).digest()


def cookie_header(name: str, value: str, *, max_age: int | None) -> str:
    """A `__Host-` cookie: Secure, HttpOnly, SameSite=Lax, Path=/, no Domain."""
    parts = [f"{name}={value}", "Path=/", "Secure", "HttpOnly", "SameSite=Lax"]
    if max_age is not None:
        parts.append(f"Max-Age={max_age}")
    return "; ".join(parts)


@dataclass(frozen=True)
class Session:
    id_hash: bytes
    citizen_ref: str
    personnummer: str
    given_name: str
    family_name: str
    csrf_token: str
    consent_given: bool
    last_seen: datetime

    @property
    def name(self) -> str:
        return f"{self.given_name} {self.family_name}"

    def __repr__(self) -> str:  # never print the personnummer or the name by accident
        return f"Session(citizen_ref={self.citizen_ref!r})"


class NotLoggedIn(Exception):
    """No session, or it ended (logout, idle timeout or its absolute lifetime)."""


class NoConsent(Exception):
    """The citizen has not given consent: only the consent pages are reachable."""


class CsrfRefused(Exception):
    """A state-changing request that did not come from our own pages."""


TOUCH_GRANULARITY = timedelta(seconds=15)


def session_id_hash(request: Request) -> bytes | None:
    """The stored id of the session the request's cookie names (None without a plausible cookie)."""
    token = request.cookies.get(SESSION_COOKIE)
    if not token or len(token) > 100:
        return None
    return token_hash(token)


def session_window(
    settings: PortalSettings, now: datetime, *, extend: bool = False
) -> tuple[datetime, datetime, datetime]:
    """(idle_after, touch_before, created_after) for a session lookup at `now`: a session last seen before
    idle_after has timed out, one created before created_after has reached its absolute lifetime (however busy);
    its idle clock restarts only if last restarted before touch_before (at most every 15 s, so most requests only
    read; at once when `extend`)."""
    return (
        now - timedelta(seconds=settings.session_idle_seconds),
        now if extend else now - TOUCH_GRANULARITY,
        now - timedelta(seconds=settings.session_absolute_seconds),
    )


def session_from_row(id_hash: bytes, row: asyncpg.Record) -> Session:
    return Session(
        id_hash=id_hash,
        citizen_ref=row["citizen_ref"],
        personnummer=row["personnummer"],
        given_name=row["given_name"],
        family_name=row["family_name"],
        csrf_token=row["csrf_token"],
        consent_given=row["consent_given"],
        last_seen=row["last_seen"],
    )


async def load_session(
    request: Request, pool: Pool, settings: PortalSettings, now: datetime, *, extend: bool = False
) -> Session | None:
    """The authenticated session of the request, or None. Its idle clock restarts (see `session_window`)."""
    id_hash = session_id_hash(request)
    if id_hash is None:
        return None
    row = await repo.touch_session(pool, id_hash, now, *session_window(settings, now, extend=extend))
    return None if row is None else session_from_row(id_hash, row)


async def check_csrf(request: Request, session: Session, settings: PortalSettings) -> None:
    """Refuse a state change that is cross-site (Sec-Fetch-Site, Origin) or lacks this session's token."""
    site = request.headers.get("sec-fetch-site")
    if site is not None and site not in ("same-origin", "none"):
        raise CsrfRefused("cross-site request")
    origin = request.headers.get("origin")
    if origin is not None and origin != settings.public_origin:
        raise CsrfRefused("foreign origin")
    presented = request.headers.get(CSRF_HEADER)
    if presented is None and request.headers.get("content-type", "").startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    ):
        form = await request.form()
        value = form.get(CSRF_FIELD)
        presented = value if isinstance(value, str) else None
    if not presented or not hmac.compare_digest(presented.encode(), session.csrf_token.encode()):
        raise CsrfRefused("missing or wrong token")


def content_security_policy(settings: PortalSettings) -> str:
    # form-action also governs where a form's redirect may lead: logout continues at the identity provider.
    return (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; "
        "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; "
        f"form-action 'self' {settings.oidc_issuer}"
    )


class SecurityHeadersMiddleware:
    """HSTS, CSP, nosniff, Referrer-Policy, frame protection on every response; no-store on all but static files."""

    def __init__(self, app: ASGIApp, settings: PortalSettings) -> None:
        self.app = app
        self.headers = [
            (b"strict-transport-security", b"max-age=31536000; includeSubDomains"),
            (b"content-security-policy", content_security_policy(settings).encode()),
            (b"x-content-type-options", b"nosniff"),
            (b"referrer-policy", b"same-origin"),  # no-referrer makes Chromium send Origin: null
            (b"x-frame-options", b"DENY"),
            (b"cross-origin-opener-policy", b"same-origin"),
            (b"permissions-policy", b"camera=(), microphone=(), geolocation=(), payment=()"),
        ]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        static = scope["path"].startswith("/static/")

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [h for h in message.get("headers", []) if h[0].lower() != b"cache-control" or static]
                headers += self.headers
                headers.append((b"cache-control", b"private, max-age=3600" if static else b"no-store"))
                if not static:
                    headers.append((b"pragma", b"no-cache"))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_wrapper)

"""Login with e-legitimation over OpenID Connect: authorization code + PKCE (S256, Authlib's implementation) and
nonce; ID-token validation with joserfc (Authlib's JOSE library). Authlib's httpx client integration is not used:
in 1.9.6 it is deprecated in favour of another HTTP package, and the code exchange is one POST.

The ID token is trusted only after: signature by a key from the provider's JWKS with an allowed algorithm
(RS256 or ES256; `none` and HMAC are refused), the configured issuer and audience, unexpired, the nonce of this
login, assurance level 3 or higher, and a valid personnummer of a person at least 16 years old.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import date
from typing import Any
from urllib.parse import urlencode

import httpx
from authlib.common.urls import add_params_to_uri
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from joserfc import jwt
from joserfc.errors import ExpiredTokenError, InvalidKeyIdError, JoseError
from joserfc.jwk import KeySet

from schemas.identifiers import InvalidIdentifier, parse_personal_number
from services.portal.domain import assurance_level
from services.portal.settings import PortalSettings

ALLOWED_ALGORITHMS = ("RS256", "ES256")
PERSONNUMMER_CLAIM = "https://id.oidc.se/claim/personalIdentityNumber"
CLOCK_SKEW_SECONDS = 60


class LoginRefused(Exception):
    """The login cannot go on; `message` is Swedish text for the citizen, `code` names the reason (logged)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(code)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Identity:
    personnummer: str  # 12 digits
    given_name: str
    family_name: str
    loa: int


def validate_id_token(
    token: str,
    keys: KeySet,
    *,
    issuer: str,
    client_id: str,
    nonce: str,
    now: int,
    today: date,
    min_loa: int = 3,
    min_age: int = 16,
) -> Identity:
    """The identity in an ID token, or LoginRefused saying why not."""
    technical = "Inloggningen kunde inte verifieras. Försök logga in igen."
    try:
        decoded = jwt.decode(token, keys, algorithms=list(ALLOWED_ALGORITHMS))
    except InvalidKeyIdError as exc:
        raise LoginRefused("unknown_key", technical) from exc
    except JoseError as exc:
        raise LoginRefused(f"bad_token:{type(exc).__name__}", technical) from exc
    if decoded.header.get("alg") not in ALLOWED_ALGORITHMS:  # joserfc checked it; stated for the reader
        raise LoginRefused("bad_algorithm", technical)
    registry = jwt.JWTClaimsRegistry(
        now=now,
        leeway=CLOCK_SKEW_SECONDS,
        iss={"essential": True, "value": issuer},
        aud={"essential": True, "value": client_id},
        sub={"essential": True},
        exp={"essential": True},
        iat={"essential": True},
        nonce={"essential": True, "value": nonce},
        acr={"essential": True},
    )
    claims: dict[str, Any] = decoded.claims
    try:
        registry.validate(claims)
    except ExpiredTokenError as exc:
        raise LoginRefused("expired", "Inloggningen tog för lång tid. Försök logga in igen.") from exc
    except JoseError as exc:
        raise LoginRefused(f"bad_claims:{type(exc).__name__}:{getattr(exc, 'claim', '')}", technical) from exc
    audience = claims["aud"]
    if isinstance(audience, list) and len(audience) > 1 and claims.get("azp") != client_id:
        raise LoginRefused("bad_azp", technical)
    loa = assurance_level(claims.get("acr"))
    if loa is None or loa < min_loa:
        raise LoginRefused(
            "loa_too_low",
            "Du behöver logga in med en e-legitimation med tillitsnivå 3 eller högre, till exempel BankID. "
            "Lösenord och sms-koder går inte att använda.",
        )
    number = claims.get(PERSONNUMMER_CLAIM)
    if not isinstance(number, str) or len(number) != 12 or not number.isdigit():
        raise LoginRefused("bad_personnummer", technical)
    try:
        person = parse_personal_number(number, today)
    except InvalidIdentifier as exc:
        raise LoginRefused("bad_personnummer", technical) from exc
    if person.age_on(today) < min_age:
        raise LoginRefused(
            "under_age",
            f"Du måste ha fyllt {min_age} år för att använda Mina intyg. Din vårdnadshavare kan inte se dina "
            "intyg här; kontakta din vårdenhet om du behöver ditt intyg.",
        )
    given = claims.get("given_name")
    family = claims.get("family_name")
    if not isinstance(given, str) or not isinstance(family, str):
        raise LoginRefused("missing_name", technical)
    return Identity(personnummer=person.digits, given_name=given, family_name=family, loa=loa)


class OidcClient:
    """The portal's relying party: discovery and JWKS fetched from the issuer and cached (refetched once when an
    ID token names a key we do not know, which is how key rotation shows)."""

    def __init__(self, settings: PortalSettings, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self._settings = settings
        self._transport = transport
        self._metadata: dict[str, Any] | None = None
        self._keys: KeySet | None = None
        self._keys_fetched = 0.0
        self._lock = asyncio.Lock()

    def _http(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=self._transport, timeout=10.0)

    async def metadata(self) -> dict[str, Any]:
        if self._metadata is None:
            async with self._http() as http:
                response = await http.get(f"{self._settings.oidc_issuer}/.well-known/openid-configuration")
                response.raise_for_status()
                metadata: dict[str, Any] = response.json()
            if metadata.get("issuer") != self._settings.oidc_issuer:
                raise LoginRefused("issuer_mismatch", "Inloggningstjänsten svarar inte som väntat.")
            self._metadata = metadata
        return self._metadata

    async def keys(self, *, refresh: bool = False) -> KeySet:
        async with self._lock:
            # At most one refresh a second: a stream of tokens with unknown kids must not hammer the provider.
            if self._keys is None or (refresh and time.monotonic() - self._keys_fetched > 1):
                metadata = await self.metadata()
                async with self._http() as http:
                    response = await http.get(metadata["jwks_uri"])
                    response.raise_for_status()
                self._keys = KeySet.import_key_set(response.json())
                self._keys_fetched = time.monotonic()
            return self._keys

    async def authorization_url(self, *, state: str, nonce: str, code_verifier: str) -> str:
        """Where to send the browser: authorization code flow with PKCE (S256), nonce and the wanted level."""
        metadata = await self.metadata()
        s = self._settings
        params = [
            ("response_type", "code"),
            ("client_id", s.oidc_client_id),
            ("redirect_uri", s.redirect_uri),
            ("scope", "openid profile"),
            ("state", state),
            ("nonce", nonce),
            ("code_challenge", create_s256_code_challenge(code_verifier)),
            ("code_challenge_method", "S256"),
            ("acr_values", f"http://id.elegnamnden.se/loa/1.0/loa{s.oidc_min_loa}"),
        ]
        url: str = add_params_to_uri(metadata["authorization_endpoint"], params)
        return url

    async def exchange(self, code: str, code_verifier: str) -> str:
        """Trade the authorization code for tokens (client_secret_basic); returns the unvalidated ID token."""
        metadata = await self.metadata()
        s = self._settings
        async with self._http() as http:
            response = await http.post(
                metadata["token_endpoint"],
                data={"grant_type": "authorization_code", "code": code, "redirect_uri": s.redirect_uri,
                      "code_verifier": code_verifier},
                auth=(s.oidc_client_id, s.oidc_client_secret.get_secret_value()),
                headers={"Accept": "application/json"},
            )  # fmt: skip
        if response.status_code != 200:
            raise LoginRefused(f"token_endpoint_{response.status_code}", "Inloggningen kunde inte slutföras. "
                               "Försök logga in igen.")  # fmt: skip
        id_token = response.json().get("id_token")
        if not isinstance(id_token, str):
            raise LoginRefused("no_id_token", "Inloggningen kunde inte verifieras. Försök logga in igen.")
        return id_token

    async def identity(self, id_token: str, nonce: str, *, now: int, today: date) -> Identity:
        s = self._settings
        params: dict[str, Any] = {
            "issuer": s.oidc_issuer,
            "client_id": s.oidc_client_id,
            "nonce": nonce,
            "now": now,
            "today": today,
            "min_loa": s.oidc_min_loa,
            "min_age": s.min_age_years,
        }
        try:
            return validate_id_token(id_token, await self.keys(), **params)
        except LoginRefused as exc:
            if exc.code != "unknown_key":
                raise
        return validate_id_token(id_token, await self.keys(refresh=True), **params)

    async def end_session_url(self, id_token_hint: str | None, post_logout_redirect_uri: str) -> str | None:
        try:
            metadata = await self.metadata()
        except (httpx.HTTPError, LoginRefused):
            return None
        endpoint = metadata.get("end_session_endpoint")
        if not endpoint:
            return None
        query = {"post_logout_redirect_uri": post_logout_redirect_uri}
        if id_token_hint:
            query["id_token_hint"] = id_token_hint
        return f"{endpoint}?{urlencode(query)}"

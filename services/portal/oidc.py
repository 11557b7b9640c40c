"""Login with e-legitimation over OpenID Connect, as the Swedish OpenID Connect profile and OpenID Connect Core
describe it: authorization code + PKCE (S256, Authlib's implementation) and nonce; ID-token validation with joserfc
(Authlib's JOSE library); identity claims from the ID token or, when it does not carry them, from userinfo.

What a conformant provider expects of us, and where it is done:
- Discovery (OpenID Connect Discovery §4): `/.well-known/openid-configuration` appended to the issuer with any
  trailing slash removed; the metadata's `issuer` must equal the configured issuer exactly (§4.3).
- Scopes of the Swedish profile: `https://id.oidc.se/scope/naturalPersonNumber` (personnummer or samordningsnummer,
  in the ID token and in userinfo) and `https://id.oidc.se/scope/naturalPersonInfo` (names, in userinfo).
- The authorization response's `iss` (RFC 9207) must equal the issuer when sent, and must be sent when the
  provider's metadata says it sends it.
- Client authentication at the token endpoint: `client_secret_basic` with both parts form-encoded first
  (RFC 6749 §2.3.1), or `private_key_jwt` (RFC 7523, OpenID Connect Core §9); a setting, or chosen from the
  provider's `token_endpoint_auth_methods_supported`.
- Userinfo (Core §5.3): fetched with the access token when the ID token lacks identity claims; its `sub` must equal
  the ID token's (§5.3.2).
- The JWKS is cached for a lifetime and refetched after it, and at once (at most once a second) for an unknown
  `kid`: a rotated-in key is found, and a key the provider withdraws stops being trusted.

The ID token is trusted only after: signature by a key from the provider's JWKS with an allowed algorithm
(RS256 or ES256; `none` and HMAC are refused), the configured issuer and audience, unexpired, the nonce of this
login, assurance level 3 or higher; the identity only with a valid personnummer or samordningsnummer of a person
at least 16 years old.

Every failure is a `LoginRefused` with a `kind` the operator can act on (see `LoginFailure`) and Swedish text for
the citizen that says whether trying again helps. None of them carries a personnummer or a name.
"""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from typing import Any
from urllib.parse import quote_plus

import httpx
from authlib.common.urls import add_params_to_uri
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from joserfc import jwt
from joserfc.errors import ExpiredTokenError, InvalidKeyIdError, JoseError
from joserfc.jwk import ECKey, KeySet, RSAKey

from schemas.identifiers import InvalidIdentifier, parse_personal_number
from services.portal.domain import assurance_level
from services.portal.settings import PortalSettings

ALLOWED_ALGORITHMS = ("RS256", "ES256")
PERSONNUMMER_CLAIM = "https://id.oidc.se/claim/personalIdentityNumber"
COORDINATION_NUMBER_CLAIM = "https://id.oidc.se/claim/coordinationNumber"
NATURAL_PERSON_NUMBER_SCOPE = "https://id.oidc.se/scope/naturalPersonNumber"
NATURAL_PERSON_INFO_SCOPE = "https://id.oidc.se/scope/naturalPersonInfo"
DEFAULT_SCOPES = ("openid", NATURAL_PERSON_INFO_SCOPE, NATURAL_PERSON_NUMBER_SCOPE)
LOA_URI = "http://id.elegnamnden.se/loa/1.0/loa{}"
CLIENT_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
CLIENT_AUTH_METHODS = ("client_secret_basic", "private_key_jwt")
CLOCK_SKEW_SECONDS = 60

RETRY_LOGIN = "Försök logga in igen."
RETRY_LATER = "Försök igen om en stund."
NO_RETRY = "Det hjälper inte att försöka igen just nu; felet är anmält till oss som driver Mina intyg."


class LoginFailure(StrEnum):
    """What went wrong, as the operator needs to tell it apart (each is logged as its own event)."""

    UNREACHABLE = "idp_unreachable"  # network, timeout, 5xx: the provider is down or unreachable
    ISSUER_MISMATCH = "issuer_mismatch"  # metadata, `iss` parameter: configuration or a mix-up attack
    TOKEN_REFUSED = "token_refused"  # noqa: S105 - a name, not a secret. The token endpoint or userinfo refused us, or a token failed validation
    CITIZEN_REFUSED = "citizen_refused"  # a valid login of someone who may not use the service (loa, age)


class LoginRefused(Exception):
    """The login cannot go on; `message` is Swedish text for the citizen (saying whether to retry), `code` names
    the reason and `kind` the class of failure (both logged, never the personnummer)."""

    def __init__(self, code: str, message: str, kind: LoginFailure = LoginFailure.TOKEN_REFUSED) -> None:
        super().__init__(code)
        self.code = code
        self.message = message
        self.kind = kind

    @property
    def retry(self) -> bool:
        """Whether trying again may help (the citizen's message says so in Swedish)."""
        return self.kind in (LoginFailure.UNREACHABLE, LoginFailure.TOKEN_REFUSED)


def _technical(code: str) -> LoginRefused:
    return LoginRefused(code, f"Inloggningen kunde inte verifieras. {RETRY_LOGIN}")


def unreachable(code: str) -> LoginRefused:
    return LoginRefused(code, f"Vi kunde inte nå inloggningstjänsten. {RETRY_LATER}", LoginFailure.UNREACHABLE)


def issuer_mismatch(code: str) -> LoginRefused:
    return LoginRefused(code, f"Inloggningstjänsten svarar inte som väntat. {NO_RETRY}", LoginFailure.ISSUER_MISMATCH)


@dataclass(frozen=True)
class Identity:
    personnummer: str  # 12 digits (a personnummer or a samordningsnummer)
    given_name: str
    family_name: str
    loa: int
    subject: str = ""


def verify_id_token(
    token: str,
    keys: KeySet,
    *,
    issuer: str,
    client_id: str,
    nonce: str,
    now: int,
    min_loa: int = 3,
) -> dict[str, Any]:
    """The claims of an ID token that is signed, ours, fresh and of a high enough level; or LoginRefused."""
    try:
        decoded = jwt.decode(token, keys, algorithms=list(ALLOWED_ALGORITHMS))
    except InvalidKeyIdError as exc:
        raise _technical("unknown_key") from exc
    except JoseError as exc:
        raise _technical(f"bad_token:{type(exc).__name__}") from exc
    if decoded.header.get("alg") not in ALLOWED_ALGORITHMS:  # joserfc checked it; stated for the reader
        raise _technical("bad_algorithm")
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
        raise LoginRefused("expired", f"Inloggningen tog för lång tid. {RETRY_LOGIN}") from exc
    except JoseError as exc:
        raise _technical(f"bad_claims:{type(exc).__name__}:{getattr(exc, 'claim', '')}") from exc
    audience = claims["aud"]
    if isinstance(audience, list) and len(audience) > 1 and claims.get("azp") != client_id:
        raise _technical("bad_azp")
    loa = assurance_level(claims.get("acr"))
    if loa is None or loa < min_loa:
        raise LoginRefused(
            "loa_too_low",
            "Du behöver logga in med en e-legitimation med tillitsnivå 3 eller högre, till exempel BankID. "
            "Lösenord och sms-koder går inte att använda. Försök igen med en sådan e-legitimation.",
            LoginFailure.CITIZEN_REFUSED,
        )
    return claims


def has_identity_claims(claims: dict[str, Any]) -> bool:
    """Whether the claims name the person (a number and both names): otherwise userinfo has them."""
    number = claims.get(PERSONNUMMER_CLAIM) or claims.get(COORDINATION_NUMBER_CLAIM)
    return bool(number) and all(isinstance(claims.get(n), str) for n in ("given_name", "family_name"))


def identity_from_claims(claims: dict[str, Any], *, today: date, min_age: int = 16) -> Identity:
    """The person the (verified) claims name: a valid personnummer or samordningsnummer, 16 or older, named."""
    number = claims.get(PERSONNUMMER_CLAIM)
    if number is None:
        number = claims.get(COORDINATION_NUMBER_CLAIM)
    if not isinstance(number, str) or len(number) != 12 or not number.isdigit():
        raise _technical("bad_personnummer")
    try:
        person = parse_personal_number(number, today)
    except InvalidIdentifier as exc:
        raise _technical("bad_personnummer") from exc
    if COORDINATION_NUMBER_CLAIM in claims and PERSONNUMMER_CLAIM not in claims and not person.coordination_number:
        raise _technical("bad_coordination_number")
    if person.age_on(today) < min_age:
        raise LoginRefused(
            "under_age",
            f"Du måste ha fyllt {min_age} år för att använda Mina intyg. Din vårdnadshavare kan inte se dina "
            "intyg här; kontakta din vårdenhet om du behöver ditt intyg.",
            LoginFailure.CITIZEN_REFUSED,
        )
    given = claims.get("given_name")
    family = claims.get("family_name")
    if not isinstance(given, str) or not isinstance(family, str):
        raise _technical("missing_name")
    loa = assurance_level(claims.get("acr")) or 0
    return Identity(person.digits, given, family, loa, str(claims.get("sub", "")))


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
    """The identity in an ID token that carries the identity claims itself, or LoginRefused saying why not."""
    claims = verify_id_token(token, keys, issuer=issuer, client_id=client_id, nonce=nonce, now=now, min_loa=min_loa)
    return identity_from_claims(claims, today=today, min_age=min_age)


def client_secret_basic(client_id: str, secret: str) -> str:
    """The Authorization header of RFC 6749 §2.3.1: id and secret form-encoded, then joined and base64-encoded."""
    pair = f"{quote_plus(client_id)}:{quote_plus(secret)}"
    return "Basic " + base64.b64encode(pair.encode()).decode()


def load_client_key(text: str) -> RSAKey | ECKey:
    """The private key of private_key_jwt: a PEM or a JWK (JSON), RSA or EC."""
    data: str | dict[str, Any] = text
    if text.lstrip().startswith("{"):
        data = json.loads(text)
    try:
        return RSAKey.import_key(data)
    except (ValueError, JoseError):
        return ECKey.import_key(data)


@dataclass(frozen=True)
class Tokens:
    """The token response's parts we use (both unvalidated until `identity`)."""

    id_token: str
    access_token: str


class OidcClient:
    """The portal's relying party: discovery and JWKS fetched from the issuer and cached for a lifetime."""

    def __init__(
        self,
        settings: PortalSettings,
        transport: httpx.AsyncBaseTransport | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._settings = settings
        self._transport = transport
        self._monotonic = monotonic
        self._metadata: dict[str, Any] | None = None
        self._metadata_fetched = 0.0
        self._keys: KeySet | None = None
        self._keys_fetched = 0.0
        self._lock = asyncio.Lock()
        key_text = settings.oidc_client_private_key.get_secret_value()
        self._client_key = load_client_key(key_text) if key_text else None

    def _http(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=self._transport, timeout=10.0)

    async def _get_json(self, url: str, what: str) -> Any:
        try:
            async with self._http() as http:
                response = await http.get(url, headers={"Accept": "application/json"})
        except httpx.HTTPError as exc:
            raise unreachable(f"{what}:{type(exc).__name__}") from exc
        if response.status_code >= 500:
            raise unreachable(f"{what}_{response.status_code}")
        if response.status_code != 200:
            raise issuer_mismatch(f"{what}_{response.status_code}")  # a wrong issuer URL, most often
        try:
            return response.json()
        except ValueError as exc:
            raise issuer_mismatch(f"{what}_not_json") from exc

    @property
    def discovery_url(self) -> str:
        """OpenID Connect Discovery §4: the well-known path after the issuer without its trailing slash."""
        return self._settings.oidc_issuer.rstrip("/") + "/.well-known/openid-configuration"

    async def metadata(self) -> dict[str, Any]:
        lifetime = self._settings.oidc_metadata_seconds
        if self._metadata is None or self._monotonic() - self._metadata_fetched > lifetime:
            metadata = await self._get_json(self.discovery_url, "discovery")
            if not isinstance(metadata, dict) or metadata.get("issuer") != self._settings.oidc_issuer:
                raise issuer_mismatch("issuer_mismatch")
            if not all(
                isinstance(metadata.get(k), str) for k in ("authorization_endpoint", "token_endpoint", "jwks_uri")
            ):
                raise issuer_mismatch("metadata_incomplete")
            self._metadata = metadata
            self._metadata_fetched = self._monotonic()
        return self._metadata

    async def keys(self, *, refresh: bool = False) -> KeySet:
        async with self._lock:
            age = self._monotonic() - self._keys_fetched
            # A refresh for an unknown kid at most once a second: a stream of such tokens must not hammer the
            # provider. After the lifetime the set is refetched whatever happens, so withdrawn keys drop out.
            if self._keys is None or age > self._settings.oidc_jwks_seconds or (refresh and age > 1):
                metadata = await self.metadata()
                jwks = await self._get_json(metadata["jwks_uri"], "jwks")
                try:
                    self._keys = KeySet.import_key_set(jwks)
                except (ValueError, TypeError, KeyError, JoseError) as exc:
                    raise _technical("bad_jwks") from exc
                self._keys_fetched = self._monotonic()
            return self._keys

    @property
    def scopes(self) -> str:
        return " ".join(self._settings.oidc_scopes)

    async def authorization_url(self, *, state: str, nonce: str, code_verifier: str) -> str:
        """Where to send the browser: authorization code flow with PKCE (S256), nonce and the wanted level."""
        metadata = await self.metadata()
        s = self._settings
        params = [
            ("response_type", "code"),
            ("client_id", s.oidc_client_id),
            ("redirect_uri", s.redirect_uri),
            ("scope", self.scopes),
            ("state", state),
            ("nonce", nonce),
            ("code_challenge", create_s256_code_challenge(code_verifier)),
            ("code_challenge_method", "S256"),
            ("acr_values", " ".join(LOA_URI.format(level) for level in range(s.oidc_min_loa, 5))),
            ("ui_locales", "sv"),
        ]
        url: str = add_params_to_uri(metadata["authorization_endpoint"], params)
        return url

    async def check_response_issuer(self, iss: str | None) -> None:
        """RFC 9207: the authorization response's `iss` equals our issuer; required when the provider says it
        sends one."""
        metadata = await self.metadata()
        if iss is None:
            if metadata.get("authorization_response_iss_parameter_supported") is True:
                raise issuer_mismatch("iss_parameter_missing")
            return
        if iss != self._settings.oidc_issuer:
            raise issuer_mismatch("iss_parameter_mismatch")

    async def client_auth_method(self) -> str:
        """The configured method, or (auto) private_key_jwt when we hold a key and the provider takes it."""
        method = self._settings.oidc_client_auth_method
        if method != "auto":
            return method
        supported = (await self.metadata()).get("token_endpoint_auth_methods_supported") or ["client_secret_basic"]
        if self._client_key is not None and "private_key_jwt" in supported:
            return "private_key_jwt"
        return "client_secret_basic"

    def client_assertion(self, audience: str, now: int) -> str:
        """RFC 7523 §3 / OpenID Connect Core §9: a short-lived JWT signed with our key, once per request."""
        if self._client_key is None:
            raise _technical("no_client_key")
        client_id = self._settings.oidc_client_id
        claims = {
            "iss": client_id,
            "sub": client_id,
            "aud": audience,
            "jti": secrets.token_urlsafe(24),
            "iat": now,
            "exp": now + 60,
        }
        alg = "RS256" if isinstance(self._client_key, RSAKey) else "ES256"
        header = {"alg": alg, "typ": "JWT"}
        if self._client_key.kid:
            header["kid"] = self._client_key.kid
        return jwt.encode(header, claims, self._client_key, algorithms=[alg])

    async def exchange(self, code: str, code_verifier: str) -> Tokens:
        """Trade the authorization code for tokens (unvalidated: `identity` validates them)."""
        metadata = await self.metadata()
        s = self._settings
        data = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": s.redirect_uri,
            "code_verifier": code_verifier,
        }
        headers = {"Accept": "application/json"}
        method = await self.client_auth_method()
        if method == "private_key_jwt":
            # The audience is the token endpoint (Core §9); providers also accept it where RFC 7523 says issuer.
            data["client_id"] = s.oidc_client_id
            data["client_assertion_type"] = CLIENT_ASSERTION_TYPE
            data["client_assertion"] = self.client_assertion(metadata["token_endpoint"], int(time.time()))
        else:
            headers["Authorization"] = client_secret_basic(s.oidc_client_id, s.oidc_client_secret.get_secret_value())
        try:
            async with self._http() as http:
                response = await http.post(metadata["token_endpoint"], data=data, headers=headers)
        except httpx.HTTPError as exc:
            raise unreachable(f"token:{type(exc).__name__}") from exc
        if response.status_code >= 500:
            raise unreachable(f"token_endpoint_{response.status_code}")
        if response.status_code != 200:
            error = _oauth_error(response)
            raise LoginRefused(
                f"token_endpoint_{response.status_code}:{error}", f"Inloggningen kunde inte slutföras. {RETRY_LOGIN}"
            )
        try:
            body = response.json()
        except ValueError as exc:
            raise _technical("token_not_json") from exc
        id_token, access_token = body.get("id_token"), body.get("access_token")
        if not isinstance(id_token, str) or not isinstance(access_token, str):
            raise _technical("no_id_token")
        return Tokens(id_token=id_token, access_token=access_token)

    async def userinfo(self, access_token: str) -> dict[str, Any]:
        """The userinfo claims (Core §5.3), as JSON; a signed userinfo response is not asked for."""
        metadata = await self.metadata()
        endpoint = metadata.get("userinfo_endpoint")
        if not endpoint:
            raise _technical("no_userinfo_endpoint")
        try:
            async with self._http() as http:
                response = await http.get(
                    endpoint, headers={"Authorization": f"Bearer {access_token}", "Accept": "application/json"}
                )
        except httpx.HTTPError as exc:
            raise unreachable(f"userinfo:{type(exc).__name__}") from exc
        if response.status_code >= 500:
            raise unreachable(f"userinfo_{response.status_code}")
        if response.status_code != 200 or not response.headers.get("content-type", "").startswith("application/json"):
            raise _technical(f"userinfo_{response.status_code}")
        try:
            claims = response.json()
        except ValueError as exc:
            raise _technical("userinfo_not_json") from exc
        if not isinstance(claims, dict):
            raise _technical("userinfo_not_object")
        return claims

    async def identity(self, tokens: Tokens, nonce: str, *, now: int, today: date) -> Identity:
        """The validated person of a login: the ID token verified, identity claims from it or from userinfo."""
        s = self._settings
        params: dict[str, Any] = {
            "issuer": s.oidc_issuer,
            "client_id": s.oidc_client_id,
            "nonce": nonce,
            "now": now,
            "min_loa": s.oidc_min_loa,
        }
        try:
            claims = verify_id_token(tokens.id_token, await self.keys(), **params)
        except LoginRefused as exc:
            if exc.code != "unknown_key":
                raise
            claims = verify_id_token(tokens.id_token, await self.keys(refresh=True), **params)
        if not has_identity_claims(claims):
            info = await self.userinfo(tokens.access_token)
            if info.get("sub") != claims["sub"]:
                raise _technical("userinfo_sub_mismatch")  # Core §5.3.2: the response must not be used
            # The ID token's signed claims win over userinfo's; userinfo fills in what the token lacks.
            claims = {**{k: v for k, v in info.items() if k not in ("iss", "aud")}, **claims}
        return identity_from_claims(claims, today=today, min_age=s.min_age_years)

    async def end_session_url(self, post_logout_redirect_uri: str) -> str | None:
        """RP-initiated logout (RP-Initiated Logout 1.0 §2) without the ID token: `client_id` names us instead of
        `id_token_hint`, so no personnummer or name lands in a URL of browser history or the provider's logs. A
        top-level GET, because the provider's own session cookie is SameSite=Lax and a cross-site POST would
        arrive without it. The provider then ends its session by that cookie (most ask the person to confirm)."""
        try:
            metadata = await self.metadata()
        except LoginRefused:
            return None
        endpoint = metadata.get("end_session_endpoint")
        if not endpoint:
            return None
        params = [("client_id", self._settings.oidc_client_id), ("post_logout_redirect_uri", post_logout_redirect_uri)]
        url: str = add_params_to_uri(endpoint, params)
        return url


def _oauth_error(response: httpx.Response) -> str:
    """The OAuth `error` code of a refused token request (short and free of personal data), for the log."""
    try:
        error = response.json().get("error", "")
    except (ValueError, AttributeError):
        return ""
    return error[:40] if isinstance(error, str) and error.replace("_", "").isalnum() else ""


LOG_EVENTS = {
    LoginFailure.UNREACHABLE: "portal.login.idp_unreachable",
    LoginFailure.ISSUER_MISMATCH: "portal.login.issuer_mismatch",
    LoginFailure.TOKEN_REFUSED: "portal.login.token_refused",
    LoginFailure.CITIZEN_REFUSED: "portal.login.refused",
}


@dataclass(frozen=True)
class RefusalPage:
    """How the portal answers a refused login: the log event, the page's title and its HTTP status."""

    event: str
    title: str
    status: int


def refusal_page(exc: LoginRefused) -> RefusalPage:
    event = LOG_EVENTS[exc.kind]
    if exc.kind is LoginFailure.UNREACHABLE:
        return RefusalPage(event, "Inloggningen är inte tillgänglig just nu", 503)
    if exc.kind is LoginFailure.ISSUER_MISMATCH:
        return RefusalPage(event, "Inloggningen är inte tillgänglig", 502)
    if exc.kind is LoginFailure.CITIZEN_REFUSED:
        return RefusalPage(event, "Inloggningen nekades", 403)
    return RefusalPage(event, "Inloggningen misslyckades", 403)

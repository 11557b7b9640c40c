"""The OpenID Connect provider: Authlib's authorization server, wired to in-memory state and the key ring.

Authlib does the protocol (request validation, client authentication, the code grant, PKCE, `nonce`, error
responses, RP-initiated logout); this module supplies what Authlib leaves to its user: the client, storage of
codes, tokens and sessions, the ID token's claims and signature, and the glue to Starlette requests. The simulator
is one process, so its state is a few dictionaries, pruned as they expire, and changed only on the event loop.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import secrets
import time
import warnings
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Literal
from urllib.parse import unquote_plus, urlsplit

import orjson
from authlib.common.security import generate_token
from authlib.oauth2.rfc6749 import (
    AuthorizationServer,
    ClientMixin,
    InvalidRequestError,
    InvalidScopeError,
    OAuth2Error,
    OAuth2Payload,
    OAuth2Request,
    ResourceProtector,
    TokenMixin,
    scope_to_list,
)
from authlib.oauth2.rfc6749.grants import AuthorizationCodeGrant
from authlib.oauth2.rfc6750 import BearerTokenGenerator, BearerTokenValidator
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oidc.core import AuthorizationCodeMixin
from authlib.oidc.core.grants import OpenIDCode
from authlib.oidc.core.util import create_half_hash
from authlib.oidc.rpinitiated import EndSessionEndpoint, EndSessionRequest
from joserfc import jwt
from joserfc.errors import SecurityWarning
from joserfc.jwk import KeySet, OctKey, RSAKey
from pydantic import Field
from starlette.responses import Response

from deploy.simulators.idp.keys import ALGORITHM, KEY_BITS, KeyRing
from deploy.simulators.idp.persons import TestPerson, pseudonymous_subject, scope_claims
from deploy.simulators.idp.settings import IdpsimSettings
from schemas.base import Frozen

Clock = Callable[[], float]

LOA_PREFIX = "http://id.elegnamnden.se/loa/1.0/"
ASSURANCE_LEVELS = ("loa2", "loa3", "loa4")
ACR_VALUES = tuple(LOA_PREFIX + level for level in ASSURANCE_LEVELS)
NATURAL_PERSON_INFO = "https://id.oidc.se/scope/naturalPersonInfo"
NATURAL_PERSON_NUMBER = "https://id.oidc.se/scope/naturalPersonNumber"
SCOPES = ("openid", "profile", NATURAL_PERSON_INFO, NATURAL_PERSON_NUMBER)
LOOPBACK_CALLBACK_PATH = "/auth/callback"
LOOPBACK_LOGOUT_PATH = "/"


class IdTokenOverrides(Frozen):
    """Tampering applied to the next ID token only (security tests of relying parties)."""

    alg: Literal["none", "HS256"] | None = Field(
        None, description="Sign with no algorithm, or with HS256 keyed by the client secret, instead of RS256"
    )
    sign_with_unknown_key: bool = Field(
        False, description="RS256 with a fresh key that is not in the JWKS (under the current key's kid)"
    )
    audience: str | None = Field(None, description="The `aud` claim instead of the client id")
    issuer: str | None = Field(None, description="The `iss` claim instead of the issuer")
    expires_in: int | None = Field(
        None, description="Seconds from now to `exp`; negative gives a token that has already expired"
    )
    nonce: str | None = Field(None, description="The `nonce` claim instead of the one the client sent")
    acr: str | None = Field(None, description="The `acr` claim instead of the chosen assurance level")
    omit_claims: list[str] = Field(default_factory=list, description="Claims left out of the token")


# --- the models Authlib asks for ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Client(ClientMixin):  # type: ignore[misc]
    """The one registered relying party: the portal (a confidential client)."""

    client_id: str
    client_secret: str
    redirect_uris: tuple[str, ...]
    post_logout_redirect_uris: tuple[str, ...]
    allow_loopback: bool

    @property
    def client_metadata(self) -> dict[str, Any]:
        return {"post_logout_redirect_uris": list(self.post_logout_redirect_uris)}

    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> str | None:
        return None  # OpenID Connect: redirect_uri is required

    def get_allowed_scope(self, scope: str | None) -> str:
        requested = scope_to_list(scope) or []
        return " ".join(s for s in SCOPES if s in requested)

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return redirect_uri in self.redirect_uris or (
            self.allow_loopback and is_loopback_uri(redirect_uri, LOOPBACK_CALLBACK_PATH)
        )

    def check_post_logout_redirect_uri(self, uri: str) -> bool:
        return uri in self.post_logout_redirect_uris or (
            self.allow_loopback and is_loopback_uri(uri, LOOPBACK_LOGOUT_PATH)
        )

    def check_client_secret(self, client_secret: str) -> bool:
        return hmac.compare_digest(client_secret.encode(), self.client_secret.encode())

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return endpoint == "token" and method in ("client_secret_basic", "client_secret_post")

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code"

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type == "authorization_code"


def is_loopback_uri(uri: str, path: str) -> bool:
    """http://127.0.0.1:<port><path>, nothing more (no query, fragment or user info)."""
    try:
        parts = urlsplit(uri)
        port = parts.port
    except ValueError:
        return False
    return (
        parts.scheme == "http"
        and parts.netloc == f"127.0.0.1:{port}"
        and port is not None
        and parts.path == path
        and not parts.query
        and not parts.fragment
    )


@dataclass(frozen=True)
class Authentication:
    """Who logged in, how, and when: the 'user' Authlib carries from the page to the token."""

    person: TestPerson
    subject: str
    acr: str
    auth_time: int
    sid: str


@dataclass
class AuthorizationCode(AuthorizationCodeMixin):  # type: ignore[misc]
    code: str
    client_id: str
    redirect_uri: str
    scope: str
    nonce: str | None
    code_challenge: str | None
    code_challenge_method: str | None
    authentication: Authentication
    expires_at: float

    def get_redirect_uri(self) -> str:
        return self.redirect_uri

    def get_scope(self) -> str:
        return self.scope

    def get_nonce(self) -> str | None:
        return self.nonce

    def get_auth_time(self) -> int:
        return self.authentication.auth_time

    def get_acr(self) -> str:
        return self.authentication.acr

    def get_amr(self) -> list[str] | None:
        return None


@dataclass
class AccessToken(TokenMixin):  # type: ignore[misc]
    access_token: str
    client: Client
    scope: str
    authentication: Authentication
    expires_at: float
    clock: Clock
    revoked: bool = False

    def check_client(self, client: Client) -> bool:
        return client.client_id == self.client.client_id

    def get_scope(self) -> str:
        return self.scope

    def get_expires_in(self) -> int:
        return max(0, int(self.expires_at - self.clock()))

    def is_expired(self) -> bool:
        return self.clock() >= self.expires_at

    def is_revoked(self) -> bool:
        return self.revoked

    def get_user(self) -> Authentication:
        return self.authentication

    def get_client(self) -> Client:
        return self.client


@dataclass(frozen=True)
class Transaction:
    """A validated authorization request waiting for the person on the BankID (test) page."""

    txn: str
    params: tuple[tuple[str, str], ...]
    expires_at: float

    def param(self, name: str) -> str | None:
        return next((v for k, v in self.params if k == name), None)


@dataclass
class State:
    """Everything the simulator remembers; all of it expires, and DELETE /sim/state forgets it at once."""

    transactions: dict[str, Transaction] = field(default_factory=dict)
    codes: dict[str, AuthorizationCode] = field(default_factory=dict)
    used_codes: dict[str, float] = field(default_factory=dict)  # code -> when to forget it was used
    tokens: dict[str, AccessToken] = field(default_factory=dict)
    tokens_by_code: dict[str, list[str]] = field(default_factory=dict)
    nonces: dict[tuple[str, str], float] = field(default_factory=dict)  # (client_id, nonce) -> forget at
    sessions: dict[str, Authentication] = field(default_factory=dict)

    def clear(self) -> None:
        for part in (
            self.transactions,
            self.codes,
            self.used_codes,
            self.tokens,
            self.tokens_by_code,
            self.nonces,
            self.sessions,
        ):
            part.clear()

    def prune(self, now: float) -> None:
        for txn in [t for t, v in self.transactions.items() if v.expires_at <= now]:
            del self.transactions[txn]
        for code in [c for c, v in self.codes.items() if v.expires_at <= now]:
            del self.codes[code]
        for code in [c for c, until in self.used_codes.items() if until <= now]:
            del self.used_codes[code]
            self.tokens_by_code.pop(code, None)
        for key in [k for k, until in self.nonces.items() if until <= now]:
            del self.nonces[key]
        expired = [t for t, v in self.tokens.items() if v.expires_at <= now]
        for token in expired:
            del self.tokens[token]
        live_sids = {t.authentication.sid for t in self.tokens.values()}
        for sid in [s for s, a in self.sessions.items() if sid_expired(a, now) and s not in live_sids]:
            del self.sessions[sid]


SESSION_SECONDS = 12 * 3600


def sid_expired(authentication: Authentication, now: float) -> bool:
    return authentication.auth_time + SESSION_SECONDS <= now


# --- Authlib on Starlette ------------------------------------------------------------------------------------


class _Payload(OAuth2Payload):  # type: ignore[misc]
    def __init__(self, items: Iterable[tuple[str, str]]) -> None:
        self._datalist: defaultdict[str, list[str]] = defaultdict(list)
        for key, value in items:
            self._datalist[key].append(value)
        self._data = {key: values[0] for key, values in self._datalist.items()}

    @property
    def data(self) -> dict[str, str]:
        return self._data

    @property
    def datalist(self) -> defaultdict[str, list[str]]:
        return self._datalist


class SimRequest(OAuth2Request):  # type: ignore[misc]
    """An already-read HTTP request in the shape Authlib's (synchronous) server reads."""

    def __init__(
        self,
        method: str,
        uri: str,
        items: Iterable[tuple[str, str]],
        headers: Mapping[str, str] | None = None,
        session_id: str | None = None,
    ) -> None:
        super().__init__(method, uri, headers=headers or {})
        pairs = list(items)
        self.payload = _Payload(pairs)
        self._form = _Payload(pairs if method == "POST" else []).data
        self._args = _Payload([] if method == "POST" else pairs).data
        self.params = tuple(pairs)
        self.session_id = session_id

    @property
    def form(self) -> dict[str, str]:
        return self._form

    @property
    def args(self) -> dict[str, str]:
        return self._args


def to_response(status: int, body: Any, headers: Iterable[tuple[str, str]]) -> Response:
    """An Authlib (status, body, headers) triple as a Starlette response."""
    header_map = dict(headers)
    if isinstance(body, dict):
        header_map.pop("Content-Type", None)
        return Response(orjson.dumps(body), status_code=status, headers=header_map, media_type="application/json")
    return Response(body or b"", status_code=status, headers=header_map)


class _Server(AuthorizationServer):  # type: ignore[misc]
    def __init__(self, provider: Provider) -> None:
        super().__init__(scopes_supported=list(SCOPES))
        self.provider = provider

    def query_client(self, client_id: str) -> Client | None:
        client = self.provider.client
        return client if hmac.compare_digest(client_id.encode(), client.client_id.encode()) else None

    def save_token(self, token: dict[str, Any], request: OAuth2Request) -> None:
        self.provider.save_access_token(token, request)

    def create_oauth2_request(self, request: Any) -> OAuth2Request:
        if not isinstance(request, SimRequest):
            raise TypeError("the simulator passes its requests already read")
        return request

    def handle_response(self, status: int, body: Any, headers: Iterable[tuple[str, str]]) -> Response:
        return to_response(status, body, headers)

    def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
        return None

    def validate_requested_scope(self, scope: str | None) -> None:
        # Unknown scopes are ignored (OpenID Connect Core 3.1.2.1); openid is what makes this a login.
        if "openid" not in (scope_to_list(scope) or []):
            raise InvalidScopeError("The 'openid' scope is required.")


def rfc6749_client_secret_basic(query_client: Callable[[str], Client | None], request: OAuth2Request) -> Client | None:
    """client_secret_basic as RFC 6749 §2.3.1 has it: both parts form-decoded (`+` is a space, `%2B` a plus) after
    base64. Authlib percent-decodes only, so a client that skips the form-encoding would pass here and fail at a
    conformant provider."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(token.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    if ":" not in decoded:
        return None
    raw_id, raw_secret = decoded.split(":", 1)
    client = query_client(unquote_plus(raw_id))
    if client is None or not client.check_client_secret(unquote_plus(raw_secret)):
        return None
    return client


class _CodeGrant(AuthorizationCodeGrant):  # type: ignore[misc]
    TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post"]  # noqa: RUF012 - Authlib's API

    @property
    def provider(self) -> Provider:
        provider: Provider = self.server.provider
        return provider

    def save_authorization_code(self, code: str, request: OAuth2Request) -> None:
        self.provider.save_code(code, request)

    def query_authorization_code(self, code: str, client: Client) -> AuthorizationCode | None:
        return self.provider.find_code(code, client)

    def delete_authorization_code(self, authorization_code: AuthorizationCode) -> None:
        self.provider.spend_code(authorization_code)

    def authenticate_user(self, authorization_code: AuthorizationCode) -> Authentication:
        return authorization_code.authentication


class _S256Only(CodeChallenge):  # type: ignore[misc]
    """PKCE required for every client, S256 only: a missing method means plain (RFC 7636 4.3), refused."""

    SUPPORTED_CODE_CHALLENGE_METHOD = ["S256"]  # noqa: RUF012 - Authlib's API

    def validate_code_challenge(self, grant: _CodeGrant, redirect_uri: str) -> None:
        data = grant.request.payload.data
        if not data.get("code_challenge"):
            raise InvalidRequestError("PKCE is required: missing 'code_challenge'.")
        if data.get("code_challenge_method") != "S256":
            raise InvalidRequestError("'code_challenge_method' must be S256 (plain is not accepted).")
        super().validate_code_challenge(grant, redirect_uri)


class _OpenIDCode(OpenIDCode):  # type: ignore[misc]
    def __init__(self, provider: Provider) -> None:
        super().__init__(require_nonce=True)
        self.provider = provider

    def exists_nonce(self, nonce: str, request: OAuth2Request) -> bool:
        return self.provider.nonce_used(request.payload.client_id, nonce)

    def encode_id_token(self, token: dict[str, Any], request: OAuth2Request) -> str:
        return self.provider.id_token(token, request)


class _BearerValidator(BearerTokenValidator):  # type: ignore[misc]
    def __init__(self, provider: Provider) -> None:
        super().__init__()
        self.provider = provider

    def authenticate_token(self, token_string: str) -> AccessToken | None:
        return self.provider.state.tokens.get(token_string)


class _EndSession(EndSessionEndpoint):  # type: ignore[misc]
    def __init__(self, provider: Provider) -> None:
        super().__init__()
        self.provider = provider

    def get_server_jwks(self) -> KeySet:
        return self.provider.keys.published()

    def get_algorithms(self) -> list[str]:
        return [ALGORITHM]

    def _is_valid_post_logout_redirect_uri(self, client: Client, post_logout_redirect_uri: str) -> bool:
        return client.check_post_logout_redirect_uri(post_logout_redirect_uri)

    def is_post_logout_redirect_uri_legitimate(
        self, request: OAuth2Request, post_logout_redirect_uri: str, client: Client, logout_hint: str | None
    ) -> bool:
        # The URI is registered for the client (checked before this), so redirecting there opens nothing.
        return True

    def end_session(self, end_session_request: EndSessionRequest) -> None:
        claims = end_session_request.id_token_claims or {}
        request = end_session_request.request
        sids = {claims.get("sid"), getattr(request, "session_id", None)}
        self.provider.end_sessions({sid for sid in sids if isinstance(sid, str)})


# --- the provider -------------------------------------------------------------------------------------------


class Provider:
    """The simulated identity provider's protocol core (no HTTP routes: app.py has those)."""

    def __init__(self, settings: IdpsimSettings, clock: Clock = time.time) -> None:
        self.settings = settings
        self.clock = clock
        self.keys = KeyRing()
        self.state = State()
        self.client = Client(
            client_id=settings.client_id,
            client_secret=settings.client_secret.get_secret_value(),
            redirect_uris=settings.redirect_uris,
            post_logout_redirect_uris=settings.post_logout_redirect_uris,
            allow_loopback=settings.allow_loopback_redirects,
        )
        self._subject_key = settings.subject_key.get_secret_value().encode()
        self._overrides: IdTokenOverrides | None = None
        self.server = _Server(self)
        self.server.register_token_generator(
            "default",
            BearerTokenGenerator(
                access_token_generator=lambda **_: generate_token(43),
                expires_generator=lambda _client, _grant_type: settings.access_token_seconds,
            ),
        )
        self.server.register_client_auth_method("client_secret_basic", rfc6749_client_secret_basic)
        self.server.register_grant(_CodeGrant, [_S256Only(required=True), _OpenIDCode(self)])
        self.server.register_endpoint(_EndSession(self))
        self.resource_protector = ResourceProtector()
        self.resource_protector.register_token_validator(_BearerValidator(self))

    @cached_property
    def _stranger_key(self) -> RSAKey:
        """A key that is never published: what sign_with_unknown_key signs with."""
        return RSAKey.generate_key(KEY_BITS, private=True)

    def url(self, path: str) -> str:
        return f"{self.settings.issuer.rstrip('/')}{path}"

    def subject_of(self, person: TestPerson) -> str:
        return pseudonymous_subject(person.personnummer, self._subject_key)

    # authorization ---------------------------------------------------------------------------------------

    def begin(self, request: SimRequest) -> Transaction:
        """Validate an authorization request; raises OAuth2Error (with `redirect_uri` set when redirectable)."""
        self.server.get_consent_grant(request)
        now = self.clock()
        self.state.prune(now)
        transaction = Transaction(
            txn=secrets.token_urlsafe(24),
            params=request.params,
            expires_at=now + self.settings.transaction_seconds,
        )
        self.state.transactions[transaction.txn] = transaction
        return transaction

    def transaction(self, txn: str) -> Transaction | None:
        transaction = self.state.transactions.get(txn)
        if transaction is None or transaction.expires_at <= self.clock():
            return None
        return transaction

    def complete(
        self, transaction: Transaction, person: TestPerson | None, level: str | None
    ) -> tuple[Response, Authentication | None]:
        """Finish the page: a code for `person` at `level`, or access_denied when `person` is None."""
        self.state.transactions.pop(transaction.txn, None)
        request = SimRequest("GET", self.url("/authorize"), transaction.params)
        try:
            grant = self.server.get_consent_grant(request)
        except OAuth2Error as error:
            response: Response = self.server.handle_error_response(request, error)
            return response, None
        authentication = None
        if person is not None and level is not None:
            authentication = Authentication(
                person=person,
                subject=self.subject_of(person),
                acr=LOA_PREFIX + level,
                auth_time=int(self.clock()),
                sid=secrets.token_urlsafe(16),
            )
            self.state.sessions[authentication.sid] = authentication
        response = self.server.create_authorization_response(request, grant_user=authentication, grant=grant)
        return response, authentication

    def save_code(self, code: str, request: OAuth2Request) -> None:
        data = request.payload.data
        now = self.clock()
        nonce = data.get("nonce")
        self.state.codes[code] = AuthorizationCode(
            code=code,
            client_id=request.client.client_id,
            redirect_uri=request.payload.redirect_uri,
            scope=request.scope,
            nonce=nonce,
            code_challenge=data.get("code_challenge"),
            code_challenge_method=data.get("code_challenge_method"),
            authentication=request.user,
            expires_at=now + self.settings.code_seconds,
        )
        if nonce:
            self.state.nonces[(request.client.client_id, nonce)] = now + self.settings.transaction_seconds

    def nonce_used(self, client_id: str, nonce: str) -> bool:
        return (client_id, nonce) in self.state.nonces

    def find_code(self, code: str, client: Client) -> AuthorizationCode | None:
        if code in self.state.used_codes:
            # RFC 6749 4.1.2: a code used twice revokes what was issued for it.
            for token in self.state.tokens_by_code.get(code, []):
                if token in self.state.tokens:
                    self.state.tokens[token].revoked = True
            return None
        found = self.state.codes.get(code)
        if found is None or found.client_id != client.client_id or found.expires_at <= self.clock():
            return None
        return found

    def spend_code(self, authorization_code: AuthorizationCode) -> None:
        self.state.codes.pop(authorization_code.code, None)
        self.state.used_codes[authorization_code.code] = self.clock() + self.settings.transaction_seconds

    def save_access_token(self, token: dict[str, Any], request: OAuth2Request) -> None:
        value = token["access_token"]
        self.state.tokens[value] = AccessToken(
            access_token=value,
            client=request.client,
            scope=token.get("scope", ""),
            authentication=request.user,
            expires_at=self.clock() + int(token["expires_in"]),
            clock=self.clock,
        )
        if request.authorization_code is not None:
            self.state.tokens_by_code.setdefault(request.authorization_code.code, []).append(value)

    # ID tokens -------------------------------------------------------------------------------------------

    def set_overrides(self, overrides: IdTokenOverrides) -> None:
        self._overrides = overrides

    def pending_overrides(self) -> IdTokenOverrides | None:
        return self._overrides

    def _take_overrides(self) -> IdTokenOverrides | None:
        overrides, self._overrides = self._overrides, None
        return overrides

    def id_token(self, token: dict[str, Any], request: OAuth2Request) -> str:
        """The signed ID token for a token response (tampered as /sim/next-id-token asked, once)."""
        authentication: Authentication = request.user
        code: AuthorizationCode = request.authorization_code
        now = int(self.clock())
        claims: dict[str, Any] = {
            "iss": self.settings.issuer,
            "sub": authentication.subject,
            "aud": self.client.client_id,
            "exp": now + self.settings.id_token_seconds,
            "iat": now,
            "auth_time": authentication.auth_time,
            "acr": authentication.acr,
            "sid": authentication.sid,
            # The Swedish profile puts the number in the ID token too; names and birthdate only in userinfo
            # (OpenID Connect Core 5.4: claims asked for by scope come from userinfo when there is an access token).
            **scope_claims(authentication.person, code.scope, id_token=True),
        }
        if code.nonce:
            claims["nonce"] = code.nonce
        at_hash = create_half_hash(token["access_token"], ALGORITHM)
        claims["at_hash"] = at_hash.decode()
        overrides = self._take_overrides()
        if overrides is None:
            key = self.keys.current
            return jwt.encode({"alg": ALGORITHM, "kid": key.kid}, claims, key)
        return self._tampered(claims, overrides)

    def _tampered(self, claims: dict[str, Any], overrides: IdTokenOverrides) -> str:
        if overrides.audience is not None:
            claims["aud"] = overrides.audience
        if overrides.issuer is not None:
            claims["iss"] = overrides.issuer
        if overrides.expires_in is not None:
            now = int(self.clock())
            claims["exp"] = now + overrides.expires_in
            if overrides.expires_in <= 0:  # an expired token looks issued a lifetime before it expired
                claims["iat"] = claims["exp"] - self.settings.id_token_seconds
                claims["auth_time"] = min(claims["auth_time"], claims["iat"])
        if overrides.nonce is not None:
            claims["nonce"] = overrides.nonce
        if overrides.acr is not None:
            claims["acr"] = overrides.acr
        for name in overrides.omit_claims:
            claims.pop(name, None)
        if overrides.alg == "none":
            with warnings.catch_warnings():  # producing the deprecated algorithm is the point here
                warnings.simplefilter("ignore", SecurityWarning)
                return jwt.encode({"alg": "none"}, claims, None, algorithms=["none"])  # type: ignore[arg-type]
        if overrides.alg == "HS256":
            secret = OctKey.import_key(self.client.client_secret.encode())
            return jwt.encode({"alg": "HS256"}, claims, secret, algorithms=["HS256"])
        if overrides.sign_with_unknown_key:
            return jwt.encode({"alg": ALGORITHM, "kid": self.keys.current.kid}, claims, self._stranger_key)
        key = self.keys.current
        return jwt.encode({"alg": ALGORITHM, "kid": key.kid}, claims, key)

    # userinfo, logout, state -----------------------------------------------------------------------------

    def userinfo(self, request: SimRequest) -> dict[str, str]:
        """The claims of the bearer's person; raises OAuth2Error for a missing, unknown or expired token."""
        token: AccessToken = self.resource_protector.validate_request(["openid"], request)
        authentication = token.authentication
        return {"sub": authentication.subject, **scope_claims(authentication.person, token.scope, id_token=False)}

    def end_sessions(self, sids: set[str]) -> None:
        """End these IdP sessions: their access tokens stop working at /userinfo."""
        for sid in sids:
            self.state.sessions.pop(sid, None)
        for token in self.state.tokens.values():
            if token.authentication.sid in sids:
                token.revoked = True

    def clear(self) -> None:
        """Forget every transaction, code, token, nonce and session (keys stay)."""
        self.state.clear()
        self._overrides = None

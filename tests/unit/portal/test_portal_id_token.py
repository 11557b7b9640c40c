"""ID-token validation: only a token signed by the provider's key with RS256/ES256, for our client, from our
issuer, unexpired, with this login's nonce, at assurance level 3+ and for someone 16 or older is accepted."""

from __future__ import annotations

import base64
import json
from datetime import date
from typing import Any

import pytest
from joserfc import jwt
from joserfc.jwk import ECKey, KeySet, OctKey, RSAKey

from services.portal.oidc import PERSONNUMMER_CLAIM, LoginRefused, validate_id_token

ISSUER = "http://127.0.0.1:8010"
CLIENT = "minaintyg-portal"
NONCE = "n-0S6_WzA2Mj"
NOW = 1_780_000_000
TODAY = date(2026, 5, 28)
ADULT = "198507149808"  # valid Luhn, born 1985
RSA = RSAKey.generate_key(2048, parameters={"kid": "rsa-1"})
EC = ECKey.generate_key("P-256", parameters={"kid": "ec-1"})
OTHER = RSAKey.generate_key(2048, parameters={"kid": "rsa-1"})  # same kid, another key: a forgery
PUBLISHED = KeySet.import_key_set({"keys": [RSA.as_dict(private=False), EC.as_dict(private=False)]})


def claims(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "iss": ISSUER,
        "sub": "pseudonym-123",
        "aud": CLIENT,
        "exp": NOW + 300,
        "iat": NOW - 5,
        "auth_time": NOW - 10,
        "nonce": NONCE,
        "acr": "http://id.elegnamnden.se/loa/1.0/loa3",
        PERSONNUMMER_CLAIM: ADULT,
        "given_name": "Åsa",
        "family_name": "Öberg",
        "name": "Åsa Öberg",
        "birthdate": "1985-07-14",
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def sign(payload: dict[str, Any], key: Any = RSA, alg: str = "RS256") -> str:
    return jwt.encode({"alg": alg, "kid": key.kid}, payload, key, algorithms=[alg])


def validate(token: str) -> Any:
    return validate_id_token(token, PUBLISHED, issuer=ISSUER, client_id=CLIENT, nonce=NONCE, now=NOW, today=TODAY)


def b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def test_valid_rs256_and_es256_tokens_are_accepted() -> None:
    for key, alg in ((RSA, "RS256"), (EC, "ES256")):
        identity = validate(sign(claims(), key, alg))
        assert identity.personnummer == ADULT
        assert (identity.given_name, identity.family_name, identity.loa) == ("Åsa", "Öberg", 3)
    assert validate(sign(claims(acr="http://id.elegnamnden.se/loa/1.0/loa4"))).loa == 4


def _unsigned() -> str:
    return f"{b64({'alg': 'none', 'typ': 'JWT'})}.{b64(claims())}."


def _hs256_with_public_key_as_secret() -> str:
    # The classic confusion attack: HMAC keyed with the RSA public key the verifier knows.
    secret = OctKey.import_key(json.dumps(RSA.as_dict(private=False)).encode())
    return jwt.encode({"alg": "HS256", "kid": "rsa-1"}, claims(), secret, algorithms=["HS256"])


@pytest.mark.parametrize(
    ("name", "token", "code"),
    [
        ("alg none", _unsigned(), "bad_token"),
        ("HS256", _hs256_with_public_key_as_secret(), "bad_token"),
        ("wrong key, known kid", sign(claims(), OTHER), "bad_token"),
        ("unknown kid", sign(claims(), RSAKey.generate_key(2048, parameters={"kid": "rogue"})), "unknown_key"),
        ("wrong audience", sign(claims(aud="someone-else")), "bad_claims"),
        ("wrong issuer", sign(claims(iss="http://evil.example")), "bad_claims"),
        ("expired", sign(claims(exp=NOW - 120, iat=NOW - 600)), "expired"),
        ("wrong nonce", sign(claims(nonce="replayed")), "bad_claims"),
        ("missing nonce", sign(claims(nonce=None)), "bad_claims"),
        ("acr loa2", sign(claims(acr="http://id.elegnamnden.se/loa/1.0/loa2")), "loa_too_low"),
        ("acr missing", sign(claims(acr=None)), "bad_claims"),
        ("acr not a level", sign(claims(acr="urn:password")), "loa_too_low"),
        ("under 16", sign(claims(**{PERSONNUMMER_CLAIM: "201205139809"})), "under_age"),
        ("invalid personnummer", sign(claims(**{PERSONNUMMER_CLAIM: "198507149807"})), "bad_personnummer"),
        ("no personnummer", sign(claims(**{PERSONNUMMER_CLAIM: None})), "bad_personnummer"),
        ("no subject", sign(claims(sub=None)), "bad_claims"),
    ],
)
def test_refused(name: str, token: str, code: str) -> None:
    with pytest.raises(LoginRefused) as refused:
        validate(token)
    assert refused.value.code.startswith(code), (name, refused.value.code)
    assert refused.value.message  # Swedish text for the citizen


def test_under_16_message_is_swedish_and_turning_16_today_is_enough() -> None:
    with pytest.raises(LoginRefused) as refused:
        validate(sign(claims(**{PERSONNUMMER_CLAIM: "201005299803"})))  # 16 tomorrow
    assert "16 år" in refused.value.message
    assert validate(sign(claims(**{PERSONNUMMER_CLAIM: "201005289804"}))).personnummer == "201005289804"


def test_samordningsnummer_is_accepted_with_its_real_birth_date() -> None:
    assert validate(sign(claims(**{PERSONNUMMER_CLAIM: "198507749805"}))).personnummer == "198507749805"

"""The identity-provider simulator's pure parts: test persons, subjects, redirect rules, keys, settings."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import SecretStr, ValidationError

from deploy.simulators.idp.keys import KeyRing
from deploy.simulators.idp.persons import listed_persons, person_for, pseudonymous_subject
from deploy.simulators.idp.provider import Client, is_loopback_uri
from deploy.simulators.idp.settings import IdpsimSettings
from schemas.identifiers import parse_personal_number

TODAY = date(2026, 11, 26)


def test_listed_persons_are_valid_and_marked() -> None:
    persons = listed_persons(TODAY)
    assert len(persons) == 16
    assert len({p.personnummer for p in persons}) == 16
    for person in persons:
        parsed = parse_personal_number(person.personnummer, TODAY)
        assert parsed.digits == person.personnummer
        assert parsed.birth_date == person.birthdate
        assert person.name == f"{person.given_name} {person.family_name}"
    assert [p.note for p in persons].count("Testpatient") == 3
    adults = [p for p in persons if p.note is None]
    assert len(adults) == 12
    assert all(p.age_on(TODAY) >= 16 for p in adults)


@given(st.dates(min_value=date(2020, 1, 1), max_value=date(2090, 12, 31)))
def test_the_child_is_under_16_on_any_day(today: date) -> None:
    child = listed_persons(today)[-1]
    assert child.note == "Under 16 år"
    assert child.age_on(today) == 10
    assert parse_personal_number(child.personnummer, today).digits == child.personnummer
    assert person_for(parse_personal_number(child.personnummer, today), today) == child


def test_person_for_a_known_number_is_that_person_and_an_unknown_number_is_named_from_it() -> None:
    first = listed_persons(TODAY)[0]
    assert person_for(parse_personal_number(first.display_number, TODAY), TODAY) == first
    stranger = person_for(parse_personal_number("19121212-1212", TODAY), TODAY)
    assert stranger.personnummer == "191212121212"
    assert stranger.birthdate == date(1912, 12, 12)
    assert stranger.note is None
    assert person_for(parse_personal_number("191212121212", TODAY), TODAY) == stranger
    assert stranger.claims() == {
        "https://id.oidc.se/claim/personalIdentityNumber": "191212121212",
        "given_name": stranger.given_name,
        "family_name": stranger.family_name,
        "name": stranger.name,
        "birthdate": "1912-12-12",
    }


def test_subject_is_stable_keyed_and_not_the_personnummer() -> None:
    subject = pseudonymous_subject("191212121212", b"key-one")
    assert subject == pseudonymous_subject("191212121212", b"key-one")
    assert subject != pseudonymous_subject("191212121212", b"key-two")
    assert subject != pseudonymous_subject("191212121213", b"key-one")
    assert "191212121212" not in subject
    assert len(subject) == 64


@pytest.mark.parametrize(
    ("uri", "path", "ok"),
    [
        ("http://127.0.0.1:5000/auth/callback", "/auth/callback", True),
        ("http://127.0.0.1:5000/", "/", True),
        ("http://127.0.0.1/auth/callback", "/auth/callback", False),
        ("https://127.0.0.1:5000/auth/callback", "/auth/callback", False),
        ("http://localhost:5000/auth/callback", "/auth/callback", False),
        ("http://127.0.0.1:5000/auth/callback?x=1", "/auth/callback", False),
        ("http://127.0.0.1:5000/auth/callback#f", "/auth/callback", False),
        ("http://user@127.0.0.1:5000/auth/callback", "/auth/callback", False),
        ("http://127.0.0.1:5000/auth/callback/", "/auth/callback", False),
        ("http://127.0.0.1:99999/auth/callback", "/auth/callback", False),
        ("http://127.0.0.1.evil.example:5000/auth/callback", "/auth/callback", False),
    ],
)
def test_loopback_rule(uri: str, path: str, ok: bool) -> None:
    assert is_loopback_uri(uri, path) is ok


def test_client_redirect_uris_are_exact_unless_loopback_is_allowed() -> None:
    strict = Client("c", "s", ("http://127.0.0.1:8000/auth/callback",), ("http://127.0.0.1:8000/",), False)
    assert strict.check_redirect_uri("http://127.0.0.1:8000/auth/callback")
    assert not strict.check_redirect_uri("http://127.0.0.1:8000/auth/callback?x")
    assert not strict.check_redirect_uri("http://127.0.0.1:8001/auth/callback")
    assert strict.check_post_logout_redirect_uri("http://127.0.0.1:8000/")
    assert not strict.check_post_logout_redirect_uri("http://127.0.0.1:8001/")
    lenient = Client("c", "s", (), (), True)
    assert lenient.check_redirect_uri("http://127.0.0.1:8001/auth/callback")
    assert lenient.check_post_logout_redirect_uri("http://127.0.0.1:8001/")
    assert not lenient.check_redirect_uri("http://127.0.0.1:8001/other")
    assert strict.check_client_secret("s")
    assert not strict.check_client_secret("t")
    assert strict.get_allowed_scope("openid email profile") == "openid profile"


def test_key_ring_keeps_one_previous_key() -> None:
    ring = KeyRing()
    first = ring.current.kid
    second = ring.rotate().kid
    assert [k.kid for k in ring.published().keys] == [second, first]
    third = ring.rotate().kid
    assert [k.kid for k in ring.published().keys] == [third, second]
    assert all("d" not in key for key in ring.jwks()["keys"])


def test_settings_read_comma_lists_and_refuse_development_secrets_in_production(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("IDPSIM_REDIRECT_URIS", "http://a.example/cb, http://b.example/cb")
    monkeypatch.setenv("IDPSIM_ISSUER", "https://idp.example/")
    monkeypatch.setenv("IDPSIM_ENV", "test")
    settings = IdpsimSettings()
    assert settings.redirect_uris == ("http://a.example/cb", "http://b.example/cb")
    assert settings.issuer == "https://idp.example/"  # kept exactly: relying parties compare it exactly
    assert settings.environment == "test"
    assert settings.knobs_enabled
    monkeypatch.setenv("IDPSIM_ENV", "production")
    with pytest.raises(ValidationError, match="IDPSIM_CLIENT_SECRET"):
        IdpsimSettings()
    monkeypatch.setenv("IDPSIM_CLIENT_SECRET", "3c9e1a7f5b2d8046e1f3a5c7b9d0e2f4a6c8b0d1e3f5a7c9")
    monkeypatch.setenv("IDPSIM_SUBJECT_KEY", "8b2f4d6a0c1e3g5i7k9m1o3q5s7u9w0y2a4c6e8g0i2k")
    production = IdpsimSettings()
    assert not production.knobs_enabled
    with pytest.raises(ValidationError, match="LOOPBACK"):
        IdpsimSettings(allow_loopback_redirects=True)
    with pytest.raises(ValidationError, match="IDPSIM_CLIENT_SECRET is shorter than 32 characters"):
        IdpsimSettings(client_secret=SecretStr("a-real-secret-of-some-length"))

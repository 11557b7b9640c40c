"""Swedish time for rules that depend on "today": at 23:30 UTC on 2 December it is already 3 December in Sweden.

Someone born on 3 December 2010 is 16 in Sweden then and may log in; the examination that a Swedish doctor dated 3
December, signed at 00:10 Swedish time (23:10 UTC), is not in the future; a child born on the Swedish date is not
born "in the future". Each check is made against the UTC date too, which gets it wrong, so the tests can fail.
"""

from __future__ import annotations

import copy
from datetime import UTC, date, datetime, timedelta

import pytest
from stdnum import luhn

from deploy.simulators.platform.generator import CertificateFactory
from schemas.certificate import CERTIFICATE_ADAPTER
from services.intake.domain import InvalidCertificate, validate
from services.kit.swedish import fmt_date, fmt_personnummer, fmt_time, swedish_date, swedish_period
from services.portal.oidc import PERSONNUMMER_CLAIM, LoginRefused, identity_from_claims

NIGHT = datetime(2026, 12, 2, 23, 30, tzinfo=UTC)  # 00:30 on 3 December in Stockholm (CET)
SUMMER_NIGHT = datetime(2026, 6, 30, 22, 30, tzinfo=UTC)  # 00:30 on 1 July (CEST, UTC+2)


def personnummer(born: date, serial: str = "981") -> str:
    nine = f"{born:%y%m%d}{serial}"
    return f"{born:%Y%m%d}{serial}{luhn.calc_check_digit(nine)}"


def claims(number: str) -> dict[str, str]:
    return {PERSONNUMMER_CLAIM: number, "given_name": "Łukasz", "family_name": "Øberg-Nguyễn"}


def test_the_swedish_date_and_time_at_night_and_in_summer() -> None:
    assert swedish_date(NIGHT) == date(2026, 12, 3)
    assert NIGHT.date() == date(2026, 12, 2)
    assert fmt_time(NIGHT) == "2026-12-03 kl. 00:30"
    assert fmt_time(SUMMER_NIGHT) == "2026-07-01 kl. 00:30"
    assert fmt_date(NIGHT) == "2026-12-03"
    assert fmt_time("2026-12-02T23:30:00+00:00") == "2026-12-03 kl. 00:30"
    with pytest.raises(ValueError, match="naive"):
        fmt_time(datetime(2026, 12, 2, 23, 30))  # noqa: DTZ001 - the refusal is the point


def test_sixteen_in_sweden_at_2330_utc_the_day_before_the_birthday() -> None:
    number = personnummer(date(2010, 12, 3))
    identity = identity_from_claims(claims(number), today=swedish_date(NIGHT))
    assert identity.personnummer == number
    with pytest.raises(LoginRefused, match="under_age"):  # what the UTC date would have said
        identity_from_claims(claims(number), today=NIGHT.date())
    with pytest.raises(LoginRefused, match="under_age"):  # one day younger is still 15 in Sweden
        identity_from_claims(claims(personnummer(date(2010, 12, 4))), today=swedish_date(NIGHT))


def test_the_portal_login_asks_for_the_swedish_date() -> None:
    """The login callback passes `swedish_date(now)` as today (the only place the portal's age rule gets a date)."""
    import inspect

    from services.portal import handlers

    source = inspect.getsource(handlers)
    assert "today=swedish_date(now)" in source
    assert "now.date()" not in source


def certificate_signed_at(signed_at: str, day: date, patient: str | None = None) -> dict[str, object]:
    body = copy.deepcopy(CertificateFactory(seed=16).certificate("LISJP", now=NIGHT - timedelta(days=1)))
    body["signed_at"] = signed_at
    content = body["content"]
    assert isinstance(content, dict)
    content["assessment_basis"] = [{"kind": "UNDERSOKNING", "date": day.isoformat()}]
    content["sick_leave_periods"] = [
        {"degree": 100, "start": day.isoformat(), "end": (day + timedelta(days=13)).isoformat()}
    ]
    if patient:
        assert isinstance(body["patient"], dict)
        body["patient"]["personnummer"] = patient
    return body


def test_intake_examination_on_the_swedish_signing_date_is_not_in_the_future() -> None:
    # Signed 00:10 on 3 December in Sweden, sent as UTC (23:10Z on the 2nd); examined on the 3rd.
    body = certificate_signed_at("2026-12-02T23:10:00Z", date(2026, 12, 3))
    validate(CERTIFICATE_ADAPTER.validate_python(body), NIGHT, timedelta(minutes=5))  # accepted
    late = certificate_signed_at("2026-12-02T23:10:00Z", date(2026, 12, 4))
    with pytest.raises(InvalidCertificate) as refused:
        validate(CERTIFICATE_ADAPTER.validate_python(late), NIGHT, timedelta(minutes=5))
    assert "content.assessment_basis.0.date" in [p.path for p in refused.value.problems]


def test_intake_a_child_born_on_the_swedish_date_today_is_not_born_in_the_future() -> None:
    newborn = personnummer(date(2026, 12, 3), "982")
    body = certificate_signed_at("2026-12-02T23:20:00Z", date(2026, 12, 3), patient=newborn)
    assert validate(CERTIFICATE_ADAPTER.validate_python(body), NIGHT, timedelta(minutes=5)).digits == newborn


def test_personnummer_and_periods_as_a_person_reads_them() -> None:
    assert fmt_personnummer("201012039812") == "20101203-9812"
    assert fmt_personnummer("20101203-9812") == "20101203-9812"
    assert fmt_personnummer("okänt") == "okänt"
    assert swedish_period("2026-03") == "mars 2026"
    assert swedish_period("2026-Q4") == "kvartal 4 2026"

"""Statistics end to end: released certificates in, reports, feed and privacy out (real Kafka and PostgreSQL)."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from deploy.simulators.platform.generator import Person
from schemas.envelope import decode
from schemas.events import StatsReportPublished
from schemas.identifiers import parse_personal_number
from schemas.topics import STATS_SICKLEAVE
from services.kit.swedish import MONTHS, MONTHS_SHORT
from services.stats.reports import REPORTS
from services.stats.settings import StatsSettings
from tests.harness import connect, count_rows, eventually, read_topic
from tests.integration.stats.conftest import (
    ANALYST,
    Clock,
    Released,
    StatsService,
    last_month,
    month_key,
    processed,
    running,
)

pytestmark = pytest.mark.integration


def by_sex(factory_persons: list[Person]) -> tuple[list[Person], list[Person]]:
    real = [p for p in factory_persons if not p.test_patient]
    today = datetime.now(UTC).date()
    women = [p for p in real if not parse_personal_number(p.personnummer, today).male]
    men = [p for p in real if parse_personal_number(p.personnummer, today).male]
    return women, men


def row(report: dict[str, Any], label: str) -> list[Any]:
    return next(r for r in report["rows"] if r[0] == label)


def within(published: object, true: int, cells: int = 1) -> bool:
    """A protected figure: hidden below 5, otherwise within ±2 per protected cell it sums."""
    if published is None:
        return true - 2 * cells < 5
    assert isinstance(published, int)
    return abs(published - true) <= 2 * cells and published >= 5


async def test_certificates_in_reports_out_with_revocations_replacements_withdrawal_feed_and_no_personal_data(
    released: Released, stats_settings: StatsSettings
) -> None:
    # The service's clock starts in last month's last days (then the current, preliminary month) and moves to today
    # (last month closed) once the certificates are in: the release then makes last month's tables final.
    clock = Clock(datetime.combine(last_month(28), datetime.min.time(), UTC) + timedelta(hours=12))
    async with running(stats_settings, clock) as stats:
        await scenario(stats, released, stats_settings, clock)


async def scenario(stats: StatsService, released: Released, stats_settings: StatsSettings, clock: Clock) -> None:
    women, men = by_sex(released.factory.persons)
    first = [(last_month(2), last_month(11), 100)]
    signed = datetime.combine(last_month(2), datetime.min.time(), UTC) + timedelta(hours=10)
    for person in women[:12] + men[:12]:
        await released.release(person, periods=first, signed=signed)
    # a second certificate 3 days after the first ends: the same case, now 50 % (the latest certificate's degree)
    await released.release(women[0], periods=[(last_month(15), last_month(24), 50)], signed=signed + timedelta(days=13))
    # AG7804 is no input of the statistics at all
    await released.release(women[1], cert_type="AG7804", periods=first, signed=signed)
    # a correction that shortens a sick leave (REPLACES) shortens the case: 40 days replaced by 10
    long = await released.release(men[12], periods=[(last_month(2), last_month(2) + timedelta(days=39), 100)],
                                  signed=signed)  # fmt: skip
    await released.release(men[12], periods=first, signed=signed + timedelta(hours=1), replaces=long["id"])
    # revoked after it came; revoked before it came; a test patient; a citizen who withdraws consent
    revoked_after = await released.release(women[12], periods=first, signed=signed)
    await released.revoke(women[12], revoked_after["id"])
    early = released.factory.certificate("LISJP", person=men[13])
    await released.revoke(men[13], early["id"])
    late = await released.release(men[13], periods=first, signed=signed)
    await released.revoke(men[13], late["id"])  # its own revoke also works after a revoke-first one
    await released.release(women[13], periods=first, signed=signed, test_patient=True)
    await released.release(men[14], periods=first, signed=signed)
    await released.withdraw(men[14])
    await eventually(lambda: processed(stats_settings, len(released.events)), what="every event processed")
    preliminary = month_key(last_month(1))

    async def released_preliminary() -> bool:
        body = await stats.report("sex", period=preliminary)
        return body["preliminary"] and body["rows"][2][1] is not None

    await eventually(released_preliminary, what="a release of the preliminary month")
    clock.fixed = None  # today: last month is closed

    async def final() -> bool:
        return (await stats.report("sex", period=preliminary))["preliminary"] is False

    await eventually(final, what="last month's final tables")

    facts = await count_rows(stats_settings.database_url, stats_settings.db_schema, "facts")
    assert facts == 26  # 12 + 12 + 1 + the correction
    cases = await facts_of(stats_settings, "SELECT days, degree FROM cases ORDER BY days, degree")
    assert len(cases) == 25  # 12 women, 13 men
    assert (10, 100) in cases
    assert max(days for days, _ in cases) == 20  # woman 0's two certificates; the 40-day one was replaced
    assert [(d, g) for d, g in cases if g == 50] == [(20, 50)]
    period = month_key(last_month(1))
    sex = await stats.report("sex", period=period)
    assert sex["period"] == period
    assert sex["preliminary"] is False
    assert sex["protection"] == {"method": "cell-key", "threshold": 5, "max_noise": 2,
                                 "totals": "sum-of-protected-cells"}  # fmt: skip
    assert [r[0] for r in sex["rows"]] == ["Kvinnor", "Män", "Totalt"]
    assert within(sex["rows"][0][1], 12)
    assert within(sex["rows"][1][1], 13)
    assert sex["rows"][2][1] == sex["rows"][0][1] + sex["rows"][1][1]  # the total is the sum of protected cells
    degree = await stats.report("degree", period=period)
    assert row(degree, "50 %")[1] is None  # one woman's case at 50 %: never shown
    assert [1, 1] in degree["suppressed"]
    assert within(row(degree, "100 %")[1], 11)
    # the same cell (all women's cases of the month) has the same figure in every report
    months = await stats.report("cases-per-month", period=period[:4])
    assert row(months, period)[1] == sex["rows"][0][1]
    types = await stats.report("certificate-type", period=period)
    assert [r[0] for r in types["rows"]] == ["LISJP – Läkarintyg för sjukpenning", "FK7263 – Läkarintyg (äldre form)",
                                             "Totalt"]  # fmt: skip
    assert within(row(types, "LISJP – Läkarintyg för sjukpenning")[1], 13)
    county = await stats.report("county", period=period)
    stockholm = row(county, "Stockholms län")
    in_stockholm = await stats.report("sex", period=period, county="01")
    assert stockholm[1:3] == [in_stockholm["rows"][0][1], in_stockholm["rows"][1][1]]  # the same cells
    assert within(stockholm[1], 12)
    assert stockholm[4] == 2_473_307
    assert stockholm[5] == round(stockholm[3] * 1000 / 2_473_307, 2)
    assert row(county, "Västra Götalands län")[1:4] == [None, None, None]  # zero looks like a small count
    length = await stats.report("length", period=period)
    assert within(row(length, "<15 dagar")[3], 24, cells=2)
    for name in REPORTS:
        report = await stats.report(name, period=period)
        for i, cells in enumerate(report["rows"]):
            for j, cell in enumerate(cells[1:], start=1):
                if report["columns"][j] in ("Invånare", "Sjukfall per 1 000 invånare"):
                    continue
                assert cell is None or cell >= 5, (name, i, j, cell)

    # filters, CSV, and clear errors
    refused = await stats.get("sex", period=period, county="14")  # too few cases to publish alone
    assert refused.status_code == 422
    assert refused.json()["problems"][0]["path"] == "county"
    response = await stats.get("certificate-type", period=period, format="csv")
    assert response.headers["content-type"].startswith("text/csv")
    table = list(csv.reader(io.StringIO(response.text)))
    assert table[0] == ["Intygstyp", "Kvinnor", "Män", "Totalt"]
    assert table[2][1:] == ["..", "..", ".."]  # FK7263: none
    bad = await stats.get("sex", period="2026-13")
    assert bad.status_code == 422
    assert bad.json()["problems"][0]["path"] == "query.period"
    ad_hoc = await stats.get("sex", **{"from": "2026-05", "to": "2026-06"})
    assert ad_hoc.status_code == 422
    assert ad_hoc.json()["problems"][0]["path"] == "from"
    assert (await stats.get("nope")).status_code == 404
    assert (await stats.client.get("/v1/reports", headers=ANALYST)).json()[0]["name"] == "cases-per-month"
    page = await stats.client.get("/rapporter/sex", params={"period": period})
    assert page.status_code == 200
    assert 'lang="sv"' in page.text
    assert "<caption>" in page.text
    assert "(svensk tid)" in page.text
    assert " UTC" not in page.text
    year, month = int(period[:4]), int(period[5:])
    assert f"Period: <strong>{MONTHS[month - 1]} {year}</strong>" in page.text
    monthly = await stats.client.get("/rapporter/cases-per-month", params={"period": period})
    chart = json.loads(monthly.text.split('id="chart-data">', 1)[1].split("</script>", 1)[0])
    assert f"{MONTHS_SHORT[month - 1]} {year}" in chart["x"]  # the chart's axis in Swedish month names
    assert chart["x_title"] == "Månad"
    assert (await stats.client.get("/static/plotly.min.js")).status_code == 200

    # the feed: the final table of the month that closed, of every report, keyed by report and period
    topic = stats_settings.topic(STATS_SICKLEAVE.name)

    async def feed() -> dict[str, StatsReportPublished] | None:
        latest: dict[str, StatsReportPublished] = {}
        try:
            records = await read_topic(stats_settings.kafka_bootstrap_servers, topic, timeout=5)
        except AssertionError:
            return None
        for record in records:
            data = decode(record.value or b"").data
            assert isinstance(data, StatsReportPublished)
            assert record.key is not None
            assert record.key.decode().startswith(f"{data.report}:")
            if record.key.decode() == f"{data.report}:{period}":
                latest[data.report] = data  # the preliminary snapshots of the month, then its final one
        done = set(latest) == set(REPORTS) and all(not s.preliminary for s in latest.values())
        done = done and latest["sex"].rows == sex["rows"]
        return latest if done else None

    snapshots = await eventually(feed, timeout=60, what="every report on the feed")
    feed_text = "\n".join(s.model_dump_json() for s in snapshots.values())

    # privacy: no personnummer, name or free text of the input anywhere statistics keeps or publishes
    reports_text = "\n".join(
        [(await stats.get(n, period=period)).text for n in REPORTS]
        + [(await stats.get(n, period=period, format="csv")).text for n in REPORTS]
    )
    database_text = await schema_text(stats_settings)
    forbidden = forbidden_patterns(released)
    assert all(any(p.search(text) for p in forbidden) for text in (str(released.certificates), "Nilsson 19550101-9801"))
    for where, text in (("database", database_text), ("reports", reports_text), ("feed", feed_text)):
        for pattern in forbidden:
            found = pattern.search(text)
            assert found is None, f"{where} holds {pattern.pattern!r}"
    # no table links the system's citizen ref to the statistics pseudonym
    for person in women[:12] + men[:12]:
        assert released.ref(person) not in database_text


async def facts_of(settings: StatsSettings, query: str) -> list[tuple[Any, ...]]:
    async with connect(settings.database_url, settings.db_schema) as conn:
        return [tuple(r) for r in await conn.fetch(query)]


def forbidden_patterns(released: Released) -> list[re.Pattern[str]]:
    """Every personnummer form, name and free-text value of the certificates given to statistics."""
    values: set[str] = set()
    words: set[str] = set()
    for body in released.certificates:
        pnr = body["patient"]["personnummer"]
        values |= {pnr, f"{pnr[:8]}-{pnr[8:]}", pnr[2:], f"{pnr[2:8]}-{pnr[8:]}", f"{pnr[2:8]}+{pnr[8:]}"}
        words |= {body["patient"]["given_name"], body["patient"]["family_name"], body["issuer"]["name"]}
        if address := body["patient"].get("address"):
            values.add(address["street"])
        content = body["content"]
        for name in (
            "functional_impairment",
            "activity_limitation",
            "occupation_text",
            "ongoing_treatment",
            "planned_treatment",
            "other_information",
            "work_measures_description",
            "contact_reason",
        ):
            if content.get(name):
                values.add(content[name])  # fmt: skip
    patterns = [re.compile(re.escape(v)) for v in values]
    patterns += [re.compile(rf"(?<![\w]){re.escape(w)}(?![\w])") for w in words]
    return patterns


async def schema_text(settings: StatsSettings) -> str:
    """Every text-like column of every table in the statistics schema, as one text."""
    conn = await asyncpg.connect(settings.database_url)
    try:
        columns = await conn.fetch(
            "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = $1 "
            "AND (data_type IN ('text', 'character', 'character varying', 'json', 'jsonb', 'bytea') "
            "OR data_type = 'ARRAY')",
            settings.db_schema,
        )
        assert {"facts", "cases", "aggregates", "publications", "audit_log", "outbox"} <= {
            c["table_name"] for c in columns
        }
        parts = []
        for c in columns:
            rows = await conn.fetch(
                f'SELECT "{c["column_name"]}"::text AS v FROM "{settings.db_schema}"."{c["table_name"]}"'  # noqa: S608
            )
            parts += [r["v"] or "" for r in rows]
        tables = await conn.fetch(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = $1", settings.db_schema
        )
        for t in tables:  # whole rows too, whatever their column types
            rows = await conn.fetch(f'SELECT t::text AS v FROM "{settings.db_schema}"."{t["table_name"]}" t')  # noqa: S608
            parts += [r["v"] for r in rows]
        return "\n".join(parts)
    finally:
        await conn.close()

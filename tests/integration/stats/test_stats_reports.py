"""Statistics end to end: released certificates in, reports, feed and privacy out (real Kafka and PostgreSQL)."""

from __future__ import annotations

import csv
import io
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
from services.stats.reports import REPORTS
from services.stats.settings import StatsSettings
from tests.harness import count_rows, eventually, read_topic
from tests.integration.stats.conftest import Released, StatsService, days_ago, processed

pytestmark = pytest.mark.integration


def by_sex(factory_persons: list[Person]) -> tuple[list[Person], list[Person]]:
    real = [p for p in factory_persons if not p.test_patient]
    today = datetime.now(UTC).date()
    women = [p for p in real if not parse_personal_number(p.personnummer, today).male]
    men = [p for p in real if parse_personal_number(p.personnummer, today).male]
    return women, men


def row(report: dict[str, Any], label: str) -> list[Any]:
    return next(r for r in report["rows"] if r[0] == label)


async def test_certificates_in_reports_out_with_revocations_withdrawal_feed_and_no_personal_data(
    stats: StatsService, released: Released, stats_settings: StatsSettings
) -> None:
    women, men = by_sex(released.factory.persons)
    first = [(days_ago(30), days_ago(21), 100)]
    signed = datetime.now(UTC) - timedelta(days=30)
    for person in women[:6] + men[:6]:
        await released.release(person, periods=first, signed=signed)
    # a second certificate 3 days after the first ends: the same case, now 50 % (the latest certificate's degree)
    await released.release(women[0], periods=[(days_ago(17), days_ago(8), 50)], signed=signed + timedelta(days=13))
    # AG7804: not in the cases, but in "certificates per type"
    await released.release(women[1], cert_type="AG7804", periods=first, signed=signed)
    # revoked after it came; revoked before it came; a test patient; a citizen who withdraws consent
    revoked_after = await released.release(women[6], periods=first, signed=signed)
    await released.revoke(women[6], revoked_after["id"])
    early = released.factory.certificate("LISJP", person=men[6])
    await released.revoke(men[6], early["id"])
    late = await released.release(men[6], periods=first, signed=signed)
    await released.revoke(men[6], late["id"])  # its own revoke also works after a revoke-first one
    await released.release(women[7], periods=first, signed=signed, test_patient=True)
    await released.release(men[7], periods=first, signed=signed)
    await released.withdraw(men[7])
    await eventually(lambda: processed(stats_settings, len(released.events)), what="every event processed")

    assert await count_rows(stats_settings.database_url, stats_settings.db_schema, "facts") == 14  # 6 + 6 + 1 + AG7804
    assert (
        await count_rows(stats_settings.database_url, stats_settings.db_schema, "citizens") == 14
    )  # incl. the two revoked
    sex = await stats.report("sex")
    assert [r for r in sex["rows"]] == [["Kvinnor", 6], ["Män", 6], ["Totalt", 12]]
    assert sex["suppressed"] == []
    assert sex["period_start"] <= days_ago(30).isoformat()
    assert sex["computed_at"]
    degree = await stats.report("degree")
    assert row(degree, "50 %") == ["50 %", None, 0, 0]  # one woman's case at 50 %: cut off, shown suppressed
    assert [1, 1] in degree["suppressed"]
    assert row(degree, "100 %") == ["100 %", 5, 6, 11]
    assert row(degree, "Totalt") == ["Totalt", 5, 6, 11]
    types = await stats.report("certificate-type")
    assert row(types, "LISJP – Läkarintyg för sjukpenning")[1:] == [7, 6, 13]
    assert row(types, "AG7804 – Läkarintyg om arbetsförmåga – arbetsgivaren")[1] is None
    county = await stats.report("county")
    stockholm = row(county, "Stockholms län")
    assert stockholm[1:4] == [6, 6, 12]
    assert stockholm[4] == 2_473_307
    assert stockholm[5] == round(12 * 1000 / 2_473_307, 2)
    length = await stats.report("length")
    assert row(length, "<15 dagar")[1:] == [5, 6, 11]
    months = await stats.report("cases-per-month")
    assert sum(r[3] or 0 for r in months["rows"]) >= 12
    for name in REPORTS:
        report = await stats.report(name)
        for i, cells in enumerate(report["rows"]):
            for j, cell in enumerate(cells[1:], start=1):
                if report["columns"][j] in ("Invånare", "Sjukfall per 1 000 invånare"):
                    continue
                assert cell is None or cell == 0 or cell >= 5, (name, i, j, cell)

    # filters, CSV, and clear errors
    assert (await stats.report("sex", county="14"))["rows"] == [["Kvinnor", 0], ["Män", 0], ["Totalt", 0]]
    month = f"{days_ago(30):%Y-%m}"
    assert (await stats.report("sex", **{"from": month, "to": month}))["period_start"] == f"{month}-01"
    response = await stats.client.get("/v1/reports/certificate-type", params={"format": "csv"})
    assert response.headers["content-type"].startswith("text/csv")
    table = list(csv.reader(io.StringIO(response.text)))
    assert table[0] == ["Intygstyp", "Kvinnor", "Män", "Totalt"]
    assert ".." in table[1]
    bad = await stats.client.get("/v1/reports/sex", params={"from": "2026-13"})
    assert bad.status_code == 422
    assert bad.json()["problems"][0]["path"] == "query.from"
    backwards = await stats.client.get("/v1/reports/sex", params={"from": "2026-05", "to": "2026-01"})
    assert backwards.status_code == 422
    assert backwards.json()["problems"][0]["path"] == "from"
    assert (await stats.client.get("/v1/reports/nope")).status_code == 404
    assert (await stats.client.get("/v1/reports")).json()[0]["name"] == "cases-per-month"
    page = await stats.client.get("/rapporter/sex")
    assert page.status_code == 200
    assert 'lang="sv"' in page.text
    assert "<caption>" in page.text
    assert (await stats.client.get("/static/plotly.min.js")).status_code == 200

    # the feed: the current snapshot of every report, keyed by report and period
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
            latest[data.report] = data
        done = set(latest) == set(REPORTS) and latest["sex"].rows == sex["rows"]
        return latest if done else None

    snapshots = await eventually(feed, timeout=60, what="every report on the feed")
    feed_text = "\n".join(s.model_dump_json() for s in snapshots.values())

    # privacy: no personnummer, name or free text of the input anywhere statistics keeps or publishes
    reports_text = "\n".join(
        [(await stats.client.get(f"/v1/reports/{n}")).text for n in REPORTS]
        + [(await stats.client.get(f"/v1/reports/{n}", params={"format": "csv"})).text for n in REPORTS]
    )
    database_text = await schema_text(stats_settings)
    forbidden = forbidden_patterns(released)
    assert all(any(p.search(text) for p in forbidden) for text in (str(released.certificates), "Nilsson 19550101-9801"))
    for where, text in (("database", database_text), ("reports", reports_text), ("feed", feed_text)):
        for pattern in forbidden:
            found = pattern.search(text)
            assert found is None, f"{where} holds {pattern.pattern!r}"


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
        assert {"facts", "cases", "citizens", "aggregates", "outbox"} <= {c["table_name"] for c in columns}
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

"""The attacks of issue #15, played against the running statistics service with data this suite controls.

The attacker is a signed-in analyst (or the public dashboard) who knows what the service publishes about its own
protection (`protection` in every report: the threshold and the largest noise of one figure) and reasons with it:
from published figures it derives the set of true values that are still possible. An attack succeeds when that set
is a single value (a suppressed count or a person's attribute recovered exactly), or when a figure changes or a
marker appears because of one person. The record keys, and so the noise, are new in every run (the persons are
random), so these tests hold for any keys, not for one lucky draw.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from pydantic import SecretStr

from deploy.simulators.platform.generator import Person
from schemas.identifiers import parse_personal_number
from schemas.topics import STATS_SICKLEAVE
from services.stats.reports import CHAPTERS, REPORTS
from services.stats.settings import StatsSettings
from tests.harness import connect, eventually, read_topic
from tests.integration.stats.conftest import (
    Released,
    StatsService,
    last_month,
    month_key,
    processed,
    running,
)

pytestmark = pytest.mark.integration

STOCKHOLM, VASTRA_GOTALAND = 0, 2  # care units of the simulator (Region Stockholm, Västra Götalandsregionen)
DEPRESSION, BACK_PAIN = "F32.1", "M54.5"  # chapter V, chapter XIII


def persons(released: Released) -> tuple[list[Person], list[Person]]:
    today = datetime.now(UTC).date()
    real = [p for p in released.factory.persons if not p.test_patient]
    women = [p for p in real if not parse_personal_number(p.personnummer, today).male]
    men = [p for p in real if parse_personal_number(p.personnummer, today).male]
    return women, men


def noise(report: dict[str, Any]) -> int:
    """The largest noise of one figure, as the report says (a report that says nothing is taken as exact)."""
    protection = report.get("protection") or {}
    bound: int = protection.get("max_noise", 0)
    return bound


def possible(figures: list[int | None], signs: list[int], bound: int, hidden_max: int = 6) -> set[int]:
    """The true values of Σ sign·figure still possible: each shown figure is within ±bound of its count; a hidden
    one is any count the threshold hides (0 … hidden_max)."""
    low = high = 0
    for figure, sign in zip(figures, signs, strict=True):
        lo, hi = (0, hidden_max) if figure is None else (figure - bound, figure + bound)
        low, high = (low + sign * lo, high + sign * hi) if sign > 0 else (low + sign * hi, high + sign * lo)
    return {v for v in range(low, high + 1) if v >= 0}


def cell(report: dict[str, Any], label: str, column: int) -> int | None:
    row = next(r for r in report["rows"] if r[0] == label)
    value = row[column]
    assert value is None or isinstance(value, int)
    return value


def chapter_label(code: str) -> str:
    return f"{code} {CHAPTERS[code]}"


def period_of(day: date) -> list[tuple[date, date, int]]:
    return [(day, day + timedelta(days=9), 100)]


def signed_on(day: date) -> datetime:
    return datetime.combine(day, datetime.min.time(), UTC) + timedelta(hours=9)


async def all_in(settings: StatsSettings, released: Released) -> None:
    await eventually(lambda: processed(settings, len(released.events)), what="every event processed")


async def test_differencing_reports_and_filters_recovers_no_suppressed_count(
    stats: StatsService, released: Released, stats_settings: StatsSettings
) -> None:
    """The issue's example: one care provider, one county, one month; 3 women in chapter V and 9 in chapter XIII.
    `sex` minus `diagnosis-chapter` used to give the suppressed 3 exactly."""
    women, men = persons(released)
    day = last_month(3)
    for person in women[:3]:
        await released.release(person, periods=period_of(day), signed=signed_on(day), code=DEPRESSION)
    for person in women[3:12] + men[:9]:
        await released.release(person, periods=period_of(day), signed=signed_on(day), code=BACK_PAIN)
    await all_in(stats_settings, released)
    period = month_key(day)

    views: list[tuple[dict[str, Any], dict[str, Any]]] = []
    for filters in ({}, {"county": "01"}):  # the national tables and the county's (it has enough cases)
        sex = await stats.report("sex", period=period, **filters)
        chapters = await stats.report("diagnosis-chapter", period=period, **filters)
        views.append((sex, chapters))
        assert cell(chapters, chapter_label("V"), 1) is None  # the three women are never shown
        # a table's relations give nothing hidden back: its total is the sum of its shown cells
        shown = [r[1] for r in chapters["rows"][:-1] if r[1] is not None]
        assert cell(chapters, "Totalt", 1) in (sum(shown), None)

    # Every way to combine the figures: the women (per sex) minus the women in chapter XIII, in the national
    # tables and in the county's. The attacker intersects what each combination leaves possible.
    still_possible: set[int] | None = None
    for sex, chapters in views:
        women_total = cell(sex, "Kvinnor", 1)
        back_pain = cell(chapters, chapter_label("XIII"), 1)
        here = possible([women_total, back_pain], [1, -1], noise(sex))
        still_possible = here if still_possible is None else still_possible & here
    assert still_possible is not None
    assert 3 in still_possible
    # Several values remain. (With the ±2 noise of each figure, the two combinations pin the count only when all
    # four figures sit at opposite ends of their noise: 2 · 10⁻⁴ of draws, the residual risk the README states.)
    assert len(still_possible) > 1, still_possible


async def test_differencing_periods_finds_no_new_case_and_ad_hoc_ranges_are_refused(
    stats: StatsService, released: Released, stats_settings: StatsSettings
) -> None:
    """Ten women's cases begin in a quarter's first month; one more woman's begins in its second month. Quarter
    minus month would isolate her case (and with it her diagnosis, degree, age group and length)."""
    women, _ = persons(released)
    today = datetime.now(UTC).date()
    quarter_start = date(today.year, (today.month - 1) // 3 * 3 + 1, 1)
    first = (quarter_start - timedelta(days=1)).replace(day=1)
    first = first.replace(month=(first.month - 1) // 3 * 3 + 1)  # the previous quarter's first month (closed)
    second = first.replace(month=first.month + 1)
    for person in women[:10]:
        await released.release(person, periods=period_of(first.replace(day=3)), signed=signed_on(first.replace(day=3)),
                               code=BACK_PAIN)  # fmt: skip
    target = women[10]
    await released.release(target, periods=period_of(second.replace(day=3)), signed=signed_on(second.replace(day=3)),
                           code=DEPRESSION)  # fmt: skip
    await all_in(stats_settings, released)

    # ad-hoc ranges are not published at all
    for params in ({"from": f"{first:%Y-%m}", "to": f"{second:%Y-%m}"}, {"from": f"{first:%Y-%m}"},
                   {"period": f"{first:%Y-%m}..{second:%Y-%m}"}, {"period": f"{first:%Y}-H1"}):  # fmt: skip
        response = await stats.get("sex", **params)
        assert response.status_code == 422, params

    quarter_key = f"{first.year}-Q{(first.month - 1) // 3 + 1}"
    quarter = await stats.report("diagnosis-chapter", period=quarter_key)
    month = await stats.report("diagnosis-chapter", period=month_key(first))
    assert quarter["preliminary"] is False
    assert month["preliminary"] is False
    # Which chapter is the newcomer's? Every chapter where quarter minus month can still be 1.
    candidates = []
    for code in CHAPTERS:
        label = chapter_label(code)
        if 1 in possible([cell(quarter, label, 1), cell(month, label, 1)], [1, -1], noise(quarter)):
            candidates.append(code)
    assert "V" in candidates
    assert len(candidates) > 1, candidates  # her chapter is not told apart from the others
    # and the women of the quarter minus those of the month do not give her exactly either
    sex_quarter = await stats.report("sex", period=quarter_key)
    sex_month = await stats.report("sex", period=month_key(first))
    newcomers = possible([cell(sex_quarter, "Kvinnor", 1), cell(sex_month, "Kvinnor", 1)], [1, -1], noise(sex_month))
    assert 1 in newcomers
    assert len(newcomers) > 1


async def test_a_person_alone_in_a_county_leaves_no_marker_and_the_county_is_not_offered(
    stats: StatsService, released: Released, stats_settings: StatsSettings
) -> None:
    """A woman alone in Västra Götaland in a month used to be the only `..` in a table of zeros."""
    women, men = persons(released)
    day = last_month(4)
    for person in women[:10] + men[:10]:
        await released.release(person, periods=period_of(day), signed=signed_on(day), code=BACK_PAIN,
                               unit_index=STOCKHOLM)  # fmt: skip
    await released.release(women[10], periods=period_of(day), signed=signed_on(day), code=DEPRESSION,
                           unit_index=VASTRA_GOTALAND)  # fmt: skip
    await all_in(stats_settings, released)
    period = month_key(day)

    for name in REPORTS:  # her county cannot be asked for alone
        refused = await stats.get(name, period=period, county="14")
        assert refused.status_code == 422, name
        assert refused.json()["problems"][0]["path"] == "county"
    counties = await stats.report("county", period=period)
    hers = next(r for r in counties["rows"] if r[0] == "Västra Götalands län")
    empty = next(r for r in counties["rows"] if r[0] == "Skåne län")  # nobody there
    assert hers[1:4] == empty[1:4] == [None, None, None]  # her row looks like a county without anyone
    assert hers[5] is None
    riket = counties["rows"][-1]
    assert riket[3] == sum(r[3] for r in counties["rows"][:-1] if r[3] is not None)  # nothing left over for her
    chapters = await stats.report("diagnosis-chapter", period=period)
    hidden = [r[0] for r in chapters["rows"][:-1] if r[1] is None]
    assert chapter_label("V") in hidden
    assert len(hidden) >= len(CHAPTERS) - 1  # her chapter hides among every chapter without anyone
    # the dashboard is open, but national only: a county asked for there is not honoured
    page = await stats.client.get("/rapporter/diagnosis-chapter", params={"period": period, "county": "14"})
    assert page.status_code == 200
    assert "hela riket" in page.text
    assert "Västra Götaland" not in page.text


@contextlib.asynccontextmanager
async def service_with(settings: StatsSettings, **update: Any) -> AsyncIterator[StatsService]:
    async with running(settings.model_copy(update=update)) as service:
        yield service


async def test_repeated_queries_and_other_credentials_get_the_same_figures_and_queries_are_limited_and_audited(
    released: Released, stats_settings: StatsSettings
) -> None:
    women, men = persons(released)
    day = last_month(5)
    for person in women[:7] + men[:8]:
        await released.release(person, periods=period_of(day), signed=signed_on(day))
    tokens = {"dev": SecretStr("dev-analyst-secret"), "other": SecretStr("another-analyst-organisation-token")}
    async with service_with(stats_settings, analyst_tokens=tokens, rate_limit="40/minute") as stats:
        await all_in(stats_settings, released)
        period = month_key(day)
        first = (await stats.get("age-group", period=period)).text
        for _ in range(20):
            assert (await stats.get("age-group", period=period)).text == first  # the same noise every time
        assert (await stats.get("age-group", period=period, token="another-analyst-organisation-token")).text == first

        assert (await stats.get("sex", token="")).status_code == 401
        wrong = await stats.get("sex", token="dev-analyst-secret-guess")
        assert wrong.status_code == 401
        assert wrong.headers["www-authenticate"] == "Bearer"
        assert (await stats.client.get("/v1/reports")).status_code == 401
        statuses = [(await stats.get("sex", period=period)).status_code for _ in range(25)]
        assert statuses.count(429) >= 5  # 40 a minute per credential
        limited = await stats.get("sex", period=period)
        assert limited.status_code == 429
        assert int(limited.headers["retry-after"]) >= 1
        assert (await stats.get("sex", period=period, token="another-analyst-organisation-token")).status_code == 200

    async with connect(stats_settings.database_url, stats_settings.db_schema) as conn:
        audit = await conn.fetch("SELECT analyst, report, period, status FROM audit_log ORDER BY id")
    assert [a["analyst"] for a in audit].count("other") == 2
    assert ("dev", "age-group", period, 200) in [tuple(a) for a in audit]


async def test_polling_while_one_certificate_arrives_and_consecutive_feed_snapshots_show_no_step(
    stats: StatsService, released: Released, stats_settings: StatsSettings
) -> None:
    """Reports polled many times a second, and the feed's snapshots, while one certificate arrives (and one late one
    for a closed month): nothing changes until a release with enough changes."""
    women, men = persons(released)
    today = datetime.now(UTC).date()
    closed_day = last_month(6)
    for person in women[:12] + men[:12]:
        await released.release(person, periods=period_of(today), signed=datetime.now(UTC))
    for person in women[12:18] + men[12:18]:
        await released.release(person, periods=period_of(closed_day), signed=signed_on(closed_day))
    await all_in(stats_settings, released)
    current, closed = month_key(today), month_key(closed_day)

    async def released_current() -> bool:
        return (await stats.report("sex", period=current))["rows"][2][1] is not None

    await eventually(released_current, what="the preliminary tables with the first certificates")
    assert (await stats.report("sex", period=current))["preliminary"] is True
    before = {(n, p): (await stats.get(n, period=p)).text for n in REPORTS for p in (current, closed)}
    topic = stats_settings.topic(STATS_SICKLEAVE.name)

    async def feed_settled() -> int | None:
        n = len(await read_topic(stats_settings.kafka_bootstrap_servers, topic, timeout=5))
        await asyncio.sleep(2 * stats_settings.publish_interval_seconds)  # two releases later ...
        again = len(await read_topic(stats_settings.kafka_bootstrap_servers, topic, timeout=5))
        return n if n == again else None  # ... the feed is the same

    feed_before = await eventually(feed_settled, what="the feed to settle")

    # one certificate today, one late certificate for the closed month
    await released.release(women[20], periods=period_of(today), signed=datetime.now(UTC), code=DEPRESSION)
    await released.release(women[21], periods=period_of(closed_day), signed=signed_on(closed_day), code=DEPRESSION)
    await all_in(stats_settings, released)
    deadline = asyncio.get_running_loop().time() + 6 * stats_settings.publish_interval_seconds
    polls = 0
    while asyncio.get_running_loop().time() < deadline:  # polling through several releases
        for (name, period), text in before.items():
            assert (await stats.get(name, period=period)).text == text, (name, period)
        polls += 1
    assert polls >= 3
    assert len(await read_topic(stats_settings.kafka_bootstrap_servers, topic, timeout=5)) == feed_before

    # the changes wait for the next release with enough of them (they are not lost)
    async with connect(stats_settings.database_url, stats_settings.db_schema) as conn:
        assert await conn.fetchval("SELECT changes FROM release_state") >= 1
    for person in women[22:44]:
        await released.release(person, periods=period_of(today), signed=datetime.now(UTC))
    await all_in(stats_settings, released)

    async def next_release() -> bool:
        return (await stats.get("sex", period=current)).text != before[("sex", current)]

    await eventually(next_release, what="a release once enough changed")
    assert (await stats.get("sex", period=closed)).text == before[("sex", closed)]  # closed: published once

"""The whole system, started by the test the way `make run` starts it: every service and simulator as a process of
its own (console scripts, environment only), on free ports, with topics and schemas of its own.

The platform delivers a certificate over RIV-TA (zeep, a standard SOAP client, with the platform's client
certificate over mutual TLS) and others as JSON → a citizen logs in with the identity provider in Chromium →
consents → sees exactly their certificates, the diagnosis with its Swedish name → sends one to Försäkringskassan
(dispatch: RegisterCertificate v3 over mutual TLS) → the simulator has it once → the portal shows it sent → the
statistics report counts the case. Then: one trace runs from the platform's request through every hop, every
service exports the metrics operators need, and no log line of any process holds a personnummer or a name."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import async_playwright

from deploy.local import devca, pgroles
from deploy.local.infra import LOCAL_SECURITY
from deploy.local.kafka_security import create_grants, delete_grants
from deploy.simulators.idp.persons import listed_persons
from deploy.simulators.platform import riv
from deploy.simulators.platform.generator import CARE_UNITS, CertificateFactory, Person
from schemas import codesystems
from schemas.envelope import decode
from schemas.kafka_access import ADMIN_PRINCIPAL, PRINCIPALS, all_grants
from schemas.riv.wsdl import REGISTER_CERTIFICATE
from schemas.topics import CONSENT_RELEASED, INTAKE_CERTIFICATES
from services.kit.citizen import citizen_ref
from services.kit.settings import CitizenRefKeySettings, ServiceSettings
from services.kit.tracing import trace_id
from tests.harness import (
    RolesNotProvisioned,
    ServiceProcess,
    connect,
    create_schema_for,
    delete_topics_of,
    drop_schema,
    eventually,
    free_port,
    new_unique,
    read_topic,
    role_urls,
    run_command,
)
from tests.harness.riv import JournalSystem

pytestmark = [pytest.mark.integration, pytest.mark.e2e]
ARTIFACTS = Path(__file__).parent / "artifacts" / "system"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]  # fmt: skip
PLATFORM = {"Authorization": "Bearer dev-platform-secret"}
PORTAL_TO_CONSENT = {"Authorization": "Bearer dev-portal-to-consent"}
FK_SENDER = {"Authorization": "Bearer dev-minaintyg-to-fk"}
TRACE = "00-5e2a1c0ffee0ddba11c0ffee0ddba11e-1234567890abcdef-01"
SERVICES = ("intake", "consent", "dispatch", "portal", "stats")
METRICS = ("http_request_duration_seconds", "events_consumed_total", "consumer_lag", "outbox_backlog",
           "outbox_published_total", "dead_letters_total")  # fmt: skip


@dataclass
class System:
    """The running processes, their addresses and their logs."""

    unique: str
    urls: dict[str, str] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    processes: dict[str, ServiceProcess] = field(default_factory=dict)
    logs: dict[str, Path] = field(default_factory=dict)
    riv_url: str = ""  # intake's RIV-TA listener (mutual TLS)
    tls: Path = Path()  # the development CA's certificates

    def journal(self) -> JournalSystem:
        t = self.tls
        return JournalSystem(
            self.riv_url, REGISTER_CERTIFICATE, ca=t / "ca.pem", cert=t / "platform.pem", key=t / "platform-key.pem"
        )

    def schema(self, name: str) -> str:
        return f"sys_{self.unique}_{name}"

    def start(self, name: str, command: str, env: dict[str, str], port_env: str, port: int, log_dir: Path) -> None:
        self.logs[name] = log_dir / f"{name}.log"
        self.processes[name] = ServiceProcess(
            command,
            {**self.env, **env},
            port_env=port_env,
            port=port,
            log=self.logs[name],
            stdout_to_log=True,
            own_session=True,
        )
        self.processes[name].spawn()

    def stop(self) -> None:
        for process in self.processes.values():
            process.terminate()
        for process in self.processes.values():
            process.stop(timeout=20)

    def log_lines(self) -> Iterator[tuple[str, str]]:
        for name, path in self.logs.items():
            for line in path.read_text(errors="replace").splitlines():
                yield name, line


@pytest.fixture
async def system(tmp_path: Path) -> AsyncIterator[System]:
    if shutil.which(CHROMIUM) is None:
        pytest.fail(f"{CHROMIUM} is missing: deploy/local/bootstrap.sh installs Debian's chromium")
    base = ServiceSettings()
    sut = System(new_unique())
    sut.env = {**os.environ, "MINAINTYG_TOPIC_PREFIX": f"sys{sut.unique}.", "LOG_JSON": "true",
               "KAFKA_BOOTSTRAP_SERVERS": base.kafka_bootstrap_servers, "DATABASE_URL": base.database_url}  # fmt: skip
    ports = {name: free_port() for name in (*SERVICES, "fk", "idp")}
    sut.urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    sut.tls = devca.ensure(tmp_path / "tls")
    riv_port = free_port()
    sut.riv_url = f"https://127.0.0.1:{riv_port}"
    fk_riv = free_port()
    fk_env = {
        "FKSIM_RIV_PORT": str(fk_riv),
        "FKSIM_RIV_TLS_CERT_FILE": str(sut.tls / "fk.pem"),
        "FKSIM_RIV_TLS_KEY_FILE": str(sut.tls / "fk-key.pem"),
        "FKSIM_RIV_CLIENT_CA_FILE": str(sut.tls / "ca.pem"),
    }
    dispatch_env = {"DISPATCH_FK_ADAPTER": "fk-riv", "DISPATCH_FK_RIV_ENDPOINT": f"https://127.0.0.1:{fk_riv}",
                    "DISPATCH_RIV_CA_FILE": str(sut.tls / "ca.pem"),
                    "DISPATCH_RIV_CLIENT_CERT_FILE": str(sut.tls / "minaintyg.pem"),
                    "DISPATCH_RIV_CLIENT_KEY_FILE": str(sut.tls / "minaintyg-key.pem")}  # fmt: skip
    riv_env = {"INTAKE_RIV_PORT": str(riv_port), "INTAKE_RIV_TLS_CERT_FILE": str(sut.tls / "intake.pem"),
               "INTAKE_RIV_TLS_KEY_FILE": str(sut.tls / "intake-key.pem"),
               "INTAKE_RIV_CLIENT_CA_FILE": str(sut.tls / "ca.pem")}  # fmt: skip
    own = {
        "fk-sim": ("fk", "FKSIM_", fk_env),
        "idp-sim": ("idp", "IDPSIM_", {"IDPSIM_ISSUER": sut.urls["idp"], "IDPSIM_ALLOW_LOOPBACK_REDIRECTS": "true"}),
        "minaintyg-intake": ("intake", "INTAKE_", riv_env),
        "minaintyg-consent": ("consent", "CONSENT_", {}),
        "minaintyg-dispatch": ("dispatch", "DISPATCH_", {"DISPATCH_FK_ENDPOINT": sut.urls["fk"], **dispatch_env}),
        "minaintyg-stats": ("stats", "STATS_", {"STATS_PUBLISH_INTERVAL_SECONDS": "1"}),
        "minaintyg-portal": ("portal", "PORTAL_", {
            "PORTAL_PUBLIC_ORIGIN": sut.urls["portal"], "PORTAL_OIDC_ISSUER": sut.urls["idp"],
            "PORTAL_CONSENT_URL": sut.urls["consent"],
        }),
    }  # fmt: skip
    # As `make run`: every process that keeps state connects as its own role, in a schema made for it (issue #17).
    try:
        roles = role_urls(base.database_url)
    except RolesNotProvisioned as exc:
        pytest.fail(str(exc))
    stateful = {r.env_prefix: r.role for r in pgroles.ROLES}
    # On the secured local broker each service logs in as its own principal with exactly the ACLs of
    # schemas/kafka_access.py (for this run's topic prefix): the whole system works within them.
    logins = base.kafka_sasl_username == ADMIN_PRINCIPAL and LOCAL_SECURITY.passwords_file.exists()
    grants = all_grants(f"sys{sut.unique}.") if logins else []
    if grants:
        await asyncio.to_thread(create_grants, LOCAL_SECURITY, base.kafka_bootstrap_servers, grants)
    try:
        for command, (name, prefix, extra) in own.items():
            env = {f"{prefix}DB_SCHEMA": sut.schema(name), **extra}
            if prefix in stateful:
                await create_schema_for(base.database_url, sut.schema(name), stateful[prefix])
                env[f"{prefix}DATABASE_URL"] = roles[stateful[prefix]]
            if logins and name in PRINCIPALS:
                env.update(LOCAL_SECURITY.client_environment(name))
            sut.start(name, command, env, f"{prefix}PORT", ports[name], tmp_path)
        for process in sut.processes.values():
            await process.ready(within=120)
        code, output = await run_command(
            "minaintyg-admin",
            "care-units",
            "connect-simulated",
            env={**sut.env, "INTAKE_DB_SCHEMA": sut.schema("intake"), "INTAKE_DATABASE_URL": roles["minaintyg_intake"]},
        )
        assert code == 0, output
        yield sut
    finally:
        sut.stop()
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        for name, path in sut.logs.items():
            shutil.copy(path, ARTIFACTS / f"{name}.log")
        await delete_topics_of(base.kafka_bootstrap_servers, sut.unique)
        if grants:
            await asyncio.to_thread(delete_grants, LOCAL_SECURITY, base.kafka_bootstrap_servers, grants)
        for name in (*SERVICES, "fk", "idp"):
            await drop_schema(base.database_url, sut.schema(name))


def same_sex(people: list[Person], like: Person, n: int) -> list[Person]:
    sex = int(like.personnummer[-2]) % 2
    return [p for p in people if int(p.personnummer[-2]) % 2 == sex and p != like][:n]


async def test_a_citizens_certificate_from_the_platform_to_forsakringskassan_and_statistics(
    system: System, tmp_path: Path
) -> None:
    key = CitizenRefKeySettings().citizen_ref_key.get_secret_value()
    factory = CertificateFactory(seed=int(system.unique, 16) % 2**31)
    offered = [p.personnummer for p in listed_persons(datetime.now(UTC).date()) if p.note is None]
    people = {p.personnummer: p for p in factory.persons if not p.test_patient}
    anna = people[offered[0]]
    other = people[offered[1]]
    colleagues = same_sex([p for p in people.values() if p.personnummer not in offered], anna, 5)
    unit = CARE_UNITS[0]
    mine = [factory.certificate("LISJP", person=anna, unit=unit), factory.certificate("AG7804", person=anna, unit=unit)]
    others = [factory.certificate("LISJP", person=other, unit=unit)]
    theirs = [factory.certificate("LISJP", person=p, unit=unit) for p in colleagues]

    # Hers, the one she sends, as a journal system registers it: RegisterCertificate v3 over mutual TLS.
    journal = system.journal()
    journal.client.transport.session.headers["traceparent"] = TRACE
    result = await asyncio.to_thread(journal.register, riv.to_intyg(mine[0]))
    assert result.result.resultCode == "OK", result.result.resultText
    async with httpx.AsyncClient(timeout=10) as client:
        intake = system.urls["intake"]
        for body in [*mine[1:], *others, *theirs]:
            answer = await client.post(f"{intake}/v1/certificates", json=body, headers=PLATFORM)
            assert answer.status_code == 201, answer.text
        for person in colleagues:  # they consent in their own portal sessions; the API call is the portal's
            ref = citizen_ref(person.personnummer, key)
            given = await client.post(f"{system.urls['consent']}/internal/v1/citizens/{ref}/consent",
                                      json={"text_version": "2025-1"}, headers=PORTAL_TO_CONSENT)  # fmt: skip
            assert given.status_code == 200, given.text

    portal = system.urls["portal"]
    certificate_id = mine[0]["id"]
    async with async_playwright() as playwright:
        context = await playwright.chromium.launch_persistent_context(
            str(tmp_path / "profile"), executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True,
            viewport={"width": 360, "height": 780}, locale="sv-SE",
        )  # fmt: skip
        try:
            page = context.pages[0] if context.pages else await context.new_page()
            await page.goto(f"{portal}/login")
            await page.wait_for_url(f"{system.urls['idp']}/**")
            await page.fill("#annat-personnummer", anna.personnummer)
            await page.get_by_role("button", name="Legitimera").click()
            await page.wait_for_url(f"{portal}/samtycke")
            await page.get_by_role("button", name="Jag ger mitt samtycke").click()
            await page.wait_for_url(f"{portal}/intyg")

            async def listed() -> set[str]:
                await page.reload()
                hrefs = await page.locator("a[href^='/intyg/']").evaluate_all("els => els.map(e => e.pathname)")
                return {h.split("/")[2] for h in hrefs if re.fullmatch(r"/intyg/[^/]+", h) and h != "/intyg/arkiverade"}

            expected = {c["id"] for c in mine}
            shown = await eventually(lambda: _equal(listed, expected), timeout=60, interval=1, what="her certificates")
            assert shown == expected  # exactly hers: none of the other citizens'
            await page.screenshot(path=str(ARTIFACTS / "mina-intyg.png"), full_page=True)

            await page.goto(f"{portal}/intyg/{certificate_id}")
            diagnosis = mine[0]["content"]["diagnoses"][0]["code"]
            named = f"{diagnosis} {codesystems.swedish_name(codesystems.ICD10SE, diagnosis)}"
            assert await page.get_by_text(named).count() > 0, f"the page does not show {diagnosis} with its name"
            await page.get_by_role("link", name="Skicka till Försäkringskassan").click()
            await page.get_by_role("button", name="Skicka intyget till Försäkringskassan").click()

            async def shown_sent() -> bool:
                await page.goto(f"{portal}/intyg/{certificate_id}")
                return await page.get_by_text("Skickat till Försäkringskassan").count() > 0

            await eventually(shown_sent, timeout=90, interval=1, what="the portal to show it sent")
            await page.screenshot(path=str(ARTIFACTS / "skickat.png"), full_page=True)
        finally:
            await context.close()

    async with httpx.AsyncClient(timeout=10) as client:
        received = (await client.get(f"{system.urls['fk']}/v1/received?include_body=true", headers=FK_SENDER)).json()[
            "items"
        ]
        assert [r["certificate_id"] for r in received] == [certificate_id]  # once, and nothing else
        # ... as Försäkringskassan receives it: a RegisterCertificate v3 message over RIV-TA.
        assert "RegisterCertificate" in received[0]["body"]["riv"]["xml"]

        async def counted() -> float | None:
            # Statistics publishes only protected figures (six cases may show as `..`): what it counted is read
            # from its metrics, and the report must answer a signed-in analyst.
            metrics = (await client.get(f"{system.urls['stats']}/metrics")).text
            found = re.search(r'^stats_certificates_counted_total\{type="LISJP"\} (\S+)$', metrics, re.MULTILINE)
            total = float(found[1]) if found else 0.0
            return total if total >= 1 + len(colleagues) else None

        assert await eventually(counted, timeout=60, interval=1, what="statistics to count the cases")
        analyst = {"Authorization": "Bearer dev-analyst-secret"}
        report = await client.get(f"{system.urls['stats']}/v1/reports/sex", headers=analyst)
        assert report.status_code == 200
        assert report.json()["protection"]["method"] == "cell-key"
        assert (await client.get(f"{system.urls['stats']}/v1/reports/sex")).status_code == 401

        for name in SERVICES:
            metrics = (await client.get(f"{system.urls[name]}/metrics")).text
            for family in METRICS[:1] if name == "intake" else METRICS:
                if name == "intake" and family.startswith("events_"):
                    continue
                assert f"# TYPE {family}" in metrics, f"{name} does not export {family}"

    # One trace from the platform's request: intake's log line, and every hop's event on the way to portal and
    # dispatch (each hop a span of its own).
    wanted = trace_id(TRACE)
    assert wanted is not None
    assert any(wanted in line for name, line in system.log_lines() if name == "intake")
    hops = []
    for topic in (INTAKE_CERTIFICATES.name, CONSENT_RELEASED.name):
        for record in await read_topic(ServiceSettings().kafka_bootstrap_servers, f"sys{system.unique}.{topic}"):
            event = decode(record.value or b"")
            if event.subject == certificate_id:
                hops.append(event.traceparent)
    assert len(hops) == 2, hops
    assert all(trace_id(hop) == wanted for hop in hops), hops
    assert len({TRACE, *hops}) == 3, "every hop is a span of its own"

    everyone = [anna, other, *colleagues]
    secrets = [p.personnummer for p in everyone] + [f"{p.personnummer[:8]}-{p.personnummer[8:]}" for p in everyone]
    secrets += [p.family_name for p in everyone]
    for name, line in system.log_lines():
        leaked = [s for s in secrets if s in line]
        assert not leaked, f"{name} logged a personnummer or name: {line[:300]}"

    # Each process migrated and wrote its schema as its own role: every table there is that role's.
    async with connect(ServiceSettings().database_url, "pg_catalog") as conn:
        for role in pgroles.ROLES:
            name = "fk" if role.schema == "fk_sim" else role.schema
            owners = await conn.fetch(
                "SELECT DISTINCT pg_get_userbyid(relowner) AS owner FROM pg_class "
                "WHERE relnamespace = $1::regnamespace",
                system.schema(name),
            )
            assert [r["owner"] for r in owners] == [role.role], (role, owners)


async def _equal(listed: Any, expected: set[str]) -> set[str] | None:
    shown: set[str] = await listed()
    return shown if shown == expected else None

"""Security of the portal: two citizens × every page and API operation, sessions after logout and idle time,
CSRF, security headers on every response, PDFs, and a send that lands on the topic once despite a double submit."""

from __future__ import annotations

import asyncio
import io
import re
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client import REGISTRY
from pypdf import PdfReader

from schemas import codesystems
from schemas.envelope import decode
from schemas.events import DispatchRequested
from schemas.topics import PORTAL_DISPATCH_REQUESTS
from services.portal.security import token_hash
from tests.harness import eventually, outbox_empty, read_topic
from tests.integration.portal.conftest import Citizen, PortalHarness

pytestmark = pytest.mark.integration

# Every route that takes a certificate id, with how to call it (the test checks this covers the app's routes).
PAGE_GETS = ["/intyg/{id}", "/intyg/{id}/skriv-ut", "/intyg/{id}/pdf", "/intyg/{id}/pdf?spara=1",
             "/intyg/{id}/anpassa", "/intyg/{id}/anpassa/pdf?visa=diagnoses", "/intyg/{id}/skicka"]  # fmt: skip
PAGE_POSTS = ["/intyg/{id}/arkivera", "/intyg/{id}/aterstall", "/intyg/{id}/skicka"]
API_GETS = ["/api/v1/certificates/{id}", "/api/v1/certificates/{id}/pdf", "/api/v1/certificates/{id}/employer-copy",
            "/api/v1/certificates/{id}/employer-copy/pdf", "/api/v1/certificates/{id}/dispatch-preview"]  # fmt: skip
API_POSTS = ["/api/v1/certificates/{id}/archive", "/api/v1/certificates/{id}/restore",
             "/api/v1/certificates/{id}/dispatches"]  # fmt: skip
KEY = "0b6f3c1e-2f4a-4d7e-9a51-7c2d8e9f0a11"


async def two_citizens(portal: PortalHarness) -> tuple[Citizen, Citizen]:
    anna = await portal.login(portal.citizen(3))
    bo = await portal.login(portal.citizen(4))
    await portal.release(anna)
    await portal.release(bo)

    async def both() -> bool:
        return len(await portal.listed(anna)) == 1 and len(await portal.listed(bo)) == 1

    await eventually(both, what="both citizens' certificates")
    return anna, bo


async def call(portal: PortalHarness, citizen: Citizen, method: str, template: str, cert_id: str) -> int:
    url = template.format(id=cert_id)
    if method == "GET":
        return (await portal.client.get(url, headers=citizen.cookie)).status_code
    if url.startswith("/api/"):
        body = {"recipient_id": "FKASSA", "idempotency_key": KEY} if url.endswith("/dispatches") else None
        return (await portal.client.post(url, headers=citizen.posting(), json=body)).status_code
    form = {"csrf_token": citizen.csrf, "idempotency_key": KEY}
    return (await portal.client.post(url, headers=citizen.posting(), data=form)).status_code


async def test_the_other_citizens_ids_answer_404_everywhere(portal: PortalHarness) -> None:
    anna, bo = await two_citizens(portal)
    bo_id = bo.certificates[0]["id"]
    anna_id = anna.certificates[0]["id"]
    covered = {t.split("?")[0] for t in PAGE_GETS + PAGE_POSTS + API_GETS + API_POSTS}
    paths = [str(getattr(r, "path", "")) for r in portal.app.routes]
    routes = {p.replace("{certificate_id}", "{id}") for p in paths if "{certificate_id}" in p}
    assert routes <= covered, routes - covered
    alarms_before = REGISTRY.get_sample_value("portal_foreign_certificate_access_total") or 0.0
    bo_logged = await portal.count("access_log", bo)  # Bo's own list calls (one per poll until his certificate showed)
    for method, templates in (("GET", PAGE_GETS + API_GETS), ("POST", PAGE_POSTS + API_POSTS)):
        for template in templates:
            assert await call(portal, anna, method, template, bo_id) == 404, (method, template)
            assert await call(portal, anna, method, template, "no-such-id") == 404, (method, template)
    # ... while the same operations on her own certificate work (so the 404s above are not an accident).
    for template in PAGE_GETS + API_GETS:
        assert await call(portal, anna, "GET", template, anna_id) == 200, template
    for template in PAGE_POSTS:
        assert await call(portal, anna, "POST", template, anna_id) in (303, 409), template
    request = await portal.client.post(
        "/api/v1/requests",
        headers=anna.posting(),
        json={"kind": "BLOCKING", "message": "Spärra", "certificate_id": bo_id},
    )
    assert request.status_code == 404
    assert bo_id not in str((await portal.client.get("/api/v1/certificates", headers=anna.cookie)).json())
    # Nothing of Bo's changed, and the refused attempts are in Anna's access log.
    assert await portal.count("dispatches", bo) == 0
    assert not await portal.pool.fetchval("SELECT archived FROM certificates WHERE id = $1", bo_id)
    refused = await portal.pool.fetchval(
        "SELECT count(*) FROM access_log WHERE citizen_ref = $1 AND certificate_id = $2 AND outcome = 'not_found'",
        anna.ref, bo_id,
    )  # fmt: skip
    assert refused >= len(PAGE_GETS + API_GETS + PAGE_POSTS + API_POSTS)
    assert await portal.count("access_log", bo) == bo_logged  # nothing of Anna's attempts is in Bo's log
    # Each attempt on Bo's id raised the monitoring event; unknown ids did not.
    alarms = (REGISTRY.get_sample_value("portal_foreign_certificate_access_total") or 0.0) - alarms_before
    assert alarms == len(PAGE_GETS + API_GETS + PAGE_POSTS + API_POSTS) + 1  # + the rectification request
    extract = (await portal.client.get("/api/v1/extract", headers=anna.cookie)).json()
    assert [c["document"]["id"] for c in extract["certificates"]] == [anna_id]
    assert bo.person.personnummer not in str(extract)


async def test_logout_and_idle_timeout_end_the_session(portal: PortalHarness) -> None:
    anna = await portal.login(portal.citizen(5))
    assert (await portal.client.get("/api/v1/me", headers=anna.cookie)).status_code == 200
    logout = await portal.client.post("/logout", headers=anna.posting(), data={"csrf_token": anna.csrf})
    assert logout.status_code == 303
    assert "__Host-minaintyg-session=;" in logout.headers["set-cookie"]
    assert (await portal.client.get("/api/v1/me", headers=anna.cookie)).status_code == 401
    page = await portal.client.get("/intyg", headers=anna.cookie)
    assert page.status_code == 303
    assert page.headers["location"].startswith("/?")
    assert (await portal.client.post("/api/v1/certificates/x/archive", headers=anna.posting())).status_code == 401

    bo = await portal.login(portal.citizen(6))
    await portal.pool.execute("UPDATE sessions SET last_seen = $2 WHERE id_hash = $1", token_hash(bo.token),
                              datetime.now(UTC) - timedelta(minutes=31))  # fmt: skip
    assert (await portal.client.get("/api/v1/me", headers=bo.cookie)).status_code == 401
    carl = await portal.login(portal.citizen(7))
    await portal.pool.execute("UPDATE sessions SET last_seen = $2 WHERE id_hash = $1", token_hash(carl.token),
                              datetime.now(UTC) - timedelta(minutes=29))  # fmt: skip
    assert (await portal.client.post("/session/extend", headers=carl.posting())).status_code == 200
    assert (await portal.client.get("/api/v1/me", headers=carl.cookie)).status_code == 200


async def test_cross_site_posts_are_refused(portal: PortalHarness) -> None:
    anna = await portal.login(portal.citizen(8))
    cert = await portal.release(anna)
    await eventually(lambda: _listed(portal, anna), what="certificate listed")
    url = f"/intyg/{cert['id']}/arkivera"
    attempts = [
        ({**anna.cookie}, {}),  # no token at all
        ({**anna.cookie, "Origin": "https://evil.example"}, {"csrf_token": anna.csrf}),
        ({**anna.cookie, "Sec-Fetch-Site": "cross-site"}, {"csrf_token": anna.csrf}),
        ({**anna.cookie, "Origin": "http://127.0.0.1:8000"}, {"csrf_token": "forged"}),
    ]
    for headers, form in attempts:
        response = await portal.client.post(url, headers=headers, data=form)
        assert response.status_code == 403, (headers.keys(), form)
    api = await portal.client.post(f"/api/v1/certificates/{cert['id']}/archive", headers=anna.cookie)
    assert api.status_code == 403
    for path in ("/logout", "/samtycke", "/installningar/aterkalla", "/om-dina-uppgifter/begaran"):
        assert (await portal.client.post(path, headers=anna.cookie, data={})).status_code in (403, 422), path
    assert not await portal.pool.fetchval("SELECT archived FROM certificates WHERE id = $1", cert["id"])
    assert (await portal.client.get("/api/v1/me", headers=anna.cookie)).status_code == 200  # still logged in
    ok = await portal.client.post(url, headers=anna.posting(), data={"csrf_token": anna.csrf})
    assert ok.status_code == 303
    assert await portal.pool.fetchval("SELECT archived FROM certificates WHERE id = $1", cert["id"])


async def _listed(portal: PortalHarness, citizen: Citizen) -> bool:
    return bool(await portal.listed(citizen))


async def test_security_headers_on_every_response(portal: PortalHarness) -> None:
    anna = await portal.login(portal.citizen(9))
    cert = await portal.release(anna)
    await eventually(lambda: _listed(portal, anna), what="certificate listed")
    anonymous: dict[str, str] = {}
    urls = [
        ("/", anonymous), ("/hjalp", anonymous), ("/utloggad", anonymous), ("/healthz", anonymous),
        ("/openapi.json", anonymous), ("/api/v1/certificates", anonymous), ("/intyg", anonymous),
        ("/static/portal.css", anonymous), ("/no-such-page", anonymous),
        ("/intyg", anna.cookie), ("/intyg/arkiverade", anna.cookie), (f"/intyg/{cert['id']}", anna.cookie),
        (f"/intyg/{cert['id']}/pdf", anna.cookie), (f"/intyg/{cert['id']}/anpassa", anna.cookie),
        (f"/intyg/{cert['id']}/skicka", anna.cookie), ("/om-dina-uppgifter", anna.cookie),
        ("/om-dina-uppgifter/utdrag.json", anna.cookie), ("/om-dina-uppgifter/utdrag.pdf", anna.cookie),
        ("/installningar", anna.cookie), ("/samtycke", anna.cookie), ("/api/v1/certificates", anna.cookie),
        (f"/api/v1/certificates/{cert['id']}/pdf", anna.cookie), ("/api/v1/access-log", anna.cookie),
    ]  # fmt: skip
    for url, headers in urls:
        response = await portal.client.get(url, headers=headers)
        h = response.headers
        assert h["strict-transport-security"].startswith("max-age="), url
        csp = h["content-security-policy"]
        assert "frame-ancestors 'none'" in csp, url
        assert "unsafe-inline" not in csp, url
        assert "script-src 'self'" in csp, url
        assert h["x-content-type-options"] == "nosniff", url
        assert h["referrer-policy"] == "same-origin", url
        if not url.startswith("/static/"):
            assert h["cache-control"] == "no-store", url
    posted = await portal.client.post(f"/intyg/{cert['id']}/arkivera", headers=anna.cookie)
    assert posted.status_code == 403
    assert "nosniff" in posted.headers["x-content-type-options"]


def pdf_text(data: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(data)).pages)


async def test_pdf_and_employer_copy(portal: PortalHarness) -> None:
    anna = await portal.login(portal.citizen(10))
    cert = await portal.release(anna, "LISJP")
    await eventually(lambda: _listed(portal, anna), what="certificate listed")
    response = await portal.client.get(f"/intyg/{cert['id']}/pdf?spara=1", headers=anna.cookie)
    assert response.headers["content-type"] == "application/pdf"
    assert response.headers["content-disposition"].startswith("attachment")
    text = pdf_text(response.content)
    code = cert["content"]["diagnoses"][0]["code"]
    for expected in (cert["id"], cert["care_unit"]["name"], cert["issuer"]["name"], "Läkarintyg för sjukpenning",
                     "Grund för medicinskt underlag", "Sjukdomens konsekvenser", code, "Signerat", "Vårdenhet",
                     "Utfärdare", cert["patient"]["family_name"]):  # fmt: skip
        assert expected in text, expected
    employer = await portal.client.get(f"/intyg/{cert['id']}/anpassa/pdf", headers=anna.cookie)
    employer_text = pdf_text(employer.content)
    assert "Detta är en anpassad utskrift. Viss information i intyget har valts bort." in employer_text
    assert code not in employer_text
    assert "Huvuddiagnos" not in employer_text
    assert cert["content"]["functional_impairment"] not in employer_text
    assert "Prognos" in employer_text
    assert cert["care_unit"]["name"] in employer_text
    with_diagnosis = pdf_text((await portal.client.get(f"/intyg/{cert['id']}/anpassa/pdf?visa=diagnoses",
                                                       headers=anna.cookie)).content)  # fmt: skip
    assert code in with_diagnosis
    named = f"{code} {codesystems.swedish_name(codesystems.ICD10SE, code)}"  # the code list's Swedish name
    for shown in (text, with_diagnosis):
        assert named in " ".join(shown.split())
    page = await portal.client.get(f"/intyg/{cert['id']}", headers=anna.cookie)
    assert named in page.text
    preview = await portal.client.get(f"/intyg/{cert['id']}/anpassa", headers=anna.cookie)
    assert "Detta är en anpassad utskrift. Viss information i intyget har valts bort." in preview.text
    actions = {r["action"] for r in await portal.pool.fetch("SELECT action FROM access_log WHERE citizen_ref = $1",
                                                            anna.ref)}  # fmt: skip
    assert {"save", "employer_copy_print"} <= actions


async def test_double_submitted_send_lands_once(portal: PortalHarness) -> None:
    anna = await portal.login(portal.citizen(11))
    cert = await portal.release(anna, "LISJP")
    await eventually(lambda: _listed(portal, anna), what="certificate listed")
    page = await portal.client.get(f"/intyg/{cert['id']}/skicka", headers=anna.cookie)
    key = re.search(r'name="idempotency_key" value="([0-9a-f-]{36})"', page.text)
    assert key is not None
    form = {"csrf_token": anna.csrf, "idempotency_key": key[1]}

    async def submit() -> int:
        response = await portal.client.post(f"/intyg/{cert['id']}/skicka", headers=anna.posting(), data=form)
        return response.status_code

    assert list(await asyncio.gather(submit(), submit(), submit())) == [303, 303, 303]
    assert await submit() == 303  # a retry of the same form later
    detail = await portal.client.get(f"/intyg/{cert['id']}", headers=anna.cookie)
    assert "Skickas…" in detail.text
    assert "Skicka till Försäkringskassan" not in detail.text
    # A new confirmation page cannot send again while the first is on its way.
    again = await portal.client.get(f"/intyg/{cert['id']}/skicka", headers=anna.cookie)
    assert "kan inte skickas" in again.text
    assert "idempotency_key" not in again.text
    second = await portal.client.post(f"/intyg/{cert['id']}/skicka", headers=anna.posting(),
                                      data={"csrf_token": anna.csrf, "idempotency_key": str(uuid.uuid4())})  # fmt: skip
    assert second.status_code == 409
    await eventually(
        lambda: outbox_empty(portal.settings.database_url, portal.settings.db_schema), what="outbox published"
    )
    records = await read_topic(portal.settings.kafka_bootstrap_servers,
                               portal.settings.topic(PORTAL_DISPATCH_REQUESTS.name))  # fmt: skip
    sent = [decode(r.value or b"") for r in records]
    assert len(sent) == 1
    data = sent[0].data
    assert isinstance(data, DispatchRequested)
    assert (str(data.idempotency_key), data.certificate_id, data.recipient_id, data.citizen_ref) == (
        key[1],
        cert["id"],
        "FKASSA",
        anna.ref,
    )
    assert records[0].key == cert["id"].encode()
    assert anna.person.personnummer not in (records[0].value or b"").decode()
    # A failure is shown with what to do, and sending is offered again.
    await portal.outcome(anna, cert["id"], data.idempotency_key, ok=False)

    async def failed_shown() -> bool:
        page = await portal.client.get(f"/intyg/{cert['id']}", headers=anna.cookie)
        return "Intyget kunde inte skickas" in page.text and "Försäkringskassan svarade inte i tid." in page.text

    await eventually(failed_shown, what="failure shown")

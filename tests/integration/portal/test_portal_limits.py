"""Abuse limits of the portal, played as the abuser: a client starting login after login (each a database row), a
citizen asking for PDF after PDF or many at once (one PDF thread serves everyone), register extract after extract.
Each is refused with 429, Retry-After and a Swedish page or the problem body; everybody else is served meanwhile."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from services.kit.service import app_state
from services.portal.deps import Portal
from tests.harness import eventually
from tests.integration.portal.conftest import Citizen, PortalHarness

pytestmark = pytest.mark.integration


@pytest.fixture
def portal_overrides() -> dict[str, Any]:
    return {"login_rate_limit": "2/minute", "pdf_rate_limit": "4/minute", "pdf_in_flight": 1,
            "extract_rate_limit": "2/minute"}  # fmt: skip


async def with_certificate(portal: PortalHarness, index: int) -> tuple[Citizen, str]:
    citizen = await portal.login(portal.citizen(index))
    cert = await portal.release(citizen)

    async def listed() -> bool:
        return cert["id"] in await portal.listed(citizen)

    await eventually(listed, what="certificate listed")
    return citizen, cert["id"]


async def test_login_starts_are_limited_per_client_address(portal: PortalHarness) -> None:
    answers = [await portal.client.get("/login") for _ in range(3)]
    assert [a.status_code == 429 for a in answers] == [False, False, True]
    limited = answers[-1]
    assert int(limited.headers["retry-after"]) >= 1
    assert "För många försök" in limited.text
    # The address is the one the server saw: a header the client sends does not change it.
    other = await portal.client.get("/login", headers={"x-forwarded-for": "10.1.2.3"})
    # Only uvicorn sets the client address (from the proxies FORWARDED_ALLOW_IPS trusts).
    assert other.status_code == 429, "a spoofed forwarded header does not escape the limit"


async def test_pdfs_are_limited_per_citizen_and_others_are_served(portal: PortalHarness) -> None:
    anna, annas = await with_certificate(portal, 0)
    bo, bos = await with_certificate(portal, 1)
    statuses = [
        (await portal.client.get(f"/api/v1/certificates/{annas}/pdf", headers=anna.cookie)).status_code
        for _ in range(5)
    ]
    assert statuses == [200, 200, 200, 200, 429]
    limited = await portal.client.get(f"/api/v1/certificates/{annas}/pdf", headers=anna.cookie)
    assert limited.status_code == 429
    assert int(limited.headers["retry-after"]) >= 1
    assert "PDFs for this citizen" in limited.json()["detail"]
    page = await portal.client.get(f"/intyg/{annas}/pdf", headers=anna.cookie)
    assert page.status_code == 429
    assert "Vänta" in page.text
    assert (await portal.client.get(f"/api/v1/certificates/{bos}/pdf", headers=bo.cookie)).status_code == 200


async def test_a_citizen_cannot_queue_pdfs_ahead_of_everyone(portal: PortalHarness) -> None:
    anna, annas = await with_certificate(portal, 2)
    bo, bos = await with_certificate(portal, 3)
    handlers = app_state(portal.app, Portal).handlers
    rendering, release = threading.Event(), threading.Event()
    render = handlers._render

    async def slow_render(make: Any) -> bytes:
        def blocked() -> bytes:
            rendering.set()
            release.wait(10)
            return make()  # type: ignore[no-any-return]

        return await render(blocked)

    handlers._render = slow_render  # type: ignore[method-assign]
    try:
        first = asyncio.create_task(portal.client.get(f"/api/v1/certificates/{annas}/pdf", headers=anna.cookie))
        await asyncio.to_thread(rendering.wait, 10)
        second = await portal.client.get(f"/api/v1/certificates/{annas}/pdf", headers=anna.cookie)
        assert second.status_code == 429, "a second PDF of the same citizen while one renders"
        others = asyncio.create_task(portal.client.get(f"/api/v1/certificates/{bos}/pdf", headers=bo.cookie))
        await asyncio.sleep(0.1)
        release.set()
        assert (await first).status_code == 200
        assert (await others).status_code == 200
    finally:
        release.set()
        handlers._render = render  # type: ignore[method-assign]
    assert (await portal.client.get(f"/api/v1/certificates/{annas}/pdf", headers=anna.cookie)).status_code == 200


async def test_register_extracts_are_limited_per_citizen(portal: PortalHarness) -> None:
    anna = await portal.login(portal.citizen(4))
    bo = await portal.login(portal.citizen(5))
    paths = ["/api/v1/extract", "/om-dina-uppgifter/utdrag.json", "/om-dina-uppgifter/utdrag.pdf"]
    statuses = [(await portal.client.get(path, headers=anna.cookie)).status_code for path in paths]
    assert statuses == [200, 200, 429]
    assert (await portal.client.get("/api/v1/extract", headers=bo.cookie)).status_code == 200

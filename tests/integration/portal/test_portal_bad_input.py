"""Input the portal once answered 500 for (a NUL in a certificate id or a message, a non-ASCII OIDC state): each is
now a 4xx with the security headers (issue 17, part 6); and the session is checked before the input."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from services.portal import repo
from services.portal.security import LOGIN_COOKIE, new_token, token_hash
from tests.integration.portal.conftest import PortalHarness

pytestmark = pytest.mark.integration

NUL_ID = "abc%00def"


async def test_a_nul_in_a_certificate_id_is_refused(portal: PortalHarness) -> None:
    citizen = await portal.login(portal.citizen(0))
    for method, path, headers, body in [
        ("GET", f"/api/v1/certificates/{NUL_ID}", citizen.cookie, None),
        ("GET", f"/api/v1/certificates/{NUL_ID}/pdf", citizen.cookie, None),
        ("POST", f"/api/v1/certificates/{NUL_ID}/archive", citizen.posting(), None),
        ("POST", f"/api/v1/certificates/{NUL_ID}/dispatches", citizen.posting(),
         {"recipient_id": "FKASSA", "idempotency_key": "5e2a1c0f-fee0-4dba-91c0-ffee0ddba11e"}),
        ("GET", f"/intyg/{NUL_ID}", citizen.cookie, None),
        ("POST", f"/intyg/{NUL_ID}/arkivera", citizen.posting(), None),
    ]:  # fmt: skip
        response = await portal.client.request(method, path, headers=headers, json=body)
        assert response.status_code == 422, (method, path, response.text)
        assert response.headers["content-security-policy"]
        if path.startswith("/api/"):
            assert response.json()["problems"][0]["message"] == "must not contain a NUL character"


async def test_a_nul_in_a_rectification_message_is_refused(portal: PortalHarness) -> None:
    citizen = await portal.login(portal.citizen(1))
    response = await portal.client.post("/api/v1/requests", headers=citizen.posting(),
                                        json={"kind": "RECTIFICATION", "message": "fel\x00adress"})  # fmt: skip
    assert response.status_code == 422, response.text
    assert response.json()["problems"] == [{"path": "message", "message": "must not contain a NUL character"}]
    page = await portal.client.post("/om-dina-uppgifter/begaran", headers=citizen.posting(),
                                    data={"kind": "BLOCKING", "message": "spärr\x00"})  # fmt: skip
    assert page.status_code == 422, page.text
    fine = await portal.client.post("/api/v1/requests", headers=citizen.posting(),
                                    json={"kind": "BLOCKING", "message": "rad ett\nrad två"})  # fmt: skip
    assert fine.status_code == 200, fine.text


async def test_a_non_ascii_oidc_state_is_refused(portal: PortalHarness) -> None:
    # A pre-login as GET /login leaves it (the login flow itself, with the identity provider, has its own tests).
    token = new_token()
    await repo.create_pre_login(portal.pool, token_hash(token), csrf=new_token(), state=new_token(), nonce=new_token(),
                                verifier=new_token(), now=datetime.now(UTC))  # fmt: skip
    response = await portal.client.get("/auth/callback", params={"state": "åäö", "code": "x"},
                                       headers={"Cookie": f"{LOGIN_COOKIE}={token}"})  # fmt: skip
    assert response.status_code == 400, response.text
    assert response.headers["content-security-policy"]


async def test_the_session_is_checked_before_the_input(portal: PortalHarness) -> None:
    for content in (b"{not json", b"\xff\xfe", b'{"kind": "nothing"}'):
        response = await portal.client.post("/api/v1/requests", content=content,
                                            headers={"Content-Type": "application/json"})  # fmt: skip
        assert response.status_code == 401, (content, response.text)
    citizen = await portal.login(portal.citizen(2))
    response = await portal.client.post("/api/v1/requests", content=b"{not json",
                                        headers={**citizen.posting(), "Content-Type": "application/json"})  # fmt: skip
    assert response.status_code == 422, response.text

"""What the portal keeps while consent is withdrawn, and gives back after a new consent (issue #16), against the
real broker and database: the received time and the archive flag come back with the certificate; a send dispatch
tells again before the release is read waits for it; a release of before the withdrawal is dropped."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.harness import eventually
from tests.integration.portal.conftest import Citizen, PortalHarness

pytestmark = pytest.mark.integration


async def _detail(portal: PortalHarness, citizen: Citizen, certificate_id: str) -> dict[str, Any] | None:
    response = await portal.client.get(f"/api/v1/certificates/{certificate_id}", headers=citizen.cookie)
    if response.status_code == 404:
        return None
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


async def test_archive_received_time_and_sends_survive_withdrawal_and_re_consent(portal: PortalHarness) -> None:
    anna = await portal.login(portal.citizen(0))
    cert = await portal.release(anna, generation=1)
    await eventually(lambda: _listed(portal, anna, cert["id"]), what="the release listed")
    archived = await portal.client.post(f"/api/v1/certificates/{cert['id']}/archive", headers=anna.posting())
    assert archived.status_code in (200, 204), archived.text
    before = await _detail(portal, anna, cert["id"])
    assert before is not None

    await portal.withdrawn(anna, generation=2)
    await eventually(lambda: _gone(portal, anna), what="the withdrawal applied")
    kept = await portal.pool.fetch("SELECT state, party FROM kept_history WHERE citizen_ref = $1 ORDER BY id", anna.ref)
    assert [(r["state"], r["party"]) for r in kept] == [("RECEIVED", ""), ("ARCHIVED", "Du")]  # no care unit name

    # Stale: a release of before the withdrawal (generation 1) is dropped.
    stale = await portal.release(anna, generation=1)
    # Dispatch tells its ledger's send (as on re-release) before the portal reads the release again.
    key = uuid.uuid4()
    await portal.outcome(anna, cert["id"], key)
    await eventually(lambda: _early(portal, cert["id"]), what="the early outcome kept")

    # The new consent (played here: the session may show certificates again) and its release (generation 3).
    await portal.pool.execute("UPDATE sessions SET consent_given = true WHERE citizen_ref = $1", anna.ref)
    await portal.release(anna, generation=3, id=cert["id"], signed_at=cert["signed_at"])
    await eventually(lambda: _listed(portal, anna, cert["id"], archived=True), what="the certificate back, archived")
    after = await _detail(portal, anna, cert["id"])
    assert after is not None
    assert after["archived"] is True
    assert "Skickat" in after["badges"]
    assert after["may_send_to"] == []
    labels = [(h["label"], h["at"]) for h in after["history"]]
    assert labels[: len(before["history"])] == [(h["label"], h["at"]) for h in before["history"]]  # same times
    assert [label for label, _ in labels] == ["Mottaget", "Arkiverat", "Skickat till Försäkringskassan"]
    assert await _detail(portal, anna, stale["id"]) is None
    assert await portal.pool.fetchval("SELECT count(*) FROM early_outcomes") == 0

    # The register extract states the retention, and who did each access.
    extract = (await portal.client.get("/api/v1/extract", headers=anna.cookie)).json()
    assert extract["retention"]["held_retention_days"] == 365
    assert "sparas i 365 dagar" in extract["retention"]["text"]
    assert {a["actor"] for a in extract["access_log"]} == {None}  # all the citizen's own


async def _listed(portal: PortalHarness, citizen: Citizen, certificate_id: str, archived: bool = False) -> bool:
    return certificate_id in await portal.listed(citizen, archived=archived)


async def _gone(portal: PortalHarness, citizen: Citizen) -> bool:
    return await portal.count("certificates", citizen) == 0


async def _early(portal: PortalHarness, certificate_id: str) -> bool:
    n = await portal.pool.fetchval("SELECT count(*) FROM early_outcomes WHERE certificate_id = $1", certificate_id)
    return bool(n == 1)

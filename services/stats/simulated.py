"""Development only: give consent for the platform simulator's citizens, so that `make run` has statistics.

Without consent nothing reaches statistics. This calls consent's internal API as the portal would (development
credential) for every person the simulator uses, except those the BankID (test) page offers: a developer logging in
as one of them meets the consent page first, as a citizen does.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

import httpx

from deploy.simulators.idp.persons import listed_persons
from deploy.simulators.platform.generator import CertificateFactory
from services.consent.settings import DEV_PORTAL_TOKEN
from services.kit.citizen import citizen_ref
from services.kit.settings import CitizenRefKeySettings


async def consent_for_simulated(consent_url: str, *, token: str = DEV_PORTAL_TOKEN, wait_seconds: float = 120) -> int:
    """Give consent (the current text version) for every simulated person not offered on the login page; returns
    how many were new."""
    key = CitizenRefKeySettings().citizen_ref_key.get_secret_value()
    offered = {p.personnummer for p in listed_persons(datetime.now(UTC).date())}
    refs = [citizen_ref(p.personnummer, key) for p in CertificateFactory().persons if p.personnummer not in offered]
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=consent_url, headers=headers, timeout=10) as client:
        deadline = time.monotonic() + wait_seconds
        while True:
            try:
                current = await client.get(f"/internal/v1/citizens/{refs[0]}/consent")
                if current.status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"consent did not answer at {consent_url} within {wait_seconds:.0f} s")
            await asyncio.sleep(1)
        version = current.json()["current_text_version"]
        given = 0
        for ref in refs:
            response = await client.post(
                f"/internal/v1/citizens/{ref}/consent", json={"text_version": version, "channel": "simulator"}
            )
            response.raise_for_status()
            given += response.json()["outcome"] == "given"
        return given

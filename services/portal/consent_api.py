"""The consent service's internal API, as the portal calls it."""

from __future__ import annotations

from typing import Any

import httpx

from services.kit.tls import client_context
from services.portal.settings import PortalSettings


class ConsentUnavailable(Exception):
    """The consent service did not answer as expected (the citizen is asked to try again later)."""


class ConsentApi:
    def __init__(self, settings: PortalSettings, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self._settings = settings
        self._client = httpx.AsyncClient(
            base_url=settings.consent_url,
            transport=transport,
            timeout=10.0,
            verify=client_context(settings.consent_ca_file),
            headers={"Authorization": f"Bearer {settings.consent_token.get_secret_value()}"},
        )

    async def close(self) -> None:
        await self._client.aclose()

    def _path(self, citizen_ref: str) -> str:
        return f"/internal/v1/citizens/{citizen_ref}/consent"

    async def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        try:
            response = await self._client.request(method, path, json=body)
        except httpx.HTTPError as exc:
            raise ConsentUnavailable(type(exc).__name__) from exc
        if response.status_code != 200:
            raise ConsentUnavailable(f"consent answered {response.status_code}")
        result: dict[str, Any] = response.json()
        return result

    async def get(self, citizen_ref: str) -> dict[str, Any]:
        """The citizen's consent: state (none, given, withdrawn), text version and history."""
        return await self._call("GET", self._path(citizen_ref))

    async def give(self, citizen_ref: str) -> dict[str, Any]:
        return await self._call(
            "POST", self._path(citizen_ref), {"text_version": self._settings.consent_text_version, "channel": "portal"}
        )

    async def withdraw(self, citizen_ref: str) -> dict[str, Any]:
        return await self._call("POST", self._path(citizen_ref) + "/withdrawal", {"channel": "portal"})

"""The operational endpoints answer the cluster only (services/kit/internal.py), played as an outside caller: from a
public address, or through the ingress (a forwarded request) — also with a spoofed internal address."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI

from services.kit.http import install_common
from services.kit.internal import DEFAULT_INTERNAL_NETWORKS, INTERNAL_PATHS, is_internal, parse_networks


async def ready() -> dict[str, dict[str, bool]]:
    return {"service": {"ok": True}}


def app() -> FastAPI:
    application = FastAPI()

    @application.get("/v1/public")
    async def public() -> dict[str, str]:
        return {"ok": "yes"}

    install_common(application, ready, max_body_bytes=1024)
    return application


def client(address: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app(), client=(address, 1234)), base_url="http://svc")


@pytest.mark.parametrize("path", ["/metrics", "/readyz", "/openapi.json", "/docs"])
async def test_the_cluster_reaches_the_operational_endpoints(path: str) -> None:
    for address in ("127.0.0.1", "10.42.1.7", "192.168.3.4", "::1"):
        async with client(address) as c:
            assert (await c.get(path)).status_code == 200, (address, path)


@pytest.mark.parametrize("path", sorted(INTERNAL_PATHS - {"/docs/oauth2-redirect", "/redoc"}))
async def test_an_outside_caller_gets_404(path: str) -> None:
    async with client("203.0.113.9") as c:
        refused = await c.get(path)
    assert refused.status_code == 404
    assert refused.json() == {"detail": "not found"}
    assert "x-correlation-id" in refused.headers


@pytest.mark.parametrize("header", ["X-Forwarded-For", "Forwarded", "X-Real-IP"])
async def test_a_request_through_the_ingress_gets_404_even_from_inside(header: str) -> None:
    async with client("10.42.0.1") as c:  # the ingress controller's pod address
        for path in ("/metrics", "/readyz", "/openapi.json"):
            assert (await c.get(path, headers={header: "198.51.100.7"})).status_code == 404


async def test_public_routes_and_liveness_stay_open() -> None:
    async with client("203.0.113.9") as c:
        assert (await c.get("/v1/public")).status_code == 200
        assert (await c.get("/healthz")).status_code == 200
        assert (await c.get("/v1/public", headers={"X-Forwarded-For": "198.51.100.7"})).status_code == 200


def test_addresses() -> None:
    networks = parse_networks(DEFAULT_INTERNAL_NETWORKS)
    assert is_internal("172.20.0.5", networks)
    assert not is_internal("172.32.0.5", networks)
    assert not is_internal("8.8.8.8", networks)
    assert not is_internal("not-an-address", networks)
    assert not is_internal(None, networks)

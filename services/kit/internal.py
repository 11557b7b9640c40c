"""The operational endpoints (`/metrics`, `/readyz`, the OpenAPI document and its pages) answer the cluster only.

Metrics can tell a caller more than it may know (the portal counts attempts at other citizens' certificate ids),
readiness names the dependencies, the OpenAPI document maps the attack surface. On the public listener they are
refused (404, as if absent) to a request that came through a proxy (the ingress adds `X-Forwarded-For` /
`Forwarded`) and to a client outside `INTERNAL_NETWORKS` (default: loopback and the private ranges, where the
kubelet's probes and Prometheus come from). `/healthz` stays open: it says only that the process runs.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from starlette.types import ASGIApp, Receive, Scope, Send

from services.kit.problems import error_response

INTERNAL_PATHS = frozenset({"/metrics", "/readyz", "/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"})
PROXY_HEADERS = (b"x-forwarded-for", b"forwarded", b"x-real-ip")
DEFAULT_INTERNAL_NETWORKS = (
    "127.0.0.0/8", "::1/128", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7",
)  # fmt: skip

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(networks: Iterable[str]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(n, strict=False) for n in networks)


def is_internal(client: str | None, networks: tuple[Network, ...]) -> bool:
    if not client:
        return False
    try:
        address = ipaddress.ip_address(client)
    except ValueError:
        return False
    return any(address in network for network in networks)


class InternalOnly:
    """Refuses the operational paths to proxied and outside callers (see the module docstring)."""

    def __init__(self, app: ASGIApp, networks: tuple[Network, ...]) -> None:
        self.app = app
        self.networks = networks

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] in INTERNAL_PATHS and not self._allowed(scope):
            await error_response(404, "not found")(scope, receive, send)
            return
        await self.app(scope, receive, send)

    def _allowed(self, scope: Scope) -> bool:
        headers = {name for name, _ in scope.get("headers") or ()}
        if any(name in headers for name in PROXY_HEADERS):
            return False
        client = scope.get("client")
        return is_internal(client[0] if client else None, self.networks)

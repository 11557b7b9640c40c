"""A service's mutual-TLS listener beside its main one, in the same process and event loop (uvicorn).

The listener requires a client certificate from its CA (the TLS handshake refuses any other) and tells the app who
connected through the ASGI TLS extension (`scope["extensions"]["tls"]`: `client_cert_name`, `client_cert_chain`),
which uvicorn does not fill itself. Requests on the main listener carry no such extension, so a route can require
mutual TLS by looking for it (`client_subject`).
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Generator
from types import FrameType
from typing import Any

import cryptography.x509  # noqa: F401 - see below
import uvicorn
from starlette.types import Scope
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from services.kit.tls import MutualTls, peer_subject, server_context

# cryptography (which `peer_subject` reads a client certificate with) is imported above, at start-up: imported by the
# first connection instead, its 80-120 ms of CPU stopped the event loop, every request in flight, on that connection.


class MutualTlsProtocol(HttpToolsProtocol):
    """uvicorn's HTTP protocol, adding the verified client certificate to every request's scope."""

    _tls: dict[str, Any]

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        ssl_object = transport.get_extra_info("ssl_object")
        subject, chain = peer_subject(ssl_object)
        self._tls = {
            "server_cert": None,
            "client_cert_chain": chain,
            "client_cert_name": subject,
            "client_cert_error": None if subject else "no client certificate",
            "tls_version": _tls_version(ssl_object),
            "cipher_suite": None,
        }

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self.scope["extensions"] = {"tls": self._tls}  # type: ignore[dict-item]


def _tls_version(ssl_object: ssl.SSLObject | None) -> int | None:
    version = None if ssl_object is None else ssl_object.version()
    return {"TLSv1.2": 0x0303, "TLSv1.3": 0x0304}.get(version or "")


def client_subject(scope: Scope) -> str | None:
    """The subject of the client certificate a request came with over the mutual-TLS listener, else None."""
    tls = (scope.get("extensions") or {}).get("tls")
    return None if not tls else tls.get("client_cert_name")


class _Companion(uvicorn.Server):
    """The mutual-TLS listener: no lifespan and no signal handlers of its own (the main server stops it)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


class _Main(uvicorn.Server):
    """The main listener: runs the app's lifespan, starts the companion once started, stops it first."""

    def __init__(self, config: uvicorn.Config, companion: _Companion) -> None:
        super().__init__(config)
        self.companion = companion
        self.companion_task: asyncio.Task[None] | None = None

    async def startup(self, sockets: Any = None) -> None:
        await super().startup(sockets)
        if self.started:
            self.companion_task = asyncio.create_task(self.companion.serve())

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        self.companion.handle_exit(sig, frame)
        super().handle_exit(sig, frame)

    async def shutdown(self, sockets: Any = None) -> None:
        self.companion.should_exit = True
        if self.companion_task is not None:
            await self.companion_task  # its requests finish before the lifespan closes the pools
        await super().shutdown(sockets)


def serve_with_mutual_tls(main: dict[str, Any], mutual: MutualTls) -> None:
    """Run `main` (uvicorn.Config keyword arguments) with a mutual-TLS listener for the same app."""
    context = server_context(mutual.cert_file, mutual.key_file, mutual.client_ca_file)
    companion_config = uvicorn.Config(
        **{k: v for k, v in main.items() if not k.startswith("ssl_") and k not in ("host", "port", "http")},
        host=mutual.host,
        port=mutual.port,
        http=MutualTlsProtocol,
        lifespan="off",
        # Callers connect directly (their client certificate is the TLS handshake's, which no proxy can forward), so
        # no X-Forwarded-* header is taken from them: without uvicorn's ProxyHeadersMiddleware around every request.
        proxy_headers=False,
        ssl_certfile=mutual.cert_file,  # uvicorn requires it; the context factory below is what serves
        ssl_context_factory=lambda _config, _default: context,
    )
    companion = _Companion(companion_config)
    server = _Main(uvicorn.Config(**main), companion)
    server.run()

"""TLS between the services: a service serves HTTPS when given a certificate and key (`<PREFIX>_TLS_CERT_FILE`,
`<PREFIX>_TLS_KEY_FILE`), and a caller verifies the callee against a CA file given as a setting (the region's
internal CA; the system's trust store when none is set). In production the internal calls are https only."""

from __future__ import annotations

import ssl


def client_context(ca_file: str | None) -> ssl.SSLContext:
    """A verifying client context: the CA file when given, else the system's trust store (hostname checked)."""
    return ssl.create_default_context(cafile=ca_file) if ca_file else ssl.create_default_context()

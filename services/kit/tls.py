"""TLS between the services: a service serves HTTPS when given a certificate and key (`<PREFIX>_TLS_CERT_FILE`,
`<PREFIX>_TLS_KEY_FILE`), and a caller verifies the callee against a CA file given as a setting (the region's
internal CA; the system's trust store when none is set). In production the internal calls are https only."""

from __future__ import annotations

import ssl
from dataclasses import dataclass


def client_context(ca_file: str | None) -> ssl.SSLContext:
    """A verifying client context: the CA file when given, else the system's trust store (hostname checked)."""
    return ssl.create_default_context(cafile=ca_file) if ca_file else ssl.create_default_context()


@dataclass(frozen=True)
class MutualTls:
    """A second listener of a service that requires a client certificate from `client_ca_file` (the national
    platform connects with its function certificate): served on `host`:`port` with `cert_file`/`key_file`."""

    host: str
    port: int
    cert_file: str
    key_file: str
    client_ca_file: str


def mutual_listener(
    host: str, port: int, cert_file: str | None, key_file: str | None, client_ca_file: str | None
) -> MutualTls | None:
    """The mutual-TLS listener of a service's settings, None unless all three files are given."""
    if not (cert_file and key_file and client_ca_file):
        return None
    return MutualTls(host, port, cert_file, key_file, client_ca_file)


def server_context(cert_file: str, key_file: str, client_ca_file: str) -> ssl.SSLContext:
    """TLS 1.2 or later; a client must present a certificate that chains to `client_ca_file`."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert_file, key_file)
    context.load_verify_locations(cafile=client_ca_file)
    context.verify_mode = ssl.CERT_REQUIRED
    return context


def mutual_client_context(ca_file: str | None, cert_file: str, key_file: str) -> ssl.SSLContext:
    """A verifying client context that also presents our certificate (dispatch to Försäkringskassan)."""
    context = client_context(ca_file)
    context.load_cert_chain(cert_file, key_file)
    return context


def peer_subject(ssl_object: ssl.SSLObject | ssl.SSLSocket | None) -> tuple[str | None, list[str]]:
    """The verified client certificate's subject (RFC 4514) and its chain as PEM (the ASGI TLS extension's
    `client_cert_name` and `client_cert_chain`); (None, []) without one."""
    if ssl_object is None:
        return None, []
    der = ssl_object.getpeercert(binary_form=True)
    if not der:
        return None, []
    from cryptography import x509

    cert = x509.load_der_x509_certificate(der)
    return cert.subject.rfc4514_string(), [ssl.DER_cert_to_PEM_cert(der)]


def common_name(subject: str | None) -> str | None:
    """The CN of an RFC 4514 subject string (the most specific one)."""
    if not subject:
        return None
    for part in subject.split(","):
        key, _, value = part.partition("=")
        if key.strip().upper() == "CN":
            return value.strip()
    return None

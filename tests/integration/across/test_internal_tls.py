"""Internal calls over TLS, against a real uvicorn serving HTTPS: consent served with a certificate of a CA of the
test's own, and the portal's consent client verifying it with that CA as its setting. Played as the wrong
counterpart too: a client without the CA refuses the server, a certificate for another name is refused, and plain
HTTP does not reach an HTTPS service."""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from secrets import token_hex

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from pydantic import SecretStr

from services.consent.settings import ConsentSettings
from services.kit.settings import ServiceSettings
from services.kit.tls import client_context
from services.portal.consent_api import ConsentApi, ConsentUnavailable
from services.portal.settings import PortalSettings
from tests.harness import ServiceProcess, drop_schema, eventually, new_unique, schema_name, topic_prefix

pytestmark = pytest.mark.integration


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def make_ca(directory: Path, name: str) -> tuple[Path, ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(_name(name)).issuer_name(_name(name)).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    path = directory / f"{name}.pem"
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path, key, cert


def make_server_cert(
    directory: Path, ca_key: ec.EllipticCurvePrivateKey, ca: x509.Certificate, address: str
) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(_name("consent")).issuer_name(ca.subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("consent"),
                                                    x509.IPAddress(ipaddress.ip_address(address))]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )  # fmt: skip
    cert_path, key_path = directory / f"server-{address}.pem", directory / f"server-{address}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


@pytest.fixture
async def consent_over_tls(tmp_path: Path) -> AsyncIterator[tuple[str, Path, Path]]:
    """Consent serving HTTPS on 127.0.0.1 with a certificate of the test CA; (https url, CA file, other CA file)."""
    ca_file, ca_key, ca = make_ca(tmp_path, "internal-ca")
    other_ca, _, _ = make_ca(tmp_path, "other-ca")
    cert, key = make_server_cert(tmp_path, ca_key, ca, "127.0.0.1")
    unique = new_unique()
    base = ServiceSettings()
    env = {"CONSENT_DB_SCHEMA": schema_name(unique), "MINAINTYG_TOPIC_PREFIX": topic_prefix(unique),
           "CONSENT_TLS_CERT_FILE": str(cert), "CONSENT_TLS_KEY_FILE": str(key), "MINAINTYG_ENV": "test"}  # fmt: skip
    process = ServiceProcess("minaintyg-consent", env, port_env="CONSENT_PORT", log=tmp_path / "consent.log")
    url = f"https://127.0.0.1:{process.port}"
    process.spawn()
    try:
        async with httpx.AsyncClient(verify=client_context(str(ca_file)), timeout=2) as client:

            async def ready() -> bool:
                assert process.exited() is None, process.read_log()[-2000:]
                try:
                    return (await client.get(f"{url}/readyz")).status_code == 200
                except httpx.HTTPError:
                    return False

            await eventually(ready, timeout=90, interval=0.3, what="consent over HTTPS")
        yield url, ca_file, other_ca
    finally:
        process.stop()
        await drop_schema(base.database_url, schema_name(unique))


async def test_the_portal_calls_consent_over_verified_tls(consent_over_tls: tuple[str, Path, Path]) -> None:
    url, ca_file, _ = consent_over_tls
    api = ConsentApi(PortalSettings(consent_url=url, consent_ca_file=str(ca_file), environment="test"))
    try:
        state = await api.get("a" * 64)
    finally:
        await api.close()
    assert state["citizen_ref"] == "a" * 64


async def test_a_client_without_the_ca_refuses_the_server(consent_over_tls: tuple[str, Path, Path]) -> None:
    url, _, other_ca = consent_over_tls
    for settings in (
        PortalSettings(consent_url=url, environment="test"),  # the system's trust store does not know the CA
        PortalSettings(consent_url=url, consent_ca_file=str(other_ca), environment="test"),
    ):
        api = ConsentApi(settings)
        try:
            with pytest.raises(ConsentUnavailable, match="ConnectError"):
                await api.get("a" * 64)
        finally:
            await api.close()


async def test_a_certificate_for_another_name_is_refused(consent_over_tls: tuple[str, Path, Path]) -> None:
    url, ca_file, _ = consent_over_tls
    context = client_context(str(ca_file))
    other_name = url.replace("127.0.0.1", "localhost")  # the certificate names consent and 127.0.0.1 only
    async with httpx.AsyncClient(verify=context, timeout=5) as client:
        with pytest.raises(httpx.ConnectError, match=r"match|mismatch|CERTIFICATE_VERIFY_FAILED"):
            await client.get(f"{other_name}/healthz")
        with pytest.raises(httpx.HTTPError):
            await client.get(url.replace("https://", "http://") + "/healthz")
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode is ssl.CERT_REQUIRED
    assert context.check_hostname


def test_production_needs_https_to_consent() -> None:
    secrets = {name: SecretStr(token_hex(32)) for name in ("citizen_ref_key", "oidc_client_secret", "consent_token")}
    with pytest.raises(ValueError, match="PORTAL_CONSENT_URL must be https"):
        PortalSettings(
            environment="production",
            consent_url="http://consent:8002",
            public_origin="https://m.example.se",
            oidc_issuer="https://eid.example.se",
            riv_tls_cert_file="/tls/portal.pem",  # the RIV-TA listener is configured: only the consent URL is wrong
            riv_tls_key_file="/tls/portal-key.pem",
            riv_client_ca_file="/tls/ca.pem",
            **secrets,  # type: ignore[arg-type]
        )


def test_a_certificate_needs_its_key() -> None:
    with pytest.raises(ValueError, match="CONSENT_TLS_CERT_FILE and CONSENT_TLS_KEY_FILE are set together"):
        ConsentSettings(tls_cert_file="/x.pem")

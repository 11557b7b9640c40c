"""The local development CA: a CA of this machine's own, and the certificates the mutual-TLS endpoints need, made
with the `cryptography` package (no openssl shell-outs). `make run` and the tests call `ensure`; production uses
the region's CA and the national platform's function certificates instead (README "Deployment").

Files (contract paths under `.cache/tls/`): `ca.pem` (and `ca-key.pem`), `<name>.pem` + `<name>-key.pem` for
`intake` (server, 127.0.0.1/localhost), `platform` (the national platform's client certificate), `fk` (the
Försäkringskassan simulator: server, and its client certificate for its fetch), `minaintyg` (dispatch's client
certificate towards Försäkringskassan), `portal` (server of the fetch service) and `kafka` (the local brokers).
"""

from __future__ import annotations

import argparse
import datetime as dt
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

DEFAULT_DIRECTORY = Path(".cache/tls")
CA_NAME = "Mina intyg development CA"
RENEW_BEFORE = dt.timedelta(days=30)


@dataclass(frozen=True)
class Leaf:
    name: str
    common_name: str
    server: bool  # serves TLS for 127.0.0.1 and localhost
    client: bool  # authenticates as a TLS client


LEAVES = (
    Leaf("intake", "intake.minaintyg.local", server=True, client=False),
    Leaf("platform", "national-platform", server=False, client=True),
    Leaf("fk", "fkassa", server=True, client=True),
    Leaf("minaintyg", "minaintyg", server=False, client=True),
    Leaf("portal", "portal.minaintyg.local", server=True, client=False),
    # The local Kafka brokers: their listeners, and the client side of their controller connections (mutual TLS).
    Leaf("kafka", "kafka.minaintyg.local", server=True, client=True),
)


def _name(common: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "SE"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Mina intyg (development)"),
            x509.NameAttribute(NameOID.COMMON_NAME, common),
        ]
    )


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    path.chmod(0o600)


def _valid(path: Path, now: dt.datetime) -> bool:
    if not path.exists():
        return False
    cert = x509.load_pem_x509_certificate(path.read_bytes())
    return cert.not_valid_after_utc - now > RENEW_BEFORE


def _ca(directory: Path, now: dt.datetime) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate, bool]:
    cert_path, key_path = directory / "ca.pem", directory / "ca-key.pem"
    if _valid(cert_path, now) and key_path.exists():
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        return key, x509.load_pem_x509_certificate(cert_path.read_bytes()), False
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(CA_NAME))
        .issuer_name(_name(CA_NAME))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    _write_key(key_path, key)
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return key, cert, True


def issue(
    directory: Path, leaf: Leaf, ca_key: ec.EllipticCurvePrivateKey, ca: x509.Certificate, now: dt.datetime
) -> tuple[Path, Path]:
    """A certificate and key for `leaf`, signed by the CA."""
    key = ec.generate_private_key(ec.SECP256R1())
    usages = ([ExtendedKeyUsageOID.SERVER_AUTH] if leaf.server else []) + (
        [ExtendedKeyUsageOID.CLIENT_AUTH] if leaf.client else []
    )
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(leaf.common_name))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.public_key()),  # type: ignore[arg-type]
            critical=False,
        )
    )
    if leaf.server:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
    cert = builder.sign(ca_key, hashes.SHA256())
    cert_path, key_path = directory / f"{leaf.name}.pem", directory / f"{leaf.name}-key.pem"
    _write_key(key_path, key)
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return cert_path, key_path


def ensure(directory: Path = DEFAULT_DIRECTORY) -> Path:
    """Create (or renew) the CA and every leaf certificate in `directory`; return the directory."""
    directory.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC)
    ca_key, ca, new_ca = _ca(directory, now)
    for leaf in LEAVES:
        current = _valid(directory / f"{leaf.name}.pem", now) and (directory / f"{leaf.name}-key.pem").exists()
        if new_ca or not current:
            issue(directory, leaf, ca_key, ca, now)
    return directory


def main() -> None:
    parser = argparse.ArgumentParser(prog="minaintyg-devca", description=__doc__)
    parser.add_argument("directory", nargs="?", type=Path, default=DEFAULT_DIRECTORY)
    args = parser.parse_args()
    print(ensure(args.directory))


if __name__ == "__main__":
    main()

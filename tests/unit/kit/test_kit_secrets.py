"""Production refuses every weak secret of every service, found by type (services/kit/secrets.py), and a key is
only in the settings of the services that use it."""

from __future__ import annotations

import secrets

import pytest
from pydantic import SecretStr, ValidationError

from deploy.simulators.fk.settings import FksimSettings
from deploy.simulators.idp.settings import IdpsimSettings
from services.consent.settings import ConsentSettings
from services.dispatch.settings import DispatchSettings
from services.intake.settings import IntakeSettings
from services.kit.secrets import MIN_LENGTH, weakness
from services.kit.settings import CitizenRefKeySettings, ServiceSettings
from services.portal.settings import PortalSettings
from services.stats.settings import StatsSettings
from tests.harness.production import kafka_login

SETTINGS: list[type[ServiceSettings]] = [
    IntakeSettings, ConsentSettings, PortalSettings, DispatchSettings, StatsSettings, FksimSettings, IdpsimSettings,
]  # fmt: skip
# What production needs besides secrets (https origins), so that only the secrets decide.
PRODUCTION: dict[type[ServiceSettings], dict[str, object]] = {
    PortalSettings: {
        "public_origin": "https://minaintyg.example.se",
        "oidc_issuer": "https://eid.example.se",
        "consent_url": "https://consent:8002",
        "riv_tls_cert_file": "/tls/riv/tls.crt",
        "riv_tls_key_file": "/tls/riv/tls.key",
        "riv_client_ca_file": "/tls/riv/ca.crt",
    },
    IdpsimSettings: {"issuer": "https://idp.example"},
    IntakeSettings: {
        "riv_tls_cert_file": "/tls/riv/tls.crt",
        "riv_tls_key_file": "/tls/riv/tls.key",
        "riv_client_ca_file": "/tls/riv/platform-ca.crt",
    },
}


for _cls in (IntakeSettings, ConsentSettings, PortalSettings, DispatchSettings, StatsSettings):
    PRODUCTION[_cls] = {**PRODUCTION.get(_cls, {}), **kafka_login()}


def strong() -> SecretStr:
    return SecretStr(secrets.token_hex(32))


def secret_fields(cls: type[ServiceSettings]) -> dict[str, bool]:
    """Field name → whether it is a credential map (dict of secrets) rather than one secret."""
    out = {}
    for name, field in cls.model_fields.items():
        default = field.get_default(call_default_factory=True)
        if isinstance(default, SecretStr):
            out[name] = False
        elif isinstance(default, dict) and default and all(isinstance(v, SecretStr) for v in default.values()):
            out[name] = True
    return out


def strong_values(cls: type[ServiceSettings]) -> dict[str, object]:
    return {name: ({"client": strong()} if is_map else strong()) for name, is_map in secret_fields(cls).items()}


@pytest.mark.parametrize("cls", SETTINGS, ids=lambda c: c.__name__)
def test_production_with_development_defaults_names_every_secret(cls: type[ServiceSettings]) -> None:
    fields = secret_fields(cls)
    assert fields, f"{cls.__name__} has secrets"
    if cls is PortalSettings:
        fields.pop("oidc_client_private_key")  # empty by default: `auto` then uses the client secret only
    with pytest.raises(ValidationError) as refused:
        cls(environment="production", **PRODUCTION.get(cls, {}))  # type: ignore[arg-type]
    message = str(refused.value)
    for name in fields:
        assert cls.setting_name(name) in message, (name, message)
    assert "dev-" not in message, "the message names settings, never values"


@pytest.mark.parametrize("cls", SETTINGS, ids=lambda c: c.__name__)
def test_production_accepts_strong_secrets(cls: type[ServiceSettings]) -> None:
    settings = cls(environment="production", **PRODUCTION.get(cls, {}), **strong_values(cls))  # type: ignore[arg-type]
    assert settings.environment == "production"


@pytest.mark.parametrize("cls", SETTINGS, ids=lambda c: c.__name__)
@pytest.mark.parametrize(
    "weak", ["", "short-9f3k", "k" * 64, "dev-" + secrets.token_hex(20), "changeme" + secrets.token_hex(20)]
)
def test_production_refuses_each_kind_of_weak_secret_in_every_slot(cls: type[ServiceSettings], weak: str) -> None:
    for name, is_map in secret_fields(cls).items():
        values = strong_values(cls)
        values[name] = {"client": SecretStr(weak)} if is_map else SecretStr(weak)
        if cls is PortalSettings and name == "oidc_client_private_key":
            values["oidc_client_auth_method"] = "private_key_jwt"
        with pytest.raises(ValidationError, match=cls.setting_name(name)):
            cls(environment="production", **PRODUCTION.get(cls, {}), **values)  # type: ignore[arg-type]


def test_an_empty_credential_map_is_refused_in_production() -> None:
    with pytest.raises(ValidationError, match="INTAKE_PLATFORM_TOKENS is empty"):
        IntakeSettings(environment="production", platform_tokens={}, citizen_ref_key=strong())


def test_a_secret_the_configuration_does_not_use_is_not_required() -> None:
    origins = PRODUCTION[PortalSettings]
    others = {"citizen_ref_key": strong(), "consent_token": strong()}
    assert "kafka_sasl_password" in origins
    # private_key_jwt: the client secret is not used, so its development default does not block.
    key = SecretStr("-----BEGIN PRIVATE KEY-----\n" + secrets.token_urlsafe(48) + "\n-----END PRIVATE KEY-----")
    PortalSettings(environment="production", oidc_client_auth_method="private_key_jwt", oidc_client_private_key=key,
                   **origins, **others)  # type: ignore[arg-type]  # fmt: skip
    # client_secret_basic: the key is not used (and is empty).
    PortalSettings(environment="production", oidc_client_auth_method="client_secret_basic",
                   oidc_client_secret=strong(), **origins, **others)  # type: ignore[arg-type]  # fmt: skip
    # auto with a key: both may be used, both are checked.
    with pytest.raises(ValidationError, match="PORTAL_OIDC_CLIENT_SECRET"):
        PortalSettings(environment="production", oidc_client_private_key=key, **origins, **others)  # type: ignore[arg-type]


@pytest.mark.parametrize("weak", ["", "short-9f3k", "k" * 64, "changeme" + secrets.token_hex(20)])
def test_production_refuses_a_weak_kafka_password(weak: str) -> None:
    values = {**PRODUCTION[StatsSettings], **strong_values(StatsSettings), "kafka_sasl_password": SecretStr(weak)}
    with pytest.raises(ValidationError, match="KAFKA_SASL_PASSWORD"):
        StatsSettings(environment="production", **values)  # type: ignore[arg-type]


@pytest.mark.parametrize("protocol", ["PLAINTEXT", "SASL_PLAINTEXT"])
def test_production_reaches_kafka_only_over_tls_with_a_login(protocol: str) -> None:
    values = {**PRODUCTION[StatsSettings], **strong_values(StatsSettings), "kafka_security_protocol": protocol}
    with pytest.raises(ValidationError, match="production connects to Kafka over TLS with a login"):
        StatsSettings(environment="production", **values)  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="needs KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD"):
        StatsSettings(kafka_security_protocol="SASL_SSL", kafka_sasl_username=None, kafka_sasl_password=None)


def test_development_and_test_keep_their_defaults() -> None:
    for cls in SETTINGS:
        assert cls(environment="development").environment == "development"
        assert cls(environment="test").environment == "test"


def test_weakness_rules() -> None:
    assert weakness(secrets.token_hex(32)) is None
    assert weakness("   ") == "is empty"
    assert weakness("x" * (MIN_LENGTH - 1)) == f"is shorter than {MIN_LENGTH} characters"
    assert weakness("ab" * 40) == "has fewer than 10 different characters"
    assert weakness("same", development_value="same") == "is the development value"
    assert "placeholder" in (weakness("Example-Key-" + secrets.token_hex(16)) or "")


def test_only_the_services_that_make_citizen_refs_have_the_key() -> None:
    """intake (certificates in) and the portal (login) turn a personnummer into a ref; nobody else holds the key."""
    holders = {cls.__name__ for cls in SETTINGS if issubclass(cls, CitizenRefKeySettings)}
    assert holders == {"IntakeSettings", "PortalSettings"}
    assert "citizen_ref_key" not in ServiceSettings.model_fields

"""The portal's RIV-TA listener for Försäkringskassan (services/portal/riv.py): configured whole or not at all, and
a fetch reads in the access log as Försäkringskassan's."""

from __future__ import annotations

import secrets

import pytest
from pydantic import SecretStr, ValidationError

from services.kit.swedish import ACCESS_ACTIONS
from services.portal.settings import PortalSettings
from services.portal.views import actor_text
from tests.harness.production import kafka_login


def test_the_listener_is_configured_whole_and_production_requires_it() -> None:
    names = ("citizen_ref_key", "oidc_client_secret", "consent_token")
    strong = {name: SecretStr(secrets.token_hex(32)) for name in names}
    origins = {"public_origin": "https://minaintyg.example.se", "oidc_issuer": "https://eid.example.se",
               "consent_url": "https://consent:8002", **kafka_login("portal")}  # fmt: skip
    with pytest.raises(ValidationError, match="mutual TLS: set PORTAL_RIV_TLS_CERT_FILE"):
        PortalSettings(environment="production", **origins, **strong)  # type: ignore[arg-type]
    assert PortalSettings().mutual_tls() is None
    with pytest.raises(ValidationError, match="PORTAL_RIV_CLIENT_CA_FILE are set together"):
        PortalSettings(riv_tls_cert_file="/tls/fk/tls.crt", riv_tls_key_file="/tls/fk/tls.key")
    with pytest.raises(ValidationError, match="PORTAL_RIV_TLS_CERT_FILE, PORTAL_RIV_TLS_KEY_FILE"):
        PortalSettings(riv_client_ca_file="/tls/fk/ca.crt")
    mutual = PortalSettings(
        riv_tls_cert_file="/tls/fk/tls.crt", riv_tls_key_file="/tls/fk/tls.key", riv_client_ca_file="/tls/fk/ca.crt"
    ).mutual_tls()
    assert mutual is not None
    assert (mutual.port, mutual.client_ca_file) == (8444, "/tls/fk/ca.crt")
    assert PortalSettings().riv_clients == {"fkassa": "FKASSA"}


def test_a_fetch_reads_as_forsakringskassans_in_the_access_log() -> None:
    assert actor_text("FKASSA", "fetched") == "Försäkringskassan"
    assert ACCESS_ACTIONS["fetched"] == "Hämtat intyget från Mina intyg"
    assert actor_text("drift@example.se", "operator_dispatch_retry") == "Driftpersonal (drift@example.se)"
    assert actor_text(None, "read") == "Du"

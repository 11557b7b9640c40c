"""Namespaces, OIDs and code systems of the RIV-TA certificate contracts."""

from __future__ import annotations

from typing import Final

SOAP_ENV: Final = "http://schemas.xmlsoap.org/soap/envelope/"
ADDRESSING: Final = "urn:riv:itintegration:registry:1"
CORE: Final = "urn:riv:clinicalprocess:healthcond:certificate:3"
TYPES: Final = "urn:riv:clinicalprocess:healthcond:certificate:types:3"
REGISTER: Final = "urn:riv:clinicalprocess:healthcond:certificate:RegisterCertificateResponder:3"
REVOKE: Final = "urn:riv:clinicalprocess:healthcond:certificate:RevokeCertificateResponder:2"
LIST_FOR_CITIZEN: Final = "urn:riv:clinicalprocess:healthcond:certificate:ListCertificatesForCitizenResponder:3"
GET_CERTIFICATE: Final = "urn:riv:clinicalprocess:healthcond:certificate:GetCertificateResponder:2"

# Identifier roots (OIDs)
PERSONNUMMER_OID: Final = "1.2.752.129.2.1.3.1"
SAMORDNINGSNUMMER_OID: Final = "1.2.752.129.2.1.3.3"
HSA_ID_OID: Final = "1.2.752.129.2.1.4.1"
ARBETSPLATSKOD_OID: Final = "1.2.752.29.4.71"

# Diagnosis code systems
ICD10_SE_OID: Final = "1.2.752.116.1.1.1.1.3"
KSH97P_OID: Final = "1.2.752.116.1.3.1.4.1"

# Code systems (kodverk) of the contracts
KV_INTYGSTYP: Final = "b64ea353-e8f6-4832-b563-fc7d46f29548"
KV_RELATION: Final = "c2362fcd-eda0-4f9a-bd13-b3bbaf7f2146"
KV_PART: Final = "769bb12b-bd9f-4203-a5cd-fd14f2eb3b80"
KV_STATUS: Final = "9871cd17-8755-4ed9-b894-ff3729e775a4"
KV_BEFATTNING: Final = "1.2.752.129.2.2.1.4"
KV_SPECIALISTKOMPETENS: Final = "1.2.752.129.2.2.1.26"

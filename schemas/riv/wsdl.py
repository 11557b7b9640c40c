"""The WSDL (RIV-TA basic profile 2.1, SOAP 1.1 document/literal) of each interaction we serve or call, and the
contract schemas it imports, as a standard SOAP client fetches them: `<endpoint>?wsdl`, `<endpoint>?xsd=<file>`."""

from __future__ import annotations

import re
from dataclasses import dataclass
from xml.sax.saxutils import quoteattr

from schemas.riv import namespaces as ns
from schemas.riv.xml import XSD_DIR


@dataclass(frozen=True)
class Interaction:
    """One RIV-TA interaction: its name, major version, responder namespace and schema file."""

    name: str  # e.g. RegisterCertificate
    version: int
    responder_namespace: str
    xsd: str

    @property
    def path(self) -> str:
        """The endpoint's path, as the national platform's addressing writes it."""
        return f"/riv/clinicalprocess/healthcond/certificate/{self.name}/{self.version}/rivtabp21"

    @property
    def soap_action(self) -> str:
        return f"{self.responder_namespace}:{self.name}"

    @property
    def wsdl_namespace(self) -> str:
        return f"urn:riv:clinicalprocess:healthcond:certificate:{self.name}:{self.version}:rivtabp21"


REGISTER_CERTIFICATE = Interaction("RegisterCertificate", 3, ns.REGISTER, "RegisterCertificateResponder_3.xsd")
REVOKE_CERTIFICATE = Interaction("RevokeCertificate", 2, ns.REVOKE, "RevokeCertificateResponder_2.xsd")
LIST_CERTIFICATES_FOR_CITIZEN = Interaction(
    "ListCertificatesForCitizen", 3, ns.LIST_FOR_CITIZEN, "ListCertificatesForCitizenResponder_3.xsd"
)
GET_CERTIFICATE = Interaction("GetCertificate", 2, ns.GET_CERTIFICATE, "GetCertificateResponder_2.xsd")

SCHEMA_FILES = frozenset(p.name for p in XSD_DIR.glob("*.xsd"))
_SCHEMA_LOCATION = re.compile(r'schemaLocation="([A-Za-z0-9_.]+\.xsd)"')


def wsdl(interaction: Interaction, address: str) -> str:
    """The interaction's WSDL with `address` as its endpoint."""
    i = interaction
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<wsdl:definitions name="{i.name}Interaction"
    xmlns:wsdl="http://schemas.xmlsoap.org/wsdl/"
    xmlns:soap="http://schemas.xmlsoap.org/wsdl/soap/"
    xmlns:xs="http://www.w3.org/2001/XMLSchema"
    xmlns:tjsr="{i.responder_namespace}"
    xmlns:itr="{ns.ADDRESSING}"
    xmlns:tns="{i.wsdl_namespace}"
    targetNamespace="{i.wsdl_namespace}">
  <wsdl:documentation>{i.name}, version {i.version}, RIV-TA basic profile 2.1 (Mina intyg)</wsdl:documentation>
  <wsdl:types>
    <xs:schema targetNamespace="{i.wsdl_namespace}">
      <xs:import namespace="{i.responder_namespace}" schemaLocation="?xsd={i.xsd}"/>
      <xs:import namespace="{ns.ADDRESSING}" schemaLocation="?xsd=itintegration_registry_1.xsd"/>
    </xs:schema>
  </wsdl:types>
  <wsdl:message name="{i.name}Request">
    <wsdl:part name="LogicalAddress" element="itr:LogicalAddress"/>
    <wsdl:part name="parameters" element="tjsr:{i.name}"/>
  </wsdl:message>
  <wsdl:message name="{i.name}Response">
    <wsdl:part name="parameters" element="tjsr:{i.name}Response"/>
  </wsdl:message>
  <wsdl:portType name="{i.name}ResponderInterface">
    <wsdl:operation name="{i.name}">
      <wsdl:input message="tns:{i.name}Request"/>
      <wsdl:output message="tns:{i.name}Response"/>
    </wsdl:operation>
  </wsdl:portType>
  <wsdl:binding name="{i.name}ResponderBinding" type="tns:{i.name}ResponderInterface">
    <soap:binding style="document" transport="http://schemas.xmlsoap.org/soap/http"/>
    <wsdl:operation name="{i.name}">
      <soap:operation soapAction="{i.soap_action}" style="document"/>
      <wsdl:input>
        <soap:header use="literal" message="tns:{i.name}Request" part="LogicalAddress"/>
        <soap:body use="literal" parts="parameters"/>
      </wsdl:input>
      <wsdl:output>
        <soap:body use="literal"/>
      </wsdl:output>
    </wsdl:operation>
  </wsdl:binding>
  <wsdl:service name="{i.name}ResponderService">
    <wsdl:port name="{i.name}ResponderPort" binding="tns:{i.name}ResponderBinding">
      <soap:address location={quoteattr(address)}/>
    </wsdl:port>
  </wsdl:service>
</wsdl:definitions>
"""


def schema_document(filename: str) -> str | None:
    """A contract schema as served beside a WSDL (imports pointing at `?xsd=`), or None for an unknown name."""
    if filename not in SCHEMA_FILES:
        return None
    text = (XSD_DIR / filename).read_text(encoding="utf-8")
    return _SCHEMA_LOCATION.sub(r'schemaLocation="?xsd=\1"', text)

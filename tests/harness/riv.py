"""RIV-TA test material: certificates in the transport format written by hand from the contract, and a journal
system's SOAP client — zeep on our WSDLs over mutual TLS — to register and revoke them."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import requests
import zeep
import zeep.plugins
from lxml import etree
from zeep import xsd
from zeep.transports import Transport

from schemas.riv import namespaces as ns
from schemas.riv.mapping import utc_to_swedish_time
from schemas.riv.transport import (
    CV,
    II,
    DatePeriod,
    Delsvar,
    Enhet,
    HosPersonal,
    Intyg,
    Patient,
    Revocation,
    Svar,
    Vardgivare,
)
from schemas.riv.wsdl import Interaction

_T = TypeVar("_T")

UNIT = "SE2321000016-15CQ"  # Sankt Görans sjukhus: connected, in Stockholms län, by intake's first migration


def _hsa(extension: str) -> II:
    return II(ns.HSA_ID_OID, extension)


def _t(delsvar_id: str, text: str) -> Delsvar:
    return Delsvar(delsvar_id, text=text)


def _cv(delsvar_id: str, code: str, system: str) -> Delsvar:
    return Delsvar(delsvar_id, value=CV(code, system), elements=1)


def issuer(unit: str = UNIT) -> HosPersonal:
    enhet = Enhet(
        enhets_id=_hsa(unit),
        arbetsplatskod=II(ns.ARBETSPLATSKOD_OID, "1234567"),
        enhetsnamn="Sankt Görans sjukhus",
        postadress="Sankt Göransplan 1",
        postnummer="112 81",
        postort="Stockholm",
        telefonnummer="08-587 010 00",
        vardgivare=Vardgivare(_hsa("SE2321000016-0001"), "Region Stockholm"),
    )
    return HosPersonal(
        personal_id=_hsa("SE2321000016-1A2B"),
        fullstandigt_namn="Ajla Doktor",
        enhet=enhet,
        befattningar=(CV("203090", ns.KV_BEFATTNING, display_name="Läkare legitimerad, annan"),),
    )


def lisjp(
    *, certificate_id: str | None = None, personnummer: str = "191212121212", now: datetime | None = None
) -> Intyg:
    """A complete LISJP v1 as a journal system registers it: signed an hour ago, sick leave from today."""
    signed = utc_to_swedish_time(now or datetime.now().astimezone()) - timedelta(hours=1)
    today = signed.date()
    return Intyg(
        intygs_id=II(UNIT, certificate_id or str(uuid.uuid4())),
        typ=CV("LISJP", ns.KV_INTYGSTYP, display_name="Läkarintyg för sjukpenning"),
        version="1.0",
        signeringstidpunkt=signed,
        skickat_tidpunkt=signed + timedelta(seconds=5),
        patient=Patient(
            II(ns.PERSONNUMMER_OID, personnummer), "Tolvan", "Tolvansson", "Gatan 1", "111 11", "Stockholm"
        ),
        skapad_av=issuer(),
        svar=(
            Svar("1", (_cv("1.1", "UNDERSOKNING", "KV_FKMU_0001"), _t("1.2", today.isoformat())), instans=1),
            Svar("28", (_cv("28.1", "NUVARANDE_ARBETE", "KV_FKMU_0002"),), instans=1),
            Svar("29", (_t("29.1", "Lärare på högstadiet"),)),
            Svar(
                "6",
                (
                    _t("6.1", "Utmattningssyndrom"),
                    _cv("6.2", "F438A", ns.ICD10_SE_OID),
                    _t("6.3", "Kollumfraktur"),
                    _cv("6.4", "S7200", ns.ICD10_SE_OID),
                ),
            ),
            Svar("35", (_t("35.1", "Uttalad trötthet och koncentrationssvårigheter"),)),
            Svar("17", (_t("17.1", "Klarar inte att undervisa en hel dag"),)),
            Svar("19", (_t("19.1", "Samtalsterapi, vårdcentralen"),)),
            Svar(
                "32",
                (
                    _cv("32.1", "HALFTEN", "KV_FKMU_0003"),
                    Delsvar("32.2", value=DatePeriod(today, today + timedelta(days=27)), elements=1),
                ),
                instans=1,
            ),
            Svar("37", (_t("37.1", "Längre än FMB på grund av samsjuklighet"),)),
            Svar("33", (_t("33.1", "true"), _t("33.2", "Förmiddagar fungerar bäst"))),
            Svar("34", (_t("34.1", "false"),)),
            Svar("39", (_cv("39.1", "ATER_X_ANTAL_DGR", "KV_FKMU_0006"), _cv("39.3", "SEXTIO_DGR", "KV_FKMU_0007"))),
            Svar("40", (_cv("40.1", "ARBETSANPASSNING", "KV_FKMU_0004"),), instans=1),
            Svar("40", (_cv("40.1", "KONTAKT_FHV", "KV_FKMU_0004"),), instans=2),
            Svar("44", (_t("44.1", "Anpassade arbetsuppgifter under två veckor"),)),
            Svar("25", (_t("25.1", "Inget att tillägga"),)),
            Svar("26", (_t("26.1", "true"), _t("26.2", "Vill diskutera rehabiliteringen"))),
        ),
    )


def revocation(intyg: Intyg, *, message: str | None = "Fel patient") -> Revocation:
    return Revocation(
        intygs_id=intyg.intygs_id,
        person_id=intyg.patient.person_id,
        skickat_tidpunkt=utc_to_swedish_time(datetime.now().astimezone()) - timedelta(seconds=5),
        skickat_av=intyg.skapad_av,
        meddelande=message,
    )


def replace(value: _T, **changes: Any) -> _T:
    """`dataclasses.replace` for any of the transport format's values."""
    return dataclasses.replace(value, **changes)  # type: ignore[type-var]


# --- a journal system's SOAP client -----------------------------------------------------------------------------


class _MixedText(zeep.plugins.Plugin):
    """zeep cannot render text in a mixed-content element (a text delsvar); this fills them in document order."""

    def __init__(self) -> None:
        self.texts: list[str] = []

    def egress(self, envelope: etree._Element, http_headers: Any, operation: Any, binding_options: Any) -> Any:
        texts = iter(self.texts)
        for element in envelope.iter(f"{{{ns.CORE}}}delsvar"):
            if len(element) == 0 and not element.text:
                element.text = next(texts)
        self.texts = []
        return envelope, http_headers


class JournalSystem:
    """zeep, as a journal system would use it: the WSDL fetched from the endpoint's `?wsdl` over mutual TLS."""

    def __init__(self, base_url: str, interaction: Interaction, *, ca: Path, cert: Path, key: Path) -> None:
        session = requests.Session()
        session.trust_env = False  # else REQUESTS_CA_BUNDLE outranks session.verify (requests#3829)
        session.verify = str(ca)
        session.cert = (str(cert), str(key))
        self.text = _MixedText()
        self.client = zeep.Client(
            f"{base_url}{interaction.path}?wsdl", transport=Transport(session=session), plugins=[self.text]
        )
        self.interaction = interaction

    def _type(self, namespace: str, name: str) -> Any:
        return self.client.get_type(f"{{{namespace}}}{name}")

    def _cv(self, value: CV) -> dict[str, Any]:
        return {"code": value.code, "codeSystem": value.code_system, "displayName": value.display_name}

    def _delsvar(self, delsvar: Delsvar) -> dict[str, Any]:
        value = delsvar.value
        if isinstance(value, CV):
            element = self.client.get_element(f"{{{ns.TYPES}}}cv")
            cv = self._type(ns.TYPES, "CVType")(**self._cv(value))
            return {"id": delsvar.id, "_value_1": [xsd.AnyObject(element, cv)]}
        if isinstance(value, DatePeriod):
            element = self.client.get_element(f"{{{ns.TYPES}}}datePeriod")
            period = self._type(ns.TYPES, "DatePeriodType")(start=value.start, end=value.end)
            return {"id": delsvar.id, "_value_1": [xsd.AnyObject(element, period)]}
        self.text.texts.append(delsvar.text)
        return {"id": delsvar.id}

    def _hos_personal(self, value: HosPersonal) -> dict[str, Any]:
        e = value.enhet
        return {
            "personal-id": {"root": value.personal_id.root, "extension": value.personal_id.extension},
            "fullstandigtNamn": value.fullstandigt_namn,
            "befattning": [self._cv(b) for b in value.befattningar],
            "enhet": {
                "enhets-id": {"root": e.enhets_id.root, "extension": e.enhets_id.extension},
                "arbetsplatskod": {"root": e.arbetsplatskod.root, "extension": e.arbetsplatskod.extension},
                "enhetsnamn": e.enhetsnamn,
                "postadress": e.postadress,
                "postnummer": e.postnummer,
                "postort": e.postort,
                "telefonnummer": e.telefonnummer,
                "vardgivare": {
                    "vardgivare-id": {
                        "root": e.vardgivare.vardgivare_id.root,
                        "extension": e.vardgivare.vardgivare_id.extension,
                    },
                    "vardgivarnamn": e.vardgivare.vardgivarnamn,
                },
            },
        }  # fmt: skip

    def register(self, intyg: Intyg, logical_address: str = "MINAINTYG") -> Any:
        """Call RegisterCertificate; the answer's `result` (resultCode, resultText, errorId) as zeep parsed it."""
        p = intyg.patient
        value = {
            "intygs-id": {"root": intyg.intygs_id.root, "extension": intyg.intygs_id.extension},
            "typ": self._cv(intyg.typ),
            "version": intyg.version,
            "signeringstidpunkt": _stamp(intyg.signeringstidpunkt),
            "skickatTidpunkt": _stamp(intyg.skickat_tidpunkt),
            "patient": {
                "person-id": {"root": p.person_id.root, "extension": p.person_id.extension},
                "fornamn": p.fornamn,
                "efternamn": p.efternamn,
                "postadress": p.postadress,
                "postnummer": p.postnummer,
                "postort": p.postort,
            },
            "skapadAv": self._hos_personal(intyg.skapad_av),
            "svar": [
                {"id": s.id, "instans": s.instans, "delsvar": [self._delsvar(d) for d in s.delsvar]} for s in intyg.svar
            ],
        }
        return self.client.service.RegisterCertificate(intyg=value, _soapheaders={"LogicalAddress": logical_address})

    def revoke(self, revocation: Revocation, logical_address: str = "MINAINTYG") -> Any:
        return self.client.service.RevokeCertificate(
            meddelande=revocation.meddelande,
            skickatTidpunkt=_stamp(revocation.skickat_tidpunkt),
            **{
                "intygs-id": {"root": revocation.intygs_id.root, "extension": revocation.intygs_id.extension},
                "patientPerson-id": {"root": revocation.person_id.root, "extension": revocation.person_id.extension},
                "skickatAv": self._hos_personal(revocation.skickat_av),
            },
            _soapheaders={"LogicalAddress": logical_address},
        )


def _stamp(value: datetime | None) -> str | None:
    return None if value is None else value.replace(microsecond=0).isoformat()


class Forsakringskassan(JournalSystem):
    """zeep as Försäkringskassan uses it to fetch a citizen's certificates from Mina intyg (its own client
    certificate, the WSDL of ListCertificatesForCitizen v3 or GetCertificate v2 from the endpoint's `?wsdl`)."""

    def list_for_citizen(
        self,
        personnummer: str,
        types: tuple[str, ...] = (),
        *,
        archived: bool = False,
        logical_address: str = "MINAINTYG",
    ) -> Any:
        """The answer: `intygsLista.intyg` (zeep's objects) and `result`."""
        return self.client.service.ListCertificatesForCitizen(
            **{"person-id": {"root": ns.PERSONNUMMER_OID, "extension": personnummer}},
            intygTyp=[{"code": t, "codeSystem": ns.KV_INTYGSTYP} for t in types],
            arkiverade=archived,
            _soapheaders={"LogicalAddress": logical_address},
        )

    def get(self, certificate_id: str, *, root: str = UNIT, part: str = "FKASSA") -> Any:
        return self.client.service.GetCertificate(
            **{"intygs-id": {"root": root, "extension": certificate_id}},
            part={"code": part, "codeSystem": ns.KV_PART},
            _soapheaders={"LogicalAddress": "MINAINTYG"},
        )

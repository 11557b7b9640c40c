"""Reading and writing the RIV-TA transport format safely: no DTD, no entities, no network, bounded size and depth,
and every message checked against the contract's schema (`xsd/`) before it is read."""

from __future__ import annotations

import functools
from datetime import date, datetime
from pathlib import Path

from lxml import etree

from schemas.riv import namespaces as ns
from schemas.riv.transport import (
    CV,
    II,
    DatePeriod,
    Delsvar,
    Enhet,
    HosPersonal,
    Intyg,
    PartialDate,
    Patient,
    Relation,
    Result,
    Revocation,
    Status,
    Svar,
    Typed,
    Vardgivare,
)

XSD_DIR = Path(__file__).parent / "xsd"
MAX_DEPTH = 32  # the deepest element of the contracts lies at depth 10 in a SOAP envelope

C = f"{{{ns.CORE}}}"
T = f"{{{ns.TYPES}}}"


class InvalidXml(ValueError):
    """A message that is not well-formed XML, or uses what a SOAP message may not (a DTD, entities)."""


class NotTheContract(ValueError):
    """Well-formed XML that is not the contract: every schema violation, one per line."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


_PARSER = etree.XMLParser(
    resolve_entities=False,
    no_network=True,
    load_dtd=False,
    dtd_validation=False,
    huge_tree=False,
    remove_comments=True,
    remove_pis=True,
    collect_ids=False,
)


def parse(data: bytes) -> etree._Element:
    """Parse one message; raise InvalidXml naming what is wrong."""
    if b"<!DOCTYPE" in data or b"<!ENTITY" in data:
        raise InvalidXml("a document type declaration (DTD) is not allowed in a SOAP message")
    try:
        root = etree.fromstring(data, _PARSER)
    except etree.XMLSyntaxError as exc:
        raise InvalidXml(f"not well-formed XML: {exc.msg}") from None
    if _deeper_than(root, MAX_DEPTH):
        raise InvalidXml(f"elements are nested deeper than {MAX_DEPTH} levels")
    return root


_DEEPER_THAN_MAX = etree.XPath("boolean(/" + "/".join(["*"] * (MAX_DEPTH + 1)) + ")")


def _deeper_than(root: etree._Element, limit: int) -> bool:
    """Whether an element lies deeper than `limit` (the root at depth 1): one compiled XPath, walked in libxml2
    (elements only: `_PARSER` has removed comments and processing instructions)."""
    if limit == MAX_DEPTH:
        return bool(_DEEPER_THAN_MAX(root))
    return bool(root.xpath("boolean(/" + "/".join(["*"] * (limit + 1)) + ")"))


@functools.cache
def schema(filename: str) -> etree.XMLSchema:
    """One of the contract schemas in `xsd/` (imports resolved within that directory only)."""
    parser = etree.XMLParser(no_network=True, resolve_entities=False)
    return etree.XMLSchema(etree.parse(str(XSD_DIR / filename), parser))


def check(element: etree._Element, filename: str) -> None:
    """Validate a payload element against a contract schema; raise NotTheContract with every violation."""
    xsd = schema(filename)
    if not xsd.validate(etree.ElementTree(element)):
        problems = [f"line {e.line}: {e.message}" for e in xsd.error_log]  # type: ignore[attr-defined]
        raise NotTheContract(problems or ["the message does not follow the contract's schema"])


# --- reading ---------------------------------------------------------------------------------------------------
#
# Each element's children are walked once, in document order: a child is found by its tag in a dict (the first of
# each tag, as `find` would), and the repeatable ones are collected on the way. (Looking each field up by tag costs
# lxml a parse of the "{namespace}name" string and a scan of the children per lookup: most of a message's reading.)


def _text(element: etree._Element | None) -> str:
    return "" if element is None or element.text is None else element.text.strip()


def _first(parent: etree._Element) -> dict[object, etree._Element]:
    """Each tag among the children of `parent`, to its first child of that tag (comments and PIs included: their
    tags are functions, never a name looked up)."""
    found: dict[object, etree._Element] = {}
    for child in parent:
        if child.tag not in found:
            found[child.tag] = child
    return found


def _texts(parent: etree._Element) -> dict[object, str]:
    """Each tag among the children of `parent`, to the stripped text of its first child of that tag."""
    found: dict[object, str] = {}
    for child in parent:
        tag = child.tag
        if tag not in found:
            text = child.text
            found[tag] = "" if text is None else text.strip()
    return found


def _lacks(parent: etree._Element, tag: str) -> NotTheContract:
    # The schema check comes first, so this is a bug or an unchecked document.
    return NotTheContract([f"{etree.QName(parent).localname} lacks {etree.QName(tag).localname}"])


def _req(parent: etree._Element, children: dict[object, etree._Element], tag: str) -> etree._Element:
    found = children.get(tag)
    if found is None:
        raise _lacks(parent, tag)
    return found


def _req_text(parent: etree._Element, texts: dict[object, str], tag: str) -> str:
    found = texts.get(tag)
    if found is None:
        raise _lacks(parent, tag)
    return found


_ROOT, _EXTENSION = T + "root", T + "extension"
_CODE, _CODE_SYSTEM = T + "code", T + "codeSystem"
_CODE_SYSTEM_NAME, _CODE_SYSTEM_VERSION = T + "codeSystemName", T + "codeSystemVersion"
_DISPLAY_NAME, _ORIGINAL_TEXT = T + "displayName", T + "originalText"


def read_ii(element: etree._Element) -> II:
    texts = _texts(element)
    return II(root=_req_text(element, texts, _ROOT), extension=_req_text(element, texts, _EXTENSION))


def read_cv(element: etree._Element) -> CV:
    texts = _texts(element)
    get = texts.get
    return CV(
        code=_req_text(element, texts, _CODE),
        code_system=_req_text(element, texts, _CODE_SYSTEM),
        code_system_name=get(_CODE_SYSTEM_NAME),
        code_system_version=get(_CODE_SYSTEM_VERSION),
        display_name=get(_DISPLAY_NAME),
        original_text=get(_ORIGINAL_TEXT),
    )


def read_time(element: etree._Element) -> datetime:
    return datetime.fromisoformat(_text(element))


def _opt_time(element: etree._Element | None) -> datetime | None:
    return None if element is None else read_time(element)


_CV, _DATE_PERIOD, _DATE, _PARTIAL_DATE = T + "cv", T + "datePeriod", T + "date", T + "partialDate"


def _typed(element: etree._Element) -> Typed | None:
    tag = element.tag
    if tag == _CV:
        return read_cv(element)
    if tag == _DATE_PERIOD:
        texts = _texts(element)
        start, end = texts.get(T + "start"), texts.get(T + "end")
        return DatePeriod(
            start=None if start is None else date.fromisoformat(start),
            end=None if end is None else date.fromisoformat(end),
        )
    if tag == _DATE:
        return date.fromisoformat(_text(element))
    if tag == _PARTIAL_DATE:
        texts = _texts(element)
        return PartialDate(format=_req_text(element, texts, T + "format"), value=_req_text(element, texts, T + "value"))
    return None


def read_delsvar(element: etree._Element) -> Delsvar:
    if not len(element):  # text only (a text, boolean or date answer)
        text = element.text
        return Delsvar(id=element.get("id", ""), text="" if text is None else text.strip())
    children = [child for child in element if isinstance(child.tag, str)]
    text = (element.text or "") + "".join(child.tail or "" for child in children)
    value = _typed(children[0]) if len(children) == 1 else None
    return Delsvar(id=element.get("id", ""), text=text.strip(), value=value, elements=len(children))


_INSTANS, _DELSVAR = C + "instans", C + "delsvar"


def read_svar(element: etree._Element) -> Svar:
    instans: etree._Element | None = None
    delsvar: list[Delsvar] = []
    for child in element:
        tag = child.tag
        if tag == _DELSVAR:
            delsvar.append(read_delsvar(child))
        elif tag == _INSTANS and instans is None:
            instans = child
    return Svar(
        id=element.get("id", ""),
        instans=None if instans is None else int(_text(instans)),
        delsvar=tuple(delsvar),
    )


def read_patient(element: etree._Element) -> Patient:
    children = _first(element)
    get = children.get
    mellannamn = get(C + "mellannamn")
    return Patient(
        person_id=read_ii(_req(element, children, C + "person-id")),
        fornamn=_text(get(C + "fornamn")),
        mellannamn=None if mellannamn is None else _text(mellannamn),
        efternamn=_text(get(C + "efternamn")),
        postadress=_text(get(C + "postadress")),
        postnummer=_text(get(C + "postnummer")),
        postort=_text(get(C + "postort")),
    )


def _read_enhet(element: etree._Element) -> Enhet:
    children = _first(element)
    get = children.get
    vardgivare = _req(element, children, C + "vardgivare")
    of_vardgivare = _first(vardgivare)
    epost = get(C + "epost")
    return Enhet(
        enhets_id=read_ii(_req(element, children, C + "enhets-id")),
        arbetsplatskod=read_ii(_req(element, children, C + "arbetsplatskod")),
        enhetsnamn=_text(get(C + "enhetsnamn")),
        postadress=_text(get(C + "postadress")),
        postnummer=_text(get(C + "postnummer")),
        postort=_text(get(C + "postort")),
        telefonnummer=_text(get(C + "telefonnummer")),
        epost=None if epost is None else _text(epost),
        vardgivare=Vardgivare(
            vardgivare_id=read_ii(_req(vardgivare, of_vardgivare, C + "vardgivare-id")),
            vardgivarnamn=_text(of_vardgivare.get(C + "vardgivarnamn")),
        ),
    )


_BEFATTNING, _SPECIALISTKOMPETENS = C + "befattning", C + "specialistkompetens"


def read_hos_personal(element: etree._Element) -> HosPersonal:
    children: dict[object, etree._Element] = {}
    befattningar: list[CV] = []
    kompetenser: list[CV] = []
    for child in element:
        tag = child.tag
        if tag == _BEFATTNING:
            befattningar.append(read_cv(child))
        elif tag == _SPECIALISTKOMPETENS:
            texts = _texts(child)
            kompetenser.append(
                CV(code=_req_text(child, texts, _CODE), code_system="", display_name=texts.get(_DISPLAY_NAME))
            )
        elif tag not in children:
            children[tag] = child
    forskrivarkod = children.get(C + "forskrivarkod")
    return HosPersonal(
        personal_id=read_ii(_req(element, children, C + "personal-id")),
        fullstandigt_namn=_text(children.get(C + "fullstandigtNamn")),
        forskrivarkod=None if forskrivarkod is None else _text(forskrivarkod),
        befattningar=tuple(befattningar),
        specialistkompetenser=tuple(kompetenser),
        enhet=_read_enhet(_req(element, children, C + "enhet")),
    )


def _read_relation(element: etree._Element) -> Relation:
    children = _first(element)
    return Relation(
        typ=read_cv(_req(element, children, C + "typ")), intygs_id=read_ii(_req(element, children, C + "intygs-id"))
    )


def _read_status(element: etree._Element) -> Status:
    children = _first(element)
    return Status(
        part=read_cv(_req(element, children, C + "part")),
        status=read_cv(_req(element, children, C + "status")),
        tidpunkt=read_time(_req(element, children, C + "tidpunkt")),
    )


_MOTTAGARE, _RELATION, _STATUS, _SVAR = C + "mottagare", C + "relation", C + "status", C + "svar"


def read_intyg(element: etree._Element) -> Intyg:
    """An `intyg` element (core namespace) as a typed value; validate it against the contract first."""
    children: dict[object, etree._Element] = {}
    mottagare: list[CV] = []
    relationer: list[Relation] = []
    status: list[Status] = []
    svar: list[Svar] = []
    for child in element:
        tag = child.tag
        if tag == _SVAR:
            svar.append(read_svar(child))
        elif tag == _MOTTAGARE:
            mottagare.append(read_cv(child))
        elif tag == _RELATION:
            relationer.append(_read_relation(child))
        elif tag == _STATUS:
            status.append(_read_status(child))
        elif tag not in children:
            children[tag] = child
    get = children.get
    return Intyg(
        intygs_id=read_ii(_req(element, children, C + "intygs-id")),
        typ=read_cv(_req(element, children, C + "typ")),
        version=_text(_req(element, children, C + "version")),
        mottagare=tuple(mottagare),
        signeringstidpunkt=_opt_time(get(C + "signeringstidpunkt")),
        skickat_tidpunkt=_opt_time(get(C + "skickatTidpunkt")),
        patient=read_patient(_req(element, children, C + "patient")),
        skapad_av=read_hos_personal(_req(element, children, C + "skapadAv")),
        relationer=tuple(relationer),
        status=tuple(status),
        svar=tuple(svar),
    )


def read_result(element: etree._Element) -> Result:
    """A `result` element (ResultType of the core namespace)."""
    texts = _texts(element)
    return Result(
        result_code=_req_text(element, texts, C + "resultCode"),
        error_id=texts.get(C + "errorId"),
        result_text=texts.get(C + "resultText"),
    )


# --- writing ---------------------------------------------------------------------------------------------------


def _sub(parent: etree._Element, tag: str, text: str | None = None) -> etree._Element:
    child = etree.SubElement(parent, tag)
    if text is not None:
        child.text = text
    return child


def write_ii(parent: etree._Element, tag: str, value: II) -> None:
    element = _sub(parent, tag)
    _sub(element, T + "root", value.root)
    _sub(element, T + "extension", value.extension)


def write_cv(parent: etree._Element, tag: str, value: CV) -> None:
    element = _sub(parent, tag)
    _sub(element, T + "code", value.code)
    _sub(element, T + "codeSystem", value.code_system)
    for name, text in (
        ("codeSystemName", value.code_system_name),
        ("codeSystemVersion", value.code_system_version),
        ("displayName", value.display_name),
        ("originalText", value.original_text),
    ):
        if text is not None:
            _sub(element, T + name, text)


def write_time(parent: etree._Element, tag: str, value: datetime) -> None:
    _sub(parent, tag, value.replace(tzinfo=None, microsecond=0).isoformat())


def write_hos_personal(parent: etree._Element, tag: str, value: HosPersonal) -> None:
    element = _sub(parent, tag)
    write_ii(element, C + "personal-id", value.personal_id)
    _sub(element, C + "fullstandigtNamn", value.fullstandigt_namn)
    if value.forskrivarkod is not None:
        _sub(element, C + "forskrivarkod", value.forskrivarkod)
    for befattning in value.befattningar:
        write_cv(element, C + "befattning", befattning)
    enhet = _sub(element, C + "enhet")
    e = value.enhet
    write_ii(enhet, C + "enhets-id", e.enhets_id)
    write_ii(enhet, C + "arbetsplatskod", e.arbetsplatskod)
    for name, text in (
        ("enhetsnamn", e.enhetsnamn),
        ("postadress", e.postadress),
        ("postnummer", e.postnummer),
        ("postort", e.postort),
        ("telefonnummer", e.telefonnummer),
    ):
        _sub(enhet, C + name, text)
    if e.epost is not None:
        _sub(enhet, C + "epost", e.epost)
    vardgivare = _sub(enhet, C + "vardgivare")
    write_ii(vardgivare, C + "vardgivare-id", e.vardgivare.vardgivare_id)
    _sub(vardgivare, C + "vardgivarnamn", e.vardgivare.vardgivarnamn)
    for kompetens in value.specialistkompetenser:  # a name as code, without a code system
        k = _sub(element, C + "specialistkompetens")
        _sub(k, T + "code", kompetens.code)
        if kompetens.display_name is not None:
            _sub(k, T + "displayName", kompetens.display_name)


def _write_delsvar(parent: etree._Element, delsvar: Delsvar) -> None:
    element = _sub(parent, C + "delsvar")
    element.set("id", delsvar.id)
    value = delsvar.value
    if isinstance(value, CV):
        write_cv(element, T + "cv", value)
    elif isinstance(value, DatePeriod):
        period = _sub(element, T + "datePeriod")
        if value.start is not None:
            _sub(period, T + "start", value.start.isoformat())
        if value.end is not None:
            _sub(period, T + "end", value.end.isoformat())
    elif isinstance(value, PartialDate):
        partial = _sub(element, T + "partialDate")
        _sub(partial, T + "format", value.format)
        _sub(partial, T + "value", value.value)
    elif isinstance(value, date):
        _sub(element, T + "date", value.isoformat())
    else:
        element.text = delsvar.text


def write_intyg(parent: etree._Element, tag: str, intyg: Intyg) -> etree._Element:
    """The `intyg` element of a certificate, in the contract's element order."""
    element = _sub(parent, tag)
    write_ii(element, C + "intygs-id", intyg.intygs_id)
    for mottagare in intyg.mottagare:
        write_cv(element, C + "mottagare", mottagare)
    write_cv(element, C + "typ", intyg.typ)
    _sub(element, C + "version", intyg.version)
    if intyg.signeringstidpunkt is not None:
        write_time(element, C + "signeringstidpunkt", intyg.signeringstidpunkt)
    if intyg.skickat_tidpunkt is not None:
        write_time(element, C + "skickatTidpunkt", intyg.skickat_tidpunkt)
    patient = _sub(element, C + "patient")
    p = intyg.patient
    write_ii(patient, C + "person-id", p.person_id)
    _sub(patient, C + "fornamn", p.fornamn)
    _sub(patient, C + "efternamn", p.efternamn)
    if p.mellannamn is not None:
        _sub(patient, C + "mellannamn", p.mellannamn)
    for name, text in (
        ("postadress", p.postadress),
        ("postnummer", p.postnummer),
        ("postort", p.postort),
    ):
        _sub(patient, C + name, text)
    write_hos_personal(element, C + "skapadAv", intyg.skapad_av)
    for relation in intyg.relationer:
        r = _sub(element, C + "relation")
        write_cv(r, C + "typ", relation.typ)
        write_ii(r, C + "intygs-id", relation.intygs_id)
    for status in intyg.status:
        s = _sub(element, C + "status")
        write_cv(s, C + "part", status.part)
        write_cv(s, C + "status", status.status)
        write_time(s, C + "tidpunkt", status.tidpunkt)
    for svar in intyg.svar:
        s = _sub(element, C + "svar")
        s.set("id", svar.id)
        if svar.instans is not None:
            _sub(s, C + "instans", str(svar.instans))
        for delsvar in svar.delsvar:
            _write_delsvar(s, delsvar)
    return element


def write_result(parent: etree._Element, tag: str, result: Result) -> None:
    element = _sub(parent, tag)
    _sub(element, C + "resultCode", result.result_code)
    if result.result_text is not None:
        _sub(element, C + "resultText", result.result_text)
    if result.error_id is not None:
        _sub(element, C + "errorId", result.error_id)


def read_revocation(element: etree._Element) -> Revocation:
    """A RevokeCertificate element (responder namespace v2)."""
    r = f"{{{ns.REVOKE}}}"
    children = _first(element)
    meddelande = children.get(r + "meddelande")
    return Revocation(
        intygs_id=read_ii(_req(element, children, r + "intygs-id")),
        person_id=read_ii(_req(element, children, r + "patientPerson-id")),
        skickat_tidpunkt=read_time(_req(element, children, r + "skickatTidpunkt")),
        skickat_av=read_hos_personal(_req(element, children, r + "skickatAv")),
        meddelande=None if meddelande is None else _text(meddelande),
    )


def write_revocation(parent: etree._Element, revocation: Revocation) -> etree._Element:
    r = f"{{{ns.REVOKE}}}"
    element = _sub(parent, r + "RevokeCertificate")
    if revocation.meddelande is not None:
        _sub(element, r + "meddelande", revocation.meddelande)
    write_time(element, r + "skickatTidpunkt", revocation.skickat_tidpunkt)
    write_ii(element, r + "intygs-id", revocation.intygs_id)
    write_ii(element, r + "patientPerson-id", revocation.person_id)
    write_hos_personal(element, r + "skickatAv", revocation.skickat_av)
    return element

"""The transport format and our model, both ways: a certificate registered over RIV-TA becomes our certificate and
goes out to Försäkringskassan field by field as it came in; what our model cannot hold is refused, named."""

from __future__ import annotations

import pytest

from schemas.certificate import County, LisjpCertificate, RelationKind
from schemas.riv import namespaces as ns
from schemas.riv.mapping import NotMappable, from_certificate, to_certificate
from schemas.riv.transport import CV, II, Relation
from tests.harness.riv import lisjp, replace


def test_a_registered_lisjp_goes_out_as_it_came_in() -> None:
    intyg = lisjp()
    certificate = to_certificate(intyg, County.STOCKHOLM)
    assert isinstance(certificate, LisjpCertificate)
    assert certificate.id == intyg.intygs_id.extension
    assert certificate.care_unit.county is County.STOCKHOLM
    content = certificate.content
    assert [d.code for d in content.diagnoses or []] == ["F438A", "S7200"]
    assert [p.degree for p in content.sick_leave_periods or []] == [50]
    assert content.prognosis is not None
    assert content.prognosis.days == 60
    assert content.fmb_motivation
    assert content.work_measures_description
    assert from_certificate(certificate) == intyg


def test_the_model_survives_json_both_ways() -> None:
    certificate = to_certificate(lisjp(), County.STOCKHOLM)
    again = LisjpCertificate.model_validate_json(certificate.model_dump_json())
    assert again == certificate


def test_a_samordningsnummer_keeps_its_own_oid() -> None:
    intyg = lisjp(personnummer="190101612380")  # day 61: samordningsnummer
    intyg = replace(intyg, patient=replace(intyg.patient, person_id=II(ns.SAMORDNINGSNUMMER_OID, "190101612380")))
    assert from_certificate(to_certificate(intyg, County.STOCKHOLM)).patient.person_id.root == ns.SAMORDNINGSNUMMER_OID


def test_a_relation_is_kept() -> None:
    intyg = replace(
        lisjp(),
        relationer=(Relation(CV("ERSATT", ns.KV_RELATION, display_name="Ersätter"), II("SE2321000016-15CQ", "abc-1")),),
    )
    certificate = to_certificate(intyg, County.STOCKHOLM)
    assert certificate.relation is not None
    assert certificate.relation.kind is RelationKind.REPLACES
    assert from_certificate(certificate).relationer == intyg.relationer


@pytest.mark.parametrize(
    ("change", "names"),
    [
        ({"typ": CV("LUSE", ns.KV_INTYGSTYP)}, "LUSE"),
        ({"relationer": (Relation(CV("KOPIA", ns.KV_RELATION), II("x", "y")),)}, "KOPIA"),
        ({"signeringstidpunkt": None}, "signed_at"),
    ],
)
def test_what_our_model_cannot_hold_is_refused_by_name(change: dict[str, object], names: str) -> None:
    with pytest.raises(NotMappable) as refused:
        to_certificate(replace(lisjp(), **change), County.STOCKHOLM)
    assert names in str(refused.value)

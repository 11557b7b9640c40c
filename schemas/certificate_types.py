"""The registry of certificate types: who receives them and whether they count in statistics."""

from dataclasses import dataclass


@dataclass(frozen=True)
class CertificateType:
    code: str
    name: str
    main_recipient: str | None
    counts_in_statistics: bool
    employer_facing: bool
    accepted_by_intake: bool


CERTIFICATE_TYPES: dict[str, CertificateType] = {
    t.code: t
    for t in (
        CertificateType("LISJP", "Läkarintyg för sjukpenning", "FKASSA", True, False, True),
        CertificateType("FK7263", "Läkarintyg", "FKASSA", True, False, False),
        CertificateType("LUSE", "Läkarutlåtande för sjukersättning", "FKASSA", False, False, False),
        CertificateType("LUAE_NA", "Läkarutlåtande för aktivitetsersättning", "FKASSA", False, False, False),
        CertificateType("LUAE_FS", "Läkarutlåtande för aktivitetsersättning", "FKASSA", False, False, False),
        CertificateType("AG7804", "Läkarintyg om arbetsförmåga – arbetsgivaren", None, False, True, True),
        CertificateType("AG1-14", "Läkarintyg om arbetsförmåga – sjuklöneperioden", None, False, True, False),
    )
}

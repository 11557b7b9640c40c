"""The chaos suite's checker: what the workload had acknowledged (the model) against what every service holds after
quiescence (the observation), reduced to one line of counts.

Pure functions over plain data, so the checker's own tests can plant a loss, a duplicate or a leak and see it
reported (tests/chaos/test_checker.py).

What is expected where, from the acknowledged history alone:
- portal: every acknowledged, not revoked certificate of a citizen whose last acknowledged consent act is "given";
- statistics: the same, of patients that are not test patients, for the sick-leave types LISJP / FK7263 only (an
  AG7804 is not statistics' input); their sick-leave cases' certificate counts must add up to those facts;
- Försäkringskassan: every certificate whose send request was acknowledged by the broker, once.
Operations whose outcome the workload could not learn (a timed-out request) are ambiguous: a certificate issued
ambiguously may or may not appear, a revocation sent ambiguously may or may not have taken effect, and neither is
counted as missing or as a leak.
"""

from __future__ import annotations

import enum
from collections import Counter
from dataclasses import dataclass, field, fields

CASE_TYPES = ("LISJP", "FK7263")


class Consent(enum.StrEnum):
    NONE = "none"
    GIVEN = "given"
    WITHDRAWN = "withdrawn"


@dataclass
class CitizenModel:
    ref: str
    consent: Consent = Consent.NONE
    ever_given: bool = False
    # A consent call whose answer was lost: the citizen's final state is not known, so nothing of theirs is judged.
    ambiguous: bool = False


@dataclass
class CertificateModel:
    id: str
    citizen: str
    type: str
    test_patient: bool
    acknowledged: bool = False  # intake answered 201/200
    ambiguous: bool = False  # sent, never answered
    revoked: bool = False  # intake acknowledged the revocation
    revoke_ambiguous: bool = False
    send_requested: bool = False  # the broker acknowledged a dispatch.requested for it


@dataclass
class Model:
    citizens: dict[str, CitizenModel] = field(default_factory=dict)
    certificates: dict[str, CertificateModel] = field(default_factory=dict)


@dataclass
class Observation:
    """What the services hold: certificate id → how many times (a read model row, its RECEIVED history entries)."""

    portal: Counter[str] = field(default_factory=Counter)
    stats: Counter[str] = field(default_factory=Counter)
    fk: Counter[str] = field(default_factory=Counter)
    # certificates counted in statistics' sick-leave cases beyond the facts they are made of (a double count)
    stats_overcount: int = 0


@dataclass
class Counts:
    acknowledged: int = 0
    portal_once: int = 0
    portal_missing: int = 0
    portal_duplicated: int = 0
    stats_once: int = 0
    stats_missing: int = 0
    stats_duplicated: int = 0
    fk_once: int = 0
    fk_missing: int = 0
    fk_duplicated: int = 0
    fk_unrequested: int = 0
    without_consent: int = 0
    after_withdrawal: int = 0
    revoked_visible: int = 0
    test_patient_counted: int = 0
    unknown: int = 0  # a certificate id in a service that the workload never sent

    @property
    def lost(self) -> int:
        return self.portal_missing + self.stats_missing + self.fk_missing

    @property
    def duplicated(self) -> int:
        return self.portal_duplicated + self.stats_duplicated + self.fk_duplicated

    @property
    def leaked(self) -> int:
        return (
            self.without_consent
            + self.after_withdrawal
            + self.revoked_visible
            + self.test_patient_counted
            + self.fk_unrequested
            + self.unknown
        )

    @property
    def ok(self) -> bool:
        return self.lost == 0 and self.duplicated == 0 and self.leaked == 0

    def line(self, extra: dict[str, object] | None = None) -> str:
        parts = [f"{f.name}={getattr(self, f.name)}" for f in fields(self)]
        parts += [f"{k}={v}" for k, v in (extra or {}).items()]
        verdict = "OK" if self.ok else f"FAIL(lost={self.lost},duplicated={self.duplicated},leaked={self.leaked})"
        return f"[chaos] {verdict} " + " ".join(parts)


def expected(model: Model) -> tuple[set[str], set[str], set[str], set[str]]:
    """(must be in portal, must be in statistics, must be at FK, judged at all) — ids of certificates."""
    portal: set[str] = set()
    stats: set[str] = set()
    fk: set[str] = set()
    judged: set[str] = set()
    for cert in model.certificates.values():
        citizen = model.citizens[cert.citizen]
        if cert.send_requested:
            fk.add(cert.id)
        if not cert.acknowledged or cert.revoke_ambiguous or citizen.ambiguous:
            continue
        judged.add(cert.id)
        if citizen.consent is Consent.GIVEN and not cert.revoked:
            portal.add(cert.id)
            # Statistics takes only the sick-leave certificates (an AG7804 is not its input, issue #15).
            if not cert.test_patient and cert.type in CASE_TYPES:
                stats.add(cert.id)
    return portal, stats, fk, judged


def check(model: Model, seen: Observation) -> Counts:
    portal, stats, fk, judged = expected(model)
    counts = Counts(acknowledged=sum(1 for c in model.certificates.values() if c.acknowledged))
    for wanted, held, prefix in ((portal, seen.portal, "portal"), (stats, seen.stats, "stats"), (fk, seen.fk, "fk")):
        once = sum(1 for c in wanted if held[c] == 1)
        missing = sum(1 for c in wanted if held[c] == 0)
        duplicated = sum(n - 1 for n in held.values() if n > 1)
        setattr(counts, f"{prefix}_once", once)
        setattr(counts, f"{prefix}_missing", missing)
        setattr(counts, f"{prefix}_duplicated", duplicated)
    counts.stats_duplicated += max(0, seen.stats_overcount)
    counts.fk_unrequested = sum(1 for c, n in seen.fk.items() if n and c not in fk)
    for service, wanted, held in (("portal", portal, seen.portal), ("stats", stats, seen.stats)):
        for cert_id, n in held.items():
            if n == 0 or cert_id in wanted:
                continue
            cert = model.certificates.get(cert_id)
            if cert is None:
                counts.unknown += 1
                continue
            if cert_id not in judged:
                continue  # ambiguous: may or may not be there
            citizen = model.citizens[cert.citizen]
            if cert.revoked:
                counts.revoked_visible += 1
            elif citizen.consent is Consent.WITHDRAWN:
                counts.after_withdrawal += 1
            elif citizen.consent is Consent.NONE:
                counts.without_consent += 1
            elif service == "stats" and cert.test_patient:
                counts.test_patient_counted += 1
    return counts

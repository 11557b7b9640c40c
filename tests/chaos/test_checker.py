"""The chaos checker's own tests: from a model and an observation that agree, plant a loss, a duplicate or a leak
(mutation checks) and see each reported, so a green chaos run means something."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

import pytest

from tests.chaos.checker import CertificateModel, CitizenModel, Consent, Model, Observation, check

Plant = Callable[[Observation], object]


def history() -> tuple[Model, Observation]:
    """Six citizens' certificates, each case once, and what a correct system holds for them."""
    model = Model()
    for ref, consent in (("stays", Consent.GIVEN), ("never", Consent.NONE), ("gone", Consent.WITHDRAWN)):
        model.citizens[ref] = CitizenModel(ref, consent, ever_given=consent is not Consent.NONE)
    certs = [
        CertificateModel("a-lisjp", "stays", "LISJP", False, acknowledged=True, send_requested=True),
        CertificateModel("a-ag", "stays", "AG7804", False, acknowledged=True),
        CertificateModel("a-test", "stays", "LISJP", True, acknowledged=True),
        CertificateModel("a-revoked", "stays", "LISJP", False, acknowledged=True, revoked=True),
        CertificateModel("a-unsure", "stays", "LISJP", False, ambiguous=True),
        CertificateModel("n-held", "never", "LISJP", False, acknowledged=True),
        CertificateModel("g-removed", "gone", "LISJP", False, acknowledged=True),
    ]
    model.certificates = {c.id: c for c in certs}
    seen = Observation(
        portal=Counter({"a-lisjp": 1, "a-ag": 1, "a-test": 1}),
        stats=Counter({"a-lisjp": 1}),  # an AG7804 is not statistics' input
        fk=Counter({"a-lisjp": 1}),
    )
    return model, seen


def test_a_faithful_observation_is_all_zeros_where_zeros_belong() -> None:
    counts = check(*history())
    assert counts.ok, counts.line()
    assert (counts.acknowledged, counts.portal_once, counts.stats_once, counts.fk_once) == (6, 3, 1, 1)
    assert "OK" in counts.line()
    assert "portal_missing=0" in counts.line()


def test_an_ambiguous_certificate_may_or_may_not_be_there() -> None:
    model, seen = history()
    seen.portal["a-unsure"] = 1
    seen.stats["a-unsure"] = 1
    assert check(model, seen).ok


@pytest.mark.parametrize(
    ("plant", "field"),
    [
        (lambda s: s.portal.pop("a-ag"), "portal_missing"),
        (lambda s: s.stats.pop("a-lisjp"), "stats_missing"),
        (lambda s: s.fk.pop("a-lisjp"), "fk_missing"),
    ],
)
def test_a_planted_loss_is_reported(plant: Plant, field: str) -> None:
    model, seen = history()
    plant(seen)
    counts = check(model, seen)
    assert getattr(counts, field) == 1
    assert counts.lost == 1
    assert not counts.ok
    assert "FAIL(lost=1," in counts.line()


@pytest.mark.parametrize(
    ("plant", "field"),
    [
        (lambda s: s.portal.update(["a-lisjp"]), "portal_duplicated"),
        (lambda s: s.stats.update(["a-lisjp"]), "stats_duplicated"),
        (lambda s: setattr(s, "stats_overcount", 1), "stats_duplicated"),
        (lambda s: s.fk.update(["a-lisjp"]), "fk_duplicated"),
    ],
)
def test_a_planted_duplicate_is_reported(plant: Plant, field: str) -> None:
    model, seen = history()
    plant(seen)
    counts = check(model, seen)
    assert getattr(counts, field) == 1
    assert counts.duplicated == 1
    assert not counts.ok


@pytest.mark.parametrize(
    ("plant", "field"),
    [
        (lambda s: s.portal.update(["n-held"]), "without_consent"),
        (lambda s: s.stats.update(["n-held"]), "without_consent"),
        (lambda s: s.portal.update(["g-removed"]), "after_withdrawal"),
        (lambda s: s.stats.update(["g-removed"]), "after_withdrawal"),
        (lambda s: s.portal.update(["a-revoked"]), "revoked_visible"),
        (lambda s: s.stats.update(["a-revoked"]), "revoked_visible"),
        (lambda s: s.stats.update(["a-test"]), "test_patient_counted"),
        (lambda s: s.fk.update(["a-ag"]), "fk_unrequested"),
        (lambda s: s.portal.update(["never-sent"]), "unknown"),
    ],
)
def test_a_planted_leak_is_reported(plant: Plant, field: str) -> None:
    model, seen = history()
    plant(seen)
    counts = check(model, seen)
    assert getattr(counts, field) == 1, counts.line()
    assert counts.leaked == 1
    assert not counts.ok

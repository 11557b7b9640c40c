"""Diagnosis codes looked up by code-system OID in the vendored ICD-10-SE and KSH97-P lists (schemas.codesystems)."""

from __future__ import annotations

import re
import time
from importlib import resources

import pytest

from schemas import codesystems
from schemas.codesystems import ICD10SE, KSH97P, UnknownCode, UnknownCodeSystem, lookup

DATA = resources.files("schemas").joinpath("data")


def lines(*parts: str) -> list[str]:
    return DATA.joinpath(*parts).read_text(encoding="utf-8").splitlines()


@pytest.mark.parametrize(("name", "count", "length"), [("digit3.tsv", 2056, 3), ("digit4.tsv", 9643, 4),
                                                       ("digit5.tsv", 23985, 5)])  # fmt: skip
def test_every_icd10se_line_parses_and_the_counts_are_the_readmes(name: str, count: int, length: int) -> None:
    rows = lines("icd10se", name)  # the last line has no newline: `wc -l` says one less
    assert len(rows) == count
    for row in rows:
        code, mark, swedish = row.split("\t")
        assert re.fullmatch(rf"[A-Z]\d\d[0-9A-Z]{{{length - 3}}}", code), row
        assert mark in ("", "†", "*"), row
        assert swedish.strip(), row
        assert lookup(ICD10SE, code).swedish_name == swedish.strip()


def test_icd10se_holds_every_code_once() -> None:
    every = [r.split("\t")[0] for n in ("digit3.tsv", "digit4.tsv", "digit5.tsv") for r in lines("icd10se", n)]
    assert len(codesystems.codes(ICD10SE)) == len(set(every)) == 2056 + 9643 + 23985


def test_every_ksh97p_line_parses() -> None:
    rows = lines("ksh97p", "KSH97P_KOD.txt")
    assert len(rows) == 977
    for row in rows:
        code, swedish = row.split(maxsplit=1)
        assert re.fullmatch(r"[A-Z]\d\d(-P?|\d[A-Z]?)", code), row
        assert lookup(KSH97P, code).swedish_name == swedish.strip()
    assert len(codesystems.codes(KSH97P)) == 977
    synonyms = lines("ksh97p", "KSH97P_SFAMALT.txt")
    assert len(synonyms) == 2544
    assert all(row.split(maxsplit=1)[0] in codesystems.codes(KSH97P) for row in synonyms)


def test_no_code_of_either_list_is_longer_than_five_characters() -> None:
    assert max(len(c) for s in (ICD10SE, KSH97P) for c in codesystems.codes(s)) == 5


@pytest.mark.parametrize(
    ("code", "plain", "written", "name"),
    [
        ("F43.8A", "F438A", "F43.8A", "Utmattningssyndrom"),
        ("F438A", "F438A", "F43.8A", "Utmattningssyndrom"),
        (" f43.8a ", "F438A", "F43.8A", "Utmattningssyndrom"),
        ("S72.00", "S7200", "S72.00", "Kollumfraktur-sluten"),
        ("F43.8", "F438", "F43.8", "Andra specificerade reaktioner på svår stress"),
        ("J06", "J06", "J06", "Akut övre luftvägsinfektion med multipel och ospecificerad lokalisation"),
    ],
)
def test_icd10se_codes_with_or_without_the_dot(code: str, plain: str, written: str, name: str) -> None:
    entry = lookup(ICD10SE, code)
    assert (entry.code_system, entry.code, entry.written, entry.swedish_name) == (ICD10SE, plain, written, name)
    assert codesystems.swedish_name(ICD10SE, code) == name


@pytest.mark.parametrize("code", ["F43.8Z", "J98.99", "J98.9X", "F32A", "Z99.99", "F32.912", "", "  ", "Ö32.9", "V"])
def test_codes_not_in_icd10se_are_refused(code: str) -> None:
    with pytest.raises(UnknownCode, match="is not a code in ICD-10-SE"):
        lookup(ICD10SE, code)


def test_the_refusal_names_the_code_in_its_written_form() -> None:
    with pytest.raises(UnknownCode, match=r"^F43\.8Z is not a code in ICD-10-SE$"):
        lookup(ICD10SE, "f438z")


@pytest.mark.parametrize(("code", "written", "name"), [("A00-", "A00-", "Kolera"),
                                                       ("A02-P", "A02-P", "Salmonellainfektioner"),
                                                       ("a02-p", "A02-P", "Salmonellainfektioner"),
                                                       ("A04.5", "A04.5", "Enterit orsakad av Campylobacter"),
                                                       ("F43.8A", "F43.8A", "Utmattningssyndrom")])  # fmt: skip
def test_ksh97p_codes_under_their_oid(code: str, written: str, name: str) -> None:
    entry = lookup(KSH97P, code)
    assert (entry.code_system, entry.written, entry.swedish_name) == (KSH97P, written, name)


def test_a_ksh97p_code_is_refused_under_icd10se_and_the_refusal_says_where_it_belongs() -> None:
    with pytest.raises(UnknownCode, match=r"A02-P is not a code in ICD-10-SE \(it is one in KSH97-P"):
        lookup(ICD10SE, "A02-P")


@pytest.mark.parametrize("code", ["S72.00", "F32.9", "F43.8", "A00"])
def test_an_icd10se_only_code_is_refused_under_ksh97p(code: str) -> None:
    assert lookup(ICD10SE, code)
    with pytest.raises(UnknownCode, match=r"is not a code in KSH97-P \(it is one in ICD-10-SE"):
        lookup(KSH97P, code)


def test_an_unknown_code_system_is_named() -> None:
    with pytest.raises(UnknownCodeSystem, match=r"1\.2\.3 is not a known code system"):
        lookup("1.2.3", "F32.9")
    assert codesystems.find("1.2.3", "F32.9") is None
    assert codesystems.find(ICD10SE, "F43.8Z") is None
    assert codesystems.find(ICD10SE, "F43.8A") == lookup(ICD10SE, "F438A")


def test_a_lookup_takes_microseconds() -> None:
    lookup(ICD10SE, "F43.8A")  # the lists are read once, before the clock starts
    lookup(KSH97P, "A02-P")
    rounds = 20_000
    started = time.perf_counter()
    for _ in range(rounds):
        lookup(ICD10SE, "F43.8A")
        lookup(KSH97P, "A02-P")
    per_lookup = (time.perf_counter() - started) / (2 * rounds)
    assert per_lookup < 20e-6, f"{per_lookup * 1e6:.1f} µs a lookup"


CLASSIFIED = [("F43.8A", "V", "F40-F48"), ("F329", "V", "F30-F39"), ("M54.5", "XIII", "M50-M54"),
              ("J06", "X", "J00-J06"),
              ("S72.00", "XIX", "S70-S79"), ("U07.1", "XXII", "U00-U49"), ("A02-P", "I", "A00-A09"),
              ("C50.9", "II", "C50-C50")]  # fmt: skip


@pytest.mark.parametrize(("code", "chapter", "block"), CLASSIFIED)
def test_chapter_and_block_of_a_code(code: str, chapter: str, block: str) -> None:
    assert codesystems.chapter_of(code) == chapter
    found = codesystems.block_of(code)
    assert found is not None
    assert found.code == block


def test_every_category_lies_in_a_chapter_and_all_but_two_in_a_block() -> None:
    categories = {c[:3] for s in (ICD10SE, KSH97P) for c in codesystems.codes(s)}
    assert all(codesystems.chapter_of(c) for c in categories)
    assert sorted(c for c in categories if codesystems.block_of(c) is None) == ["O49", "Q57"]
    assert len(codesystems.blocks()) == 264
    assert codesystems.block_names()["F40-F48"] == "Neurotiska, stressrelaterade och somatoforma syndrom"


@pytest.mark.parametrize("code", ["", "XX1", "F3", "32.9"])
def test_no_chapter_or_block_for_what_is_no_code(code: str) -> None:
    assert codesystems.chapter_of(code) is None
    assert codesystems.block_of(code) is None


def test_a_diagnosis_without_a_code_system_is_icd10se() -> None:
    from schemas.certificate import Diagnosis

    assert Diagnosis(code="F43.8A").code_system == ICD10SE
    assert Diagnosis(code="A02-P", code_system=KSH97P).code_system == KSH97P

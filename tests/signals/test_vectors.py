"""Known answers from the reference implementations' own test files (tests/signals/vectors.yaml)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from consentgate.signals import SignalError, decode, gpp
from tcbits import gpp_header

VECTORS = yaml.safe_load((Path(__file__).parent / "vectors.yaml").read_text())
SOURCES = {"InteractiveAdvertisingBureau/iabtcf-es", "InteractiveAdvertisingBureau/iabtcf-java",
           "IABTechLab/iabgpp-es", "IABTechLab/iabgpp-java", "prebid/go-gdpr", "prebid/go-gpp"}  # fmt: skip


def _id(vector: dict[str, Any]) -> str:
    return f"{vector['source']['repo'].split('/')[1]}:{vector['source']['test']}"[:80]


def _subset(expected: Any, got: Any, where: str) -> None:
    if isinstance(expected, dict):
        for key, value in expected.items():
            assert key in got, f"{where}.{key} missing"
            _subset(value, got[key], f"{where}.{key}")
    else:
        assert got == expected, f"{where}: {got!r} != {expected!r}"


@pytest.mark.parametrize("vector", VECTORS["decodes"], ids=_id)
def test_known_answer(vector: dict[str, Any]) -> None:
    decoded = decode(vector["kind"], vector["string"])
    _subset(vector["fields"], decoded.fields, "fields")
    if "not_consent" in vector:
        assert list(decoded.not_consent) == vector["not_consent"]
    if "restriction" in vector:
        assert vector["restriction"] in decoded.fields["publisherRestrictions"]


@pytest.mark.parametrize("vector", VECTORS["fails"], ids=_id)
def test_must_fail(vector: dict[str, Any]) -> None:
    assert vector["reason"]
    with pytest.raises(SignalError, match=vector["match"]):
        decode(vector["kind"], vector["string"])


def test_every_vector_names_its_source_file() -> None:
    repos = {v["source"]["repo"] for v in VECTORS["decodes"] + VECTORS["fails"]}
    assert repos == SOURCES  # every reference repository the issue names contributes vectors
    for vector in VECTORS["decodes"] + VECTORS["fails"]:
        source = vector["source"]
        assert source["repo"] in SOURCES and source["path"] and source["test"], vector


def test_the_reference_decoder_agrees_with_every_gpp_known_answer(reference) -> None:
    """Where the reference decodes a vector too, it gives the same fields (the known answers are not ours alone)."""
    for vector in VECTORS["decodes"]:
        if vector["kind"] not in ("usnat", "usca", "usva", "usco", "usut", "usct", "tcfcav1"):
            continue
        header = gpp_header([gpp.SECTION_IDS[vector["kind"]]])
        want = reference.call("decode_gpp", string=header + "~" + vector["string"])
        got = decode("gpp", header + "~" + vector["string"]).fields
        assert got == want, vector["string"]

"""Property: for random consent models encoded by the IAB's own encoders, consentgate decodes every field
exactly as the IAB's own decoders do (@iabtechlabtcf/core for TC strings, @iabgpp/cmpapi for GPP)."""

from __future__ import annotations

from typing import Any

from consentgate.signals import decode, gpp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

SETTINGS = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
LANGUAGES = ["EN", "FR", "DE", "ES", "IT", "NL", "PL", "PT", "SV", "FI"]
DECISECOND_2020, DECISECOND_2027 = 15_778_368_000, 17_986_176_000


def id_set(max_id: int, max_size: int) -> st.SearchStrategy[list[int]]:
    return st.lists(st.integers(1, max_id), max_size=max_size, unique=True).map(sorted)


def runs(max_id: int) -> st.SearchStrategy[list[int]]:
    """Long consecutive runs of vendor ids: the encoder then chooses the range encoding."""
    run = st.tuples(st.integers(1, max_id), st.integers(0, 300))
    return st.lists(run, max_size=5).map(
        lambda rs: sorted({i for s, n in rs for i in range(s, min(s + n, max_id) + 1)})
    )


def vendors() -> st.SearchStrategy[list[int]]:
    return st.one_of(id_set(60, 40), id_set(1999, 30), runs(1999), st.just([]))


restriction = st.one_of(
    st.fixed_dictionaries(
        {"purposeId": st.integers(1, 11), "restrictionType": st.just(0), "vendors": runs(300)}
    ),
    st.fixed_dictionaries(
        {"purposeId": st.integers(2, 11), "restrictionType": st.integers(1, 2), "vendors": id_set(300, 20)}
    ),
)


@st.composite
def tcf_models(draw: st.DrawFn) -> dict[str, Any]:
    created = draw(st.integers(DECISECOND_2020, DECISECOND_2027)) * 100
    custom = draw(st.integers(0, 20))
    segments = ["core"] + draw(
        st.sampled_from([[], ["vendorsDisclosed"], ["publisherTC"], ["vendorsDisclosed", "publisherTC"],
                         ["vendorsDisclosed", "vendorsAllowed", "publisherTC"]])
    )  # fmt: skip
    return {
        "cmpId": draw(st.integers(2, 4095)), "cmpVersion": draw(st.integers(0, 4095)),
        "consentScreen": draw(st.integers(0, 63)), "consentLanguage": draw(st.sampled_from(LANGUAGES)),
        "vendorListVersion": draw(st.integers(1, 4095)), "tcfPolicyVersion": draw(st.integers(2, 5)),
        "isServiceSpecific": draw(st.booleans()), "useNonStandardTexts": draw(st.booleans()),
        "purposeOneTreatment": draw(st.booleans()),
        "publisherCountryCode": draw(st.sampled_from(["AA", "DE", "FR", "ZZ", "GB"])),
        "specialFeatureOptins": draw(id_set(12, 12)), "purposeConsents": draw(id_set(24, 24)),
        "purposeLegitimateInterests": draw(id_set(24, 24)),
        "vendorConsents": draw(vendors()), "vendorLegitimateInterests": draw(vendors()),
        "publisherRestrictions": draw(st.lists(restriction, max_size=4, unique_by=lambda r: (r["purposeId"], r["restrictionType"]))),
        "vendorsDisclosed": draw(vendors()), "vendorsAllowed": draw(id_set(1999, 10)),
        "publisherConsents": draw(id_set(24, 24)), "publisherLegitimateInterests": draw(id_set(24, 24)),
        "numCustomPurposes": custom, "publisherCustomConsents": draw(id_set(custom, custom)) if custom else [],
        "publisherCustomLegitimateInterests": draw(id_set(custom, custom)) if custom else [],
        "created": created, "lastUpdated": created + draw(st.integers(0, 10**9)) * 100,
        "segments": segments,
    }  # fmt: skip


def comparable(fields: dict[str, Any]) -> dict[str, Any]:
    """consentgate's fields in the reference's shape: an absent segment reads as empty sets there."""
    out = {k: v for k, v in fields.items() if k != "segments"}
    for name in ("vendorsDisclosed", "vendorsAllowed", "publisherConsents", "publisherLegitimateInterests",
                 "publisherCustomConsents", "publisherCustomLegitimateInterests"):  # fmt: skip
        if out.get(name) is None:
            out[name] = []
    if out.get("numCustomPurposes") is None:
        out["numCustomPurposes"] = 0
    return out


@SETTINGS
@given(models=st.lists(tcf_models(), min_size=1, max_size=8))
def test_tc_strings_from_the_official_encoder_decode_to_the_official_decoders_fields(
    reference, models
) -> None:
    strings = [r["ok"] for r in reference.call_many([{"op": "encode_tcf", "model": m} for m in models])]
    expected = reference.call_many([{"op": "decode_tcf", "string": s} for s in strings])
    for text, model, want in zip(strings, models, expected, strict=True):
        got = decode("tcf", text)
        assert comparable(got.fields) == want["ok"], text
        assert got.fields["segments"] == model["segments"]


def two_bit(allowed: tuple[int, ...] = (0, 1, 2)) -> st.SearchStrategy[int]:
    return st.sampled_from(allowed)


@st.composite
def us_section(draw: st.DrawFn, section_id: int) -> dict[str, Any]:
    name, layouts, has_gpc = gpp.US_SECTIONS[section_id]
    version = draw(st.sampled_from(sorted(layouts)))
    fields: dict[str, Any] = {"Version": version}
    # The reference encoder takes the newest layout and cuts it down for an older version (usnat v1).
    for field, count in layouts[max(layouts)]:
        allowed = (1, 2) if field == "MspaCoveredTransaction" else (0, 1, 2)
        fields[field] = (
            draw(st.lists(two_bit(allowed), min_size=count, max_size=count))
            if count
            else draw(two_bit(allowed))
        )
    if has_gpc:
        fields["GpcSegmentIncluded"] = draw(st.booleans())
        fields["Gpc"] = draw(st.booleans())
    return fields


US_IDS = sorted(gpp.US_SECTIONS)


def flags(n: int) -> st.SearchStrategy[list[bool]]:
    return st.lists(st.booleans(), min_size=n, max_size=n)


@st.composite
def tcfca_section(draw: st.DrawFn) -> dict[str, Any]:
    """IAB Canada TCF: Fibonacci-coded vendor ranges (both encodings), restrictions, publisher purposes."""
    custom = draw(st.integers(0, 10))
    restriction = st.fixed_dictionaries(
        {"key": st.integers(1, 24), "type": st.integers(0, 2), "ids": vendors()}
    )
    return {
        "CmpId": draw(st.integers(2, 4095)), "CmpVersion": draw(st.integers(0, 4095)),
        "ConsentScreen": draw(st.integers(0, 63)), "ConsentLanguage": draw(st.sampled_from(["EN", "FR"])),
        "VendorListVersion": draw(st.integers(1, 4095)), "TcfPolicyVersion": draw(st.integers(1, 63)),
        "UseNonStandardStacks": draw(st.booleans()), "SpecialFeatureExpressConsent": draw(flags(12)),
        "PurposesExpressConsent": draw(flags(24)), "PurposesImpliedConsent": draw(flags(24)),
        "VendorExpressConsent": draw(vendors()), "VendorImpliedConsent": draw(vendors()),
        "PubRestrictions": draw(st.lists(restriction, max_size=3)),
        "PubPurposesExpressConsent": draw(flags(24)), "PubPurposesImpliedConsent": draw(flags(24)),
        "NumCustomPurposes": custom, "CustomPurposesExpressConsent": draw(flags(custom)),
        "CustomPurposesImpliedConsent": draw(flags(custom)), "DisclosedVendors": draw(vendors()),
    }  # fmt: skip


@st.composite
def gpp_models(draw: st.DrawFn) -> dict[str, dict[str, Any]]:
    chosen = draw(st.lists(st.sampled_from(US_IDS), min_size=1, max_size=6, unique=True))
    sections = {gpp.US_SECTIONS[sid][0]: draw(us_section(sid)) for sid in chosen}
    if draw(st.booleans()):
        sections["tcfcav1"] = draw(tcfca_section())
    if draw(st.booleans()):
        sections["uspv1"] = {k: draw(st.sampled_from("YN-")) for k in ("Notice", "OptOutSale", "LspaCovered")}
    return sections


@SETTINGS
@given(models=st.lists(gpp_models(), min_size=1, max_size=8))
def test_gpp_strings_from_the_official_encoder_decode_to_the_official_decoders_fields(
    reference, models
) -> None:
    replies = reference.call_many([{"op": "encode_gpp", "sections": m} for m in models])
    strings = [r["ok"] for r in replies]
    expected = reference.call_many([{"op": "decode_gpp", "string": s} for s in strings])
    for text, want in zip(strings, expected, strict=True):
        got = decode("gpp", text).fields
        assert got == want["ok"], text


@SETTINGS
@given(model=tcf_models())
def test_a_tc_string_inside_gpp_decodes_like_the_reference_tcfeuv2_section(reference, model) -> None:
    model["segments"] = [s for s in model["segments"] if s != "vendorsAllowed"]
    text = "DBABMA~" + reference.call("encode_tcf", model=model)
    want = reference.call("decode_gpp", string=text)
    # The order of restriction entries carries no meaning; consentgate sorts them by (purpose, type).
    want["tcfeuv2"]["PublisherRestrictions"].sort(key=lambda e: (e["key"], e["type"]))
    got = decode("gpp", text).fields
    assert got == want, text


def test_the_benchmarks_fast_encoder_path_writes_what_tcstring_encode_writes(reference) -> None:
    """benchmarks/bench_decode.py encodes with SegmentEncoder directly (TCString.encode deep-clones the GVL
    per call); on its realistic models both give the same strings."""
    result = reference.call("check_fast_encoder", n=40, seed=11)
    assert result == {"n": 40, "same": 40}

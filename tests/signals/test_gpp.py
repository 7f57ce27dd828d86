"""GPP strings: the header's Fibonacci-coded section ids, US National (v1 and v2) and state sections with
their GPC sub-sections, the TCF EU section, and every malformation."""

from __future__ import annotations

import pytest
from consentgate.signals import SignalError, decode, gpp
from tcbits import b64, bits, fibonacci, gpp_header, tc, two_bits

USNAT_V2 = bits(2, 6) + two_bits(1, 1, 1, 1, 1, 1, 2, 1, 2) + two_bits(*[0, 1, 2, 0] * 4) + two_bits(2, 2, 2)
USNAT_V2 += two_bits(1, 1, 2, 0)
USNAT_V1 = bits(1, 6) + two_bits(1, 1, 1, 1, 1, 1, 2, 1, 2) + two_bits(*[0, 1, 2] * 4) + two_bits(2, 1)
USNAT_V1 += two_bits(1, 2, 1, 0)
GPC_ON, GPC_OFF = b64(bits(1, 2) + "1", pad=6), b64(bits(1, 2) + "0", pad=6)
USCA = bits(1, 6) + two_bits(1, 1, 1, 2, 1) + two_bits(*[1] * 9) + two_bits(0, 0) + two_bits(1, 2, 0, 0)


def compressed(bitstring: str) -> str:
    """Pad as iabgpp-es does: to a whole byte, then to whole base64 characters."""
    bitstring += "0" * (-len(bitstring) % 8)
    return b64(bitstring, pad=6)


@pytest.mark.parametrize(("value", "code"), [(1, "11"), (2, "011"), (3, "0011"), (4, "1011"), (7, "01011")])
def test_fibonacci_codes_match_the_gpp_specification_table(value: int, code: str) -> None:
    assert fibonacci(value) == code


@pytest.mark.parametrize("ids", [[2], [7], [2, 6], [7, 8, 9], [2, 6, 7, 8, 12], [6, 7, 8, 9, 10, 11, 12]])
def test_header_section_ids_single_and_range_entries(ids: list[int]) -> None:
    header = gpp_header(ids)
    assert gpp.header(header) == {"Type": 3, "Version": 1, "SectionIds": ids}
    assert decode("gpp-header", header).fields["SectionIds"] == ids


def test_usnat_v2_core_and_gpc_subsection() -> None:
    f = decode("usnat", compressed(USNAT_V2) + "." + GPC_ON).fields["usnat"]
    assert f["Version"] == 2
    assert f["SaleOptOut"] == 2 and f["SharingOptOut"] == 1 and f["TargetedAdvertisingOptOut"] == 2
    assert f["SensitiveDataProcessing"] == [0, 1, 2, 0] * 4
    assert f["KnownChildSensitiveDataConsents"] == [2, 2, 2]
    assert (f["PersonalDataConsents"], f["MspaCoveredTransaction"], f["MspaOptOutOptionMode"]) == (1, 1, 2)
    assert f["MspaServiceProviderMode"] == 0
    assert (f["GpcSegmentIncluded"], f["Gpc"]) == (True, True)


def test_usnat_v1_has_12_sensitive_categories_and_2_child_consents() -> None:
    f = decode("usnat", compressed(USNAT_V1)).fields["usnat"]
    assert f["Version"] == 1
    assert f["SensitiveDataProcessing"] == [0, 1, 2] * 4
    assert f["KnownChildSensitiveDataConsents"] == [2, 1]
    assert (f["PersonalDataConsents"], f["MspaCoveredTransaction"], f["MspaOptOutOptionMode"]) == (1, 2, 1)
    assert (f["GpcSegmentIncluded"], f["Gpc"]) == (False, False)


def test_usnat_layout_is_told_by_length_as_the_reference_does() -> None:
    # Version 1 written in the long layout (iabgpp-es before version 2): 16/3 read, 12/2 reported.
    f = decode("usnat", compressed(bits(1, 6) + USNAT_V2[6:])).fields["usnat"]
    assert f["Version"] == 1
    assert f["SensitiveDataProcessing"] == ([0, 1, 2, 0] * 4)[:12]
    assert f["KnownChildSensitiveDataConsents"] == [2, 2]
    assert (f["PersonalDataConsents"], f["MspaCoveredTransaction"], f["MspaOptOutOptionMode"]) == (1, 1, 2)


def test_a_version_2_label_on_the_short_layout_is_rejected() -> None:
    with pytest.raises(SignalError, match=r"version 2 in 66 bits; version 2 needs 70"):
        decode("usnat", compressed(bits(2, 6) + USNAT_V1[6:]))


def test_whole_gpp_string_with_tcf_usp_and_states() -> None:
    text = "~".join(
        [gpp_header([2, 6, 7, 8]), tc(), "1YNN", compressed(USNAT_V2) + "." + GPC_OFF, compressed(USCA)]
    )
    decoded = decode("auto", text)
    assert decoded.kind == "gpp"
    f = decoded.fields
    assert f["sectionIds"] == [2, 6, 7, 8]
    assert f["tcfeuv2"]["CmpId"] == 10 and f["tcfeuv2"]["VendorConsents"] == [1, 2]
    assert f["uspv1"] == {"Version": 1, "Notice": "Y", "OptOutSale": "N", "LspaCovered": "N"}
    assert f["usnat"]["Gpc"] is False and f["usca"]["SaleOptOut"] == 2
    assert "usnat.opted_out" in decoded.not_consent  # SharingOptOut = 1


def test_did_not_opt_out_is_never_consent() -> None:
    not_opted_out = (
        bits(1, 6) + two_bits(1, 1, 1, 2, 2) + two_bits(*[2] * 9) + two_bits(0, 0) + two_bits(0, 1, 0, 0)
    )
    decoded = decode("usca", compressed(not_opted_out))
    assert decoded.fields["usca"]["SaleOptOut"] == 2
    assert decoded.not_consent == ("usca.opt_out_framework",)


def test_gpc_subsection_set_is_a_named_reason() -> None:
    assert "usca.gpc_opt_out" in decode("usca", compressed(USCA) + "." + GPC_ON).not_consent


@pytest.mark.parametrize(
    ("kind", "text", "match"),
    [
        ("gpp", gpp_header([7, 8]) + "~" + compressed(USNAT_V2), r"header lists 2 sections but the string has 1"),
        ("gpp", gpp_header([7]) + "~" + compressed(USNAT_V2) + "~" + compressed(USCA), r"lists 1 sections .* has 2"),
        ("gpp", gpp_header([7]) + "~", r"section 1 \(usnat\).* empty segment|is blank"),
        ("gpp", gpp_header([7], kind=4) + "~x", r"type 4; a GPP header has type 3"),
        ("gpp", gpp_header([7], version=2) + "~x", r"unknown version 2"),
        ("gpp", gpp_header([7], count=3) + "~x", r"section id entry \d of 3 is past the end|runs past the end"),
        ("gpp", gpp_header([99]) + "~AAAA", r"section 1 has id 99"),
        ("gpp", b64(bits(3, 6) + bits(1, 6) + bits(1, 12) + "1" + fibonacci(2) + fibonacci(10**9), pad=6) + "~x",
         r"reaches id 1000000002; ids above 1023 are not defined"),
        ("gpp-header", "DB*A", r"character 3 is not base64url"),
        ("usnat", b64(USNAT_V2[:60], pad=6), r"version 2 in 60 bits"),
        ("usnat", compressed(bits(3, 6) + USNAT_V2[6:]), r"unknown version 3"),
        ("usnat", b64(USNAT_V2[:64], pad=6), r"past the end of the segment \(66 bits\)|version 2 in 66 bits"),
        ("usca", b64(USCA[:30], pad=6), r"past the end of the segment \(30 bits\)"),
        ("usnat", compressed(USNAT_V2[:18] + "11" + USNAT_V2[20:]), r"SaleOptOut is 3; only 0, 1, 2"),
        ("usnat", compressed(USNAT_V2[:24] + "11" + USNAT_V2[26:]), r"SensitiveDataProcessing\[0\] is 3"),
        ("usnat", compressed(USNAT_V2[:64] + "00" + USNAT_V2[66:]), r"MspaCoveredTransaction is 0; only 1, 2"),
        ("usnat", compressed(USNAT_V2) + "." + b64(bits(2, 2) + "1", pad=6), r"sub-section type 2"),
        ("usnat", compressed(USNAT_V2) + "." + GPC_ON + "." + GPC_ON, r"at most 2"),
        ("usva", compressed(bits(1, 6) + two_bits(*[1] * 5) + two_bits(*[0] * 8) + two_bits(0, 1, 0, 0)) + "." + GPC_ON,
         r"usva: has 2 segments; this section has no GPC sub-section"),
        ("tcfeuv2", "CPc2Lg-+", r"character 8 is not base64url"),
    ],
)  # fmt: skip
def test_malformed_gpp_raises_one_clear_error(kind: str, text: str, match: str) -> None:
    with pytest.raises(SignalError, match=match) as info:
        decode(kind, text)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("name", ["usnat", "usca", "usva", "usco", "usut", "usct"])
def test_every_required_section_decodes_its_default_encoding(name: str) -> None:
    sid = gpp.SECTION_IDS[name]
    _, layouts, _ = gpp.US_SECTIONS[sid]
    version = max(layouts)
    body = bits(version, 6)
    for field, count in layouts[version]:
        body += two_bits(*([0] * count)) if count else two_bits(1 if field == "MspaCoveredTransaction" else 0)
    fields = decode(name, compressed(body)).fields[name]
    assert fields["Version"] == version and fields["MspaCoveredTransaction"] == 1
    assert [k for k in fields if k not in ("Version", "GpcSegmentType", "GpcSegmentIncluded", "Gpc")] == [
        f for f, _ in layouts[version]
    ]

"""TC strings (TCF v2.x): every field in order and width, both vendor encodings, every malformation."""

from __future__ import annotations

import pytest
from consentgate.errors import ConsentGateError
from consentgate.signals import SignalError, decode
from consentgate.signals import tcf as tcf_mod
from tcbits import b64, bits, core, disclosed, tc, vendor_bitfield, vendor_range


def fields_of(text: str) -> dict:
    return decode("tcf", text).fields


def reasons_of(text: str) -> tuple[str, ...]:
    return decode("tcf", text).not_consent


def test_every_core_field_is_read_in_order_and_width() -> None:
    f = fields_of(
        tc(
            created=17_000_000_000, last_updated=17_000_864_000, cmp_id=300, cmp_version=7, consent_screen=5,
            language="FR", vendor_list_version=150, policy_version=4, service_specific=True, non_standard=True,
            special_features=[1, 2], purposes=[1, 3, 24], li_purposes=[2, 7], purpose_one_treatment=True,
            country="IT", vendor_consents=vendor_bitfield([1, 5, 9]), vendor_li=vendor_bitfield([2]),
        )
    )  # fmt: skip
    assert f["version"] == 2
    assert f["created"] == "2023-11-14T22:13:20.000Z"
    assert f["lastUpdated"] == "2023-11-15T22:13:20.000Z"
    assert (f["cmpId"], f["cmpVersion"], f["consentScreen"]) == (300, 7, 5)
    assert (f["consentLanguage"], f["vendorListVersion"], f["tcfPolicyVersion"]) == ("FR", 150, 4)
    assert f["isServiceSpecific"] is True and f["useNonStandardTexts"] is True
    assert f["specialFeatureOptins"] == [1, 2]
    assert f["purposeConsents"] == [1, 3, 24]
    assert f["purposeLegitimateInterests"] == [2, 7]
    assert f["purposeOneTreatment"] is True and f["publisherCountryCode"] == "IT"
    assert f["vendorConsents"] == [1, 5, 9] and f["vendorLegitimateInterests"] == [2]
    assert f["publisherRestrictions"] == []
    assert f["vendorsDisclosed"] is None and f["vendorsAllowed"] is None and f["publisherConsents"] is None
    assert f["segments"] == ["core"]


def test_range_encoding_gives_the_same_ids_as_bitfield() -> None:
    ranged = fields_of(tc(vendor_consents=vendor_range([(3, 3), (10, 14), (900, 901)], 901)))
    listed = fields_of(tc(vendor_consents=vendor_bitfield([3, 10, 11, 12, 13, 14, 900, 901])))
    assert ranged["vendorConsents"] == listed["vendorConsents"] == [3, 10, 11, 12, 13, 14, 900, 901]


def test_publisher_restrictions_are_decoded_per_purpose_and_type() -> None:
    restrictions = bits(2, 12)
    restrictions += bits(7, 6) + bits(0, 2) + bits(1, 12) + "1" + bits(4, 16) + bits(6, 16)
    restrictions += bits(2, 6) + bits(1, 2) + bits(1, 12) + "0" + bits(8, 16)
    f = fields_of(tc(restrictions=restrictions))
    assert f["publisherRestrictions"] == [
        {"purposeId": 2, "restrictionType": 1, "vendors": [8]},
        {"purposeId": 7, "restrictionType": 0, "vendors": [4, 5, 6]},
    ]


def test_optional_segments_disclosed_allowed_and_publisher_tc() -> None:
    allowed = b64(bits(2, 3) + vendor_bitfield([4]))
    publisher = b64(bits(3, 3) + "1" * 2 + "0" * 22 + "0" * 23 + "1" + bits(3, 6) + "101" + "010")
    f = fields_of(tc(None, disclosed([1, 2, 7]), allowed, publisher))
    assert f["vendorsDisclosed"] == [1, 2, 7]
    assert f["vendorsAllowed"] == [4]
    assert f["publisherConsents"] == [1, 2]
    assert f["publisherLegitimateInterests"] == [24]
    assert f["numCustomPurposes"] == 3
    assert f["publisherCustomConsents"] == [1, 3]
    assert f["publisherCustomLegitimateInterests"] == [2]
    assert f["segments"] == ["core", "vendorsDisclosed", "vendorsAllowed", "publisherTC"]


def test_a_usable_string_has_no_reasons() -> None:
    assert reasons_of(tc(None, disclosed([1, 2]))) == ()


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"service_specific": False}, "not_service_specific"),
        ({"policy_version": 2}, "policy_version_too_old"),
        ({"li_purposes": [3]}, "legitimate_interest_for_forbidden_purpose"),
        ({"li_purposes": [6, 7]}, "legitimate_interest_for_forbidden_purpose"),
        ({"li_purposes": [1]}, "legitimate_interest_for_forbidden_purpose"),
        ({"cmp_id": 1}, "cmp_id_not_registered"),
        ({"cmp_id": 0}, "cmp_id_not_registered"),
        ({"vendor_list_version": 0}, "vendor_list_version_zero"),
        ({"last_updated": 16_000_000_000}, "last_updated_before_created"),
    ],
)
def test_a_string_that_decodes_but_must_not_count_as_consent_says_why(fields: dict, reason: str) -> None:
    policy = fields.pop("policy_version", 5)
    created = 17_100_000_000 if policy == 2 else 17_000_000_000  # 2024-03: after the TCF 2.2 deadline
    text = tc(None, disclosed([1]), policy_version=policy, created=created, **fields)
    assert reason in reasons_of(text)


def test_policy_version_is_judged_against_the_strings_date() -> None:
    before = tc(None, disclosed([1]), policy_version=2, created=16_000_000_000)  # 2020-09
    after = tc(None, disclosed([1]), policy_version=3, created=17_100_000_000)  # 2024-03: TCF 2.2 due
    assert "policy_version_too_old" not in reasons_of(before)
    assert "policy_version_too_old" in reasons_of(after)


def test_tcf_23_string_without_disclosed_vendors_is_not_consent() -> None:
    march_2026, december_2025 = 17_730_000_000, 17_660_000_000
    assert "disclosed_vendors_missing" in reasons_of(tc(created=march_2026))
    assert "disclosed_vendors_missing" not in reasons_of(tc(None, disclosed([1]), created=march_2026))
    assert "disclosed_vendors_missing" not in reasons_of(tc(created=december_2025))  # before TCF 2.3 applied


def test_allowed_vendors_segment_is_decoded_but_flagged() -> None:
    text = tc(None, disclosed([1]), b64(bits(2, 3) + vendor_bitfield([1])))
    assert fields_of(text)["vendorsAllowed"] == [1]
    assert "deprecated_allowed_vendors_segment" in reasons_of(text)


def test_v1_strings_are_recognised_and_rejected_as_consent() -> None:
    v1 = bits(1, 6) + bits(15_000_000_000, 36) * 2 + bits(10, 12) + bits(1, 12) + bits(1, 6)
    v1 += bits(4, 6) + bits(13, 6) + bits(8, 12) + "1" * 5 + "0" * 19
    v1 += bits(10, 16) + "1" + "1" + bits(1, 12) + "0" + bits(3, 16)  # range, default consent = 1, except 3
    decoded = decode("auto", b64(v1))
    assert decoded.kind == "tcf" and decoded.fields["version"] == 1
    assert decoded.fields["purposeConsents"] == [1, 2, 3, 4, 5]
    assert decoded.fields["vendorConsents"] == [1, 2, 4, 5, 6, 7, 8, 9, 10]
    assert decoded.not_consent == ("tcf_v1",)


def test_publisher_restriction_count_is_required_even_when_zero() -> None:
    with pytest.raises(SignalError, match=r"publisherRestrictions numPubRestrictions .* past the end"):
        # 24-bit padding would hide a missing count: pad the core to exactly its last vendor bit.
        decode("tcf", _exact(core(restrictions=None)))


def _exact(bitstring: str) -> str:
    """base64url with no more padding than the last character needs (so a missing field is missing)."""
    return b64(bitstring, pad=6)


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("CPc2LgAPc2Lg+FxAAAENCZCsAP", r"character 13 is not base64url"),
        ("CPc2LgAPc2Lg%3D", r"character 13 is not base64url"),
        ("", r"empty segment"),
        ("CPc2LgA", r"field lastUpdated .* past the end"),
        (_exact(core(vendor_consents=bits(40, 16) + "0" + "1" * 10, vendor_li="", restrictions=None)),
         r"vendorConsents bitfield .* past the end"),
        (tc(vendor_consents=vendor_range([(40, 12)], 50)), r"vendorConsents range entry 1 has end 12 < start 40"),
        (tc(vendor_consents=vendor_range([(1, 2), (0, 0)], 50)), r"vendorConsents range entry 2 has id 0"),
        (tc(vendor_consents=vendor_range([(5, 60)], 50)), r"range entry 1 has id 60 > maxVendorId 50"),
        (tc(vendor_consents=vendor_range([(70, 70)], 50)), r"range entry 1 has id 70 > maxVendorId 50"),
        (tc(version=3), r"unknown version 3"),
        (tc(restrictions=bits(1, 12) + bits(2, 6) + bits(3, 2) + bits(0, 12)), r"restrictionType 3"),
        (tc(restrictions=bits(1, 12) + bits(0, 6) + bits(1, 2) + bits(0, 12)), r"purposeId 0"),
        (tc(restrictions=bits(1, 12) + bits(2, 6) + bits(1, 2) + bits(1, 12) + "1" + bits(9, 16) + bits(3, 16)),
         r"publisher restriction 1 range entry 1 has end 3 < start 9"),
        (b64(core()[:108] + bits(30, 6) + core()[114:]), r"consentLanguage holds letter codes"),
        (tc(None, b64(bits(0, 3) + "0" * 21)), r"segment 2 has segment type 0"),
        (tc(None, b64(bits(5, 3) + "0" * 21)), r"segment 2 has segment type 5"),
        (tc(None, disclosed([1]), disclosed([2])), r"segment 3 repeats the vendorsDisclosed segment"),
        (tc(None, b64(bits(3, 3) + "0" * 10)), r"publisherConsents .* past the end"),
    ],
)  # fmt: skip
def test_malformed_strings_raise_one_clear_error(text: str, match: str) -> None:
    with pytest.raises(SignalError, match=match) as info:
        decode("tcf", text)
    message = str(info.value)
    assert "\n" not in message
    assert len(text) < 20 or text not in message, "the whole input must never be echoed"


def test_signal_error_is_a_consentgate_error_and_a_value_error() -> None:
    assert issubclass(SignalError, ConsentGateError) and issubclass(SignalError, ValueError)


def test_a_long_bad_string_is_quoted_by_a_short_prefix_only() -> None:
    long_bad = tc(version=9) + "A" * 400
    with pytest.raises(SignalError) as info:
        decode("tcf", long_bad)
    assert long_bad[:12] in str(info.value) and long_bad[:30] not in str(info.value)


def test_timestamps_keep_the_strings_resolution() -> None:
    assert tcf_mod.iso(16_094_592_000) == "2021-01-01T00:00:00.000Z"
    assert tcf_mod.iso(16_094_592_001) == "2021-01-01T00:00:00.100Z"


def test_unordered_and_overlapping_range_entries_give_the_sorted_set() -> None:
    f = fields_of(tc(vendor_consents=vendor_range([(20, 25), (3, 3), (22, 30), (26, 26)], 30)))
    assert f["vendorConsents"] == [3, *range(20, 31)]


def test_a_hostile_string_of_full_width_ranges_costs_one_set_of_ids() -> None:
    entry = "1" + bits(1, 16) + bits(65535, 16)
    restrictions = bits(1, 12) + bits(2, 6) + bits(0, 2) + bits(4095, 12) + entry * 4095
    f = fields_of(tc(restrictions=restrictions))
    assert len(f["publisherRestrictions"][0]["vendors"]) == 65535

"""Whether a signal that decodes may still count as consent: named reasons, each tied to a spec passage.

Decoding says what a string holds; this says whether consentgate may treat it as consent at all.
An empty list means "usable": the per-purpose and per-vendor answers are then read from the fields by
the consent sources. docs/signals.md quotes the spec passage behind every reason.
"""

from __future__ import annotations

from datetime import date
from typing import Any

#: TCF 2.2 (policy version 4) became mandatory for CMPs on this day.
TCF22_DEADLINE = date(2023, 11, 20)
#: TCF 2.3 (disclosed-vendors segment mandatory) applies to TC strings created after this day.
TCF23_DEADLINE = date(2026, 2, 28)
#: Purposes for which TCF 2.2 allows no legitimate interest (1 never could; 3-6 since policy version 4).
NO_LI_PURPOSES = frozenset({1, 3, 4, 5, 6})

# Reason names (stable: they are part of the JSON contract).
TCF_V1 = "tcf_v1"
NOT_SERVICE_SPECIFIC = "not_service_specific"
POLICY_VERSION_TOO_OLD = "policy_version_too_old"
FORBIDDEN_LEGITIMATE_INTEREST = "legitimate_interest_for_forbidden_purpose"
CMP_NOT_REGISTERED = "cmp_id_not_registered"
NO_VENDOR_LIST = "vendor_list_version_zero"
DISCLOSED_VENDORS_MISSING = "disclosed_vendors_missing"
ALLOWED_VENDORS_SEGMENT = "deprecated_allowed_vendors_segment"
LAST_UPDATED_BEFORE_CREATED = "last_updated_before_created"
OPT_OUT_FRAMEWORK = "opt_out_framework"
OPTED_OUT = "opted_out"
GPC_SET = "gpc_opt_out"
NOTICE_NOT_GIVEN = "notice_not_given"
USP_DEPRECATED = "us_privacy_deprecated"


def _day(iso: str) -> date:
    return date.fromisoformat(iso[:10])


def _policy_too_old(fields: dict[str, Any]) -> bool:
    version, created = fields["tcfPolicyVersion"], _day(fields["created"])
    if version < 2:
        return True
    return created >= TCF22_DEADLINE and version < 4


def tcf_reasons(fields: dict[str, Any]) -> list[str]:
    """Reasons a decoded TC string must not count as consent (empty: usable)."""
    if fields["version"] == 1:
        return [TCF_V1]
    reasons = []
    if not fields["isServiceSpecific"]:
        reasons.append(NOT_SERVICE_SPECIFIC)
    if _policy_too_old(fields):
        reasons.append(POLICY_VERSION_TOO_OLD)
    li = set(fields["purposeLegitimateInterests"]) | set(fields["publisherLegitimateInterests"] or ())
    if (fields["tcfPolicyVersion"] >= 4 and li & NO_LI_PURPOSES) or 1 in li:
        reasons.append(FORBIDDEN_LEGITIMATE_INTEREST)
    if fields["cmpId"] < 2:
        reasons.append(CMP_NOT_REGISTERED)
    if fields["vendorListVersion"] == 0:
        reasons.append(NO_VENDOR_LIST)
    if _day(fields["created"]) > TCF23_DEADLINE and fields["vendorsDisclosed"] is None:
        reasons.append(DISCLOSED_VENDORS_MISSING)
    if fields["vendorsAllowed"] is not None:
        reasons.append(ALLOWED_VENDORS_SEGMENT)
    if fields["lastUpdated"] < fields["created"]:
        reasons.append(LAST_UPDATED_BEFORE_CREATED)
    return reasons


def tcfca_reasons(fields: dict[str, Any]) -> list[str]:
    """Reasons an IAB Canada TCF section must not count as consent (express consent is read later)."""
    reasons = []
    if fields["CmpId"] < 2:
        reasons.append(CMP_NOT_REGISTERED)
    if fields["VendorListVersion"] == 0:
        reasons.append(NO_VENDOR_LIST)
    if fields["LastUpdated"] < fields["Created"]:
        reasons.append(LAST_UPDATED_BEFORE_CREATED)
    return reasons


#: For each US section field that records an opt-out: the value meaning "opted out" is 1.
US_OPT_OUT_FIELDS = ("SaleOptOut", "SharingOptOut", "TargetedAdvertisingOptOut")
US_NOTICE_FIELDS = (
    "SaleOptOutNotice",
    "SharingOptOutNotice",
    "TargetedAdvertisingOptOutNotice",
    "SharingNotice",
)


def us_section_reasons(fields: dict[str, Any]) -> list[str]:
    """A US section can withdraw, never grant: "did not opt out" (2) is not an opt-in."""
    reasons = [OPT_OUT_FRAMEWORK]
    if any(fields.get(name) == 1 for name in US_OPT_OUT_FIELDS):
        reasons.append(OPTED_OUT)
    if any(fields.get(name) == 2 for name in US_NOTICE_FIELDS):
        reasons.append(NOTICE_NOT_GIVEN)
    if fields.get("Gpc"):
        reasons.append(GPC_SET)
    return reasons


def uspv1_reasons(fields: dict[str, Any]) -> list[str]:
    reasons = [OPT_OUT_FRAMEWORK, USP_DEPRECATED]
    if fields["OptOutSale"] == "Y":
        reasons.append(OPTED_OUT)
    if fields["Notice"] == "N":
        reasons.append(NOTICE_NOT_GIVEN)
    return reasons


def gpc_reasons(fields: dict[str, Any]) -> list[str]:
    return [OPT_OUT_FRAMEWORK, GPC_SET] if fields["Gpc"] else [OPT_OUT_FRAMEWORK]

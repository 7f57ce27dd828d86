"""IAB TCF v2.x TC strings (and recognition of v1): every segment, field for field.

Layout: "Transparency & Consent String and Global Vendor List Format" v2 (IAB Europe TCF v2.2/2.3),
section "The core string" and "Vendor Consent / Legitimate Interest section", "Publisher restrictions",
"Disclosed Vendors", "Allowed Vendors" and "Publisher Purposes Transparency and Consent" segments.
Field names are those of the iabtcf-es TCModel (policyVersion is output as `tcfPolicyVersion`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from consentgate.signals.bits import BitReader
from consentgate.signals.errors import SignalError, prefix

CORE, DISCLOSED, ALLOWED, PUBLISHER_TC = 0, 1, 2, 3
SEGMENT_NAMES = {
    CORE: "core",
    DISCLOSED: "vendorsDisclosed",
    ALLOWED: "vendorsAllowed",
    PUBLISHER_TC: "publisherTC",
}
RESTRICTION_TYPES = {0: "NOT_ALLOWED", 1: "REQUIRE_CONSENT", 2: "REQUIRE_LI"}


@lru_cache(maxsize=4096)
def iso(deciseconds: int) -> str:
    """A TC string timestamp (deciseconds since the epoch) as ISO 8601 UTC with milliseconds."""
    moment = datetime.fromtimestamp(deciseconds // 10, UTC)
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{deciseconds % 10}00Z"


def _letters(r: BitReader, field: str) -> str:
    a, b = r.int(field, 6), r.int(field, 6)
    if a > 25 or b > 25:
        raise SignalError(f"{r.what}: {field} holds letter codes {a},{b}; each must be 0-25 (A-Z)")
    return chr(65 + a) + chr(65 + b)


def _check_entry(r: BitReader, field: str, n: int, start: int, end: int, max_id: int | None) -> None:
    if start == 0:
        raise SignalError(f"{r.what}: {field} range entry {n} has id 0; vendor ids start at 1")
    if end < start:
        raise SignalError(f"{r.what}: {field} range entry {n} has end {end} < start {start}")
    if max_id is not None and end > max_id:
        raise SignalError(f"{r.what}: {field} range entry {n} has id {end} > maxVendorId {max_id}")


def range_entries(r: BitReader, field: str, max_id: int | None) -> list[int]:
    """numEntries(12) then per entry isRange(1) startId(16) [endId(16)]: the sorted set of ids.

    Overlapping or unordered entries are merged as intervals first, so a hostile string of 4095
    full-width ranges costs 65535 ids, not 268 million.
    """
    count = r.int(f"{field} numEntries", 12)
    spans: list[tuple[int, int]] = []
    ordered = True
    for n in range(1, count + 1):
        is_range = r.int(f"{field} entry {n} isRange", 1)
        start = r.int(f"{field} entry {n} startOrOnlyVendorId", 16)
        end = r.int(f"{field} entry {n} endVendorId", 16) if is_range else start
        _check_entry(r, field, n, start, end, max_id)
        if spans and start <= spans[-1][1]:
            ordered = False
        spans.append((start, end))
    if not ordered:
        spans = _merged(spans)
    ids: list[int] = []
    for start, end in spans:
        ids.extend(range(start, end + 1))
    return ids


def _merged(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if out and start <= out[-1][1] + 1:
            out[-1] = (out[-1][0], max(end, out[-1][1]))
        else:
            out.append((start, end))
    return out


def vendor_section(r: BitReader, field: str, *, v1: bool = False) -> list[int]:
    """maxVendorId(16), isRangeEncoding(1), then a maxVendorId-bit bitfield or range entries."""
    max_id = r.int(f"{field} maxVendorId", 16)
    if not r.bool(f"{field} isRangeEncoding"):
        return r.ids(f"{field} bitfield", max_id)
    if not v1:
        return range_entries(r, field, max_id)
    default = r.bool(f"{field} defaultConsent")
    listed = range_entries(r, field, max_id)
    if not default:
        return listed
    excluded = set(listed)
    return [i for i in range(1, max_id + 1) if i not in excluded]


def publisher_restrictions(r: BitReader) -> list[dict[str, Any]]:
    """numPubRestrictions(12) (required even when 0), then purposeId(6) restrictionType(2) and a range."""
    count = r.int("publisherRestrictions numPubRestrictions", 12)
    out: list[dict[str, Any]] = []
    for n in range(1, count + 1):
        purpose = r.int(f"publisherRestrictions entry {n} purposeId", 6)
        kind = r.int(f"publisherRestrictions entry {n} restrictionType", 2)
        if purpose == 0:
            raise SignalError(f"{r.what}: publisher restriction {n} has purposeId 0; purposes start at 1")
        if kind not in RESTRICTION_TYPES:
            raise SignalError(
                f"{r.what}: publisher restriction {n} has restrictionType {kind}; only 0, 1, 2 are defined"
            )
        vendors = range_entries(r, f"publisher restriction {n}", None)
        out.append({"purposeId": purpose, "restrictionType": kind, "vendors": vendors})
    out.sort(key=lambda e: (e["purposeId"], e["restrictionType"]))
    return out


def _header(r: BitReader, out: dict[str, Any]) -> None:
    out["created"] = iso(r.int("created", 36))
    out["lastUpdated"] = iso(r.int("lastUpdated", 36))
    out["cmpId"] = r.int("cmpId", 12)
    out["cmpVersion"] = r.int("cmpVersion", 12)
    out["consentScreen"] = r.int("consentScreen", 6)
    out["consentLanguage"] = _letters(r, "consentLanguage")
    out["vendorListVersion"] = r.int("vendorListVersion", 12)


def core_v2(r: BitReader, out: dict[str, Any]) -> None:
    _header(r, out)
    out["tcfPolicyVersion"] = r.int("tcfPolicyVersion", 6)
    out["isServiceSpecific"] = r.bool("isServiceSpecific")
    out["useNonStandardTexts"] = r.bool("useNonStandardTexts")
    out["specialFeatureOptins"] = r.ids("specialFeatureOptins", 12)
    out["purposeConsents"] = r.ids("purposeConsents", 24)
    out["purposeLegitimateInterests"] = r.ids("purposeLegitimateInterests", 24)
    out["purposeOneTreatment"] = r.bool("purposeOneTreatment")
    out["publisherCountryCode"] = _letters(r, "publisherCountryCode")
    out["vendorConsents"] = vendor_section(r, "vendorConsents")
    out["vendorLegitimateInterests"] = vendor_section(r, "vendorLegitimateInterests")
    out["publisherRestrictions"] = publisher_restrictions(r)


def core_v1(r: BitReader, out: dict[str, Any]) -> None:
    _header(r, out)
    out["purposeConsents"] = r.ids("purposesAllowed", 24)
    out["vendorConsents"] = vendor_section(r, "vendorConsents", v1=True)


def publisher_tc(r: BitReader, out: dict[str, Any]) -> None:
    out["publisherConsents"] = r.ids("publisherConsents", 24)
    out["publisherLegitimateInterests"] = r.ids("publisherLegitimateInterests", 24)
    n = out["numCustomPurposes"] = r.int("numCustomPurposes", 6)
    out["publisherCustomConsents"] = r.ids("publisherCustomConsents", n)
    out["publisherCustomLegitimateInterests"] = r.ids("publisherCustomLegitimateInterests", n)


_OPTIONAL_FIELDS = {
    DISCLOSED: ("vendorsDisclosed",),
    ALLOWED: ("vendorsAllowed",),
    PUBLISHER_TC: (
        "publisherConsents",
        "publisherLegitimateInterests",
        "numCustomPurposes",
        "publisherCustomConsents",
        "publisherCustomLegitimateInterests",
    ),
}


def _optional_segment(part: str, index: int, seen: set[int], out: dict[str, Any]) -> str:
    r = BitReader(f"TC string segment {index + 1}", part)
    kind = r.int("segmentType", 3)
    if kind == CORE or kind not in SEGMENT_NAMES:
        raise SignalError(f"TC string: segment {index + 1} has segment type {kind}; expected 1, 2 or 3")
    if kind in seen:
        raise SignalError(f"TC string: segment {index + 1} repeats the {SEGMENT_NAMES[kind]} segment")
    seen.add(kind)
    if kind == PUBLISHER_TC:
        publisher_tc(r, out)
    else:
        out[_OPTIONAL_FIELDS[kind][0]] = vendor_section(r, _OPTIONAL_FIELDS[kind][0])
    return SEGMENT_NAMES[kind]


def decode(text: str) -> dict[str, Any]:
    """A TC string as a dict with the iabtcf-es TCModel field names; raises SignalError if malformed.

    Optional segments that are absent give None for their fields (not an empty set); `segments` lists
    the segments present, in order.
    """
    if not isinstance(text, str):
        raise SignalError(f"TC string: expected text, got {type(text).__name__}")
    parts = text.strip().split(".")
    r = BitReader("TC string core segment", parts[0])
    version = r.int("version", 6)
    out: dict[str, Any] = {"version": version}
    if version == 2:
        core_v2(r, out)
    elif version == 1:
        if len(parts) > 1:
            raise SignalError("TC string: a version 1 string has no segments after the core")
        core_v1(r, out)
        out["segments"] = ["core"]
        return out
    else:
        raise SignalError(
            f"TC string {prefix(text)}: unknown version {version}; only TCF v2 (and v1, rejected) exist"
        )
    for fields in _OPTIONAL_FIELDS.values():
        for name in fields:
            out[name] = None
    seen: set[int] = set()
    segments = ["core"]
    for index, part in enumerate(parts[1:], start=1):
        segments.append(_optional_segment(part, index, seen, out))
    out["segments"] = segments
    return out

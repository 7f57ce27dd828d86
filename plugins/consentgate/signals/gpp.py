"""IAB GPP strings: the header (Fibonacci-coded section ids), and the TCF EU, US Privacy, US National and
US state sections, with their GPC sub-sections.

Layouts: "Consent String Specification" (GPP v1), "US National Privacy Technical Specification" and the
state specifications of IAB Tech Lab's Global Privacy Platform repository. Field names are those of
iabgpp-es. Every 2-bit field is checked against its defined values (the reference libraries do not).
"""

from __future__ import annotations

from typing import Any

from consentgate.signals import tcf, tcfca, usable, usprivacy
from consentgate.signals.bits import BitReader, to_int
from consentgate.signals.errors import SignalError, prefix

# (field name, number of 2-bit values: 0 for a single value)
Layout = tuple[tuple[str, int], ...]
_N, _SON, _SHON, _TAON = (
    "SharingNotice",
    "SaleOptOutNotice",
    "SharingOptOutNotice",
    "TargetedAdvertisingOptOutNotice",
)
_SO, _SHO, _TAO = "SaleOptOut", "SharingOptOut", "TargetedAdvertisingOptOut"
_SDP, _KCSD, _PN = "SensitiveDataProcessing", "KnownChildSensitiveDataConsents", "ProcessingNotice"
_MSPA: Layout = (("MspaCoveredTransaction", 0), ("MspaOptOutOptionMode", 0), ("MspaServiceProviderMode", 0))
_ADPC = ("AdditionalDataProcessingConsent", 0)


def _state(sdp: int, kcsd: int, *, adpc: bool = True, notice: str = _PN) -> Layout:
    extra = (_ADPC,) if adpc else ()
    return (
        (notice, 0),
        (_SON, 0),
        (_TAON, 0),
        (_SO, 0),
        (_TAO, 0),
        (_SDP, sdp),
        (_KCSD, kcsd),
        *extra,
        *_MSPA,
    )


USNAT_V2: Layout = (
    (_N, 0), (_SON, 0), (_SHON, 0), (_TAON, 0), ("SensitiveDataProcessingOptOutNotice", 0),
    ("SensitiveDataLimitUseNotice", 0), (_SO, 0), (_SHO, 0), (_TAO, 0), (_SDP, 16), (_KCSD, 3),
    ("PersonalDataConsents", 0), *_MSPA,
)  # fmt: skip
#: usnat version 1 (before the 2024 DE/IA/NE/NH/NJ/TN release): 12 sensitive data categories, 2 child consents.
USNAT_V1: Layout = tuple((n, {16: 12, 3: 2}.get(c, c)) for n, c in USNAT_V2)

#: section id -> (API prefix, {version: core layout}, has a GPC sub-section)
US_SECTIONS: dict[int, tuple[str, dict[int, Layout], bool]] = {
    7: ("usnat", {1: USNAT_V1, 2: USNAT_V2}, True),
    8: ("usca", {1: ((_SON, 0), (_SHON, 0), ("SensitiveDataLimitUseNotice", 0), (_SO, 0), (_SHO, 0),
                     (_SDP, 9), (_KCSD, 2), ("PersonalDataConsents", 0), *_MSPA)}, True),
    9: ("usva", {1: ((_N, 0), (_SON, 0), (_TAON, 0), (_SO, 0), (_TAO, 0), (_SDP, 8), (_KCSD, 0), *_MSPA)}, False),
    10: ("usco", {1: ((_N, 0), (_SON, 0), (_TAON, 0), (_SO, 0), (_TAO, 0), (_SDP, 7), (_KCSD, 0), *_MSPA)}, True),
    11: ("usut", {1: ((_N, 0), (_SON, 0), (_TAON, 0), ("SensitiveDataProcessingOptOutNotice", 0), (_SO, 0),
                      (_TAO, 0), (_SDP, 8), (_KCSD, 0), *_MSPA)}, False),
    12: ("usct", {1: ((_N, 0), (_SON, 0), (_TAON, 0), (_SO, 0), (_TAO, 0), (_SDP, 8), (_KCSD, 3), *_MSPA)}, True),
    13: ("usfl", {1: _state(8, 3)}, False),
    14: ("usmt", {1: _state(8, 3, notice=_N)}, True),
    15: ("usor", {1: _state(11, 3)}, True),
    16: ("ustx", {1: _state(8, 0)}, True),
    17: ("usde", {1: _state(9, 5)}, True),
    18: ("usia", {1: ((_PN, 0), (_SON, 0), (_TAON, 0), ("SensitiveDataOptOutNotice", 0), (_SO, 0), (_TAO, 0),
                      (_SDP, 8), (_KCSD, 0), *_MSPA)}, True),
    19: ("usne", {1: _state(8, 0)}, True),
    20: ("usnh", {1: _state(8, 3)}, True),
    21: ("usnj", {1: _state(10, 5)}, True),
    22: ("ustn", {1: _state(8, 0)}, True),
    23: ("usmn", {1: _state(8, 0)}, True),
}  # fmt: skip
TCFEUV2_ID, TCFCAV1_ID, USPV1_ID, USNAT_ID = 2, 5, 6, 7
SECTION_NAMES: dict[int, str] = {TCFEUV2_ID: "tcfeuv2", TCFCAV1_ID: "tcfcav1", USPV1_ID: "uspv1"} | {
    sid: spec[0] for sid, spec in US_SECTIONS.items()
}
SECTION_IDS: dict[str, int] = {name: sid for sid, name in SECTION_NAMES.items()}
US_SECTIONS_NAMES: tuple[str, ...] = tuple(spec[0] for spec in US_SECTIONS.values())
#: Section ids are small integers (27 were defined in 2026); a larger one is corruption, not a new section.
MAX_SECTION_ID = 1023
#: Values a 2-bit field may hold (MspaCoveredTransaction has no "not applicable").
_ALLOWED = {"MspaCoveredTransaction": (1, 2)}


def _two_bit(r: BitReader, name: str) -> int:
    value = r.int(name, 2)
    if value not in _ALLOWED.get(name, (0, 1, 2)):
        allowed = ", ".join(map(str, _ALLOWED.get(name, (0, 1, 2))))
        raise SignalError(f"{r.what}: {name} is {value}; only {allowed} are defined")
    return value


def _list(r: BitReader, name: str, count: int) -> list[int]:
    return [_two_bit(r, f"{name}[{i}]") for i in range(count)]


def _trailing(r: BitReader) -> None:
    # Encoders pad to a whole byte and then to whole base64 characters: at most 11 bits.
    if r.remaining() >= 12:
        raise SignalError(f"{r.what}: {r.remaining()} bits after the last field; the layout does not match")


def us_section(section_id: int, text: str) -> dict[str, Any]:
    """One US section (core segment and optional GPC sub-section) with the iabgpp-es field names."""
    name, layouts, has_gpc = US_SECTIONS[section_id]
    parts = text.split(".")
    r = BitReader(f"GPP section {name} core segment", parts[0])
    version = r.int("Version", 6)
    if version not in layouts:
        known = ", ".join(map(str, layouts))
        raise SignalError(f"GPP section {name}: unknown version {version} (known: {known})")
    out: dict[str, Any] = {"Version": version}
    layout = _usnat_layout(r, version) if section_id == USNAT_ID else layouts[version]
    for field, count in layout:
        out[field] = _list(r, field, count) if count else _two_bit(r, field)
    _trailing(r)
    if section_id == USNAT_ID and version == 1:
        # A version 1 string in the long layout (written by iabgpp-es before it moved to version 2):
        # version 1 defines 12 sensitive data categories and 2 child consents, as iabgpp-es reports.
        out[_SDP], out[_KCSD] = out[_SDP][:12], out[_KCSD][:2]
    if has_gpc:
        out.update(_gpc_segment(name, parts[1:]))
    elif len(parts) > 1:
        raise SignalError(
            f"GPP section {name}: has {len(parts)} segments; this section has no GPC sub-section"
        )
    return out


def _usnat_layout(r: BitReader, version: int) -> Layout:
    """usnat's layout is told by the core's length, as iabgpp-es does: 10 or 11 characters (60 or 66
    bits) is the original 12/2 layout; anything longer is the 16/3 layout (version 2, or version 1 from
    iabgpp-es releases that wrote the long layout before they moved to version 2)."""
    short = r.nbits in (60, 66)
    if version == 2 and short:
        raise SignalError(
            f"{r.what}: version 2 in {r.nbits} bits; version 2 needs 70 (16 sensitive categories)"
        )
    return USNAT_V1 if short else USNAT_V2


def _gpc_segment(name: str, rest: list[str]) -> dict[str, Any]:
    if not rest:
        return {"GpcSegmentType": 1, "GpcSegmentIncluded": False, "Gpc": False}
    if len(rest) > 1:
        raise SignalError(f"GPP section {name}: has {len(rest) + 1} segments; at most 2 (core, GPC) exist")
    r = BitReader(f"GPP section {name} GPC segment", rest[0])
    kind = r.int("GpcSegmentType", 2)
    if kind != 1:
        raise SignalError(f"GPP section {name}: sub-section type {kind}; only 1 (GPC) is defined")
    gpc = r.bool("Gpc")
    _trailing(r)
    return {"GpcSegmentType": kind, "GpcSegmentIncluded": True, "Gpc": gpc}


def _fibonacci(bits: str, pos: int, what: str) -> tuple[int, int]:
    """One Fibonacci-coded integer starting at `pos` (terminated by '11'): (value, next position)."""
    end = bits.find("11", pos)
    if end < 0:
        raise SignalError(f"{what}: a Fibonacci-coded section id runs past the end of the header")
    value, a, b = 0, 1, 2
    for i in range(pos, end + 1):
        if bits[i] == "1":
            value += a
        a, b = b, a + b
    return value, end + 2


def header(text: str) -> dict[str, Any]:
    """The GPP header: Type (3), Version (1) and the section ids (Fibonacci-coded range)."""
    what = "GPP header"
    value, nbits = to_int(what, text)
    bits = format(value, f"0{nbits}b")
    if nbits < 24:
        raise SignalError(f"{what}: {nbits} bits; the header needs at least 24 (type, version, count)")
    kind, version, count = int(bits[0:6], 2), int(bits[6:12], 2), int(bits[12:24], 2)
    if kind != 3:
        raise SignalError(f"{what}: type {kind}; a GPP header has type 3")
    if version != 1:
        raise SignalError(f"{what}: unknown version {version}; only version 1 exists")
    ids: list[int] = []
    pos, offset = 24, 0
    for n in range(1, count + 1):
        if pos >= nbits:
            raise SignalError(f"{what}: section id entry {n} of {count} is past the end of the header")
        is_range = bits[pos] == "1"
        start, pos = _fibonacci(bits, pos + 1, what)
        offset += start
        end = 0
        if is_range:
            end, pos = _fibonacci(bits, pos, what)
        if offset + end > MAX_SECTION_ID:
            raise SignalError(
                f"{what}: section id entry {n} reaches id {offset + end}; ids above {MAX_SECTION_ID} are not defined"
            )
        ids.extend(range(offset, offset + end + 1))
        offset += end
    return {"Type": kind, "Version": version, "SectionIds": ids}


def _tcfeuv2(text: str) -> tuple[dict[str, Any], list[str]]:
    fields = tcf.decode(text)
    return tcfeuv2_fields(fields), usable.tcf_reasons(fields)


def _bitfield(ids: list[int] | None, width: int) -> list[bool]:
    have = set(ids or ())
    return [i in have for i in range(1, width + 1)]


def tcfeuv2_fields(f: dict[str, Any]) -> dict[str, Any]:
    """A decoded TC string under the iabgpp-es tcfeuv2 field names (bitfields as lists of booleans)."""
    if f["version"] != 2:
        raise SignalError(f"GPP section tcfeuv2: holds a TC string of version {f['version']}; must be 2")
    n = f["numCustomPurposes"] or 0
    return {
        "Version": 2, "Created": f["created"], "LastUpdated": f["lastUpdated"], "CmpId": f["cmpId"],
        "CmpVersion": f["cmpVersion"], "ConsentScreen": f["consentScreen"],
        "ConsentLanguage": f["consentLanguage"], "VendorListVersion": f["vendorListVersion"],
        "PolicyVersion": f["tcfPolicyVersion"], "IsServiceSpecific": f["isServiceSpecific"],
        "UseNonStandardStacks": f["useNonStandardTexts"],
        "SpecialFeatureOptins": _bitfield(f["specialFeatureOptins"], 12),
        "PurposeConsents": _bitfield(f["purposeConsents"], 24),
        "PurposeLegitimateInterests": _bitfield(f["purposeLegitimateInterests"], 24),
        "PurposeOneTreatment": f["purposeOneTreatment"], "PublisherCountryCode": f["publisherCountryCode"],
        "VendorConsents": f["vendorConsents"], "VendorLegitimateInterests": f["vendorLegitimateInterests"],
        "PublisherRestrictions": [
            {"key": e["purposeId"], "type": e["restrictionType"], "ids": e["vendors"]}
            for e in f["publisherRestrictions"]
        ],
        "PublisherPurposesSegmentType": 3, "PublisherConsents": _bitfield(f["publisherConsents"], 24),
        "PublisherLegitimateInterests": _bitfield(f["publisherLegitimateInterests"], 24),
        "NumCustomPurposes": n,
        "PublisherCustomConsents": _bitfield(f["publisherCustomConsents"], n),
        "PublisherCustomLegitimateInterests": _bitfield(f["publisherCustomLegitimateInterests"], n),
        "VendorsAllowedSegmentType": 2, "VendorsAllowed": f["vendorsAllowed"] or [],
        "VendorsDisclosedSegmentType": 1, "VendorsDisclosed": f["vendorsDisclosed"] or [],
    }  # fmt: skip


def section(name: str, text: str) -> tuple[dict[str, Any], list[str]]:
    """One GPP section by API prefix (`usnat`, `usca`, `tcfeuv2`, `uspv1`, ...) and its not-consent reasons."""
    sid = SECTION_IDS.get(name)
    if sid is None:
        raise SignalError(f"GPP: section {name!r} is not supported (supported: {', '.join(supported())})")
    if not text.strip():
        raise SignalError(f"GPP section {name}: is blank")
    if sid == TCFEUV2_ID:
        return _tcfeuv2(text)
    if sid == TCFCAV1_ID:
        fields = tcfca.decode(text)
        return fields, usable.tcfca_reasons(fields)
    if sid == USPV1_ID:
        fields = usprivacy.decode(text)
        return fields, usable.uspv1_reasons(fields)
    fields = us_section(sid, text)
    return fields, usable.us_section_reasons(fields)


def supported() -> list[str]:
    return [n for _, n in sorted(SECTION_NAMES.items())]


def decode(text: str) -> tuple[dict[str, Any], list[str]]:
    """A whole GPP string: `sectionIds`, then one object per section under its API prefix.

    The reasons are those of each section, prefixed by its API prefix (`usnat.opted_out`).
    """
    if not isinstance(text, str):
        raise SignalError(f"GPP string: expected text, got {type(text).__name__}")
    parts = text.strip().split("~")
    head = header(parts[0])
    ids = head["SectionIds"]
    if len(ids) != len(parts) - 1:
        raise SignalError(
            f"GPP string {prefix(text)}: the header lists {len(ids)} sections but the string has "
            f"{len(parts) - 1}; it is truncated or spliced"
        )
    out: dict[str, Any] = {"sectionIds": ids}
    reasons: list[str] = []
    for n, (sid, part) in enumerate(zip(ids, parts[1:], strict=True), start=1):
        name = SECTION_NAMES.get(sid)
        if name is None:
            raise SignalError(f"GPP string: section {n} has id {sid}, which consentgate does not decode")
        try:
            out[name], section_reasons = section(name, part)
        except SignalError as exc:
            raise SignalError(f"GPP string section {n} ({name}): {exc}") from None
        reasons.extend(f"{name}.{reason}" for reason in section_reasons)
    return out, reasons

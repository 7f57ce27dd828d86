"""GPP section 5, IAB Canada TCF (`tcfcav1`): core, publisher purposes and disclosed vendors segments.

Layout: "IAB Canada TCF" GPP extension. Unlike the TC string, vendor sets are OptimizedRange fields
whose ranges are Fibonacci-coded, and the segments use the compressed base64url padding. Field names
are those of iabgpp-es. Older iabgpp-es releases wrote fixed-integer ranges instead; iabgpp-es guesses
which by re-encoding. consentgate decodes only the specification's encoding and checks that the result
is the one an encoder writes (canonical ranges, the shorter encoding), so a string in the old encoding
is an error rather than a guess.
"""

from __future__ import annotations

from typing import Any

from consentgate.signals.bits import to_int
from consentgate.signals.errors import SignalError
from consentgate.signals.tcf import iso

CORE, PUBLISHER, DISCLOSED = 0, 3, 1


class Bits:
    """A segment as a string of '0'/'1' (Fibonacci codes are found with str.find)."""

    __slots__ = ("what", "bits", "pos")

    def __init__(self, what: str, text: str) -> None:
        value, nbits = to_int(what, text)
        self.what, self.bits, self.pos = what, format(value, f"0{nbits}b"), 0

    def int(self, field: str, width: int) -> int:
        end = self.pos + width
        if end > len(self.bits):
            raise SignalError(
                f"{self.what}: field {field} (bits {self.pos}-{end - 1}) is past the end of the segment "
                f"({len(self.bits)} bits); the string is truncated"
            )
        value = int(self.bits[self.pos : end], 2) if width else 0
        self.pos = end
        return value

    def flags(self, field: str, width: int) -> list[bool]:
        start = self.pos
        self.int(field, width)
        return [c == "1" for c in self.bits[start : start + width]]

    def fibonacci(self, field: str) -> int:
        end = self.bits.find("11", self.pos)
        if end < 0:
            raise SignalError(
                f"{self.what}: {field} is a Fibonacci code that runs past the end of the segment"
            )
        value, a, b = 0, 1, 2
        for c in self.bits[self.pos : end + 1]:
            if c == "1":
                value += a
            a, b = b, a + b
        self.pos = end + 2
        return value

    def remaining(self) -> int:
        return len(self.bits) - self.pos


def _fibonacci_length(value: int) -> int:
    a, b, n = 1, 2, 1
    while b <= value:
        a, b, n = b, a + b, n + 1
    return n + 1


def _groups(ids: list[int]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for i in ids:
        if out and out[-1][1] + 1 == i:
            out[-1] = (out[-1][0], i)
        else:
            out.append((i, i))
    return out


def _range_length(ids: list[int]) -> int:
    """Bits of the Fibonacci range encoding the reference encoder would write for `ids`."""
    length, offset = 12, 0
    for start, end in _groups(ids):
        length += 1 + _fibonacci_length(start - offset)
        if end != start:
            length += _fibonacci_length(end - start)
        offset = end
    return length


def optimized_range(r: Bits, field: str) -> list[int]:
    """maxId(16), isRange(1), then a maxId-bit bitfield or a Fibonacci-coded range (count 12)."""
    max_id = r.int(f"{field} maxId", 16)
    if r.int(f"{field} isRange", 1):
        count = r.int(f"{field} numEntries", 12)
        ids: list[int] = []
        offset = 0
        for n in range(1, count + 1):
            group = r.int(f"{field} entry {n} isGroup", 1)
            start = offset + r.fibonacci(f"{field} entry {n}")
            end = start + r.fibonacci(f"{field} entry {n} group length") if group else start
            if end > max_id:
                raise SignalError(f"{r.what}: {field} entry {n} reaches id {end} > maxId {max_id}")
            ids.extend(range(start, end + 1))
            offset = end
        # As an encoder writes it: maximal groups, and chosen because it is not longer than the bitfield.
        canonical = len(_groups(ids)) == count and _range_length(ids) <= max_id
    else:
        ids = [i for i, on in enumerate(r.flags(f"{field} bitfield", max_id), start=1) if on]
        canonical = _range_length(ids) > max_id
    if (ids[-1] if ids else 0) != max_id or not canonical:
        raise SignalError(
            f"{r.what}: {field} is not the specification's encoding (maxId {max_id}, {len(ids)} ids); older "
            "iabgpp-es releases wrote fixed-integer ranges here: re-encode the string"
        )
    return ids


def _letters(r: Bits, field: str) -> str:
    out = ""
    for _ in range(2):
        code = r.int(field, 6)
        if code == 63:
            out += " "
        elif code > 25:
            raise SignalError(f"{r.what}: {field} holds letter code {code}; must be 0-25 (A-Z)")
        else:
            out += chr(65 + code)
    return out.strip()


def _restrictions(r: Bits) -> list[dict[str, Any]]:
    if r.remaining() < 12:  # optional field (iabgpp-es: hardFailIfMissing = false)
        return []
    out = []
    for n in range(1, r.int("PubRestrictions count", 12) + 1):
        key, kind = r.int(f"PubRestrictions {n} purpose", 6), r.int(f"PubRestrictions {n} type", 2)
        if kind == 3:
            raise SignalError(
                f"{r.what}: PubRestrictions {n} has restriction type 3; only 0, 1, 2 are defined"
            )
        out.append({"key": key, "type": kind, "ids": optimized_range(r, f"PubRestrictions {n} ids")})
    return out


def core(text: str) -> dict[str, Any]:
    r = Bits("GPP section tcfcav1 core segment", text)
    version = r.int("Version", 6)
    if version != 1:
        raise SignalError(f"GPP section tcfcav1: unknown version {version}; only version 1 exists")
    return {
        "Version": version, "Created": iso(r.int("Created", 36)), "LastUpdated": iso(r.int("LastUpdated", 36)),
        "CmpId": r.int("CmpId", 12), "CmpVersion": r.int("CmpVersion", 12),
        "ConsentScreen": r.int("ConsentScreen", 6), "ConsentLanguage": _letters(r, "ConsentLanguage"),
        "VendorListVersion": r.int("VendorListVersion", 12), "TcfPolicyVersion": r.int("TcfPolicyVersion", 6),
        "UseNonStandardStacks": bool(r.int("UseNonStandardStacks", 1)),
        "SpecialFeatureExpressConsent": r.flags("SpecialFeatureExpressConsent", 12),
        "PurposesExpressConsent": r.flags("PurposesExpressConsent", 24),
        "PurposesImpliedConsent": r.flags("PurposesImpliedConsent", 24),
        "VendorExpressConsent": optimized_range(r, "VendorExpressConsent"),
        "VendorImpliedConsent": optimized_range(r, "VendorImpliedConsent"),
        "PubRestrictions": _restrictions(r),
    }  # fmt: skip


def publisher(r: Bits) -> dict[str, Any]:
    out: dict[str, Any] = {"PubPurposesSegmentType": 3}
    out["PubPurposesExpressConsent"] = r.flags("PubPurposesExpressConsent", 24)
    out["PubPurposesImpliedConsent"] = r.flags("PubPurposesImpliedConsent", 24)
    n = out["NumCustomPurposes"] = r.int("NumCustomPurposes", 6)
    out["CustomPurposesExpressConsent"] = r.flags("CustomPurposesExpressConsent", n)
    out["CustomPurposesImpliedConsent"] = r.flags("CustomPurposesImpliedConsent", n)
    return out


def decode(text: str) -> dict[str, Any]:
    """A tcfcav1 section; absent optional segments give iabgpp-es's defaults (empty)."""
    parts = text.split(".")
    out = core(parts[0])
    out.update({"PubPurposesSegmentType": 3, "PubPurposesExpressConsent": [False] * 24,
                "PubPurposesImpliedConsent": [False] * 24, "NumCustomPurposes": 0,
                "CustomPurposesExpressConsent": [], "CustomPurposesImpliedConsent": [],
                "DisclosedVendorsSegmentType": 1, "DisclosedVendors": []})  # fmt: skip
    seen: set[int] = set()
    for n, part in enumerate(parts[1:], start=2):
        r = Bits(f"GPP section tcfcav1 segment {n}", part)
        kind = r.int("SegmentType", 3)
        if kind not in (PUBLISHER, DISCLOSED) or kind in seen:
            raise SignalError(f"GPP section tcfcav1: segment {n} has type {kind} (1 or 3, each at most once)")
        seen.add(kind)
        if kind == PUBLISHER:
            out.update(publisher(r))
        else:
            out["DisclosedVendors"] = optimized_range(r, "DisclosedVendors")
    return out

"""A tiny, independent bit writer for hand-built (often deliberately broken) test strings.

Not the product's code path: fields are written as strings of '0'/'1' and then base64url-encoded.
"""

from __future__ import annotations

DICT = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def bits(value: int, width: int) -> str:
    assert 0 <= value < (1 << width), (value, width)
    return format(value, f"0{width}b")


def field_ids(ids: list[int], width: int) -> str:
    return "".join("1" if i in ids else "0" for i in range(1, width + 1))


def b64(bitstring: str, pad: int = 24) -> str:
    bitstring += "0" * (-len(bitstring) % pad)
    return "".join(DICT[int(bitstring[i : i + 6], 2)] for i in range(0, len(bitstring), 6))


def letters(code: str) -> str:
    return bits(ord(code[0]) - 65, 6) + bits(ord(code[1]) - 65, 6)


def vendor_bitfield(ids: list[int], max_id: int | None = None) -> str:
    max_id = max(ids, default=0) if max_id is None else max_id
    return bits(max_id, 16) + "0" + field_ids(ids, max_id)


def vendor_range(entries: list[tuple[int, int]], max_id: int) -> str:
    out = bits(max_id, 16) + "1" + bits(len(entries), 12)
    for start, end in entries:
        out += ("1" + bits(start, 16) + bits(end, 16)) if end != start else ("0" + bits(start, 16))
    return out


def core(
    *,
    version: int = 2,
    created: int = 17_000_000_000,  # deciseconds: 2023-11-14
    last_updated: int | None = None,
    cmp_id: int = 10,
    cmp_version: int = 1,
    consent_screen: int = 1,
    language: str = "EN",
    vendor_list_version: int = 200,
    policy_version: int = 5,
    service_specific: bool = True,
    non_standard: bool = False,
    special_features: list[int] | None = None,
    purposes: list[int] | None = None,
    li_purposes: list[int] | None = None,
    purpose_one_treatment: bool = False,
    country: str = "DE",
    vendor_consents: str | None = None,
    vendor_li: str | None = None,
    restrictions: str | None = "000000000000",
) -> str:
    """The bits of a v2 core segment; sections may be overridden with raw bit strings."""
    out = bits(version, 6) + bits(created, 36) + bits(created if last_updated is None else last_updated, 36)
    out += bits(cmp_id, 12) + bits(cmp_version, 12) + bits(consent_screen, 6) + letters(language)
    out += bits(vendor_list_version, 12) + bits(policy_version, 6) + str(int(service_specific))
    out += str(int(non_standard)) + field_ids(special_features or [], 12) + field_ids(purposes or [1, 2], 24)
    out += field_ids(li_purposes or [], 24) + str(int(purpose_one_treatment)) + letters(country)
    out += vendor_bitfield([1, 2]) if vendor_consents is None else vendor_consents
    out += vendor_bitfield([]) if vendor_li is None else vendor_li
    if restrictions is not None:
        out += restrictions
    return out


def disclosed(ids: list[int]) -> str:
    return b64(bits(1, 3) + vendor_bitfield(ids))


def tc(core_bits: str | None = None, *segments: str, **fields: object) -> str:
    """A TC string: the core (built from `fields` unless given) and already encoded segments."""
    head = b64(core_bits if core_bits is not None else core(**fields))  # type: ignore[arg-type]
    return ".".join([head, *segments])


def fibonacci(value: int) -> str:
    """Fibonacci code (1, 2, 3, 5, ...), least significant first, terminated by an extra 1."""
    fib = [1, 2]
    while fib[-1] <= value:
        fib.append(fib[-1] + fib[-2])
    code = ["0"] * len(fib)
    for i in range(len(fib) - 1, -1, -1):
        if fib[i] <= value:
            code[i] = "1"
            value -= fib[i]
    return "".join(code).rstrip("0") + "1"


def gpp_header(section_ids: list[int], *, kind: int = 3, version: int = 1, count: int | None = None) -> str:
    """A GPP header; consecutive ids become range entries, as the reference encoder writes them."""
    groups: list[list[int]] = []
    for sid in sorted(section_ids):
        if groups and groups[-1][-1] + 1 == sid:
            groups[-1].append(sid)
        else:
            groups.append([sid])
    out = bits(kind, 6) + bits(version, 6) + bits(len(groups) if count is None else count, 12)
    offset = 0
    for group in groups:
        if len(group) == 1:
            out += "0" + fibonacci(group[0] - offset)
        else:
            out += "1" + fibonacci(group[0] - offset) + fibonacci(group[-1] - group[0])
        offset = group[-1]
    return b64(out, pad=6)


def two_bits(*values: int) -> str:
    return "".join(bits(v, 2) for v in values)

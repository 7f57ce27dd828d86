"""Reading fixed-width fields out of a base64url-encoded bit string, with shifts and masks on one int.

Each base64url character carries 6 bits, most significant first. The whole segment becomes one Python
int (through the C base64 decoder), and a field of `width` bits at bit position `pos` is
`(value >> (nbits - pos - width)) & mask`: no per-bit Python loop.
"""

from __future__ import annotations

import base64
import re
from itertools import compress

from consentgate.signals.errors import SignalError

_BASE64URL = re.compile(r"[A-Za-z0-9_-]+")
_TO_STANDARD = str.maketrans("-_", "+/")
_FILL = ("", "AAA", "AA", "A")  # pad the character count to a multiple of 4 with zero bits

_ZERO_ONE = bytes.maketrans(b"01", b"\x00\x01")


def to_int(what: str, text: str) -> tuple[int, int]:
    """The segment's bits as (value, number of bits); raises SignalError on a non-base64url character."""
    if not _BASE64URL.fullmatch(text):
        if not text:
            raise SignalError(f"{what}: empty segment")
        bad = next(i for i, c in enumerate(text) if not _BASE64URL.fullmatch(c))
        raise SignalError(
            f"{what}: character {bad + 1} is not base64url (A-Z a-z 0-9 - _ only); check the string was not "
            "URL-encoded, truncated or padded with '='"
        )
    fill = _FILL[len(text) % 4]
    raw = base64.b64decode((text + fill).translate(_TO_STANDARD))
    return int.from_bytes(raw, "big") >> (6 * len(fill)), 6 * len(text)


class BitReader:
    """Sequential reader over one segment; every read past the end is a SignalError naming the field."""

    __slots__ = ("what", "value", "nbits", "pos")

    def __init__(self, what: str, text: str) -> None:
        self.what = what
        self.value, self.nbits = to_int(what, text)
        self.pos = 0

    def need(self, field: str, width: int) -> None:
        if self.pos + width > self.nbits:
            raise SignalError(
                f"{self.what}: field {field} (bits {self.pos}-{self.pos + width - 1}) is past the end of the "
                f"segment ({self.nbits} bits); the string is truncated"
            )

    def int(self, field: str, width: int) -> int:
        end = self.pos + width
        if end > self.nbits:
            self.need(field, width)
        self.pos = end
        return (self.value >> (self.nbits - end)) & ((1 << width) - 1)

    def bool(self, field: str) -> bool:
        return self.int(field, 1) == 1

    def ids(self, field: str, width: int) -> list[int]:
        """A bitfield of `width` bits as the sorted 1-based ids of its set bits."""
        return ids_of(self.int(field, width), width)

    def remaining(self) -> int:
        return self.nbits - self.pos


def ids_of(bits: int, width: int) -> list[int]:
    """The 1-based positions (most significant first) of the set bits of a `width`-bit field.

    All in C: the field as a string of '0'/'1', translated to 0/1 bytes, selects from range().
    """
    if not bits:
        return []
    selectors = format(bits, f"0{width}b").encode("ascii").translate(_ZERO_ONE)
    return list(compress(range(1, width + 1), selectors))

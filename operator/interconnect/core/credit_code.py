"""China's unified social credit code (统一社会信用代码), GB 32100-2015.

Eighteen characters from a 31-character set (digits and upper-case letters without I, O, Z, S
and V)::

    9 1 440300 MA5EXAMPL X
    | | |      |         |
    | | |      |         +-- check character (position 18)
    | | |      +------------ organisation code (9 characters, GB 11714)
    | | +------------------- administrative division code (6 digits, GB/T 2260)
    | +--------------------- organisation category
    +----------------------- registration authority

The check character is ``CHARSET[(31 - sum(w_i * value(c_i)) mod 31) mod 31]`` over the first
seventeen characters, with the weights ``3^i mod 31``. Pure: no I/O.
"""

from __future__ import annotations

import re

CHARSET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
WEIGHTS: tuple[int, ...] = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
LENGTH = 18
#: The shape the CRD schema enforces; the check character is verified on top of it.
PATTERN = r"^[0-9A-HJ-NPQRTUWXY]{2}[0-9]{6}[0-9A-HJ-NPQRTUWXY]{10}$"
_PATTERN_RE = re.compile(PATTERN)
_VALUE = {c: i for i, c in enumerate(CHARSET)}


def check_character(first17: str) -> str:
    """The GB 32100-2015 check character of the first seventeen characters of a code."""
    if len(first17) != LENGTH - 1:
        raise ValueError(f"need the first {LENGTH - 1} characters of a credit code, got {len(first17)}")
    total = 0
    for position, (char, weight) in enumerate(zip(first17, WEIGHTS, strict=True), start=1):
        value = _VALUE.get(char)
        if value is None:
            raise ValueError(f"character {char!r} at position {position} is not in the GB 32100 set {CHARSET}")
        total += weight * value
    return CHARSET[(31 - total % 31) % 31]


def make_credit_code(first17: str) -> str:
    """Append the check character: a valid code from its first seventeen characters."""
    code = first17 + check_character(first17)
    if not _PATTERN_RE.match(code):
        raise ValueError(f"{first17!r} does not have the GB 32100 shape (positions 3-8 are digits)")
    return code


def credit_code_error(code: str) -> str | None:
    """Why ``code`` is not a valid unified social credit code, or None when it is."""
    if len(code) != LENGTH:
        return f"a unified social credit code has {LENGTH} characters, got {len(code)}"
    for position, char in enumerate(code, start=1):
        if char not in _VALUE:
            return f"character {char!r} at position {position} is not in the GB 32100 set {CHARSET}"
    if not _PATTERN_RE.match(code):
        return "positions 3-8 (the administrative division code) must be digits"
    expected = check_character(code[:-1])
    if code[-1] != expected:
        return f"check character is {code[-1]!r}, GB 32100-2015 gives {expected!r}"
    return None


def is_valid_credit_code(code: str) -> bool:
    return credit_code_error(code) is None

"""Unified identity: the identification code the hub issues to every member node.

Format: twelve characters, upper-case letters and digits, e.g. ``CIRGZ000001E``::

    CI  R  GZ  000001  E
    |   |  |   |       |
    |   |  |   |       +-- check character, 0-9 or A-Z (see below)
    |   |  |   +---------- sequence, 6 digits, zero-padded, 000001-999999
    |   |  +-------------- region: the ISO 3166-2:CN code without "CN-" (GZ = Guizhou)
    |   +----------------- node type: R = regional, I = industry
    +--------------------- "CI", Compute Interconnect

The sequence is the hub's, over all nodes: each code gets the next unused number and a code
is never reused nor changed, even after its node leaves (the hub keeps the issued set).

The check character makes typos visible. ISO 7064 MOD 37,36 (the obvious choice for an
alphanumeric check character) misses 72 of the 45,360 adjacent transpositions, among them
``...12...`` <-> ``...21...`` inside the sequence, so the code uses the Damm algorithm over a
totally anti-symmetric quasigroup of order 36, which detects every single-character
substitution and every transposition of two adjacent distinct characters, the check
character included. Characters map to values 0-35 (``0``-``9`` then ``A``-``Z``); a value ``v``
is the pair ``(v // 9, v % 9)``, and ``x * y`` is the pair
``(w(x // 9) XOR (y // 9), (y % 9 - x % 9) mod 9)``, where ``w`` multiplies by the generator
of GF(4) (``w = [0, 2, 3, 1]``). Starting from 0, fold ``*`` over the characters: the check
character is the one that brings the result back to 0, and a code is valid when folding over
all twelve characters gives 0.

Pure: no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from interconnect.core.regions import is_region
from interconnect.core.vocabulary import NodeType

PREFIX = "CI"
LENGTH = 12
SEQUENCE_DIGITS = 6
MAX_SEQUENCE = 10**SEQUENCE_DIGITS - 1
ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
#: The shape of a code (the CRD schema enforces it on ``status.identityCode``).
PATTERN = r"^CI[RI][A-Z]{2}[0-9]{6}[0-9A-Z]$"
_PATTERN_RE = re.compile(PATTERN)

_TYPE_LETTER: dict[NodeType, str] = {NodeType.REGIONAL: "R", NodeType.INDUSTRY: "I"}
_LETTER_TYPE: dict[str, NodeType] = {v: k for k, v in _TYPE_LETTER.items()}
_VALUE = {c: i for i, c in enumerate(ALPHABET)}
# Multiplication by the generator of GF(4), elements encoded as 2-bit integers.
_GF4_TIMES_GENERATOR = (0, 2, 3, 1)


def damm_op(x: int, y: int) -> int:
    """The quasigroup operation on values 0-35 (totally anti-symmetric: see the module doc)."""
    high = _GF4_TIMES_GENERATOR[x // 9] ^ (y // 9)
    low = (y % 9 - x % 9) % 9
    return high * 9 + low


def _fold(chars: str) -> int:
    state = 0
    for char in chars:
        state = damm_op(state, _VALUE[char])
    return state


def check_character(body: str) -> str:
    """The check character for the first eleven characters of a code."""
    state = _fold(body)
    # Solve state * c == 0: the high part needs c_high == w(state_high), the low one c_low == state_low.
    return ALPHABET[_GF4_TIMES_GENERATOR[state // 9] * 9 + state % 9]


@dataclass(frozen=True, slots=True)
class ParsedCode:
    code: str
    node_type: NodeType
    region: str
    """The full ISO 3166-2:CN code, e.g. ``CN-GZ``."""
    sequence: int


def issue_identity_code(node_type: NodeType | str, region: str, sequence: int) -> str:
    """The code for a node of ``node_type`` in ``region`` holding sequence number ``sequence``."""
    kind = NodeType(node_type)
    if not is_region(region):
        raise ValueError(f"region {region!r} is not an ISO 3166-2:CN code such as 'CN-GZ'")
    if not 1 <= sequence <= MAX_SEQUENCE:
        raise ValueError(f"sequence must be between 1 and {MAX_SEQUENCE}, got {sequence}")
    body = f"{PREFIX}{_TYPE_LETTER[kind]}{region.removeprefix('CN-')}{sequence:0{SEQUENCE_DIGITS}d}"
    return body + check_character(body)


def validate_identity_code(code: str) -> ParsedCode:
    """Parse a code; raise ValueError saying what is wrong when it is not one the hub could issue."""
    if not isinstance(code, str):
        raise ValueError(f"an identity code is a string, got {type(code).__name__}")
    if len(code) != LENGTH:
        raise ValueError(f"identity code {code!r} has {len(code)} characters, expected {LENGTH}")
    if not code.startswith(PREFIX):
        raise ValueError(f"identity code {code!r} must start with {PREFIX!r}")
    letter = code[2]
    if letter not in _LETTER_TYPE:
        raise ValueError(f"identity code {code!r}: node type letter {letter!r} must be R or I")
    region = f"CN-{code[3:5]}"
    if not is_region(region):
        raise ValueError(f"identity code {code!r}: {code[3:5]!r} is not a region ({region} is unknown)")
    digits = code[5 : 5 + SEQUENCE_DIGITS]
    if not (digits.isascii() and digits.isdigit()):
        raise ValueError(f"identity code {code!r}: the sequence {digits!r} must be {SEQUENCE_DIGITS} digits")
    sequence = int(digits)
    if sequence == 0:
        raise ValueError(f"identity code {code!r}: sequence 000000 is never issued")
    if not _PATTERN_RE.match(code):
        raise ValueError(f"identity code {code!r}: the check character must be a digit or A-Z")
    expected = check_character(code[:-1])
    if code[-1] != expected:
        raise ValueError(
            f"identity code {code!r}: check character is {code[-1]!r}, expected {expected!r} "
            "(a mistyped or transposed character?)"
        )
    return ParsedCode(code=code, node_type=_LETTER_TYPE[letter], region=region, sequence=sequence)


def is_valid_identity_code(code: str) -> bool:
    try:
        validate_identity_code(code)
    except ValueError:
        return False
    return True


def next_sequence(issued: Iterable[str]) -> int:
    """The sequence number for the next code: one past the highest ever issued (never reused).

    Raises ValueError on a code in ``issued`` that is not valid (the issued set is corrupt) and
    when the sequence space is exhausted.
    """
    highest = 0
    for code in issued:
        highest = max(highest, validate_identity_code(code).sequence)
    if highest >= MAX_SEQUENCE:
        raise ValueError(f"all {MAX_SEQUENCE} identity code sequence numbers have been issued")
    return highest + 1

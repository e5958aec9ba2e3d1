"""Identity codes: what the hub issues parses back, and a typo never passes as another code."""

from __future__ import annotations

import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

from interconnect.core import identity
from interconnect.core.identity import (
    ALPHABET,
    damm_op,
    issue_identity_code,
    next_sequence,
    validate_identity_code,
)
from interconnect.core.regions import REGION_CODES
from interconnect.core.vocabulary import NodeType

node_types = st.sampled_from(list(NodeType))
regions = st.sampled_from(REGION_CODES)
sequences = st.integers(min_value=1, max_value=identity.MAX_SEQUENCE)
codes = st.builds(issue_identity_code, node_types, regions, sequences)
# Anything a person could type instead of the right character, in and out of the alphabet.
TYPED = ALPHABET + string.ascii_lowercase + "-_ *"


@given(node_types, regions, sequences)
def test_issued_code_parses_back(node_type: NodeType, region: str, sequence: int) -> None:
    code = issue_identity_code(node_type, region, sequence)
    parsed = validate_identity_code(code)
    assert (parsed.node_type, parsed.region, parsed.sequence, parsed.code) == (node_type, region, sequence, code)
    assert len(code) == identity.LENGTH
    assert code.startswith("CI" + ("R" if node_type is NodeType.REGIONAL else "I") + region[3:])


def test_documented_example() -> None:
    assert issue_identity_code(NodeType.REGIONAL, "CN-GZ", 1) == "CIRGZ000001E"
    assert "CIRGZ000001E" in (identity.__doc__ or "")


@given(codes)
def test_every_single_character_substitution_is_detected(code: str) -> None:
    for position, right in enumerate(code):
        for wrong in TYPED:
            if wrong == right:
                continue
            typo = code[:position] + wrong + code[position + 1 :]
            with pytest.raises(ValueError):
                validate_identity_code(typo)


@given(codes)
def test_every_adjacent_transposition_is_detected(code: str) -> None:
    for position in range(len(code) - 1):
        a, b = code[position], code[position + 1]
        if a == b:
            continue
        swapped = code[:position] + b + a + code[position + 2 :]
        with pytest.raises(ValueError):
            validate_identity_code(swapped)


def _iso7064_mod37_36_valid(code: str) -> bool:
    product = 36
    for char in code:
        total = (product + ALPHABET.index(char)) % 36 or 36
        product = total * 2 % 37
    return total == 1


def _iso7064_mod37_36_check(body: str) -> str:
    return next(c for c in ALPHABET if _iso7064_mod37_36_valid(body + c))


def test_a_swap_that_iso7064_mod37_36_misses_is_caught() -> None:
    """Why the code does not use ISO 7064 MOD 37,36: it misses some digit swaps; ours does not."""
    for sequence in range(1, 2000):
        ours = issue_identity_code(NodeType.REGIONAL, "CN-GZ", sequence)
        body = ours[:-1]
        theirs = body + _iso7064_mod37_36_check(body)
        for i in range(5, 10):
            if body[i] == body[i + 1]:
                continue
            swap = body[:i] + body[i + 1] + body[i] + body[i + 2 :]
            if _iso7064_mod37_36_valid(swap + theirs[-1]):
                with pytest.raises(ValueError, match="check character"):
                    validate_identity_code(swap + ours[-1])
                return
    pytest.fail("expected ISO 7064 MOD 37,36 to miss a digit transposition among the first sequences")


def test_quasigroup_is_totally_anti_symmetric() -> None:
    """The property the two tests above rely on, checked over the whole table."""
    values = range(len(ALPHABET))
    for x in values:
        assert sorted(damm_op(x, y) for y in values) == list(values)  # rows are permutations
        assert sorted(damm_op(y, x) for y in values) == list(values)  # columns too
    for c in values:
        for x in values:
            for y in values:
                if x != y:
                    assert damm_op(damm_op(c, x), y) != damm_op(damm_op(c, y), x)


@pytest.mark.parametrize(
    ("code", "message"),
    [
        ("CIRGZ00001E", "has 11 characters"),
        ("XXRGZ000001E", "must start with 'CI'"),
        ("CIXGZ000001E", "node type letter"),
        ("CIRZZ000001E", "not a region"),
        ("CIRGZ00A001E", "must be 6 digits"),
        ("CIRGZ000000E", "never issued"),
        ("CIRGZ000001*", "check character must be a digit or A-Z"),
        ("CIRGZ000001F", "check character is 'F', expected 'E'"),
    ],
)
def test_validation_says_what_is_wrong(code: str, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("*", r"\*")):
        validate_identity_code(code)


@pytest.mark.parametrize(
    ("node_type", "region", "sequence"),
    [("regional", "GZ", 1), ("regional", "CN-XX", 1), ("regional", "CN-GZ", 0), ("regional", "CN-GZ", 10**6)],
)
def test_issue_refuses_bad_input(node_type: str, region: str, sequence: int) -> None:
    with pytest.raises(ValueError):
        issue_identity_code(node_type, region, sequence)


def test_issue_accepts_the_type_as_a_string() -> None:
    assert issue_identity_code("industry", "CN-SH", 3) == issue_identity_code(NodeType.INDUSTRY, "CN-SH", 3)


def test_next_sequence_starts_at_one() -> None:
    assert next_sequence([]) == 1


@given(
    st.lists(
        st.builds(issue_identity_code, node_types, regions, st.integers(1, identity.MAX_SEQUENCE - 1)),
        max_size=20,
    )
)
def test_next_sequence_is_past_every_issued_code(issued: list[str]) -> None:
    sequence = next_sequence(issued)
    assert all(validate_identity_code(code).sequence < sequence for code in issued)
    assert sequence == max((validate_identity_code(c).sequence for c in issued), default=0) + 1


def test_next_sequence_never_reuses_a_gap() -> None:
    # Sequence 2 was issued then its node left: the next code still goes past it.
    issued = [issue_identity_code("regional", "CN-GZ", 1), issue_identity_code("industry", "CN-SH", 3)]
    assert next_sequence(issued) == 4


def test_next_sequence_refuses_a_corrupt_issued_set() -> None:
    with pytest.raises(ValueError, match="check character"):
        next_sequence(["CIRGZ000001F"])


def test_next_sequence_when_exhausted() -> None:
    with pytest.raises(ValueError, match="have been issued"):
        next_sequence([issue_identity_code("regional", "CN-GZ", identity.MAX_SEQUENCE)])

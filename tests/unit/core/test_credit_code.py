"""GB 32100-2015 unified social credit codes: valid codes pass, typos are caught."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from interconnect.core.credit_code import (
    CHARSET,
    check_character,
    credit_code_error,
    is_valid_credit_code,
    make_credit_code,
)

first17s = st.builds(
    lambda a, b, c: a + b + c,
    st.text(CHARSET, min_size=2, max_size=2),
    st.text("0123456789", min_size=6, max_size=6),
    st.text(CHARSET, min_size=9, max_size=9),
)
valid_codes = first17s.map(make_credit_code)


@given(valid_codes)
def test_made_codes_are_valid(code: str) -> None:
    assert len(code) == 18
    assert is_valid_credit_code(code)
    assert credit_code_error(code) is None


def test_published_example_is_valid() -> None:
    # The example printed in explanations of the standard.
    assert is_valid_credit_code("91350100M000100Y43")


@pytest.mark.parametrize(
    ("first17", "check"),
    [("91350100M000100Y4", "3"), ("91520100MA6DKP7T4", "L")],
)
def test_check_character_by_hand(first17: str, check: str) -> None:
    # First case by hand: the weighted sum is 1640, 1640 mod 31 = 28, 31 - 28 = 3.
    assert check_character(first17) == check


@given(valid_codes, st.integers(0, 17), st.sampled_from(CHARSET + "IOSVZaz-"))
def test_single_substitution_is_caught(code: str, position: int, wrong: str) -> None:
    if code[position] == wrong:
        return
    typo = code[:position] + wrong + code[position + 1 :]
    assert not is_valid_credit_code(typo)
    assert credit_code_error(typo)


@given(valid_codes, st.integers(0, 16))
def test_adjacent_transposition_is_caught(code: str, position: int) -> None:
    a, b = code[position], code[position + 1]
    if a == b:
        return
    assert not is_valid_credit_code(code[:position] + b + a + code[position + 2 :])


@pytest.mark.parametrize(
    ("code", "message"),
    [
        ("91350100M000100Y4", "has 18 characters, got 17"),
        ("91350100M000100Y433", "got 19"),
        ("91350100M000I00Y43", "character 'I' at position 13"),
        ("913501A0M000100Y43", "positions 3-8"),
        ("91350100M000100Y44", "check character is '4', GB 32100-2015 gives '3'"),
    ],
)
def test_error_says_what_is_wrong(code: str, message: str) -> None:
    error = credit_code_error(code)
    assert error is not None
    assert message in error


def test_make_credit_code_refuses_a_bad_shape() -> None:
    with pytest.raises(ValueError, match="positions 3-8"):
        make_credit_code("91A50100M000100Y4")
    with pytest.raises(ValueError, match="not in the GB 32100 set"):
        make_credit_code("91350100M000100YO")

"""Kubernetes quantities as a member's objects carry them: exact, every suffix, never int()."""

from __future__ import annotations

from decimal import Decimal

import pytest

from interconnect.core.quantity import QuantityError, parse_quantity, whole_units


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("8", Decimal(8)), (8, Decimal(8)), ("1k", Decimal(1000)), ("500m", Decimal("0.5")), ("1Ki", Decimal(1024)),
        ("2Gi", Decimal(2 * 2**30)), ("1e3", Decimal(1000)), ("1E-2", Decimal("0.01")), ("+3", Decimal(3)),
        (".5", Decimal("0.5")), ("1.5M", Decimal(1_500_000)), ("100n", Decimal("1e-7")), ("0", Decimal(0)),
    ],
)
def test_parse_quantity(text: object, value: Decimal) -> None:
    assert parse_quantity(text) == value


@pytest.mark.parametrize("text", ["", "abc", "1kk", "1 k", "Ki", "--1", "1.2.3", True, "1e", "0x10"])
def test_not_a_quantity(text: object) -> None:
    with pytest.raises(QuantityError):
        parse_quantity(text)


def test_whole_units_round_up_and_never_go_negative() -> None:
    assert whole_units("1k") == 1000
    assert whole_units("1500m") == 2
    assert whole_units("-1") == 0

"""Money: exact decimals, ISO 4217 minor units, half-up rounding, canonical text."""

from __future__ import annotations

from decimal import Decimal, localcontext
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from interconnect.core.money import (
    MINOR_UNITS,
    CurrencyMismatch,
    Money,
    MoneyError,
    Price,
    UnknownCurrency,
    cap_admitting,
    decimal_places,
    effective_price_money,
    format_amount,
    minor_unit,
    parse_amount,
    parse_price,
    round_to_minor_unit,
)
from interconnect.core.vocabulary import BillingUnit

CURRENCIES = sorted(MINOR_UNITS)
amounts = st.decimals(min_value=Decimal("-1e9"), max_value=Decimal("1e9"), allow_nan=False, allow_infinity=False)
currencies = st.sampled_from(CURRENCIES)


@pytest.mark.parametrize(
    ("currency", "places"), [("CNY", 2), ("USD", 2), ("EUR", 2), ("JPY", 0), ("HKD", 2), ("KRW", 0), ("KWD", 3)]
)
def test_minor_units_follow_iso_4217(currency: str, places: int) -> None:
    assert minor_unit(currency) == places


@pytest.mark.parametrize("currency", ["XYZ", "cny", "", "RMB"])
def test_unknown_currency_is_an_error(currency: str) -> None:
    with pytest.raises(UnknownCurrency, match="unknown currency"):
        minor_unit(currency)
    with pytest.raises(UnknownCurrency):
        Money(Decimal(1), currency)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("12.50", Decimal("12.50")),
        ("0", Decimal(0)),
        ("+1.5", Decimal("1.5")),
        (" 3 ", Decimal(3)),
        (7, Decimal(7)),
        (Decimal("2.25"), Decimal("2.25")),
    ],
)
def test_parse_amount_accepts_plain_decimals(value: str | int | Decimal, expected: Decimal) -> None:
    assert parse_amount(value) == expected


@pytest.mark.parametrize(
    "value",
    [0.1, 1.0, "NaN", "nan", "Infinity", "-inf", "1e3", "1E+2", ".5", "5.", "1_000", "", "12,50", "¥12", True],
)
def test_parse_amount_rejects_floats_specials_and_odd_text(value: object) -> None:
    with pytest.raises(MoneyError):
        parse_amount(value)  # type: ignore[arg-type]


@pytest.mark.parametrize("value", [Decimal("NaN"), Decimal("Infinity"), Decimal("-Infinity"), Decimal("sNaN")])
def test_parse_amount_rejects_non_finite_decimals(value: Decimal) -> None:
    with pytest.raises(MoneyError, match="not finite"):
        parse_amount(value)


def test_negative_amounts_only_when_allowed() -> None:
    with pytest.raises(MoneyError, match="negative"):
        parse_amount("-1")
    assert parse_amount("-1", allow_negative=True) == Decimal(-1)


def test_money_refuses_floats_and_specials() -> None:
    with pytest.raises(MoneyError):
        Money(0.5, "CNY")  # type: ignore[arg-type]
    with pytest.raises(MoneyError):
        Money(Decimal("NaN"), "CNY")


@pytest.mark.parametrize(
    ("text", "ok"),
    [("2.3456", True), ("2.34560000", True), ("2.34567", False), ("0.0001", True), ("0.00001", False), ("-1", False)],
)
def test_prices_have_at_most_four_places_and_are_not_negative(text: str, ok: bool) -> None:
    if ok:
        assert parse_price(text, "CNY").amount == Decimal(text)
    else:
        with pytest.raises(MoneyError):
            parse_price(text, "CNY")


@pytest.mark.parametrize(
    ("amount", "places"),
    [("2.50", 1), ("100", 0), ("1E+2", 0), ("0.0001", 4), ("2.34560000", 4), ("0", 0), ("0.000", 0)],
)
def test_decimal_places_ignores_trailing_zeros(amount: str, places: int) -> None:
    assert decimal_places(Decimal(amount)) == places


@pytest.mark.parametrize(
    ("amount", "currency", "expected"),
    [
        ("2.345", "CNY", "2.35"),
        ("2.344", "CNY", "2.34"),
        ("-2.345", "CNY", "-2.35"),
        ("2.355", "CNY", "2.36"),
        ("2.365", "CNY", "2.37"),  # half-even would give 2.36
        ("0.5", "JPY", "1"),
        ("1.5", "JPY", "2"),
        ("2.5", "JPY", "3"),  # half-even would give 2
        ("1.0005", "KWD", "1.001"),
        ("7", "CNY", "7.00"),
    ],
)
def test_round_to_minor_unit_is_half_up(amount: str, currency: str, expected: str) -> None:
    rounded = round_to_minor_unit(Decimal(amount), currency)
    assert rounded == Decimal(expected)
    assert str(rounded) == expected


@pytest.mark.parametrize(
    ("fraction", "expected"),
    [(Fraction(1, 3), "0.33"), (Fraction(2, 3), "0.67"), (Fraction(1, 200), "0.01"), (Fraction(-1, 200), "-0.01")],
)
def test_round_fractions_exactly(fraction: Fraction, expected: str) -> None:
    assert round_to_minor_unit(fraction, "CNY") == Decimal(expected)


@given(amounts, currencies)
def test_rounding_is_within_half_a_unit_and_idempotent(amount: Decimal, currency: str) -> None:
    rounded = round_to_minor_unit(amount, currency)
    unit = Decimal(1).scaleb(-minor_unit(currency))
    assert abs(rounded - amount) <= unit / 2
    assert round_to_minor_unit(rounded, currency) == rounded
    assert round_to_minor_unit(Fraction(amount), currency) == rounded


@given(amounts, currencies)
def test_rounding_ignores_the_callers_decimal_context(amount: Decimal, currency: str) -> None:
    expected = round_to_minor_unit(amount, currency)
    with localcontext() as ctx:
        ctx.prec = 3
        ctx.rounding = "ROUND_DOWN"
        assert round_to_minor_unit(amount, currency) == expected


@pytest.mark.parametrize(
    ("amount", "currency", "text"),
    [
        ("12.5", "CNY", "12.50"),
        ("2.34500", "CNY", "2.345"),
        ("1E+2", "JPY", "100"),
        ("1E+2", "CNY", "100.00"),
        ("-0", "CNY", "0.00"),
        ("0.0001", "USD", "0.0001"),
        ("-3.1", "EUR", "-3.10"),
        ("5", "KWD", "5.000"),
    ],
)
def test_format_amount_is_canonical(amount: str, currency: str, text: str) -> None:
    assert format_amount(Decimal(amount), currency) == text


def test_money_text() -> None:
    assert str(Money(Decimal("12.5"), "CNY")) == "12.50 CNY"
    assert Money.from_string("12.50 CNY") == Money(Decimal("12.5"), "CNY")


@given(amounts, currencies)
def test_money_text_round_trips(amount: Decimal, currency: str) -> None:
    money = Money(amount, currency)
    assert Money.from_string(str(money)) == money
    assert Decimal(money.amount_text) == amount


def test_arithmetic_and_comparison_refuse_to_mix_currencies() -> None:
    cny, usd = Money(Decimal(1), "CNY"), Money(Decimal(1), "USD")
    assert cny + cny == Money(Decimal(2), "CNY")
    assert cny - cny == Money.zero("CNY")
    assert cny * 3 == Money(Decimal(3), "CNY")
    assert cny < cny * 2
    for mix in (lambda: cny + usd, lambda: cny - usd, lambda: cny < usd, lambda: cny >= usd):
        with pytest.raises(CurrencyMismatch):
            mix()
    with pytest.raises(TypeError):
        cny * 0.5  # type: ignore[operator]


def test_money_rounded() -> None:
    assert Money(Decimal("1.005"), "CNY").rounded() == Money(Decimal("1.01"), "CNY")


def card_price(amount: str, currency: str = "CNY") -> Price:
    return Price(parse_price(amount, currency), BillingUnit.CARD_HOUR)


def machine_price(amount: str, cards_per_machine: int, currency: str = "CNY") -> Price:
    return Price(parse_price(amount, currency), BillingUnit.MACHINE_HOUR, cards_per_machine)


def test_price_validation() -> None:
    with pytest.raises(MoneyError, match="cards_per_machine"):
        Price(Money(Decimal(20), "CNY"), BillingUnit.MACHINE_HOUR)
    with pytest.raises(MoneyError, match="negative"):
        Price(Money(Decimal(-1), "CNY"), BillingUnit.CARD_HOUR)
    with pytest.raises(MoneyError, match="4 decimal places"):
        Price(Money(Decimal("0.00001"), "CNY"), BillingUnit.CARD_HOUR)
    with pytest.raises(MoneyError, match="at least 1"):
        Price(Money(Decimal(1), "CNY"), BillingUnit.MACHINE_HOUR, 0)


@pytest.mark.parametrize(
    ("price", "cards", "hourly", "effective"),
    [
        (card_price("2.5"), 3, "7.5", Fraction(5, 2)),
        (machine_price("20", 8), 3, "20", Fraction(20, 3)),
        (machine_price("20", 8), 8, "20", Fraction(5, 2)),
        (machine_price("20", 8), 9, "40", Fraction(40, 9)),
        (machine_price("20", 8), 16, "40", Fraction(5, 2)),
    ],
)
def test_machine_hour_buyers_pay_whole_machines(price: Price, cards: int, hourly: str, effective: Fraction) -> None:
    assert price.hourly_cost(cards) == Decimal(hourly)
    assert price.effective_per_card_hour(cards) == effective


def test_effective_price_for_display_and_the_cap_that_admits_it() -> None:
    price = machine_price("20", 8)
    assert effective_price_money(price, 3) == Money(Decimal("6.6667"), "CNY")
    assert cap_admitting(Fraction(20, 3), "CNY") == Money(Decimal("6.6667"), "CNY")
    assert cap_admitting(Fraction(61, 9), "CNY") == Money(Decimal("6.7778"), "CNY")  # 6.77777… rounds up
    assert cap_admitting(Fraction(5, 2), "CNY") == Money(Decimal("2.5"), "CNY")


@given(st.fractions(min_value=0, max_value=10_000))
def test_cap_admitting_is_the_lowest_four_place_cap_above(value: Fraction) -> None:
    cap = cap_admitting(value, "CNY").amount
    assert Fraction(cap) >= value
    assert Fraction(cap) - Fraction(1, 10_000) < value
    assert decimal_places(cap) <= 4

"""Money and prices as exact decimals: no float ever touches an amount.

Amounts are `Decimal`s tied to an ISO 4217 currency. Prices carry at most four decimal
places (`PRICE_PLACES`); charges are rounded once, at the end, to the currency's minor unit.

Rounding is ROUND_HALF_UP (half away from zero, 四舍五入). Banker's rounding (half-even)
removes the upward bias of many roundings summed together, but metering rounds exactly once
per charge, so that bias is at most half a minor unit per invoice; in exchange, half-up is
what tenants get when they check an invoice with a calculator or a spreadsheet's ROUND, and
what Chinese accounting practice (and the fapiao) uses. A charge that cannot be reproduced
by the customer costs more than the half cent.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import (
    ROUND_HALF_UP,
    Context,
    Decimal,
    DivisionByZero,
    InvalidOperation,
    Overflow,
)
from fractions import Fraction
from types import MappingProxyType

from interconnect.core.vocabulary import BillingUnit

PRICE_PLACES = 4
"""Prices (per card-hour or machine-hour) may not be finer than 1/10,000 of the currency."""
_PRICE_QUANTUM = Decimal(1).scaleb(-PRICE_PLACES)

MONEY_CONTEXT = Context(prec=60, rounding=ROUND_HALF_UP, traps=[InvalidOperation, DivisionByZero, Overflow])
"""Wide enough that products of prices, cards and hours are exact: results never depend on the
caller's thread-local decimal context."""

MINOR_UNITS: Mapping[str, int] = MappingProxyType(
    {
        # ISO 4217 minor units (digits after the decimal point) of the currencies we accept.
        "CNY": 2,
        "HKD": 2,
        "MOP": 2,
        "TWD": 2,
        "USD": 2,
        "EUR": 2,
        "GBP": 2,
        "CHF": 2,
        "JPY": 0,
        "KRW": 0,
        "SGD": 2,
        "AUD": 2,
        "CAD": 2,
        "NZD": 2,
        "SEK": 2,
        "NOK": 2,
        "DKK": 2,
        "INR": 2,
        "THB": 2,
        "MYR": 2,
        "IDR": 2,
        "PHP": 2,
        "VND": 0,
        "AED": 2,
        "SAR": 2,
        "KZT": 2,
        "RUB": 2,
        "BRL": 2,
        "ZAR": 2,
        "ISK": 0,
        "CLP": 0,
        "KWD": 3,
        "BHD": 3,
        "OMR": 3,
        "JOD": 3,
    }
)

_DECIMAL_TEXT = re.compile(r"[+-]?[0-9]+(?:\.[0-9]+)?")


class MoneyError(ValueError):
    """A malformed amount or currency. A ValueError so that pydantic reports it as a field error."""


class UnknownCurrency(MoneyError):
    pass


class CurrencyMismatch(MoneyError):
    pass


def minor_unit(currency: str) -> int:
    """Digits after the decimal point in the currency's smallest unit (CNY 2, JPY 0, KWD 3)."""
    try:
        return MINOR_UNITS[currency]
    except KeyError:
        raise UnknownCurrency(f"unknown currency {currency!r}: expected an ISO 4217 code such as CNY") from None


def parse_amount(value: str | int | Decimal, *, allow_negative: bool = False, max_places: int | None = None) -> Decimal:
    """A finite decimal from a plain decimal string ("12.50"), an int or a Decimal.

    Floats are refused (0.1 is not one tenth), and so are NaN, infinities, exponents and
    amounts finer than `max_places`.
    """
    if isinstance(value, bool) or not isinstance(value, str | int | Decimal):
        kind = type(value).__name__
        raise MoneyError(f"amount must be a decimal string, not {kind} {value!r}")
    if isinstance(value, str):
        text = value.strip()
        if not _DECIMAL_TEXT.fullmatch(text):
            raise MoneyError(f"amount {value!r} is not a plain decimal number such as 12.50")
        amount = Decimal(text)
    elif isinstance(value, int):
        amount = Decimal(value)
    else:
        if not value.is_finite():
            raise MoneyError(f"amount {value} is not finite")
        amount = value
    if amount < 0 and not allow_negative:
        raise MoneyError(f"amount {value!r} is negative")
    if max_places is not None and decimal_places(amount) > max_places:
        raise MoneyError(f"amount {value!r} has more than {max_places} decimal places")
    return amount


def decimal_places(amount: Decimal) -> int:
    """Significant digits after the point: 2.50 has 1, 100 has 0, 1E+2 has 0."""
    exponent = amount.as_tuple().exponent
    assert isinstance(exponent, int), "finite decimals only"
    if exponent >= 0 or amount == 0:
        return 0
    digits = amount.as_tuple().digits
    trailing_zeros = 0
    for digit in reversed(digits):
        if digit != 0 or trailing_zeros >= -exponent:
            break
        trailing_zeros += 1
    return -exponent - trailing_zeros


def round_to_minor_unit(amount: Decimal | Fraction, currency: str) -> Decimal:
    """Round half up (away from zero) to the currency's minor unit; exact for Fractions too."""
    places = minor_unit(currency)
    if isinstance(amount, Fraction):
        scaled = abs(amount) * 10**places
        units = math.floor(scaled + Fraction(1, 2))
        if amount < 0:
            units = -units
        return Decimal(units).scaleb(-places, MONEY_CONTEXT)
    return amount.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP, context=MONEY_CONTEXT)


def ceil_to_places(amount: Fraction, places: int) -> Decimal:
    """The smallest decimal with `places` digits that is not below `amount` (for caps that must admit)."""
    units = math.ceil(amount * 10**places)
    return Decimal(units).scaleb(-places, MONEY_CONTEXT)


def format_amount(amount: Decimal, currency: str) -> str:
    """Canonical text: plain notation, at least the minor unit's digits, no other trailing zeros.

    12.5 CNY -> "12.50", 2.34500 CNY -> "2.345", 1E+2 JPY -> "100", -0 -> "0.00".
    """
    places = minor_unit(currency)
    whole, _, fraction = f"{amount:f}".partition(".")
    fraction = fraction.rstrip("0").ljust(places, "0")
    text = f"{whole}.{fraction}" if fraction else whole
    return text.removeprefix("-") if amount == 0 else text


@dataclass(frozen=True, slots=True)
class Money:
    """An exact amount in one currency. Arithmetic and comparisons refuse to mix currencies."""

    amount: Decimal
    currency: str

    def __post_init__(self) -> None:
        if isinstance(self.amount, bool) or not isinstance(self.amount, Decimal):
            raise MoneyError(f"Money amount must be a Decimal, not {type(self.amount).__name__}")
        if not self.amount.is_finite():
            raise MoneyError(f"Money amount {self.amount} is not finite")
        minor_unit(self.currency)

    @classmethod
    def of(cls, amount: str | int | Decimal, currency: str, *, allow_negative: bool = False) -> Money:
        """Parse an amount (see `parse_amount`) in a currency."""
        minor_unit(currency)
        return cls(parse_amount(amount, allow_negative=allow_negative), currency)

    @classmethod
    def zero(cls, currency: str) -> Money:
        return cls(Decimal(0), currency)

    @classmethod
    def from_string(cls, text: str) -> Money:
        """The inverse of `str()`: "12.50 CNY"."""
        amount, _, currency = text.strip().partition(" ")
        return cls.of(amount, currency.strip(), allow_negative=True)

    def rounded(self) -> Money:
        """This amount rounded half up to the currency's minor unit."""
        return Money(round_to_minor_unit(self.amount, self.currency), self.currency)

    @property
    def amount_text(self) -> str:
        """The canonical amount string (see `format_amount`), e.g. for a CRD status field."""
        return format_amount(self.amount, self.currency)

    def __str__(self) -> str:
        return f"{self.amount_text} {self.currency}"

    def _same_currency(self, other: Money) -> None:
        if not isinstance(other, Money):
            raise TypeError(f"cannot combine Money with {type(other).__name__}")
        if other.currency != self.currency:
            raise CurrencyMismatch(f"{self.currency} and {other.currency} do not mix")

    def __add__(self, other: Money) -> Money:
        self._same_currency(other)
        return Money(MONEY_CONTEXT.add(self.amount, other.amount), self.currency)

    def __sub__(self, other: Money) -> Money:
        self._same_currency(other)
        return Money(MONEY_CONTEXT.subtract(self.amount, other.amount), self.currency)

    def __mul__(self, factor: int | Decimal) -> Money:
        if isinstance(factor, bool) or not isinstance(factor, int | Decimal):
            raise TypeError(f"Money can only be multiplied by int or Decimal, not {type(factor).__name__}")
        return Money(MONEY_CONTEXT.multiply(self.amount, Decimal(factor)), self.currency)

    __rmul__ = __mul__

    def __lt__(self, other: Money) -> bool:
        self._same_currency(other)
        return self.amount < other.amount

    def __le__(self, other: Money) -> bool:
        self._same_currency(other)
        return self.amount <= other.amount

    def __gt__(self, other: Money) -> bool:
        self._same_currency(other)
        return self.amount > other.amount

    def __ge__(self, other: Money) -> bool:
        self._same_currency(other)
        return self.amount >= other.amount


def parse_price(amount: str | int | Decimal, currency: str) -> Money:
    """A non-negative price with at most `PRICE_PLACES` decimal places."""
    minor_unit(currency)
    return Money(parse_amount(amount, max_places=PRICE_PLACES), currency)


@dataclass(frozen=True, slots=True)
class Price:
    """What an offer charges: `amount` per card-hour, or per machine-hour of `cards_per_machine` cards.

    A machine-hour buyer pays for whole machines: a job using 3 cards of 8-card machines pays one
    machine, so its effective price per card-hour is the machine price / 3.
    """

    amount: Money
    unit: BillingUnit
    cards_per_machine: int | None = None

    def __post_init__(self) -> None:
        if self.amount.amount < 0:
            raise MoneyError(f"price {self.amount} is negative")
        if decimal_places(self.amount.amount) > PRICE_PLACES:
            raise MoneyError(f"price {self.amount} has more than {PRICE_PLACES} decimal places")
        if self.cards_per_machine is not None and self.cards_per_machine < 1:
            raise MoneyError(f"cards per machine must be at least 1, not {self.cards_per_machine}")
        if self.unit is BillingUnit.MACHINE_HOUR and self.cards_per_machine is None:
            raise MoneyError("a machine-hour price needs cards_per_machine")

    @property
    def currency(self) -> str:
        return self.amount.currency

    def machines_for(self, cards: int) -> int | None:
        """Whole machines a job of `cards` cards pays for; None when billed by the card."""
        if self.unit is BillingUnit.CARD_HOUR:
            return None
        assert self.cards_per_machine is not None
        return -(-cards // self.cards_per_machine)

    def billed_units_for(self, cards: int) -> int:
        """Cards (card-hour) or whole machines (machine-hour) billed each hour for `cards` cards."""
        if cards < 1:
            raise MoneyError(f"a job uses at least one card, not {cards}")
        machines = self.machines_for(cards)
        return cards if machines is None else machines

    def hourly_cost(self, cards: int) -> Decimal:
        """Exact cost of one hour of `cards` cards, before rounding."""
        return MONEY_CONTEXT.multiply(self.amount.amount, Decimal(self.billed_units_for(cards)))

    def effective_per_card_hour(self, cards: int) -> Fraction:
        """Exact price per card-hour a job of `cards` cards really pays (whole machines included)."""
        return Fraction(self.hourly_cost(cards)) / cards

    def __str__(self) -> str:
        per = "card-hour" if self.unit is BillingUnit.CARD_HOUR else f"machine-hour ({self.cards_per_machine} cards)"
        return f"{self.amount} per {per}"


def price_per_card_hour(hourly: Decimal, cards: int) -> Decimal:
    """An hourly total spread over `cards` cards, rounded half up to `PRICE_PLACES` (for display).

    Decimal division is exact here wherever it matters: a tie (…5 at the fifth place) is a
    terminating decimal, which 60 digits hold exactly; non-terminating quotients are never ties.
    """
    quotient = MONEY_CONTEXT.divide(hourly, Decimal(cards))
    return quotient.quantize(_PRICE_QUANTUM, rounding=ROUND_HALF_UP, context=MONEY_CONTEXT)


def effective_price_money(price: Price, cards: int) -> Money:
    """The effective price per card-hour of `price` for a job of `cards` cards, for display."""
    return Money(price_per_card_hour(price.hourly_cost(cards), cards), price.currency)


def cap_admitting(amount: Fraction, currency: str) -> Money:
    """The lowest price cap with `PRICE_PLACES` places that admits `amount` (rounded up, never down)."""
    return Money(ceil_to_places(amount, PRICE_PLACES), currency)

"""Energy: what a node declares about its power, and the energy a job's cards used (issue 19).

The national computing network routes demand towards energy-rich western provinces and asks
operators to report energy and efficiency. The figures here are estimates from declared facts:

- **Energy** of an attempt = its card-hours x the model's typical board power (the accelerator
  catalogue's ``boardPowerWatts``) x the node's PUE, in kWh. It is the cards' rated power, not a
  measurement: a card that idles draws less, one that boosts may draw more; and it leaves out the
  host CPUs, memory and network (the PUE covers the facility around the IT load, not the rest of
  the IT load). A model without a board-power figure has no estimate (never a guessed one).
- **PUE** (power usage effectiveness, facility energy / IT energy) as the node declares it; a
  node that declares none is metered at its IT load (PUE 1), which the record says.
- **Green share**: the fraction of the node's electricity from renewable sources in a calendar
  month, as the node declares it with the source of the claim (a green-power purchase agreement,
  green certificates, its own generation). An attempt is accounted at the share declared for the
  month it started (so its status, its bill and a report agree even when it crosses a month); a
  month without a declaration takes the latest earlier one; a node that never declared has 0.
- **CO2**: only the grid part emits (market-based accounting: green power bought is counted at
  zero), at the grid's average emission factor for the node's province, from the table of
  published provincial factors below, which a hub admin can override.

Pure and exact: Decimal arithmetic in a 60-digit context, kWh and kg kept to 12 decimal places,
like the PFLOPS-hours of the accelerator catalogue.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Context, Decimal, InvalidOperation
from types import MappingProxyType

BOARD_POWER = "board-power"
"""The basis of an estimate from the catalogue's board power."""

_CONTEXT = Context(prec=60, traps=[InvalidOperation])
_QUANTUM = Decimal(1).scaleb(-12)
_THOUSAND = Decimal(1000)
ONE = Decimal(1)
ZERO = Decimal(0)
MIN_PUE, MAX_PUE = Decimal(1), Decimal(3)


def _month_error(text: str) -> str | None:
    year, _, month = text.partition("-")
    if len(year) != 4 or len(month) != 2 or not (year + month).isdigit() or not 1 <= int(month) <= 12:
        return f"a month is YYYY-MM, not {text!r}"
    return None


@dataclass(frozen=True, slots=True)
class GreenShare:
    """A node's declared share of renewable electricity in one calendar month."""

    month: str
    """YYYY-MM (UTC)."""
    fraction: Decimal
    """0 to 1."""
    source: str = ""
    """Where the claim comes from (free text: a PPA, certificates, own generation)."""

    def __post_init__(self) -> None:
        error = _month_error(self.month)
        if error:
            raise ValueError(error)
        if not (self.fraction.is_finite() and ZERO <= self.fraction <= ONE):
            raise ValueError(f"a green share is a fraction from 0 to 1, not {self.fraction}")


@dataclass(frozen=True, slots=True)
class EnergyFacts:
    """What a node declares about its power: PUE, green shares by month, grid region."""

    pue: Decimal | None = None
    green_shares: tuple[GreenShare, ...] = ()
    grid_region: str | None = None
    """The province whose grid factor applies (default: the node's region)."""

    def __post_init__(self) -> None:
        if self.pue is not None and not (self.pue.is_finite() and MIN_PUE <= self.pue <= MAX_PUE):
            raise ValueError(f"a PUE is from {MIN_PUE} to {MAX_PUE}, not {self.pue}")
        months = [s.month for s in self.green_shares]
        if len(set(months)) != len(months):
            raise ValueError("one green share per month")
        object.__setattr__(self, "green_shares", tuple(sorted(self.green_shares, key=lambda s: s.month)))

    @property
    def effective_pue(self) -> Decimal:
        """The declared PUE, else 1 (the IT load alone)."""
        return ONE if self.pue is None else self.pue

    def green_share_in(self, month: str) -> Decimal:
        """The share declared for `month`, else the latest earlier declaration, else 0."""
        share = ZERO
        for declared in self.green_shares:
            if declared.month > month:
                break
            share = declared.fraction
        return share


NO_FACTS = EnergyFacts()


@dataclass(frozen=True, slots=True)
class GridFactor:
    """A grid's average CO2 emission factor: grams of CO2 per kWh consumed."""

    region: str
    """ISO 3166-2:CN code, or CN for the national average."""
    grams_per_kwh: Decimal
    year: int
    """The year the factor describes."""
    source: str

    def __post_init__(self) -> None:
        if not (self.grams_per_kwh.is_finite() and ZERO <= self.grams_per_kwh <= Decimal(2000)):
            raise ValueError(f"a grid factor is 0 to 2000 gCO2/kWh, not {self.grams_per_kwh}")


NATIONAL = "CN"
_MEE_2022 = "https://www.mee.gov.cn/xxgk2018/xxgk/xxgk01/202412/t20241226_1099413.html"
_MEE_2023 = "MEE and NBS, announcement of the 2023 electricity CO2 emission factors (2025-12-31)"


def _factor(region: str, kg: str, year: int, source: str) -> GridFactor:
    return GridFactor(region, Decimal(kg) * _THOUSAND, year, source)


GRID_FACTORS: Mapping[str, GridFactor] = MappingProxyType({
    f.region: f for f in (
        # The national average electricity CO2 emission factor of 2023 (0.5306 kgCO2/kWh, all sources),
        # published by the Ministry of Ecology and Environment and the National Bureau of Statistics.
        _factor(NATIONAL, "0.5306", 2023, _MEE_2023),
        # Provincial average factors of 2022, MEE and NBS announcement of 2024-12-20 (read from
        # reproductions of its table: the announcement's own attachment was not readable here).
        _factor("CN-NM", "0.6849", 2022, _MEE_2022),
        _factor("CN-SX", "0.7096", 2022, _MEE_2022),
        _factor("CN-HE", "0.7252", 2022, _MEE_2022),
        _factor("CN-SD", "0.6410", 2022, _MEE_2022),
        _factor("CN-TJ", "0.7041", 2022, _MEE_2022),
    )
})
"""Published grid factors shipped with the operator; a province without one uses the national
average (docs/energy.md lists them with their sources; a hub admin overrides or adds with the
grid-factors ConfigMap)."""


def grid_factor(region: str, overrides: Mapping[str, GridFactor] | None = None) -> GridFactor:
    """The factor for `region`: the hub admin's, else the shipped one, else the national average."""
    for table in (overrides or {}, GRID_FACTORS):
        if region in table:
            return table[region]
    for table in (overrides or {}, GRID_FACTORS):
        if NATIONAL in table:
            return table[NATIONAL]
    raise LookupError("no national grid factor")  # pragma: no cover - GRID_FACTORS has one


def factors_of(rows: Iterable[Mapping[str, str]]) -> dict[str, GridFactor]:
    """Grid factors from the override ConfigMap's rows (region, gramsPerKWh, year, source);
    raises ValueError naming the row and the field."""
    out: dict[str, GridFactor] = {}
    for index, row in enumerate(rows):
        where = f"factors[{index}]"
        try:
            region = str(row["region"])
            grams = Decimal(str(row["gramsPerKWh"]))
            year = int(str(row.get("year", "0")))
            source = str(row.get("source", ""))
        except KeyError as missing:
            raise ValueError(f"{where}.{missing.args[0]}: required") from None
        except (InvalidOperation, ValueError):
            raise ValueError(f"{where}: gramsPerKWh must be a decimal and year an integer") from None
        if not source:
            raise ValueError(f"{where}.source: required (where the factor was published)")
        if region in out:
            raise ValueError(f"{where}.region: {region} is listed twice")
        try:
            out[region] = GridFactor(region, grams, year, source)
        except ValueError as error:
            raise ValueError(f"{where}.gramsPerKWh: {error}") from None
    return out


@dataclass(frozen=True, slots=True)
class Energy:
    """The estimated energy of some card-hours, split by source, and its emissions."""

    kwh: Decimal
    green_kwh: Decimal
    grid_kwh: Decimal
    co2_kg: Decimal
    pue: Decimal
    green_share: Decimal
    grid_factor: Decimal
    """gCO2/kWh applied to the grid part."""
    board_power_watts: int
    basis: str = BOARD_POWER

    def as_api(self) -> dict[str, object]:
        """The ``energy`` object of a job's status usage and of a ComputeUsage record."""
        return {
            "kWh": _text(self.kwh), "greenKWh": _text(self.green_kwh), "gridKWh": _text(self.grid_kwh),
            "co2Kg": _text(self.co2_kg), "pue": _text(self.pue), "greenShare": _text(self.green_share),
            "gridFactor": _text(self.grid_factor), "boardPowerWatts": self.board_power_watts, "basis": self.basis,
        }


def _text(value: Decimal) -> str:
    """A decimal without exponent or trailing zeros ("0.5", "12", "0.000000000001")."""
    text = format(value.normalize(_CONTEXT), "f")
    return text


def estimate(card_hours: Decimal, board_power_watts: int, facts: EnergyFacts, month: str,
             factor: GridFactor) -> Energy:
    """The energy of `card_hours` on cards of `board_power_watts` at a node with `facts`, in the
    node's green share of `month`, the grid part emitting at `factor`."""
    if card_hours < 0 or board_power_watts < 1:
        raise ValueError("card-hours must not be negative and board power must be positive")
    pue, share = facts.effective_pue, facts.green_share_in(month)
    c = _CONTEXT
    kwh = c.multiply(c.divide(c.multiply(card_hours, Decimal(board_power_watts)), _THOUSAND), pue)
    green = c.multiply(kwh, share)
    grid = c.subtract(kwh, green)
    co2 = c.divide(c.multiply(grid, factor.grams_per_kwh), _THOUSAND)

    def q(value: Decimal) -> Decimal:
        return value.quantize(_QUANTUM, rounding=ROUND_HALF_EVEN, context=c)

    total = q(kwh)
    green_q = q(green)
    # The parts add up to the whole exactly, as a bill's lines do.
    return Energy(total, green_q, total - green_q, q(co2), pue, share, factor.grams_per_kwh, board_power_watts)


def added(before: Energy | None, after: Energy) -> tuple[Decimal, Decimal, Decimal]:
    """What to add to monotonic counters going from `before` to `after`: green kWh, grid kWh, kg
    CO2 (never negative: a counter does not go back)."""
    if before is None:
        return after.green_kwh, after.grid_kwh, after.co2_kg
    return (max(ZERO, after.green_kwh - before.green_kwh), max(ZERO, after.grid_kwh - before.grid_kwh),
            max(ZERO, after.co2_kg - before.co2_kg))


def sum_energy(parts: Sequence[Energy]) -> Energy | None:
    """Several pods' energy on one node as one (same facts and factor), None for none."""
    if not parts:
        return None
    first = parts[0]
    return Energy(sum((p.kwh for p in parts), ZERO), sum((p.green_kwh for p in parts), ZERO),
                  sum((p.grid_kwh for p in parts), ZERO), sum((p.co2_kg for p in parts), ZERO), first.pue,
                  first.green_share, first.grid_factor, first.board_power_watts, first.basis)


__all__ = [
    "BOARD_POWER",
    "GRID_FACTORS",
    "NATIONAL",
    "NO_FACTS",
    "Energy",
    "EnergyFacts",
    "GreenShare",
    "GridFactor",
    "added",
    "estimate",
    "factors_of",
    "grid_factor",
    "sum_energy",
]

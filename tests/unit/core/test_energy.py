"""The energy estimate: card-hours x board power x PUE, split by the month's green share."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from interconnect.core.energy import (
    GRID_FACTORS,
    NATIONAL,
    NO_FACTS,
    EnergyFacts,
    GreenShare,
    GridFactor,
    added,
    estimate,
    factors_of,
    grid_factor,
    sum_energy,
)

NM = GRID_FACTORS["CN-NM"]


def facts(pue: str | None = "1.25", **shares: str) -> EnergyFacts:
    return EnergyFacts(pue=None if pue is None else Decimal(pue),
                       green_shares=tuple(GreenShare(m.replace("_", "-")[1:], Decimal(f), "PPA")
                                          for m, f in shares.items()))


def test_energy_is_card_hours_times_board_power_times_pue() -> None:
    # 8 cards for 2.5 h of 400 W cards at PUE 1.25: 20 card-hours x 0.4 kW x 1.25 = 10 kWh.
    energy = estimate(Decimal(20), 400, facts(m2026_11="0.8"), "2026-11", NM)
    assert energy.kwh == Decimal(10)
    assert (energy.green_kwh, energy.grid_kwh) == (Decimal(8), Decimal(2))
    # Only the grid part emits: 2 kWh x 684.9 g = 1.3698 kg.
    assert energy.co2_kg == Decimal("1.3698")
    assert energy.as_api() == {"kWh": "10", "greenKWh": "8", "gridKWh": "2", "co2Kg": "1.3698", "pue": "1.25",
                               "greenShare": "0.8", "gridFactor": "684.9", "boardPowerWatts": 400,
                               "basis": "board-power"}


def test_a_node_without_facts_is_metered_at_its_it_load_with_no_green_power() -> None:
    energy = estimate(Decimal(1), 700, NO_FACTS, "2026-11", NM)
    assert (energy.kwh, energy.green_kwh, energy.pue, energy.green_share) == (
        Decimal("0.7"), Decimal(0), Decimal(1), Decimal(0))


def test_the_green_share_of_a_month_is_its_own_else_the_latest_earlier_one() -> None:
    declared = facts(m2026_09="0.5", m2026_11="0.9")
    assert declared.green_share_in("2026-08") == 0
    assert declared.green_share_in("2026-09") == Decimal("0.5")
    assert declared.green_share_in("2026-10") == Decimal("0.5")
    assert declared.green_share_in("2026-11") == Decimal("0.9")
    assert declared.green_share_in("2027-03") == Decimal("0.9")


def test_parts_add_up_exactly_and_stay_exact() -> None:
    energy = estimate(Decimal("0.333333333333"), 350, facts("1.17", m2026_11="0.333"), "2026-11", NM)
    assert energy.green_kwh + energy.grid_kwh == energy.kwh
    assert energy.kwh == (Decimal("0.333333333333") * 350 / 1000 * Decimal("1.17")).quantize(Decimal("1e-12"))


@given(st.lists(st.decimals(min_value=0, max_value=100, places=6), min_size=1, max_size=20))
def test_counters_fed_increase_by_increase_reach_the_total(steps: list[Decimal]) -> None:
    """The meter adds the energy of each increase of card-hours; the sum must be the energy of the
    total to within the rounding of each step (1e-12 kWh each)."""
    f = facts(m2026_11="0.4")
    total = estimate(sum(steps, Decimal(0)), 400, f, "2026-11", NM)
    parts = [estimate(step, 400, f, "2026-11", NM) for step in steps]
    assert abs(sum(p.kwh for p in parts) - total.kwh) <= Decimal("1e-12") * len(steps)
    combined = sum_energy(parts)
    assert combined is not None and combined.green_kwh + combined.grid_kwh == combined.kwh


def test_added_never_goes_back() -> None:
    small = estimate(Decimal(1), 400, NO_FACTS, "2026-11", NM)
    big = estimate(Decimal(2), 400, NO_FACTS, "2026-11", NM)
    assert added(None, big) == (Decimal(0), Decimal("0.8"), big.co2_kg)
    assert added(big, small) == (Decimal(0), Decimal(0), Decimal(0))


def test_grid_factors_the_hub_admin_overrides_or_adds_and_the_national_default() -> None:
    assert grid_factor("CN-NM") is NM
    assert grid_factor("CN-QH") is GRID_FACTORS[NATIONAL], "a province without a published factor"
    mine = factors_of([{"region": "CN-QH", "gramsPerKWh": "120", "year": "2024", "source": "our grid company"}])
    assert grid_factor("CN-QH", mine).grams_per_kwh == Decimal(120)
    assert grid_factor("CN-NM", mine) is NM
    assert all(f.source for f in GRID_FACTORS.values()), "every shipped factor names where it was published"


@pytest.mark.parametrize(("rows", "message"), [
    ([{"gramsPerKWh": "1", "source": "x"}], "factors[0].region: required"),
    ([{"region": "CN-QH", "gramsPerKWh": "many", "source": "x"}], "factors[0]: gramsPerKWh must be a decimal"),
    ([{"region": "CN-QH", "gramsPerKWh": "100"}], "factors[0].source: required"),
    ([{"region": "CN-QH", "gramsPerKWh": "9000", "source": "x"}], "factors[0].gramsPerKWh: a grid factor"),
    ([{"region": "CN-QH", "gramsPerKWh": "1", "source": "x"}] * 2, "factors[1].region: CN-QH is listed twice"),
])
def test_bad_override_rows_are_refused_naming_the_row_and_field(rows: list[dict[str, str]], message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        factors_of(rows)


def test_bad_facts_are_refused() -> None:
    with pytest.raises(ValueError, match="PUE"):
        EnergyFacts(pue=Decimal("0.9"))
    with pytest.raises(ValueError, match="fraction"):
        GreenShare("2026-11", Decimal("1.2"))
    with pytest.raises(ValueError, match="YYYY-MM"):
        GreenShare("2026-13", Decimal("0.2"))
    with pytest.raises(ValueError, match="one green share per month"):
        EnergyFacts(green_shares=(GreenShare("2026-11", Decimal(0)), GreenShare("2026-11", Decimal(1))))
    with pytest.raises(ValueError):
        GridFactor("CN-X", Decimal(-1), 2022, "x")

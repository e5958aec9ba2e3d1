"""The energy estimate of an attempt's card-hours, from what its node declares (issue 19).

The arithmetic is the core's (`core.energy`); this component knows where the inputs live: the
node's energy facts in its ComputeNode (`Members`), the model's board power in the accelerator
catalogue in use, and the grid emission factors (the shipped table, with the hub admin's
overrides). The meter asks it for the job's status and the counters, the ledger for the bill.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from decimal import Decimal

from interconnect.core.accelerators import by_name
from interconnect.core.energy import NATIONAL, NO_FACTS, Energy, GridFactor, estimate, grid_factor
from interconnect.core.quota import Month
from interconnect.services.members import Members


class EnergyEstimator:
    """Energy of card-hours on a node, for the meter and the ledger (see the module docstring)."""

    def __init__(self, members: Members) -> None:
        self._members = members
        self.overrides: Mapping[str, GridFactor] = {}
        """The hub admin's grid factors by region, replacing or adding to the shipped table."""

    def region_of(self, node: str) -> str:
        """The province whose grid feeds `node` (its declared grid region, else its own region)."""
        state = self._members.get(node)
        if state is None:
            return NATIONAL
        spec = state.model.spec
        return (spec.energy.grid_region if spec.energy else None) or spec.region

    def estimate(self, node: str, gpu_model: str, card_hours: Decimal, started: dt.datetime | None,
                 at: dt.datetime) -> Energy | None:
        """The energy of `card_hours` of `gpu_model` cards on `node`, in the green share of the month
        the attempt started (`at` when it has not started); None for a model without a board-power
        figure."""
        model = by_name(gpu_model)
        if model is None or model.board_power_watts is None:
            return None
        state = self._members.get(node)
        facts = state.model.spec.energy_facts() if state is not None else NO_FACTS
        factor = grid_factor(self.region_of(node), self.overrides)
        return estimate(card_hours, model.board_power_watts, facts, str(Month.of(started or at)), factor)


__all__ = ["EnergyEstimator"]

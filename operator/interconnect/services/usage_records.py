"""The bill: one ComputeUsage record per finished attempt, written once, read by quotas and usage.

`usage_record` (pure) is the record of one attempt as its job's state holds it: where it ran,
the locked price, the charged card-hours and cost, the span it ran in and how it ended.
`UsageLedger` writes it where the attempt's charges become final, always before the status
write that records the end (so a job whose end is in its status has its record): the member
sync's terminal transition, a superseded attempt in failover, the dispatcher's refusals (a start
deadline, a budget), and a job deleted while it ran. A create answered 409 AlreadyExists is
success: the record is named after the attempt (``<job uid>-<attempt>``), and it never changes.

The ledger keeps in memory the records that can count this month (listed at start-up by their
month label, then those it writes): `Market.tenant_usage` counts an attempt from its record if
it has one, else from its job (a running attempt), never both. The records of jobs that are gone
(deleted) are only ever summed: once their job has left the `JobStore`, records that fall wholly
in the month are folded into one total per tenant and currency (`fold`), so that memory follows
the jobs that exist and the tenants, not the jobs run this month.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Container, Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pydantic

from interconnect.adapters.hub import Hub
from interconnect.api.v1alpha1 import ComputeUsage, validation_message
from interconnect.api.v1alpha1.usage import MONTH_LABEL, NODE_LABEL, TENANT_LABEL
from interconnect.core.accelerators import compute_rate
from interconnect.core.money import MONEY_CONTEXT, Money
from interconnect.core.quota import Charge, Month
from interconnect.core.vocabulary import API_VERSION
from interconnect.services.energy import EnergyEstimator
from interconnect.services.jobs import JobState, decimal_text, instant
from interconnect.services.member_job import label_value

log = logging.getLogger(__name__)

PLURAL = ComputeUsage.PLURAL
DELETED = "Deleted"
"""Outcome of an attempt whose ComputeJob was deleted while it ran."""


def record_name(job_uid: str, attempt: int) -> str:
    """The name of an attempt's record: one per attempt, so a second create is refused (409)."""
    return f"{job_uid}-{attempt}"


def usage_record(state: JobState, attempt: int, outcome: str, ended_at: dt.datetime | None, *,
                 lost_since: dt.datetime | None = None,
                 energy: EnergyEstimator | None = None) -> dict[str, Any] | None:
    """The ComputeUsage object of ``attempt`` of ``state``'s job (pure), or None when the attempt
    charged nothing (no pod ran: nothing to bill, nothing written).

    ``startedAt`` is the first pod's start, ``finishedAt`` ``lost_since`` for an attempt lost with
    its node, else its last pod's end as metered (a finish, or how far a stopped attempt was
    metered), else ``ended_at``; without any of them there is no record (its month is unknown).
    Where it ran comes from the job's placement when ``attempt`` is its current one, else from the
    attempt's history entry (node and offer only).
    """
    charged = state.usage.card_time(attempt)
    price = state.attempt_price(attempt)
    money = state.costs(state.usage).get(attempt)
    if charged.card_microseconds == 0 or price is None or money is None:
        return None
    started, last_end = state.usage.span(attempt)
    finished = lost_since or last_end or ended_at
    if finished is None:
        return None
    entry = next((h for h in state.history if h["attempt"] == attempt), {})
    placement = state.placement if attempt == state.attempt and state.placement else {}
    node = str(entry.get("node") or placement.get("node") or "")
    offer = str(entry.get("offer") or placement.get("offer") or "")
    kept = state.kept
    tenant = kept.namespace
    month = str(Month.of(finished))
    spec: dict[str, Any] = {
        "tenant": tenant, "jobName": kept.name, "jobUID": state.uid, "attempt": attempt, "node": node,
        "offer": offer, "price": dict(price),
        "cardHours": decimal_text(charged.card_hours), "cost": money.amount_text,
        "lostCardHours": decimal_text(state.usage.lost_card_time(attempt).card_hours),
        "currency": money.currency,
        "finishedAt": instant(finished), "month": month, "outcome": outcome,
    }
    if started is not None:
        spec["startedAt"] = instant(started)
    for key in ("identityCode", "region", "industry", "gpuModel"):
        if placement.get(key):
            spec[key] = str(placement[key])
    rate = compute_rate(str(placement["gpuModel"])) if placement.get("gpuModel") else None
    if rate is not None:  # normalised compute, beside the card-hours it is computed from
        spec["pflopsHours"] = decimal_text(rate.pflops_hours(charged.card_hours))
        spec["precision"] = rate.precision
    if energy is not None and placement.get("gpuModel"):
        estimate = energy.estimate(node, str(placement["gpuModel"]), charged.card_hours, started, finished)
        if estimate is not None:
            spec["energy"] = estimate.as_api()
    return {
        "apiVersion": API_VERSION, "kind": ComputeUsage.KIND,
        "metadata": {"name": record_name(state.uid, attempt),
                     "labels": {TENANT_LABEL: tenant, MONTH_LABEL: month, NODE_LABEL: label_value(node)}},
        "spec": spec,
    }


@dataclass(frozen=True, slots=True)
class Recorded:
    """One ComputeUsage record as the quotas count it."""

    tenant: str
    job_uid: str
    attempt: int
    charge: Charge
    """Its cost over the span it ran in (the core attributes it to months pro rata)."""

    @property
    def key(self) -> tuple[str, int]:
        return self.job_uid, self.attempt

    @classmethod
    def of(cls, record: ComputeUsage) -> Recorded:
        spec = record.spec
        return cls(spec.tenant, spec.job_uid, spec.attempt,
                   Charge(Money.of(spec.cost, spec.currency), spec.started_at, spec.finished_at))


class UsageLedger:
    """Writes the ComputeUsage records and keeps those that count this month (see the module
    docstring). Only ever creates: a record is never changed or deleted by the operator."""

    FOLD_AFTER = 64
    """Records kept before the first `fold` looks for those of gone jobs (then twice what it kept)."""

    def __init__(self, hub: Hub, energy: EnergyEstimator | None = None) -> None:
        self._hub = hub
        self._energy = energy
        """Estimates each record's energy (None: records without energy, as in unit tests)."""
        self._records: dict[tuple[str, int], Recorded] = {}
        self._month: Month | None = None
        self._folded: dict[tuple[str, str], Decimal] = {}
        """(tenant, currency) -> the cost of the month's records of gone jobs, folded (`fold`)."""
        self._fold_at = self.FOLD_AFTER

    def __contains__(self, key: object) -> bool:
        """Whether the attempt ``(job uid, attempt)`` has a record the ledger knows (records of
        gone jobs that were folded are not asked about: their jobs are not counted any more)."""
        return key in self._records

    def __len__(self) -> int:
        """Records kept one by one (not those folded)."""
        return len(self._records)

    def __iter__(self) -> Iterator[Recorded]:
        return iter(list(self._records.values()))

    async def load(self, at: dt.datetime) -> None:
        """At start-up, before any placement: the records of the month of ``at``."""
        month = Month.of(at)
        for body in await self._hub.list_all(PLURAL, f"{MONTH_LABEL}={month}"):
            self.remember(body)
        self._month = month

    def remember(self, body: Mapping[str, Any]) -> Recorded | None:
        """Keep one record (as written, or as read from the hub); one that cannot be read is
        reported and skipped."""
        try:
            record = ComputeUsage.model_validate(body)
        except pydantic.ValidationError as exc:
            log.warning("ComputeUsage %s cannot be read: %s", (body.get("metadata") or {}).get("name"),
                        validation_message(exc))
            return None
        recorded = Recorded.of(record)
        self._records.setdefault(recorded.key, recorded)
        return self._records[recorded.key]

    def charges(self, at: dt.datetime) -> list[Recorded]:
        """The records that can count in the month of ``at``: those that finished since it began,
        the folded ones as one per tenant and currency (job uid "", attempt 0)."""
        self.turn(at)
        month = Month.of(at)
        folded = [Recorded(tenant, "", 0, Charge(Money(total, currency), None, month.start))
                  for (tenant, currency), total in self._folded.items()]
        return [*self._records.values(), *folded]

    def fold(self, at: dt.datetime, jobs: Container[str]) -> int:
        """Sum up the records of jobs no longer in ``jobs`` (deleted) that fall wholly in the month
        of ``at``: their cost counts the same (a month's spend is a sum), and only the jobs that
        exist are ever asked whether an attempt has a record. A record spanning the month's start
        stays as it is (its share is pro rata). Runs once the ledger has doubled since the last
        fold (or holds `FOLD_AFTER` records): amortised constant time per record. Returns how many
        records it folded."""
        if len(self._records) < self._fold_at:
            return 0
        self.turn(at)
        month = Month.of(at)
        folded = 0
        for key, recorded in list(self._records.items()):
            charge = recorded.charge
            if recorded.job_uid in jobs or charge.end is None or Month.of(charge.end) != month:
                continue
            if charge.start is not None and charge.start < month.start:
                continue
            bucket = (recorded.tenant, charge.cost.currency)
            self._folded[bucket] = MONEY_CONTEXT.add(self._folded.get(bucket, Decimal(0)), charge.cost.amount)
            del self._records[key]
            folded += 1
        self._fold_at = max(self.FOLD_AFTER, 2 * len(self._records))
        return folded

    def turn(self, at: dt.datetime) -> None:
        """Once the month of ``at`` has begun, forget the records that finished before it: they
        count in no later month (the market calls this on every pass, budgets or not, so memory
        holds about a month of records)."""
        month = Month.of(at)
        if month == self._month:
            return
        self._month = month
        self._folded.clear()  # records that ended in another month: none counts in this one
        for key, recorded in list(self._records.items()):
            if recorded.charge.end is not None and recorded.charge.end < month.start:
                del self._records[key]

    async def record(self, state: JobState, attempt: int, outcome: str, ended_at: dt.datetime | None, *,
                     lost_since: dt.datetime | None = None) -> None:
        """Write the record of ``attempt`` (see `usage_record`) unless it has one; raises when the
        write did not land, so that the caller does not record the end either and tries again."""
        if (state.uid, attempt) in self._records:
            return
        body = usage_record(state, attempt, outcome, ended_at, lost_since=lost_since, energy=self._energy)
        if body is None:
            return
        if not await self._hub.create(PLURAL, body):
            # Written before (a status write that failed after it, or another replica): it stands.
            existing = await self._hub.get(PLURAL, body["metadata"]["name"])
            body = existing or body
        self.remember(body)


__all__ = ["DELETED", "PLURAL", "Recorded", "UsageLedger", "record_name", "usage_record"]

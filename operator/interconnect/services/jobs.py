"""The jobs the hub knows, and the one writer of their status.

`JobStore` holds one `JobState` per ComputeJob (by UID): what the operator knows of it between
two status writes. `StatusWriter` is the only code that writes a ComputeJob's status: one write
per job at a time (two in flight can land in either order), the fields waiting in
``unwritten`` ride along, conditions are summarised, and a write that records a placement
settles the dispatch journal's entry. Workers change a job's state only after the write that
records the change has landed.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from interconnect.adapters.hub import Hub
from interconnect.api.v1alpha1 import ComputeJob, Condition, Price, set_condition, shared_strings, to_api
from interconnect.core.metering import PodAccrual, UsageRecord, cost
from interconnect.core.money import Money
from interconnect.core.sync import summarised
from interconnect.core.vocabulary import ACTIVE_PHASES, API_VERSION, JobPhase
from interconnect.services.journal import DispatchJournal
from interconnect.services.translate import price_of

ACTIVE = ACTIVE_PHASES
NODE_LOST = "NodeLost"
"""Outcome of an attempt superseded because its node was lost, and the reason shown for it."""


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def iso(t: dt.datetime | None) -> str | None:
    return t.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if t else None


def parse_time(text: object) -> dt.datetime | None:
    """An API timestamp (RFC 3339, "Z" for UTC) as an aware datetime; None for none."""
    return dt.datetime.fromisoformat(str(text).replace("Z", "+00:00")) if text else None


def instant(t: dt.datetime) -> str:
    """An RFC 3339 UTC time to the microsecond when it has any (``iso`` drops them): a pod's
    start read back from status must be the start the record holds, or the record would change."""
    return t.astimezone(dt.UTC).isoformat(timespec="microseconds" if t.microsecond else "seconds").replace(
        "+00:00", "Z")


def decimal_text(value: Decimal) -> str:
    """A decimal string without exponent or trailing zeros (the API's Quantity pattern)."""
    return format(value.normalize(), "f")


@dataclass(slots=True)
class JobState:
    """One ComputeJob as the operator knows it: its spec, phase, placement, attempts and usage."""

    model: ComputeJob
    phase: JobPhase
    attempt: int
    conditions: list[Condition]
    placement: dict[str, Any] | None = None
    member_job: dict[str, Any] | None = None
    last_summary: str | None = None
    """The last explanation written while Pending (rewritten only when it changes)."""
    top_reason: str | None = None
    """Why it waits, as a short label for the unschedulable gauge (e.g. "price above maxPrice")."""
    member_job_deleted: bool = False
    dispatching: int | None = None
    """The attempt a dispatch task is working on (a superseded attempt's task just stops)."""
    durable_attempt: int = 0
    """The latest attempt whose placement is durable on the hub (in status or the journal)."""
    attempt_labels: dict[int, dict[str, str]] = field(default_factory=dict)
    unwritten: dict[str, Any] = field(default_factory=dict)
    """Status fields that ride along with the next status write (e.g. observedGeneration of a
    new job, which needs no write of its own)."""
    status_patch: dict[str, Any] = field(default_factory=dict)
    writing: asyncio.Lock = field(default_factory=asyncio.Lock)
    """One status write at a time: two in flight can land in either order, and the deferred
    Dispatched write landing after the Running one left a running job shown as Dispatched."""
    usage: UsageRecord = field(default_factory=UsageRecord)
    history: list[dict[str, Any]] = field(default_factory=list)
    budget_warned: bool = False
    """A BudgetNearlySpent warning was posted (once per operator run)."""
    stage_at: float | None = None
    """Monotonic time the job entered its current dispatch stage (seen, placed, durable): where
    the seconds between the hub's accepting it and the member Job go (DISPATCH_STAGES)."""

    @property
    def uid(self) -> str:
        return self.model.metadata.uid or ""

    @property
    def cards(self) -> int:
        return self.model.spec.gpus.count * self.model.spec.replicas

    @property
    def node(self) -> str | None:
        """The ComputeNode of the current placement, if placed."""
        return str(self.placement["node"]) if self.placement else None

    def lost_at(self, attempt: int) -> dt.datetime | None:
        """When ``attempt``'s node was declared lost, if the attempt was superseded for it."""
        for entry in self.history:
            if entry["attempt"] == attempt and entry.get("outcome") == NODE_LOST and entry.get("finishedAt"):
                return parse_time(entry["finishedAt"])
        return None

    def attempt_price(self, attempt: int) -> dict[str, Any] | None:
        """The price locked for ``attempt`` (its usage is billed at it)."""
        for entry in self.history:
            if entry["attempt"] == attempt and entry.get("price"):
                return entry["price"]  # type: ignore[no-any-return]
        return self.placement["price"] if self.placement else None

    def costs(self, record: UsageRecord) -> dict[int, Money]:
        """What each attempt of ``record`` costs at its locked price."""
        spec = self.model.spec
        out: dict[int, Money] = {}
        for attempt in record.attempts:
            price = self.attempt_price(attempt)
            if price is None:
                continue
            out[attempt] = cost(record.card_time(attempt), price_of(Price.model_validate(price)), spec.gpus.count,
                                spec.replicas)
        return out

    @property
    def ref(self) -> dict[str, Any]:
        meta = self.model.metadata
        return {"apiVersion": API_VERSION, "kind": "ComputeJob",
                "metadata": {"name": meta.name, "namespace": meta.namespace, "uid": meta.uid}}


def job_state(job: ComputeJob) -> JobState:
    """A job's state rebuilt from its status (at start-up, or when the job is first seen)."""
    status = job.status
    phase = status.phase or JobPhase.PENDING
    usage = UsageRecord(tuple(PodAccrual(p.attempt, p.pod, p.gpus, p.microseconds, p.finished, p.lost_microseconds,
                                         p.started_at)
                              for p in (status.usage.pods if status.usage else [])))
    return JobState(
        usage=usage,
        history=[shared_strings(to_api(a)) for a in status.attempt_history],
        model=job,
        phase=JobPhase(phase),
        attempt=status.attempts,
        conditions=list(status.conditions),
        placement=shared_strings(to_api(status.placement)) if status.placement else None,
        member_job=shared_strings(to_api(status.member_job)) if status.member_job else None,
        last_summary=status.unschedulable.summary if status.unschedulable else None,
        durable_attempt=status.attempts if status.placement else 0,
    )


class JobStore:
    """Every ComputeJob the operator knows, by UID."""

    def __init__(self) -> None:
        self._jobs: dict[str, JobState] = {}

    def get(self, uid: str) -> JobState | None:
        return self._jobs.get(uid)

    def __contains__(self, uid: object) -> bool:
        return uid in self._jobs

    def __iter__(self) -> Iterator[JobState]:
        return iter(list(self._jobs.values()))

    def __len__(self) -> int:
        return len(self._jobs)

    def add(self, state: JobState) -> None:
        self._jobs[state.uid] = state

    def remove(self, uid: str) -> JobState | None:
        return self._jobs.pop(uid, None)

    def pending(self) -> list[JobState]:
        """Pending jobs no dispatch task is working on: what a placement pass considers."""
        return [s for s in self._jobs.values() if s.phase is JobPhase.PENDING and s.dispatching is None]

    def active_on(self, node: str) -> list[JobState]:
        """Jobs placed on ``node`` that hold their cards there."""
        return [s for s in self._jobs.values() if s.phase in ACTIVE and s.placement and s.placement["node"] == node]

    def in_phase(self, *phases: JobPhase) -> list[JobState]:
        return [s for s in self._jobs.values() if s.phase in phases]


class StatusWriter:
    """The only writer of ComputeJob status (see the module docstring)."""

    def __init__(self, hub: Hub, journal: DispatchJournal) -> None:
        self._hub = hub
        self._journal = journal

    async def write(self, state: JobState, status: dict[str, Any]) -> None:
        """Write ``status`` and whatever waits in ``state.unwritten``; raises when it did not land."""
        meta = state.model.metadata
        async with state.writing:
            pending = dict(state.unwritten)
            # Every write names the leader's epoch; the CRD refuses a status from an older one,
            # so a replica that lost the lead cannot overwrite what its successor wrote.
            body = {**pending, **status, "leaderEpoch": self._hub.epoch}
            await self._hub.patch_status("computejobs", meta.name, {"status": body}, namespace=meta.namespace)
            for key, value in pending.items():  # what was added meanwhile goes with the next write
                if state.unwritten.get(key) is value:
                    del state.unwritten[key]
        if "placement" in body:  # the placement (or its end) is in the status: the journal's entry is moot
            self._journal.settled(state.uid)

    @staticmethod
    def conditions_with(state: JobState, type_: str, ok: bool, reason: str, message: str) -> list[Condition]:
        """The job's conditions with one set (message summarised), not yet applied."""
        return set_condition(state.conditions, type_, ok, reason, summarised(message),
                             state.model.metadata.generation, now())

    def set(self, state: JobState, type_: str, ok: bool, reason: str, message: str) -> None:
        """Set a condition in memory; it is written with the next status write."""
        state.conditions = self.conditions_with(state, type_, ok, reason, message)

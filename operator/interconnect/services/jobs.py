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
import contextlib
import datetime as dt
import sys
from collections.abc import AsyncIterator, Iterable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from interconnect.adapters.hub import Hub
from interconnect.api.v1alpha1 import (
    ComputeJob,
    Condition,
    MonetaryAmount,
    Price,
    set_condition,
    shared_fields_set,
    shared_strings,
    to_api,
)
from interconnect.api.v1alpha1.job import FailurePolicy
from interconnect.core.metering import PodAccrual, UsageRecord, cost
from interconnect.core.money import Money
from interconnect.core.placement import JobRequest
from interconnect.core.sync import summarised
from interconnect.core.vocabulary import ACTIVE_PHASES, API_VERSION, JobPhase
from interconnect.services.journal import DispatchJournal
from interconnect.services.translate import job_request, price_of

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


@dataclass(frozen=True, slots=True)
class KeptJob:
    """A ComputeJob as the operator keeps it between two changes of its spec: the fields its loops
    read for every job, and the rest as the object's compact JSON.

    Why not the validated model: pydantic keeps every field of every nested model in a dict of
    its own, so a ComputeJob without its status took about 3 KiB (metadata 1 KiB, spec 1.7 KiB
    with its pod template already compact), the largest part of what 50,000 jobs cost the
    operator; its JSON takes about 600 bytes. The loops (quotas, metering, the status writer,
    the start deadline, failover) read only the fields below; the whole job is validated again
    from the JSON (`model`, about 0.1 ms) where it is needed whole: once per attempt for the
    member Job, once per spec change of a placed job, and for the placement request of a job
    waiting again after failover (`JobState.request`; a new job's is built from the model the
    watch validated). Its status is not kept: `JobState` is the truth about it.
    """

    uid: str
    namespace: str
    name: str
    generation: int | None
    created: dt.datetime | None
    gpus_per_replica: int
    replicas: int
    budget: MonetaryAmount | None
    start_deadline_seconds: int | None
    failure_policy: FailurePolicy | None
    json: bytes = field(repr=False)
    """The job without its status, camelCase and without nulls: what `model` validates again."""

    @classmethod
    def of(cls, job: ComputeJob) -> KeptJob:
        meta, spec = job.metadata, job.spec
        return cls(
            uid=meta.uid or "",
            namespace=sys.intern(meta.namespace or ""),
            name=meta.name,
            generation=meta.generation,
            created=meta.creation_timestamp,
            gpus_per_replica=spec.gpus.count,
            replicas=spec.replicas,
            budget=spec.budget,
            start_deadline_seconds=spec.start_deadline_seconds,
            failure_policy=spec.failure_policy,
            json=job.model_dump_json(by_alias=True, exclude={"status"}, exclude_none=True).encode(),
        )

    @property
    def cards(self) -> int:
        return self.gpus_per_replica * self.replicas

    def model(self) -> ComputeJob:
        """The whole job (its status empty), validated again: a fresh object each call."""
        return ComputeJob.model_validate_json(self.json)


_CONDITION_FIELDS = tuple(Condition.model_fields)
_KeptCondition = tuple[Any, ...]
"""A condition as a job's state keeps it: the fields it was given (a shared set), then its
fields' values in `_CONDITION_FIELDS` order. A `Condition` model is an object and a dict of
its six fields (about 350 bytes); each job keeps three or four conditions for as long as it
lives, and reads them only when it writes its status."""


def kept_conditions(conditions: Iterable[Condition]) -> tuple[_KeptCondition, ...]:
    """``conditions`` as `JobState` keeps them."""
    out = []
    for condition in conditions:
        given = shared_fields_set(set(condition.model_fields_set))
        out.append((given, *(getattr(condition, name) for name in _CONDITION_FIELDS)))
    return tuple(out)


@dataclass(slots=True)
class JobState:
    """One ComputeJob as the operator knows it: its spec, phase, placement, attempts and usage."""

    kept: KeptJob
    phase: JobPhase
    attempt: int
    kept_conditions: tuple[_KeptCondition, ...]
    """The conditions as `conditions` keeps them (read and set through it)."""
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
    usage: UsageRecord = field(default_factory=UsageRecord)
    history: list[dict[str, Any]] = field(default_factory=list)
    budget_warned: bool = False
    """A BudgetNearlySpent warning was posted (once per operator run)."""
    stage_at: float | None = None
    """Monotonic time the job entered its current dispatch stage (seen, placed, durable): where
    the seconds between the hub's accepting it and the member Job go (DISPATCH_STAGES)."""
    placing: JobRequest | None = None
    """What placement reads of the job, kept while it waits (`request`): a pass reads every
    pending job, and building this again each pass cost more than the placement itself."""

    @property
    def conditions(self) -> list[Condition]:
        """The job's conditions: a fresh list of fresh models each read."""
        return [Condition.model_construct(set(fields_set), **dict(zip(_CONDITION_FIELDS, values, strict=True)))
                for fields_set, *values in self.kept_conditions]

    @conditions.setter
    def conditions(self, conditions: Iterable[Condition]) -> None:
        self.kept_conditions = kept_conditions(conditions)

    @property
    def model(self) -> ComputeJob:
        """The whole ComputeJob (its status empty), validated again from what is kept: for the
        readers that need more than `kept` holds, once per attempt or change."""
        return self.kept.model()

    def keep(self, job: ComputeJob) -> None:
        """Keep ``job``'s spec and metadata (its status is this state's); while it waits, its
        placement request too, from the model at hand rather than validated again."""
        self.kept = KeptJob.of(job)
        self.placing = _request_at_hand(job) if self.phase is JobPhase.PENDING else None

    def request(self) -> JobRequest:
        """What placement reads of the job; kept until its spec changes or it is placed
        (`placed`), so only waiting jobs hold one."""
        if self.placing is None:
            self.placing = job_request(self.model)
        return self.placing

    def placed(self) -> None:
        """The job left the queue: its placement request is not needed until it is re-placed."""
        self.placing = None

    @property
    def uid(self) -> str:
        return self.kept.uid

    @property
    def cards(self) -> int:
        return self.kept.cards

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
        kept = self.kept
        out: dict[int, Money] = {}
        for attempt in record.attempts:
            price = self.attempt_price(attempt)
            if price is None:
                continue
            out[attempt] = cost(record.card_time(attempt), price_of(Price.model_validate(price)), kept.gpus_per_replica,
                                kept.replicas)
        return out

    @property
    def ref(self) -> dict[str, Any]:
        kept = self.kept
        return {"apiVersion": API_VERSION, "kind": "ComputeJob",
                "metadata": {"name": kept.name, "namespace": kept.namespace, "uid": kept.uid}}


def job_state(job: ComputeJob) -> JobState:
    """A job's state rebuilt from its status (at start-up, or when the job is first seen)."""
    status = job.status
    phase = status.phase or JobPhase.PENDING
    usage = UsageRecord(tuple(PodAccrual(p.attempt, p.pod, p.gpus, p.microseconds, p.finished, p.lost_microseconds,
                                         p.started_at)
                              for p in (status.usage.pods if status.usage else [])))
    placement = shared_strings(to_api(status.placement)) if status.placement else None
    history = [shared_strings(to_api(a)) for a in status.attempt_history]
    for entry in history:  # one price dictionary for the placement and its attempt, as placing keeps it
        if placement is not None and entry.get("price") == placement.get("price"):
            entry["price"] = placement["price"]
    state = JobState(
        usage=usage,
        history=history,
        kept=KeptJob.of(job),
        phase=JobPhase(phase),
        attempt=status.attempts,
        kept_conditions=kept_conditions(status.conditions),
        placement=placement,
        member_job=shared_strings(to_api(status.member_job)) if status.member_job else None,
        last_summary=status.unschedulable.summary if status.unschedulable else None,
        durable_attempt=status.attempts if status.placement else 0,
    )
    if state.phase is JobPhase.PENDING:
        state.placing = _request_at_hand(job)
    return state


def _request_at_hand(job: ComputeJob) -> JobRequest | None:
    """The placement request of a job as the API server gave it (None: built when first asked,
    as for an object that never went through one)."""
    return job_request(job) if job.metadata.creation_timestamp is not None else None


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
        self._writing: dict[str, tuple[asyncio.Lock, list[int]]] = {}
        """Job UID -> its lock and how many writes hold or wait for it: only jobs being written
        have one (a lock in every job's state cost 144 bytes each, 7 MB for 50,000 jobs)."""

    @contextlib.asynccontextmanager
    async def _one_at_a_time(self, uid: str) -> AsyncIterator[None]:
        """One status write per job at a time: two in flight can land in either order, and the
        deferred Dispatched write landing after the Running one left a running job shown as
        Dispatched."""
        entry = self._writing.get(uid)
        if entry is None:
            entry = self._writing[uid] = (asyncio.Lock(), [0])
        lock, users = entry
        users[0] += 1
        try:
            async with lock:
                yield
        finally:
            users[0] -= 1
            if not users[0]:
                del self._writing[uid]

    async def write(self, state: JobState, status: dict[str, Any]) -> None:
        """Write ``status`` and whatever waits in ``state.unwritten``; raises when it did not land."""
        kept = state.kept
        async with self._one_at_a_time(kept.uid):
            pending = dict(state.unwritten)
            # Every write names the leader's epoch; the CRD refuses a status from an older one,
            # so a replica that lost the lead cannot overwrite what its successor wrote.
            body = {**pending, **status, "leaderEpoch": self._hub.epoch}
            await self._hub.patch_status("computejobs", kept.name, {"status": body}, namespace=kept.namespace)
            for key, value in pending.items():  # what was added meanwhile goes with the next write
                if state.unwritten.get(key) is value:
                    del state.unwritten[key]
        if "placement" in body:  # the placement (or its end) is in the status: the journal's entry is moot
            self._journal.settled(state.uid)

    @staticmethod
    def conditions_with(state: JobState, type_: str, ok: bool, reason: str, message: str) -> list[Condition]:
        """The job's conditions with one set (message summarised), not yet applied."""
        return set_condition(state.conditions, type_, ok, reason, summarised(message),
                             state.kept.generation, now())

    def set(self, state: JobState, type_: str, ok: bool, reason: str, message: str) -> None:
        """Set a condition in memory; it is written with the next status write."""
        state.conditions = self.conditions_with(state, type_, ok, reason, message)

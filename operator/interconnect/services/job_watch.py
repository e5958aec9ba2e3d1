"""Intake: the ComputeJob watch, start-up recovery from the dispatch journal, and deletion.

`JobWatch` watches every ComputeJob itself rather than through kopf handlers: kopf's per-object
bookkeeping (a finalizer, progress annotations, events) cost several hub writes per job, and
jobs come by the thousand. A new job is validated once and taken into the `JobStore` (with the
placement the journal holds for it, if the operator stopped between journal and status); an
active one gets its reservation back and goes on where it was. A deleted job is forgotten and
its member Job deleted; one that cannot be deleted now is left to garbage collection, as
MultiKueue does. A job deleted while it ran has what its attempt was charged so far recorded
(its ComputeUsage, outcome Deleted): deleting a job never takes anything off a bill.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from functools import partial
from typing import Any

import pydantic

from interconnect.adapters.hub import Hub
from interconnect.adapters.informer import Change, Informer
from interconnect.adapters.metrics import Metrics
from interconnect.api.v1alpha1 import ComputeJob, validation_message
from interconnect.core.vocabulary import FINALIZER, GROUP, VERSION, JobPhase
from interconnect.services.dispatcher import Dispatcher
from interconnect.services.jobs import ACTIVE, JobStore, StatusWriter, job_state, now
from interconnect.services.journal import DispatchJournal, Recovered
from interconnect.services.market import Market
from interconnect.services.member_job import member_job_name
from interconnect.services.members import Deletions, Members, condition
from interconnect.services.meter import Meter
from interconnect.services.usage_records import DELETED, UsageLedger

log = logging.getLogger(__name__)

EVENTS_BETWEEN_YIELDS = 64
"""Events handled before the loop lets other tasks run. Taking in thousands of jobs (a start-up,
a burst of creates) is CPU work whose awaits need not suspend: in one piece it starved the
leader Lease's renewal, and a replica that lost its lead that way never got it back."""

LEGACY_FINALIZER = FINALIZER
"""kopf's finalizer on ComputeJobs created by earlier versions: removed when they are deleted."""


def job_key(obj: Mapping[str, Any]) -> tuple[int, bool]:
    """What a ComputeJob watch event must be acted on for: a new generation, or its deletion."""
    meta = obj.get("metadata") or {}
    return int(meta.get("generation") or 0), bool(meta.get("deletionTimestamp"))


#: ComputeJobSpec attributes that decide a placement and its price (the API server keeps them fixed
#: once status.attempts > 0; see api/v1alpha1/job.py FIXED_ONCE_PLACED).
PLACEMENT_FIELDS = ("gpus", "origin", "replicas", "template", "max_price", "latency_tier", "placement",
                    "backoff_limit", "active_deadline_seconds")


def placed_spec_kept(old: ComputeJob, new: ComputeJob) -> ComputeJob:
    """``new`` with what decided ``old``'s placement kept: the API server refuses such changes once
    the status shows an attempt, and between the journal and that status write the operator does."""
    kept = {name: getattr(old.spec, name) for name in PLACEMENT_FIELDS}
    return new.model_copy(update={"spec": new.spec.model_copy(update=kept)})


class JobWatch:
    """ComputeJobs into the store (see the module docstring)."""

    def __init__(self, hub: Hub, jobs: JobStore, members: Members, market: Market, writer: StatusWriter,
                 journal: DispatchJournal, dispatcher: Dispatcher, deletions: Deletions, metrics: Metrics,
                 ledger: UsageLedger, meter: Meter, *, mark_dirty: Callable[[str], None],
                 wake: Callable[[], None]) -> None:
        self._hub = hub
        self._ledger = ledger
        self._meter = meter
        self._jobs = jobs
        self._members = members
        self._market = market
        self._writer = writer
        self._journal = journal
        self._dispatcher = dispatcher
        self._deletions = deletions
        self._metrics = metrics
        self._mark_dirty = mark_dirty
        self._wake = wake
        self.informer: Informer[tuple[int, bool]] | None = None
        """The ComputeJob watch (the reporter counts the objects it could not read)."""
        self._recovered: dict[str, Recovered] = {}
        """Placements found in the journal at start-up, until their jobs are seen."""
        self._events: asyncio.Queue[tuple[str, Mapping[str, Any]]] = asyncio.Queue()
        self._informer_task: asyncio.Task[None] | None = None

    async def recover_journal(self) -> None:
        """At start-up, before the jobs are read: the placements not yet in their jobs' status."""
        self._recovered = await self._journal.load()

    async def watch(self, timeout: float = 60.0) -> None:
        """Watch every ComputeJob; return once the existing ones are all taken in."""
        informer: Informer[tuple[int, bool]] = Informer(
            "hub/computejobs", partial(self._hub.custom.list_cluster_custom_object, GROUP, VERSION, "computejobs"),
            job_key, self._removed, on_object=self._seen)
        self.informer = informer
        self._informer_task = asyncio.create_task(informer.run(), name="hub-jobs")
        await asyncio.wait_for(informer.synced.wait(), timeout)
        handled = 0
        while not self._events.empty():
            await self._event(*self._events.get_nowait())
            handled += 1
            if not handled % EVENTS_BETWEEN_YIELDS:
                await asyncio.sleep(0)
        self._forget_recovered()

    async def run(self) -> None:
        """The event loop: one event at a time, in the order the watch saw them."""
        try:
            handled = 0
            while True:
                kind, obj = await self._events.get()
                await self._event(kind, obj)
                handled += 1
                if not handled % EVENTS_BETWEEN_YIELDS:
                    await asyncio.sleep(0)
        finally:
            self.stop()

    def stop(self) -> None:
        """Stop the hub watch (also when `run` never started: a load cancelled half-way)."""
        if self._informer_task is not None:
            self._informer_task.cancel()

    def _seen(self, obj: Mapping[str, Any]) -> None:
        self._events.put_nowait(("seen", obj))

    def _removed(self, change: Change[tuple[int, bool]]) -> None:
        if change.new is None:
            self._events.put_nowait(("deleted", {"metadata": {"uid": change.key}}))

    async def _event(self, kind: str, obj: Mapping[str, Any]) -> None:
        meta = obj["metadata"]
        try:
            if kind == "deleted" or meta.get("deletionTimestamp"):
                await self.job_deleted(obj)
                if LEGACY_FINALIZER in (meta.get("finalizers") or []):
                    await self._hub.remove_finalizer("computejobs", meta["name"], LEGACY_FINALIZER,
                                                     namespace=meta["namespace"])
                return
            await self.job_changed(dict(obj))
        except Exception:
            self._metrics.reconcile_errors.labels(loop="job-events").inc()
            log.exception("ComputeJob %s/%s", meta.get("namespace"), meta.get("name"))

    async def job_changed(self, body: dict[str, Any]) -> None:
        """A ComputeJob was created, changed, or seen at start-up."""
        uid = body["metadata"]["uid"]
        state = self._jobs.get(uid)
        observed = (body.get("status") or {}).get("observedGeneration")
        try:
            # The status is read at first sight only, to rebuild the state; from then on the state
            # is the truth. Our own status writes come back on the watch by the thousand: validating
            # and keeping their status again cost CPU and about half of each job's memory.
            job = ComputeJob.model_validate(body if state is None else {**body, "status": {}})
        except pydantic.ValidationError as exc:
            message = validation_message(exc)
            await self._hub.patch_status("computejobs", body["metadata"]["name"], {"status": {
                "phase": JobPhase.PENDING.value,
                "conditions": [condition("Accepted", False, "InvalidSpec", message, body)],
            }}, namespace=body["metadata"]["namespace"])
            await self._hub.event(body, "Warning", "InvalidSpec", message)
            return
        if state is None:
            job, recovered = self._recover(job)
            state = job_state(job)
            self._jobs.add(state)
            if state.phase is JobPhase.PENDING and not state.conditions:
                self._dispatcher.seen(state)
            if recovered is not None:
                state.unwritten.update(recovered.status)
                state.durable_attempt = recovered.attempt
            if state.placement and state.phase in ACTIVE:
                self._market.reserve(state.placement["offer"], uid, state.cards)
            if state.phase is JobPhase.SCHEDULED:
                self._dispatcher.dispatch_soon(state)
            if state.phase in (JobPhase.DISPATCHED, JobPhase.RUNNING):
                self._mark_dirty(uid)
        else:
            state.keep(job if state.attempt == 0 else placed_spec_kept(state.model, job))
        if observed != job.metadata.generation:
            if state.phase is JobPhase.PENDING and observed is None:
                state.unwritten["observedGeneration"] = job.metadata.generation  # with the placement
            else:
                await self._writer.write(state, {"observedGeneration": job.metadata.generation})
        if state.phase is JobPhase.PENDING:
            self._wake()

    def _recover(self, job: ComputeJob) -> tuple[ComputeJob, Recovered | None]:
        """The job with the placement the journal holds for it, if its status lacks that attempt.

        That placement may already have its member Job (the operator stopped between the
        create and the status write): dispatching it again adopts that Job, on that member.
        """
        uid = job.metadata.uid or ""
        entry = self._recovered.pop(uid, None)
        if entry is None:
            return job, None
        if entry.attempt <= job.status.attempts or job.status.phase not in (None, JobPhase.PENDING):
            self._journal.settled(uid)  # the status has it, or has moved past it
            return job, None
        status = {**job.status.model_dump(by_alias=True, exclude_none=True, mode="json"), **entry.status}
        log.info("job %s/%s: attempt %d recovered from dispatch journal %s", job.metadata.namespace,
                 job.metadata.name, entry.attempt, entry.segment)
        return job.model_copy(update={"status": type(job.status).model_validate(status)}), entry

    def _forget_recovered(self) -> None:
        """Journal entries of jobs that no longer exist are moot."""
        for uid in list(self._recovered):
            if uid not in self._jobs:
                self._journal.settled(uid)
        self._recovered.clear()

    async def job_deleted(self, body: Mapping[str, Any]) -> None:
        """Record what a running job was charged, forget the job and delete its member Job.

        ComputeJobs carry no finalizer (one write less per job): a member Job this cannot delete
        now (member down, operator stopped) is an orphan that the member's garbage collection
        pass (`Failover.collect_garbage`, and the fence at start-up) deletes later.
        """
        uid = body["metadata"]["uid"]
        state = self._jobs.remove(uid)
        if state is not None and state.phase in (JobPhase.DISPATCHED, JobPhase.RUNNING) \
                and self._members.connected(state.node or "") is not None:
            # Its pods may hold their cards for their whole grace period: metered until they are
            # gone, then billed (`Meter.meter_departed`).
            self._meter.depart(state)
        elif state is not None and state.phase in ACTIVE:
            # What its attempt was charged so far (its last durable usage, as the counters have it)
            # stays on the bill; the job is gone, so this is the only chance to record it.
            try:
                await self._ledger.record(state, state.attempt, DELETED, now())
            except Exception as exc:
                self._metrics.reconcile_errors.labels(loop="usage-records").inc()
                log.warning("ComputeUsage of deleted job %s attempt %d not written: %s", uid, state.attempt, exc)
        self._journal.settled(uid)
        self._market.release(uid)
        self._wake()
        status = body.get("status") or {}
        member_job = (state.member_job if state else None) or status.get("memberJob")
        placement = (state.placement if state else None) or status.get("placement")
        if not placement:
            return
        attempt = state.attempt if state else int(status.get("attempts", 1))
        name = member_job["name"] if member_job else member_job_name(uid, attempt)
        member = self._members.connected(placement["node"])
        if member is not None:
            self._deletions.mark(name)
            try:
                if not await member.delete_job(name):  # nothing to see deleted: forget it now
                    self._deletions.seen_gone(name)
            except Exception as exc:
                log.warning("cannot delete %s on %s now (%s): left to garbage collection", name, member.name, exc)

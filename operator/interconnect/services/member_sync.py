"""Member to hub: what the members run, routed from their watches into each job's status.

`MemberSync` is where the members' watch events arrive. A Job or pod of ours puts its
ComputeJob's UID on the work queue (a late create of a superseded attempt is deleted at once);
anything else (nodes, other pods' cards) wakes the scheduler, since capacity changed. Each
dirty job is synced in a task of its own, never twice at once: the pure decision
(`core.sync.member_outcome`) says what the member Job and pods mean, and the state changes
only once the status write recording it has landed. A terminal transition writes the attempt's
ComputeUsage record (`UsageLedger`) before that status write.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from interconnect.adapters.member import DispatchedJob, DispatchedPod, MemberChange, MemberCluster
from interconnect.adapters.metrics import Metrics
from interconnect.api.v1alpha1 import to_api
from interconnect.core.sync import (
    START_DEADLINE_EXCEEDED,
    MemberJobView,
    PodView,
    member_outcome,
    start_failure,
    start_overdue,
)
from interconnect.core.vocabulary import JobPhase
from interconnect.services.dispatcher import Dispatcher
from interconnect.services.events import EventRecorder
from interconnect.services.failover import Failover
from interconnect.services.jobs import JobState, JobStore, StatusWriter, iso, now, parse_time
from interconnect.services.market import Market
from interconnect.services.member_job import member_job_name
from interconnect.services.members import Deletions, Members
from interconnect.services.meter import Meter, UsageDelta
from interconnect.services.tasks import Tasks
from interconnect.services.usage_records import UsageLedger

log = logging.getLogger(__name__)


class MemberSync:
    """Members' watch events to job status (see the module docstring)."""

    def __init__(self, jobs: JobStore, members: Members, market: Market, writer: StatusWriter, meter: Meter,
                 failover: Failover, deletions: Deletions, events: EventRecorder, metrics: Metrics, tasks: Tasks,
                 ledger: UsageLedger, *, wake: Callable[[], None], started: asyncio.Event) -> None:
        self._jobs = jobs
        self._ledger = ledger
        self._members = members
        self._market = market
        self._writer = writer
        self._meter = meter
        self._failover = failover
        self._deletions = deletions
        self._events = events
        self._metrics = metrics
        self._tasks = tasks
        self._wake = wake
        self._started = started
        self._dirty: set[str] = set()
        self._dirty_event = asyncio.Event()
        self._syncing: set[str] = set()
        self._resync: set[str] = set()
        self.dispatcher: Dispatcher | None = None
        """For the Running latency (set by the wiring)."""

    # ------------------------------------------------------------------ routing

    def member_changed(self, member: str, change: MemberChange) -> None:
        """A member's watch event: route it, never act on it here."""
        value = change.new if change.new is not None else change.old
        if not isinstance(value, DispatchedJob | DispatchedPod):
            self._wake()  # capacity changed: pending jobs may fit now
            return
        if isinstance(value, DispatchedJob):
            if change.new is None:
                if not self._deletions.seen_gone(value.name):
                    state = self._jobs.get(value.job_uid)
                    if state is not None and state.attempt == value.attempt:
                        state.member_job_deleted = True
            elif (not value.deleting and self._started.is_set() and value.name not in self._deletions
                    and self._failover.superseded(value.job_uid, value.attempt, member)):
                # e.g. a create sent before the member froze, carried out after it came back
                self._deletions.mark(value.name)
                self._tasks.spawn(self._failover.delete_superseded(member, value), name=f"fence-{value.name}")
        self.mark_dirty(value.job_uid)

    def mark_dirty(self, uid: str) -> None:
        self._dirty.add(uid)
        self._dirty_event.set()

    async def run(self) -> None:
        """Sync each changed job in a task of its own: a slow write never holds up the others,
        and one job is never synced twice at once (a change meanwhile syncs it again after)."""
        while True:
            await self._dirty_event.wait()
            self._dirty_event.clear()
            batch, self._dirty = self._dirty, set()
            for uid in batch:
                if uid in self._syncing:
                    self._resync.add(uid)
                    continue
                self._syncing.add(uid)
                self._tasks.spawn(self._sync_one(uid), name=f"sync-{uid}")

    async def _sync_one(self, uid: str) -> None:
        try:
            await self.sync_job(uid)
        except Exception as exc:
            self._metrics.reconcile_errors.labels(loop="sync").inc()
            log.warning("sync of %s failed: %s; retrying", uid, exc)
            await asyncio.sleep(0.5)
            self._resync.add(uid)
        finally:
            self._syncing.discard(uid)
            if uid in self._resync:
                self._resync.discard(uid)
                self.mark_dirty(uid)

    # ------------------------------------------------------------------ start deadlines

    async def run_deadlines(self, interval: float, default_deadline: float) -> None:
        """Every ``interval``: end the attempts whose pods missed their start deadline."""
        while True:
            await asyncio.sleep(interval)
            for state in self._jobs.in_phase(JobPhase.DISPATCHED, JobPhase.RUNNING):
                try:
                    await self._check_start(state, default_deadline)
                except Exception as exc:
                    self._metrics.reconcile_errors.labels(loop="start-deadline").inc()
                    log.warning("start deadline of %s: %s", state.uid, str(exc) or type(exc).__name__)

    async def _check_start(self, state: JobState, default_deadline: float) -> None:
        member, _, pods = self._member_objects(state)
        placed = state.placement.get("placedAt") if state.placement else None
        if member is None or not placed or self.dispatcher is None:
            return
        deadline = float(state.kept.start_deadline_seconds or default_deadline)
        started = sum(1 for p in pods if p.started is not None)
        replicas = state.kept.replicas
        placed_at = parse_time(placed)
        assert placed_at is not None
        if not start_overdue(placed_at, now(), deadline, replicas, started):
            return
        message = start_failure(member.name, deadline, replicas,
                                [PodView(p.name, p.phase, p.reason, p.message, p.unschedulable) for p in pods
                                 if p.started is None], started)
        at = self._meter.member_clock(state)
        if at is not None and started:
            await self._meter.write_usage(state, pods, at)  # what did start is billed
        await self.end_attempt(state, message, START_DEADLINE_EXCEEDED)

    async def end_attempt(self, state: JobState, message: str, reason: str) -> None:
        """Fail the job (durable first, cards back) and delete its member Job: its pods must not
        go on holding cards (a start deadline missed, a budget spent)."""
        member = self._members.connected(state.node) if state.node else None
        attempt = state.attempt
        assert self.dispatcher is not None
        await self.dispatcher.refuse(state, message, reason)
        if member is not None:
            name = member_job_name(state.uid, attempt)
            self._deletions.mark(name)
            if not await member.delete_job(name):  # nothing to see deleted: forget it now
                self._deletions.seen_gone(name)

    # ------------------------------------------------------------------ the sync

    def _member_objects(self, state: JobState) -> tuple[MemberCluster | None, DispatchedJob | None,
                                                        list[DispatchedPod]]:
        member = self._members.connected(state.node) if state.node else None
        if member is None:
            return None, None, []
        return member, member.cached_job(state.uid, state.attempt), member.cached_pods(state.uid, state.attempt)

    async def sync_job(self, uid: str) -> None:
        state = self._jobs.get(uid)
        if state is None or state.phase not in (JobPhase.DISPATCHED, JobPhase.RUNNING):
            return
        member, mjob, pods = self._member_objects(state)
        if member is None:
            return
        outcome = member_outcome(
            state.phase, member.name, str(state.member_job["name"]) if state.member_job else None,
            None if mjob is None else MemberJobView(mjob.complete, mjob.failed_reason, mjob.failed_message,
                                                   mjob.completion_time),
            [PodView(p.name, p.phase, p.reason, p.message, p.unschedulable) for p in pods],
            deleted_by_others=state.member_job_deleted)
        saved = (state.phase, list(state.conditions), state.usage, [dict(h) for h in state.history])
        status: dict[str, Any] = {}
        if outcome.condition is not None:
            self._writer.set(state, *outcome.condition)
        if outcome.phase is not None:
            state.phase = outcome.phase
            status["phase"] = outcome.phase.value
            if outcome.phase.is_terminal:
                status["completionTime"] = iso(outcome.completed_at or now())
            elif outcome.phase is JobPhase.RUNNING and self.dispatcher is not None:
                self.dispatcher.observe_latency(state, "running")
        started = [p.started for p in pods if p.started]
        if started and "startTime" not in state.status_patch:
            status["startTime"] = iso(min(started))
        deltas: list[UsageDelta] = []
        if state.phase.is_terminal:
            usage, deltas = self._meter.accrue(state, pods, self._meter.member_clock(state) or now(), final=True)
            if usage is not None:
                status["usage"] = usage
                status["attemptHistory"] = state.history
        if not status and outcome.event is None:
            return  # a condition alone (e.g. MemberUnschedulable) rides with the next write
        status["conditions"] = [to_api(c) for c in state.conditions]
        try:
            if state.phase.is_terminal:
                # The bill first: a job whose end is in its status always has its record.
                await self._ledger.record(state, state.attempt, state.phase.value, outcome.completed_at or now())
            await self._writer.write(state, status)
        except Exception:
            # Not durable, so not done: roll back and let the sync loop try again.
            state.phase, state.conditions, state.usage, state.history = saved
            raise
        if "startTime" in status:
            state.status_patch["startTime"] = status["startTime"]
        if state.phase.is_terminal:
            self._market.release(uid)
            self._wake()
        self._meter.count(state, deltas)
        if outcome.event is not None:
            self._events.record(state.ref, *outcome.event)

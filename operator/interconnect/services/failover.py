"""Failover and fencing: lost members' jobs placed elsewhere, superseded attempts never run twice.

`Failover` runs on its own timer. A job whose node has been lost for longer than its grace
(``failurePolicy.rePlaceAfterSeconds``) gets its attempt ended (outcome NodeLost) and is placed
again, or fails with ``rePlace: Never``; the attempt's ComputeUsage record (what it ran up to the
loss) and then the status write come first, so the next placement can never be written before
this attempt's end. When a member answers again it is fenced: what superseded attempts left there
is metered up to the loss and deleted, listed from the member's API server (the watches may lag
after an outage), and the node takes no new work until none is left. Garbage collection, per
member on its own interval, deletes member Jobs whose ComputeJob is gone or whose attempt was
superseded.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import time
from typing import Any

from interconnect.adapters.member import DispatchedJob, DispatchedPod, MemberUnavailable
from interconnect.adapters.metrics import Metrics
from interconnect.api.v1alpha1 import set_condition, to_api
from interconnect.core.vocabulary import JobPhase
from interconnect.services.config import Settings
from interconnect.services.events import EventRecorder
from interconnect.services.jobs import NODE_LOST, JobState, JobStore, StatusWriter, iso, now
from interconnect.services.journal import DispatchJournal
from interconnect.services.market import Market
from interconnect.services.members import Deletions, Members, NodeState
from interconnect.services.meter import ACCRUAL_MARGIN_SECONDS, Meter
from interconnect.services.tasks import Tasks
from interconnect.services.usage_records import UsageLedger

log = logging.getLogger(__name__)

GC_INTERVAL_SECONDS = 30.0
SUPERSEDE_CONCURRENCY = 32
"""Jobs of lost nodes superseded at once (each is a usage record and a status write on the hub).
One at a time, a lost member with 5,000 jobs took 10,000 hub round trips in a row to re-place."""


class Failover:
    """Re-placement, fencing and garbage collection (see the module docstring)."""

    def __init__(self, jobs: JobStore, members: Members, market: Market, writer: StatusWriter, meter: Meter,
                 journal: DispatchJournal, deletions: Deletions, events: EventRecorder, metrics: Metrics,
                 settings: Settings, tasks: Tasks, ledger: UsageLedger, *, wake: Any) -> None:
        self._jobs = jobs
        self._ledger = ledger
        self._members = members
        self._market = market
        self._writer = writer
        self._meter = meter
        self._journal = journal
        self._deletions = deletions
        self._events = events
        self._metrics = metrics
        self._settings = settings
        self._tasks = tasks
        self._wake = wake
        self._last_gc = time.monotonic()

    def superseded(self, job_uid: str, attempt: int, node: str | None = None) -> bool:
        """A member Job or pod that must not run: its attempt is not the job's live one, or it is a
        copy of the live attempt on another member than the one it was placed on (written by a
        replica that lost the lead while it dispatched)."""
        state = self._jobs.get(job_uid)
        if state is None or attempt != state.attempt or state.lost_at(attempt) is not None:
            return True
        return node is not None and state.placement is not None and state.placement["node"] != node

    def _attempt_node(self, job_uid: str, attempt: int) -> str | None:
        state = self._jobs.get(job_uid)
        entry = next((h for h in state.history if h["attempt"] == attempt), None) if state else None
        return str(entry["node"]) if entry else None

    def grace(self, state: JobState) -> float | None:
        """Seconds a job waits for its lost node before it is re-placed; None: it must not be."""
        policy = state.kept.failure_policy
        if policy is not None and policy.re_place == "Never":
            return None
        if policy is not None and policy.re_place_after_seconds is not None:
            return float(policy.re_place_after_seconds)
        return self._settings.re_place_after

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self._settings.heartbeat_interval)
            try:
                await self.fail_over()
            except Exception:
                self._metrics.reconcile_errors.labels(loop="failover").inc()
                log.exception("failover pass failed")
            if time.monotonic() - self._last_gc >= GC_INTERVAL_SECONDS:
                self._last_gc = time.monotonic()
                self.collect_garbage()

    async def fail_over(self) -> None:
        """Re-place (or, with rePlace: Never, fail) the active jobs of nodes lost past their grace.
        Each job on its own: one whose write fails waits for the next pass, the others go on."""
        at = now()
        due: list[tuple[JobState, NodeState, bool]] = []
        for node in self._members:
            if node.lost_since is None or node.ready:
                continue
            lost_for = (at - node.lost_since).total_seconds()
            for state in self._jobs.active_on(node.name):
                grace = self.grace(state)
                if lost_for >= (self._settings.re_place_after if grace is None else grace):
                    due.append((state, node, grace is not None))
        slots = asyncio.Semaphore(SUPERSEDE_CONCURRENCY)

        async def supersede(state: JobState, node: NodeState, re_place: bool) -> None:
            async with slots:
                try:
                    await self._supersede(state, node, re_place=re_place)
                except Exception as exc:
                    self._metrics.reconcile_errors.labels(loop="failover").inc()
                    log.warning("failover of %s failed: %s", state.uid, str(exc) or type(exc).__name__)

        await asyncio.gather(*(supersede(*job) for job in due))

    async def _supersede(self, state: JobState, node: NodeState, *, re_place: bool) -> None:
        """End the attempt on a lost node: durable first, then the new attempt or the failure.

        Nothing in memory changes before the status is written, so the placement loop cannot
        place the next attempt (and write it) before this attempt's end is recorded; its
        ComputeUsage record is written before that.
        """
        assert node.lost_since is not None
        attempt, lost_since = state.attempt, node.lost_since
        grace = self.grace(state)
        waited = self._settings.re_place_after if grace is None else grace
        lost = (f"node {node.name} was declared lost at {iso(lost_since)} ({node.ready_message}) and did not "
                f"come back within {waited:.0f}s")
        history = [dict(h, outcome=NODE_LOST, finishedAt=iso(lost_since)) if h["attempt"] == attempt else dict(h)
                   for h in state.history]
        gen, at = state.kept.generation, now()
        conditions = list(state.conditions)
        status: dict[str, Any] = {"attemptHistory": history}
        if re_place:
            phase = JobPhase.PENDING
            message = f"attempt {attempt} superseded: {lost}; placing attempt {attempt + 1} elsewhere"
            for type_ in ("Scheduled", "Dispatched", "Running"):
                if type_ == "Scheduled" or any(c.type == type_ for c in conditions):
                    conditions = set_condition(conditions, type_, False, NODE_LOST, message, gen, at)
            status.update(placement=None, memberJob=None)
        else:
            phase = JobPhase.FAILED
            message = f"{lost}; failurePolicy.rePlace is Never, so the job is not run again"
            conditions = set_condition(conditions, "Failed", True, NODE_LOST, message, gen, at)
            status["completionTime"] = iso(at)
        status.update(phase=phase.value, conditions=[to_api(c) for c in conditions])
        # The bill first: what the attempt ran up to the loss (what it runs after is not charged).
        await self._ledger.record(state, attempt, NODE_LOST, lost_since, lost_since=lost_since)
        await self._writer.write(state, status)
        state.history, state.conditions, state.phase = history, conditions, phase
        state.dispatching = None
        if re_place:
            state.placement, state.member_job = None, None
        self._market.release(state.uid)
        node.fencing = True
        self._metrics.failovers.labels(node=node.name, outcome="replaced" if re_place else "failed").inc()
        self._events.record(state.ref, "Warning", NODE_LOST, message)
        self._wake()

    def collect_garbage(self) -> None:
        """Delete member Jobs that must not run: their ComputeJob is gone (deleted while the
        member or the operator was down) or their attempt was superseded."""
        self._journal.retry_deletes()
        for node in self._members:
            if node.member is None or not node.ready:
                continue
            for job in list(node.member.jobs.items.values()):
                if not job.deleting and self.superseded(job.job_uid, job.attempt, node.name):
                    self._tasks.spawn(self.delete_superseded(node.name, job), name=f"gc-{job.name}")

    async def fence_all(self) -> None:
        """At start-up, once every job is known: clean each member of superseded attempts."""
        await asyncio.gather(*(self.fence(n) for n in self._members if n.member is not None and n.ready),
                             return_exceptions=True)

    async def fence(self, node: NodeState) -> None:
        """Meter and delete what superseded attempts left on a member; fenced until none is left.

        Lists from the member's API server, not the watches, which may lag after an outage.
        """
        member = node.member
        if member is None:
            return
        jobs, pods = await member.list_ours()
        stale_jobs = [j for j in jobs if self.superseded(j.job_uid, j.attempt, node.name)]
        stale_pods = [p for p in pods if self.superseded(p.job_uid, p.attempt, node.name)]
        await self._meter_superseded(node.name, stale_pods)
        stale_names = {j.name for j in stale_jobs}
        for job in stale_jobs:
            if not job.deleting:
                self._deletions.mark(job.name)
                if await member.delete_job(job.name, uid=job.uid, epoch=job.epoch):
                    self._metrics.fenced_jobs.labels(node=node.name).inc()
                    log.info("fence %s: deleted Job %s of superseded attempt %d", node.name, job.name, job.attempt)
                else:  # nothing deleted: no deletion will be seen to forget the name
                    self._deletions.seen_gone(job.name)
        for pod in stale_pods:
            if not pod.deleted and pod.member_job not in stale_names:
                await member.delete_pod(pod.name, uid=pod.uid, epoch=pod.epoch)
        # Only a superseded attempt of a job that lives on can run twice; an orphan (its ComputeJob
        # is gone) is deleted all the same but keeps no work away. A finished pod runs nothing, even
        # while the member's Job controller still holds its object.
        node.fencing = any(p.job_uid in self._jobs and p.phase not in ("Succeeded", "Failed") for p in stale_pods) \
            or any(j.job_uid in self._jobs for j in stale_jobs)
        if not node.fencing:
            self._wake()

    async def _meter_superseded(self, node: str, pods: list[DispatchedPod]) -> None:
        """Record what superseded attempts ran on the member they were placed on: charged up to
        the loss, the rest apart. A copy on another member was never placed, so never billed."""
        by_attempt: dict[tuple[str, int], list[DispatchedPod]] = {}
        for pod in pods:
            if self._attempt_node(pod.job_uid, pod.attempt) == node:
                by_attempt.setdefault((pod.job_uid, pod.attempt), []).append(pod)
        at = now() - dt.timedelta(seconds=ACCRUAL_MARGIN_SECONDS)
        for (uid, attempt), group in by_attempt.items():
            state = self._jobs.get(uid)
            if state is not None and any(h["attempt"] == attempt for h in state.history):
                await self._meter.write_usage(state, group, at, attempt)

    async def delete_superseded(self, node_name: str, job: DispatchedJob) -> None:
        member = self._members.connected(node_name)
        if member is None:
            return
        self._deletions.mark(job.name)
        with contextlib.suppress(MemberUnavailable):
            pods = await member.pods_of(job.job_uid)
            await self._meter_superseded(node_name, [p for p in pods if p.member_job == job.name])
        if await member.delete_job(job.name, uid=job.uid, epoch=job.epoch):
            self._metrics.fenced_jobs.labels(node=node_name).inc()
            log.info("deleted Job %s of superseded attempt %d on %s", job.name, job.attempt, node_name)
        else:
            self._deletions.seen_gone(job.name)

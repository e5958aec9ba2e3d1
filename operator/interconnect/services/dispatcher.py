"""Dispatch: a placed job becomes a member Job, exactly once per attempt.

`Dispatcher` makes the placement durable first (in the dispatch journal, with the rest of its
placement pass), then creates the member Job, named from the job's UID and attempt, so a retry
or a restart adopts it instead of creating a second one. A member that will never take the Job
(a 4xx other than 409, 429, 408 and 401) or a workload our policy refuses ends the job at once
and gives its cards back; anything else is retried with backoff until the attempt is superseded.
An attempt ended here that ran (a start deadline, a budget) has its ComputeUsage record written
before its end.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable

from kubernetes_asyncio.client.exceptions import ApiException

from interconnect.adapters.member import MemberUnavailable
from interconnect.adapters.metrics import Metrics
from interconnect.api.v1alpha1 import to_api
from interconnect.core.sync import member_refused, summarised
from interconnect.core.vocabulary import JobPhase
from interconnect.core.workload_policy import WorkloadPolicyError
from interconnect.services.events import EventRecorder
from interconnect.services.jobs import JobState, JobStore, StatusWriter, iso, now
from interconnect.services.journal import DispatchJournal
from interconnect.services.market import Market
from interconnect.services.member_job import build_member_job
from interconnect.services.members import Members
from interconnect.services.tasks import Tasks
from interconnect.services.usage_records import UsageLedger

log = logging.getLogger(__name__)

DEFERRED_WRITE_SECONDS = 1.0
"""How long a Dispatched status waits to ride along with the Running one."""
MEMBER_REJECTED = "MemberRejected"
WORKLOAD_POLICY = "WorkloadPolicy"


def api_message(exc: ApiException) -> str:
    """The API server's own message of an error answer, without its JSON envelope."""
    try:
        body = json.loads(exc.body or "{}")
    except ValueError:
        return str(exc.reason or exc.status)
    return str(body.get("message") or exc.reason or exc.status) if isinstance(body, dict) else str(exc.reason)


def _refusal(exc: Exception, node: str) -> tuple[str, str] | None:
    """(message, reason) when ``exc`` means the workload can never run, else None (retry).

    Our policy refusing it (admission should have already), or the member refusing it (422
    invalid, 403 forbidden by its quota or admission, ...): retrying would hold the cards for
    nothing."""
    if isinstance(exc, WorkloadPolicyError):
        return str(exc), WORKLOAD_POLICY
    if isinstance(exc, ApiException) and member_refused(exc.status):
        return f"member {node} refused the Job (HTTP {exc.status}): {api_message(exc)}", MEMBER_REJECTED
    return None


class Dispatcher:
    """Placed jobs to member Jobs (see the module docstring)."""

    def __init__(self, jobs: JobStore, members: Members, market: Market, writer: StatusWriter,
                 journal: DispatchJournal, events: EventRecorder, metrics: Metrics, tasks: Tasks,
                 ledger: UsageLedger, *, mark_dirty: Callable[[str], None], wake: Callable[[], None],
                 max_grace: int | None = None) -> None:
        self._jobs = jobs
        self._ledger = ledger
        self._max_grace = max_grace
        self._members = members
        self._market = market
        self._writer = writer
        self._journal = journal
        self._events = events
        self._metrics = metrics
        self._tasks = tasks
        self._mark_dirty = mark_dirty
        self._wake = wake

    def dispatch_soon(self, state: JobState) -> None:
        state.dispatching = state.attempt
        self._tasks.spawn(self.dispatch(state.uid, state.attempt), name=f"dispatch-{state.uid}-{state.attempt}")

    def observe_latency(self, state: JobState, stage: str) -> None:
        created = state.kept.created
        if created is not None:
            self._metrics.dispatch_latency.labels(stage=stage).observe(max(0.0, (now() - created).total_seconds()))

    def seen(self, state: JobState) -> None:
        """A new job reached the operator's watch: the watch stage ends (from its creation
        timestamp, whole seconds), the queue stage starts."""
        created = state.kept.created
        if created is not None:
            self._metrics.dispatch_stage.labels(stage="watch").observe(max(0.0, (now() - created).total_seconds()))
        state.stage_at = time.monotonic()

    def stage_done(self, state: JobState, stage: str) -> None:
        """The job leaves `stage` now (see interconnect_dispatch_stage_seconds); the next starts."""
        at = time.monotonic()
        if state.stage_at is not None:
            self._metrics.dispatch_stage.labels(stage=stage).observe(max(0.0, at - state.stage_at))
        state.stage_at = at

    async def dispatch(self, uid: str, attempt: int) -> None:
        """Persist the placement, then create (or adopt) the member Job; retry until it exists.

        Stops as soon as the attempt is superseded (its node was lost): a member Job it still
        manages to create is deleted by the fence.
        """
        backoff = 0.5
        state = self._jobs.get(uid)
        while state is not None and state.phase is JobPhase.SCHEDULED and state.attempt == attempt:
            assert state.placement is not None and state.member_job is not None
            try:
                if state.durable_attempt < attempt:
                    # Durable before the member Job exists, in the journal with the rest of the pass;
                    # the status takes it with the next write (a restart in between recovers it).
                    placed = {
                        "phase": JobPhase.SCHEDULED.value, "placement": state.placement,
                        "attempts": state.attempt, "memberJob": state.member_job, "unschedulable": None,
                        "attemptHistory": state.history,
                        "conditions": [to_api(c) for c in state.conditions]}
                    await self._journal.record(uid, placed)
                    self.stage_done(state, "journal")
                    if state.attempt != attempt or state.phase is not JobPhase.SCHEDULED:
                        self._journal.settled(uid)  # superseded while it was written
                        break
                    state.unwritten.update(placed)
                    state.durable_attempt = attempt
                    # Off the critical path: an event is best effort, the member Job is not.
                    self._events.record(state.ref, "Normal", "Scheduled", (
                        state.conditions[-1].message if state.conditions else "placed")
                        + f"; member Job {state.member_job['namespace']}/{state.member_job['name']}")
                node = self._members.get(state.placement["node"])
                if node is None or node.member is None:
                    raise MemberUnavailable(f"member {state.placement['node']} is not connected")
                if node.fencing or node.lost_since is not None:
                    raise MemberUnavailable(f"member {node.name} is {node.ready_reason}: {node.ready_message}")
                offer = self._market.offers.get(state.placement["offer"])
                selector = offer.spec.node_selector.match_labels if offer and offer.spec.node_selector else {}
                manifest = build_member_job(
                    state.model, attempt=state.attempt, namespace=state.member_job["namespace"],
                    offer=state.placement["offer"], gpu_model=state.placement["gpuModel"], node_selector=selector,
                    allowed_tolerations=[to_api(t) for t in offer.spec.tolerations] if offer else [],
                    max_termination_grace=self._max_grace,
                    trace={"node": state.placement["node"], "identity-code": str(state.placement["identityCode"]),
                           "price": f"{state.placement['price']['amount']} {state.placement['price']['currency']}"
                                    f"/{state.placement['price']['unit']}"})
                member_uid, created = await node.member.create_job(manifest)
                if state.attempt != attempt or state.phase is not JobPhase.SCHEDULED:
                    break  # superseded meanwhile: the fence deletes what was just created
                if created:
                    self.observe_latency(state, "created")
                    self.stage_done(state, "member-create")
                state.stage_at = None
                state.member_job = {**state.member_job, "uid": member_uid}
                state.phase = JobPhase.DISPATCHED
                self._writer.set(state, "Dispatched", True, "MemberJobCreated" if created else "MemberJobAdopted",
                                 f"Job {state.member_job['namespace']}/{state.member_job['name']} on {node.name}")
                # Not written at once: the pods usually run within a second, and the Running write
                # then carries this too (one hub write per job less). A restart before either is
                # written re-dispatches, and creating the same Job again adopts it.
                state.unwritten.update(phase=JobPhase.DISPATCHED.value, memberJob=state.member_job,
                                       conditions=[to_api(c) for c in state.conditions])
                self._tasks.spawn(self._flush_later(uid), name=f"flush-{uid}")
                self._mark_dirty(uid)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                refusal = _refusal(exc, state.placement["node"])
                if refusal is not None and await self._refused(state, *refusal):
                    break
                log.warning("dispatch of %s failed: %s; retrying in %.1fs", uid, exc, backoff)
                if state.durable_attempt == attempt and "placement" in state.unwritten:
                    # It may wait long (member down): show where it is going and why it waits.
                    with contextlib.suppress(Exception):
                        await self._writer.write(state, {})
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 10.0)
                state = self._jobs.get(uid)
        if state is not None and state.dispatching == attempt:
            state.dispatching = None

    async def _flush_later(self, uid: str) -> None:
        """Write what is still unwritten of a job's status after a short while."""
        await asyncio.sleep(DEFERRED_WRITE_SECONDS)
        for _ in range(5):
            state = self._jobs.get(uid)
            if state is None or not state.unwritten:
                return
            try:
                await self._writer.write(state, {})
                return
            except Exception as exc:
                log.warning("status of %s not written yet: %s", uid, exc)
                await asyncio.sleep(2.0)

    async def _refused(self, state: JobState, message: str, reason: str) -> bool:
        """`refuse`, False when its write did not land (the loop tries again)."""
        try:
            await self.refuse(state, message, reason)
        except Exception as exc:
            log.warning("failing %s (%s) not written yet: %s", state.uid, reason, exc)
            return False
        return True

    async def refuse(self, state: JobState, message: str, reason: str) -> None:
        """End the job as Failed: its workload can never run (our policy or the member refuses it),
        or its attempt must stop (a start deadline missed, a budget spent). What the attempt ran is
        recorded first (its ComputeUsage; none when nothing ran), then the status; the cards go
        back once it is durable."""
        message = summarised(message)
        conditions = self._writer.conditions_with(state, "Failed", True, reason, message)
        await self._ledger.record(state, state.attempt, reason, now())
        await self._writer.write(state, {"phase": JobPhase.FAILED.value, "completionTime": iso(now()),
                                         "conditions": [to_api(c) for c in conditions]})
        state.phase, state.conditions = JobPhase.FAILED, conditions
        self._market.release(state.uid)
        self._events.record(state.ref, "Warning", reason, message)
        self._wake()

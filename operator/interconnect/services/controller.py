"""The hub's controller: members, offers and jobs, placed by one loop and synced from watches.

Placement is serial (one loop, like kube-scheduler), so a reservation taken in the loop can
never be taken twice; dispatch to members and status writes run concurrently after it. What
the members run is learnt from their watches, never by polling per job. Every decision that
must survive a restart is in the ComputeJob's status before it acts on a member: placement
and attempt are written first, then the member Job (named from UID and attempt) is created,
so a retry adopts instead of duplicating.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import logging
import time
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal
from functools import partial
from typing import Any

import pydantic
from kubernetes_asyncio.client.exceptions import ApiException

from interconnect.adapters.hub import Hub
from interconnect.adapters.informer import Change, Informer
from interconnect.adapters.member import (
    DispatchedJob,
    DispatchedPod,
    MemberChange,
    MemberCluster,
    MemberUnauthorized,
    MemberUnavailable,
)
from interconnect.adapters.metrics import Metrics
from interconnect.api.v1alpha1 import (
    ComputeJob,
    ComputeJobStatus,
    ComputeNode,
    ComputeOffer,
    Condition,
    set_condition,
    to_api,
)
from interconnect.api.v1alpha1.quota import ComputeQuota
from interconnect.core.capacity import OfferCards, capacity_by_model, offer_cards
from interconnect.core.credentials import CREDENTIALS_EXPIRED, ServiceAccountToken, expired, expired_message
from interconnect.core.eligibility import eligibility_failures
from interconnect.core.fair_share import FairShareQueue, dominant_share
from interconnect.core.latency import LatencyTable
from interconnect.core.metering import PodAccrual, PodRun, UsageRecord, accrue, cost
from interconnect.core.money import Money, format_amount
from interconnect.core.placement import Decision, JobRequest, OfferView, PlacementSnapshot, place
from interconnect.core.quota import (
    NO_USAGE,
    Charge,
    Month,
    QuotaJob,
    QuotaLimit,
    QuotaVerdict,
    TenantUsage,
    check,
    check_estimate,
    tenant_usage,
    within_pending_limit,
    within_priority_cap,
)
from interconnect.core.reservations import Reservation, ReservationLedger
from interconnect.core.vocabulary import API_VERSION, GROUP, VERSION, JobPhase
from interconnect.core.workload_policy import WorkloadPolicyError
from interconnect.services.config import Settings
from interconnect.services.credentials import CredentialRenewer, Renewal
from interconnect.services.events import EventRecorder
from interconnect.services.identity import IdentityRegistry
from interconnect.services.journal import DispatchJournal, Recovered
from interconnect.services.member_job import build_member_job, member_job_name
from interconnect.services.quota import quota_status, tenant_quota
from interconnect.services.translate import job_request, node_view, offer_view, price_of

log = logging.getLogger(__name__)

ACTIVE = (JobPhase.SCHEDULED, JobPhase.DISPATCHED, JobPhase.RUNNING)
ACCRUAL_MARGIN_SECONDS = 1.0
GC_INTERVAL_SECONDS = 30.0
PLACEMENT_COALESCE_SECONDS = 0.01
DEFERRED_WRITE_SECONDS = 1.0
"""How long a Dispatched status waits to ride along with the Running one."""
LEGACY_FINALIZER = "interconnect.dev/finalizer"
"""kopf's finalizer on ComputeJobs created by earlier versions: removed when they are deleted."""
NODE_LOST = "NodeLost"
"""Outcome of an attempt superseded because its node was lost, and the reason shown for it."""


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def iso(t: dt.datetime | None) -> str | None:
    return t.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if t else None


@dataclass(frozen=True, slots=True)
class UsageDelta:
    """What one accrual added to one attempt: what the counters must add, once it is durable."""

    attempt: int
    card_hours: Decimal
    cost: Decimal
    lost_card_hours: Decimal


@dataclass
class NodeState:
    model: ComputeNode
    member: MemberCluster | None = None
    connection_key: tuple[str, str, str, str] | None = None
    registered: bool = False
    ready: bool = False
    ready_reason: str = "Connecting"
    ready_message: str = "connecting to the member"
    last_ok: float | None = None
    last_status_write: float = 0.0
    connect_error: str | None = None
    lost_since: dt.datetime | None = None
    """When the node was declared lost (its Ready condition's transition, whole seconds)."""
    fencing: bool = False
    """Superseded attempts may still run on the member: nothing new goes there until they are gone."""

    @property
    def name(self) -> str:
        return self.model.metadata.name


@dataclass
class JobState:
    model: ComputeJob
    phase: JobPhase
    attempt: int
    conditions: list[Condition]
    placement: dict[str, Any] | None = None
    member_job: dict[str, Any] | None = None
    last_summary: str | None = None
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

    @property
    def uid(self) -> str:
        return self.model.metadata.uid or ""

    @property
    def cards(self) -> int:
        return self.model.spec.gpus.count * self.model.spec.replicas

    def lost_at(self, attempt: int) -> dt.datetime | None:
        """When ``attempt``'s node was declared lost, if the attempt was superseded for it."""
        for entry in self.history:
            if entry["attempt"] == attempt and entry.get("outcome") == NODE_LOST and entry.get("finishedAt"):
                return dt.datetime.fromisoformat(str(entry["finishedAt"]).replace("Z", "+00:00"))
        return None

    @property
    def ref(self) -> dict[str, Any]:
        meta = self.model.metadata
        return {"apiVersion": API_VERSION, "kind": "ComputeJob",
                "metadata": {"name": meta.name, "namespace": meta.namespace, "uid": meta.uid}}


def _job_state(job: ComputeJob) -> JobState:
    status = job.status
    phase = status.phase or JobPhase.PENDING
    usage = UsageRecord(tuple(PodAccrual(p.attempt, p.pod, p.gpus, p.microseconds, p.finished, p.lost_microseconds)
                              for p in (status.usage.pods if status.usage else [])))
    history = [to_api(a) for a in status.attempt_history]
    return JobState(
        usage=usage,
        history=history,

        model=job,
        phase=JobPhase(phase),
        attempt=status.attempts,
        conditions=list(status.conditions),
        placement=to_api(status.placement) if status.placement else None,
        member_job=to_api(status.member_job) if status.member_job else None,
        last_summary=status.unschedulable.summary if status.unschedulable else None,
        durable_attempt=status.attempts if status.placement else 0,
    )


class Controller:
    def __init__(self, hub: Hub, settings: Settings, latency: LatencyTable, metrics: Metrics | None = None) -> None:
        self.hub = hub
        self.metrics = metrics or Metrics()
        self.settings = settings
        self.latency = latency
        self.events = EventRecorder(hub, self.metrics)
        self.identity = IdentityRegistry(hub, settings.namespace, settings.identity_config_map)
        self.journal = DispatchJournal(hub, settings.namespace)
        self.credentials = CredentialRenewer(hub, settings.token_renew_fraction)
        self._recovered: dict[str, Recovered] = {}
        """Placements found in the journal at start-up, until their jobs are seen."""
        self.nodes: dict[str, NodeState] = {}
        self.offers: dict[str, ComputeOffer] = {}
        self.quotas: dict[str, ComputeQuota] = {}
        """By name (which is also the tenant namespace it caps)."""
        self._quota_status: dict[str, dict[str, Any]] = {}
        self._held: dict[str, dict[QuotaLimit, int]] = {}
        """Per tenant, how many jobs the last placement pass held, by the limit that held them."""
        self.jobs: dict[str, JobState] = {}
        self.ledger = ReservationLedger()
        self._wake = asyncio.Event()
        self._dirty: set[str] = set()
        self._dirty_event = asyncio.Event()
        self._syncing: set[str] = set()
        self._resync: set[str] = set()
        self._deleting: set[str] = set()
        self._tasks: list[asyncio.Task[None]] = []
        self._job_events: asyncio.Queue[tuple[str, Mapping[str, Any]]] = asyncio.Queue()
        self.job_informer: Informer[tuple[int, bool]] | None = None
        self._background: set[asyncio.Task[Any]] = set()
        self._last_gc = time.monotonic()
        self._offer_status: dict[str, OfferCards] = {}
        self.started = asyncio.Event()
        self.placements = 0

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        self._tasks += [
            asyncio.create_task(self._job_event_loop(), name="job-events"),
            asyncio.create_task(self.events.run(), name="events"),
            asyncio.create_task(self._placement_loop(), name="placement"),
            asyncio.create_task(self._sync_loop(), name="sync"),
            asyncio.create_task(self._heartbeat_loop(), name="heartbeat"),
            asyncio.create_task(self._offer_status_loop(), name="offer-status"),
            asyncio.create_task(self._metering_loop(), name="metering"),
        ]
        self.started.set()

    async def stop(self) -> None:
        for task in [*self._tasks, *self._background]:
            task.cancel()
        for task in [*self._tasks, *self._background]:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await self.journal.close()
        for state in self.nodes.values():
            if state.member is not None:
                await state.member.close()
        await self.hub.close()

    def _spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> None:
        task = asyncio.create_task(coro, name=name)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def wake(self) -> None:
        self._wake.set()

    # ------------------------------------------------------------------ nodes

    async def node_changed(self, body: dict[str, Any]) -> None:
        """A ComputeNode was created, changed or seen at start-up."""
        name = body["metadata"]["name"]
        try:
            node = ComputeNode.model_validate(body)
        except pydantic.ValidationError as exc:
            message = _validation_message(exc)
            await self.hub.patch_status("computenodes", name, {"status": {
                "observedGeneration": body["metadata"].get("generation"),
                "conditions": [_condition("Registered", False, "InvalidSpec", message, body),
                               _condition("Ready", False, "NotRegistered", "the node is not registered", body)]}})
            await self.hub.event(body, "Warning", "InvalidSpec", message)
            await self.node_deleted(name)
            return
        state = self.nodes.get(name)
        if state is None or state.model.metadata.uid != node.metadata.uid:
            if state is not None and state.member is not None:
                await state.member.close()
            state = self.nodes[name] = NodeState(node)
        state.model = node
        entity = node.spec.operating_entity
        failures = eligibility_failures(credit_code=entity.credit_code, telecom_licence=entity.telecom_licence,
                                        registered_capital=entity.registered_capital)
        status: dict[str, Any] = {"observedGeneration": node.metadata.generation}
        conditions = list(node.status.conditions)
        gen = node.metadata.generation
        if failures:
            state.registered = False
            conditions = set_condition(conditions, "Registered", False, "NotEligible", "; ".join(failures), gen, now())
            conditions = set_condition(conditions, "Ready", False, "NotRegistered", "the node is not registered", gen,
                                       now())
            status["conditions"] = [to_api(c) for c in conditions]
            await self.hub.patch_status("computenodes", name, {"status": status})
            await self.hub.event(body, "Warning", "NotEligible", "; ".join(failures))
            if state.member is not None:
                await state.member.close()
                state.member = None
            self.wake()
            return
        code = node.status.identity_code or await self.identity.code_for(
            node=name, uid=node.metadata.uid or "", node_type=node.spec.type, region=node.spec.region)
        if node.status.identity_code is None:
            await self.hub.event(body, "Normal", "IdentityIssued", f"issued identity code {code}")
        state.registered = True
        status["identityCode"] = code
        state.model = node.model_copy(update={"status": node.status.model_copy(update={"identity_code": code})})
        conditions = set_condition(conditions, "Registered", True, "Eligible",
                                   f"identity code {code}; operating entity {entity.name} is eligible", gen, now())
        await self._connect(state)
        if self.started.is_set() and state.ready:
            await self._fence(state)
            if state.fencing:
                state.ready, state.ready_reason = False, "Fencing"
                state.ready_message = "deleting the Jobs of superseded attempts before new work"
        conditions = set_condition(conditions, "Ready", state.ready, state.ready_reason, state.ready_message, gen,
                                   now())
        status["conditions"] = [to_api(c) for c in conditions]
        state.model.status.conditions = conditions
        await self.hub.patch_status("computenodes", name, {"status": status})
        self.wake()

    async def _connect(self, state: NodeState) -> None:
        conn = state.model.spec.connection
        key = (conn.secret_ref.namespace, conn.secret_ref.name, conn.secret_ref.key, conn.namespace)
        if state.member is not None and state.connection_key == key:
            return
        if state.member is not None:
            await state.member.close()
            state.member = None
        try:
            kubeconfig = await self.hub.read_secret_key(conn.secret_ref.namespace, conn.secret_ref.name,
                                                        conn.secret_ref.key)
            member = await MemberCluster.connect(state.name, kubeconfig, conn.namespace, self._member_changed)
        except Exception as exc:
            state.ready, state.ready_reason = False, "ConnectionFailed"
            state.ready_message = f"cannot connect with Secret {key[0]}/{key[1]} key {key[2]}: {exc}"
            state.connect_error = state.ready_message
            return
        state.member, state.connection_key = member, key
        member.start()
        try:
            await self._ping(member)
        except MemberUnauthorized:
            self._credentials_expired(state, member.token)
            return
        except MemberUnavailable as exc:
            state.ready, state.ready_reason, state.ready_message = False, "MemberUnavailable", str(exc)
            state.lost_since = _declared_lost_at(state.model) or now().replace(microsecond=0)
            return
        synced = await member.synced(self.settings.member_sync_timeout)
        state.last_ok = time.monotonic()
        state.ready = synced
        state.ready_reason = "MemberReady" if synced else "WatchNotSynced"
        state.ready_message = "the member's API server answers" if synced else "the member's watches did not sync"

    async def _reconnect_if_changed(self, state: NodeState) -> None:
        """Connect again when the node's Secret holds another kubeconfig than the one in use (a
        re-join after CredentialsExpired); an unreadable Secret leaves things as they are."""
        conn = state.model.spec.connection
        try:
            text = await self.hub.read_secret_key(conn.secret_ref.namespace, conn.secret_ref.name,
                                                  conn.secret_ref.key)
        except Exception as exc:
            log.warning("cannot read the kubeconfig Secret of %s: %s", state.name, type(exc).__name__)
            return
        if state.member is not None and state.member.same_kubeconfig(text):
            return
        log.info("the kubeconfig Secret of %s changed: connecting with it", state.name)
        if state.member is not None:
            await state.member.close()
        state.member, state.connection_key = None, None
        await self._connect(state)

    @staticmethod
    async def _ping(member: MemberCluster) -> None:
        """The heartbeat's call: an expired token is not even sent (MemberUnauthorized)."""
        token = member.token
        if token is not None and expired(token, time.time()):
            raise MemberUnauthorized("the token has expired")
        await member.ping()

    def _credentials_expired(self, state: NodeState, token: ServiceAccountToken | None) -> None:
        """The member refuses the hub's token: unreachable like a lost member (its jobs are re-placed
        after their grace), but the message says how the node operator fixes it."""
        state.ready, state.ready_reason = False, CREDENTIALS_EXPIRED
        state.ready_message = expired_message(token, time.time())
        if state.lost_since is None:
            state.lost_since = _declared_lost_at(state.model) or now().replace(microsecond=0)

    async def _renew_credentials(self, state: NodeState) -> None:
        member = state.member
        if member is None:
            return
        ref = state.model.spec.connection.secret_ref
        outcome = await self.credentials.renew_if_due(state.name, member, (ref.namespace, ref.name, ref.key))
        if outcome is Renewal.RENEWED:
            self.metrics.token_renewals.labels(node=state.name).inc()
        elif outcome is Renewal.SUPERSEDED:
            await self._reconnect_if_changed(state)

    async def node_deleted(self, name: str) -> None:
        """Forget a node; call ``drain`` first when the ComputeNode itself is being deleted."""
        self.credentials.forget(name)
        state = self.nodes.pop(name, None)
        if state is not None and state.member is not None:
            await state.member.close()
        self.wake()

    async def drain(self, name: str) -> str | None:
        """Clean a deleted node's member of everything of ours; what still blocks, else None.

        Jobs still active there keep the node (its finalizer stays until they end); finished
        member Jobs, already metered into their ComputeJobs' status, are deleted.
        """
        state = self.nodes.get(name)
        if state is None or state.member is None or state.ready_reason == CREDENTIALS_EXPIRED:
            return None  # nothing can be done on a member that refuses the hub's token (e.g. after leave)
        active = [s for s in self.jobs.values()
                  if s.placement and s.placement["node"] == name and s.phase in ACTIVE]
        if active:
            names = ", ".join(f"{s.model.metadata.namespace}/{s.model.metadata.name}" for s in active[:5])
            return f"{len(active)} jobs still active on {name}: {names}"
        member = state.member
        leftovers = list(member.jobs.items.values())
        for job in leftovers:
            self._deleting.add(job.name)
            await member.delete_job(job.name)
        if leftovers or member.pods.items:
            return f"waiting for {len(leftovers)} Jobs and {len(member.pods.items)} pods to go from {name}"
        return None

    async def _heartbeat_loop(self) -> None:
        while True:
            await asyncio.sleep(self.settings.heartbeat_interval)
            nodes = [s for s in list(self.nodes.values()) if s.registered]
            results = await asyncio.gather(*(self._heartbeat(s) for s in nodes), return_exceptions=True)
            for node, result in zip(nodes, results, strict=True):
                if isinstance(result, Exception):
                    self.metrics.reconcile_errors.labels(loop="heartbeat").inc()
                    log.warning("heartbeat of %s failed: %r", node.name, result)
            # Tokens are renewed while the member answers (a renewal is a request to it); a
            # failure is counted and tried again later: the current token still works meanwhile.
            answering = [s for s in nodes if s.member is not None and (s.ready or s.fencing)]
            renewed = await asyncio.gather(*(self._renew_credentials(s) for s in answering), return_exceptions=True)
            for node, result in zip(answering, renewed, strict=True):
                if isinstance(result, Exception):
                    self.metrics.reconcile_errors.labels(loop="credentials").inc()
                    log.warning("renewing the hub's token for %s failed: %s", node.name,
                                str(result) or type(result).__name__)
            try:
                await self.fail_over()
                if time.monotonic() - self._last_gc >= GC_INTERVAL_SECONDS:
                    self._last_gc = time.monotonic()
                    self._collect_garbage()
            except Exception:
                self.metrics.reconcile_errors.labels(loop="failover").inc()
                log.exception("failover pass failed")
            self._refresh_gauges()

    def _refresh_gauges(self) -> None:
        m = self.metrics
        for phase in JobPhase:
            m.jobs.labels(phase=phase.value).set(sum(1 for s in self.jobs.values() if s.phase is phase))
        m.queue_depth.set(sum(1 for s in self.jobs.values() if s.phase is JobPhase.PENDING))
        m.journal_placements.set(self.journal.outstanding)
        reasons: dict[str, int] = {}
        for s in self.jobs.values():
            if s.phase is JobPhase.PENDING and s.last_summary:
                top = s.last_summary.split(": ", 1)[-1].split(", ")[0].lstrip("0123456789 ")
                reasons[top] = reasons.get(top, 0) + 1
        m.unschedulable.clear()
        for reason, count in reasons.items():
            m.unschedulable.labels(reason=reason).set(count)
        for state in self.nodes.values():
            spec = state.model.spec
            m.member_ready.labels(node=state.name, identity_code=state.model.status.identity_code or "",
                                  region=spec.region, type=str(spec.type.value),
                                  industry=str(spec.industry.value) if spec.industry else "none",
                                  ).set(1 if state.ready else 0)
            if state.last_ok is not None:
                m.heartbeat_age.labels(node=state.name).set(time.monotonic() - state.last_ok)
            if state.member is not None:
                m.watch_restarts.labels(node=state.name).set(sum(i.restarts for i in state.member.informers))
        m.token_expiry.clear()
        for state in self.nodes.values():
            token = state.member.token if state.member is not None else None
            if token is not None:
                m.token_expiry.labels(node=state.name).set(token.expires_at)

    async def _heartbeat(self, state: NodeState) -> None:
        was_ready, was_reason = state.ready, state.ready_reason
        if state.member is not None and state.ready_reason == CREDENTIALS_EXPIRED:
            await self._reconnect_if_changed(state)  # a re-join writes a new kubeconfig
        if state.member is None:
            await self._connect(state)
        member = state.member
        if member is not None:
            try:
                await self._ping(member)
                state.last_ok = time.monotonic()
                state.lost_since = None
                if state.fencing:
                    await self._fence(state)
                if state.fencing:
                    state.ready, state.ready_reason = False, "Fencing"
                    state.ready_message = ("the member answers again; deleting the Jobs of attempts superseded "
                                           "while it was lost before sending it new work")
                else:
                    state.ready, state.ready_reason, state.ready_message = True, "MemberReady", \
                        "the member's API server answers"
            except MemberUnauthorized:
                self._credentials_expired(state, member.token)
            except MemberUnavailable as exc:
                # A member busy enough to miss a ping but still sending watch events or answering
                # writes is alive: only silence on every channel counts.
                silent = time.monotonic() - max(state.last_ok or 0, member.last_ok or 0)
                if silent >= self.settings.not_ready_after:
                    if state.lost_since is None:
                        state.lost_since = now().replace(microsecond=0)
                    state.ready, state.ready_reason = False, "MemberUnavailable"
                    state.ready_message = f"no answer for {silent:.0f}s: {exc}"
        due = time.monotonic() - state.last_status_write >= max(15.0, self.settings.heartbeat_interval)
        if state.ready != was_ready or state.ready_reason != was_reason or due:
            await self._write_node_status(state)
        if state.ready != was_ready:
            self.wake()

    async def _write_node_status(self, state: NodeState) -> None:
        gen = state.model.metadata.generation
        # A lost node's Ready=False transition is the instant its jobs' usage is split at.
        at = state.lost_since if not state.ready and state.lost_since else now()
        conditions = set_condition(state.model.status.conditions, "Ready", state.ready, state.ready_reason,
                                   state.ready_message, gen, at)
        state.model.status.conditions = conditions
        status: dict[str, Any] = {"conditions": [to_api(c) for c in conditions]}
        if state.member is not None and state.last_ok is not None:
            ago = time.monotonic() - state.last_ok
            status["lastHeartbeatTime"] = iso(now() - dt.timedelta(seconds=ago))
            caps = capacity_by_model(state.member.nodes.items.values(), state.member.gpu_pods.items.values())
            status["capacity"] = [{"model": c.model, "total": c.total, "allocatable": c.allocatable,
                                   "inUse": c.in_use} for c in caps]
        state.last_status_write = time.monotonic()
        await self.hub.patch_status("computenodes", state.name, {"status": status})

    # ------------------------------------------------------------------ failover and fencing

    def _grace(self, state: JobState) -> float | None:
        """Seconds a job waits for its lost node before it is re-placed; None: it must not be."""
        policy = state.model.spec.failure_policy
        if policy is not None and policy.re_place == "Never":
            return None
        if policy is not None and policy.re_place_after_seconds is not None:
            return float(policy.re_place_after_seconds)
        return self.settings.re_place_after

    async def fail_over(self) -> None:
        """Re-place (or, with rePlace: Never, fail) the active jobs of nodes lost past their grace."""
        at = now()
        for node in list(self.nodes.values()):
            if node.lost_since is None or node.ready:
                continue
            lost_for = (at - node.lost_since).total_seconds()
            for state in [s for s in self.jobs.values()
                          if s.phase in ACTIVE and s.placement and s.placement["node"] == node.name]:
                grace = self._grace(state)
                if lost_for >= (self.settings.re_place_after if grace is None else grace):
                    await self._supersede(state, node, re_place=grace is not None)

    async def _supersede(self, state: JobState, node: NodeState, *, re_place: bool) -> None:
        """End the attempt on a lost node: durable first, then the new attempt or the failure.

        Nothing in memory changes before the status is written, so the placement loop cannot
        place the next attempt (and write it) before this attempt's end is recorded.
        """
        assert node.lost_since is not None
        attempt, lost_since = state.attempt, node.lost_since
        grace = self._grace(state)
        waited = self.settings.re_place_after if grace is None else grace
        lost = (f"node {node.name} was declared lost at {iso(lost_since)} ({node.ready_message}) and did not "
                f"come back within {waited:.0f}s")
        history = [dict(h, outcome=NODE_LOST, finishedAt=iso(lost_since)) if h["attempt"] == attempt else dict(h)
                   for h in state.history]
        gen, at = state.model.metadata.generation, now()
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
        await self._patch_job(state, status)
        state.history, state.conditions, state.phase = history, conditions, phase
        state.dispatching = None
        if re_place:
            state.placement, state.member_job = None, None
        self.ledger = self.ledger.release(state.uid)
        node.fencing = True
        self.metrics.failovers.labels(node=node.name, outcome="replaced" if re_place else "failed").inc()
        self.events.record(state.ref, "Warning", NODE_LOST, message)
        self.wake()

    def _collect_garbage(self) -> None:
        """Delete member Jobs that must not run: their ComputeJob is gone (deleted while the
        member or the operator was down) or their attempt was superseded."""
        self.journal.retry_deletes()
        for node in list(self.nodes.values()):
            if node.member is None or not node.ready:
                continue
            for job in list(node.member.jobs.items.values()):
                if not job.deleting and self._superseded(job.job_uid, job.attempt):
                    self._spawn(self._delete_superseded(node.name, job), name=f"gc-{job.name}")

    def _superseded(self, job_uid: str, attempt: int) -> bool:
        """A member Job or pod that must not run: its attempt is not the job's live one."""
        state = self.jobs.get(job_uid)
        return state is None or attempt != state.attempt or state.lost_at(attempt) is not None

    async def fence_all(self) -> None:
        """At start-up, once every job is known: clean each member of superseded attempts."""
        await asyncio.gather(*(self._fence(n) for n in self.nodes.values() if n.member is not None and n.ready),
                             return_exceptions=True)

    async def _fence(self, node: NodeState) -> None:
        """Meter and delete what superseded attempts left on a member; fenced until none is left.

        Lists from the member's API server, not the watches, which may lag after an outage.
        """
        member = node.member
        if member is None:
            return
        jobs, pods = await member.list_ours()
        stale_jobs = [j for j in jobs if self._superseded(j.job_uid, j.attempt)]
        stale_pods = [p for p in pods if self._superseded(p.job_uid, p.attempt)]
        await self._meter_superseded(stale_pods)
        stale_names = {j.name for j in stale_jobs}
        for job in stale_jobs:
            if not job.deleting:
                self._deleting.add(job.name)
                if await member.delete_job(job.name):
                    self.metrics.fenced_jobs.labels(node=node.name).inc()
                    log.info("fence %s: deleted Job %s of superseded attempt %d", node.name, job.name, job.attempt)
        for pod in stale_pods:
            if not pod.deleted and pod.member_job not in stale_names:
                await member.delete_pod(pod.name)
        # Only a superseded attempt of a job that lives on can run twice; an orphan (its ComputeJob
        # is gone) is deleted all the same but keeps no work away. A finished pod runs nothing, even
        # while the member's Job controller still holds its object.
        node.fencing = any(p.job_uid in self.jobs and p.phase not in ("Succeeded", "Failed") for p in stale_pods) \
            or any(j.job_uid in self.jobs for j in stale_jobs)
        if not node.fencing:
            self.wake()

    async def _meter_superseded(self, pods: list[DispatchedPod]) -> None:
        """Record what superseded attempts ran: charged up to the loss, the rest apart."""
        by_attempt: dict[tuple[str, int], list[DispatchedPod]] = {}
        for pod in pods:
            by_attempt.setdefault((pod.job_uid, pod.attempt), []).append(pod)
        at = now() - dt.timedelta(seconds=ACCRUAL_MARGIN_SECONDS)
        for (uid, attempt), group in by_attempt.items():
            state = self.jobs.get(uid)
            if state is not None and any(h["attempt"] == attempt for h in state.history):
                await self._write_usage(state, group, at, attempt)

    async def _delete_superseded(self, node_name: str, job: DispatchedJob) -> None:
        node = self.nodes.get(node_name)
        if node is None or node.member is None:
            return
        self._deleting.add(job.name)
        with contextlib.suppress(MemberUnavailable):
            pods = await node.member.pods_of(job.job_uid)
            await self._meter_superseded([p for p in pods if p.member_job == job.name])
        if await node.member.delete_job(job.name):
            self.metrics.fenced_jobs.labels(node=node_name).inc()
            log.info("deleted Job %s of superseded attempt %d on %s", job.name, job.attempt, node_name)

    # ------------------------------------------------------------------ offers

    async def offer_changed(self, body: dict[str, Any]) -> None:
        offer = ComputeOffer.model_validate(body)
        self.offers[offer.metadata.name] = offer
        if offer.status.observed_generation != offer.metadata.generation:
            await self.hub.patch_status("computeoffers", offer.metadata.name,
                                        {"status": {"observedGeneration": offer.metadata.generation}})
        self.wake()

    def offer_deleted(self, name: str) -> None:
        self.offers.pop(name, None)
        self._offer_status.pop(name, None)
        self.wake()

    def _pool_reservations(self) -> dict[tuple[str, str], list[Reservation]]:
        """Reservations by (node, GPU model): offers of one node and model share its cards."""
        pools: dict[tuple[str, str], list[Reservation]] = {}
        for reservation in self.ledger:
            offer = self.offers.get(reservation.offer)
            if offer is not None:
                pools.setdefault((offer.spec.node_ref, offer.spec.gpu_model), []).append(reservation)
        return pools

    def _cards(self, offer: ComputeOffer,
               pools: dict[tuple[str, str], list[Reservation]] | None = None) -> OfferCards:
        state = self.nodes.get(offer.spec.node_ref)
        member = state.member if state else None
        if member is None:
            return OfferCards(0, 0, 0)
        selector = offer.spec.node_selector.match_labels if offer.spec.node_selector else {}
        pools = self._pool_reservations() if pools is None else pools
        # A reservation on any offer of the pool counts here.
        reservations = [replace(r, offer=offer.metadata.name)
                        for r in pools.get((offer.spec.node_ref, offer.spec.gpu_model), [])]
        return offer_cards(offer=offer.metadata.name, cards_offered=offer.spec.cards, selector=selector,
                           gpu_model=offer.spec.gpu_model, nodes=member.nodes.items.values(),
                           pods=member.gpu_pods.items.values(), reservations=reservations)

    def _sellable(self, offer: ComputeOffer) -> bool:
        state = self.nodes.get(offer.spec.node_ref)
        return bool(state and state.registered and state.ready and not state.model.spec.cordoned)

    async def _offer_status_loop(self) -> None:
        while True:
            await asyncio.sleep(2.0)
            try:
                await self._write_quota_status()
            except Exception:
                self.metrics.reconcile_errors.labels(loop="quota-status").inc()
                log.exception("quota status pass failed")
            pools = self._pool_reservations()
            for name, offer in list(self.offers.items()):
                cards = self._cards(offer, pools)
                free = cards.free if self._sellable(offer) else 0
                for label, value in (("total", cards.total), ("free", free), ("reserved", cards.reserved),
                                     ("in_use", cards.in_use)):
                    self.metrics.offer_cards.labels(offer=name, node=offer.spec.node_ref,
                                                    gpu_model=offer.spec.gpu_model, state=label).set(value)
                if self._offer_status.get(name) == cards:
                    continue
                self._offer_status[name] = cards
                status = {"cardsTotal": cards.total, "cardsFree": cards.free if self._sellable(offer) else 0,
                          "cardsReserved": cards.reserved, "cardsInUse": cards.in_use}
                with contextlib.suppress(Exception):
                    await self.hub.patch_status("computeoffers", name, {"status": status})

    # ------------------------------------------------------------------ jobs

    async def job_changed(self, body: dict[str, Any]) -> None:
        """A ComputeJob was created, changed, or seen at start-up."""
        uid = body["metadata"]["uid"]
        state = self.jobs.get(uid)
        observed = (body.get("status") or {}).get("observedGeneration")
        try:
            # The status is read at first sight only, to rebuild the state; from then on the state
            # is the truth. Our own status writes come back on the watch by the thousand: validating
            # and keeping their status again cost CPU and about half of each job's memory.
            job = ComputeJob.model_validate(body if state is None else {**body, "status": {}})
        except pydantic.ValidationError as exc:
            message = _validation_message(exc)
            await self.hub.patch_status("computejobs", body["metadata"]["name"], {"status": {
                "phase": JobPhase.PENDING.value,
                "conditions": [_condition("Accepted", False, "InvalidSpec", message, body)],
            }}, namespace=body["metadata"]["namespace"])
            await self.hub.event(body, "Warning", "InvalidSpec", message)
            return
        if state is None:
            job, recovered = self._recover(job)
            state = self.jobs[uid] = _job_state(job)
            state.model = job.model_copy(update={"status": ComputeJobStatus()})
            if recovered is not None:
                state.unwritten.update(recovered.status)
                state.durable_attempt = recovered.attempt
            if state.placement and state.phase in ACTIVE:
                self.ledger = self.ledger.reserve(state.placement["offer"], uid, job.spec.gpus.count *
                                                  job.spec.replicas, free_now=10**9)
            if state.phase is JobPhase.SCHEDULED:
                self._dispatch_soon(state)
            if state.phase in (JobPhase.DISPATCHED, JobPhase.RUNNING):
                self._mark_dirty(uid)
        else:
            state.model = job
        if observed != job.metadata.generation:
            if state.phase is JobPhase.PENDING and observed is None:
                state.unwritten["observedGeneration"] = job.metadata.generation  # with the placement
            else:
                await self._patch_job(state, {"observedGeneration": job.metadata.generation})
        if state.phase is JobPhase.PENDING:
            self.wake()

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
            self.journal.settled(uid)  # the status has it, or has moved past it
            return job, None
        status = {**job.status.model_dump(by_alias=True, exclude_none=True, mode="json"), **entry.status}
        log.info("job %s/%s: attempt %d recovered from dispatch journal %s", job.metadata.namespace,
                 job.metadata.name, entry.attempt, entry.segment)
        return job.model_copy(update={"status": type(job.status).model_validate(status)}), entry

    async def recover_journal(self) -> None:
        """At start-up, before the jobs are read: the placements not yet in their jobs' status."""
        self._recovered = await self.journal.load()

    def _forget_recovered(self) -> None:
        """Journal entries of jobs that no longer exist are moot."""
        for uid in list(self._recovered):
            if uid not in self.jobs:
                self.journal.settled(uid)
        self._recovered.clear()

    async def job_deleted(self, body: Mapping[str, Any]) -> None:
        """Forget the job and delete its member Job.

        ComputeJobs carry no finalizer (one write less per job): a member Job this cannot delete
        now (member down, operator stopped) is an orphan that the member's garbage collection
        pass (`_collect_garbage`, and the fence at start-up) deletes later, as MultiKueue does.
        """
        uid = body["metadata"]["uid"]
        state = self.jobs.pop(uid, None)
        self.journal.settled(uid)
        self.ledger = self.ledger.release(uid)
        self.wake()
        status = body.get("status") or {}
        member_job = (state.member_job if state else None) or status.get("memberJob")
        placement = (state.placement if state else None) or status.get("placement")
        if not placement:
            return
        attempt = state.attempt if state else int(status.get("attempts", 1))
        name = member_job["name"] if member_job else member_job_name(uid, attempt)
        node = self.nodes.get(placement["node"])
        if node is not None and node.member is not None:
            self._deleting.add(name)
            try:
                await node.member.delete_job(name)
            except Exception as exc:
                log.warning("cannot delete %s on %s now (%s): left to garbage collection", name, node.name, exc)

    # ------------------------------------------------------------------ the ComputeJob watch

    async def watch_jobs(self, timeout: float = 60.0) -> None:
        """Watch every ComputeJob; return once the existing ones are all taken in.

        A plain watch rather than kopf handlers: kopf's per-object bookkeeping (a finalizer,
        progress and last-handled annotations, events for its logs) cost several hub writes
        per job, and jobs are the objects that come by the thousand.
        """
        informer: Informer[tuple[int, bool]] = Informer(
            "hub/computejobs", partial(self.hub.custom.list_cluster_custom_object, GROUP, VERSION, "computejobs"),
            _job_key, self._job_removed, on_object=self._job_seen)
        self.job_informer = informer
        self._tasks.append(asyncio.create_task(informer.run(), name="hub-jobs"))
        await asyncio.wait_for(informer.synced.wait(), timeout)
        while not self._job_events.empty():
            await self._job_event(*self._job_events.get_nowait())
        self._forget_recovered()

    def _job_seen(self, obj: Mapping[str, Any]) -> None:
        self._job_events.put_nowait(("seen", obj))

    def _job_removed(self, change: Change[tuple[int, bool]]) -> None:
        if change.new is None:
            self._job_events.put_nowait(("deleted", {"metadata": {"uid": change.key}}))

    async def _job_event_loop(self) -> None:
        while True:
            kind, obj = await self._job_events.get()
            await self._job_event(kind, obj)

    async def _job_event(self, kind: str, obj: Mapping[str, Any]) -> None:
        meta = obj["metadata"]
        try:
            if kind == "deleted" or meta.get("deletionTimestamp"):
                await self.job_deleted(obj)
                if LEGACY_FINALIZER in (meta.get("finalizers") or []):
                    await self.hub.remove_finalizer("computejobs", meta["name"], LEGACY_FINALIZER,
                                                    namespace=meta["namespace"])
                return
            await self.job_changed(dict(obj))
        except Exception:
            self.metrics.reconcile_errors.labels(loop="job-events").inc()
            log.exception("ComputeJob %s/%s", meta.get("namespace"), meta.get("name"))

    async def _patch_job(self, state: JobState, status: dict[str, Any]) -> None:
        meta = state.model.metadata
        async with state.writing:
            pending = dict(state.unwritten)
            body = {**pending, **status}
            await self.hub.patch_status("computejobs", meta.name, {"status": body}, namespace=meta.namespace)
            for key, value in pending.items():  # what was added meanwhile goes with the next write
                if state.unwritten.get(key) is value:
                    del state.unwritten[key]
        if "placement" in body:  # the placement (or its end) is in the status: the journal's entry is moot
            self.journal.settled(state.uid)

    def _set(self, state: JobState, type_: str, ok: bool, reason: str, message: str) -> None:
        state.conditions = set_condition(state.conditions, type_, ok, reason, summarised(message),
                                         state.model.metadata.generation, now())

    # ------------------------------------------------------------------ placement

    def snapshot(self, at: dt.datetime) -> tuple[PlacementSnapshot, dict[str, OfferView]]:
        views = {
            name: node_view(s.model, registered=s.registered, ready=s.ready and s.member is not None,
                             fenced=s.fencing)
            for name, s in self.nodes.items()
        }
        offers: dict[str, OfferView] = {}
        pools = self._pool_reservations()
        for name, offer in self.offers.items():
            cards = self._cards(offer, pools)
            offers[name] = offer_view(offer, cards_total=cards.total, cards_free=cards.free)
        return PlacementSnapshot.of(views.values(), offers.values(), self.latency, at), offers

    async def _placement_loop(self) -> None:
        while True:
            await self._wake.wait()
            # Jobs come in bursts: let the ones arriving together share one pass (one snapshot).
            await asyncio.sleep(PLACEMENT_COALESCE_SECONDS)
            self._wake.clear()
            try:
                await self.schedule_once()
            except Exception:
                log.exception("placement pass failed; retrying")
                await asyncio.sleep(1.0)
                self.wake()

    async def schedule_once(self) -> None:
        """One pass over the pending jobs: quotas first, then fair share, then placement.

        Order: priority, then the tenant's dominant share of cards in use over its quota's
        weight (raised as this pass places its jobs), then age; so a tenant with 1,000 jobs
        queued cannot keep one with 5 waiting.
        """
        pending = [s for s in self.jobs.values() if s.phase is JobPhase.PENDING and s.dispatching is None]
        if not pending:
            return
        at = now()
        snapshot, offers = self.snapshot(at)
        requests = [job_request(s.model) for s in pending]
        quotas = {q.spec.namespace: tenant_quota(q) for q in self.quotas.values()}
        usage = self.tenant_usage(at)
        granted, over_cap = within_priority_cap(requests, quotas)
        kept, held = within_pending_limit(granted, quotas)
        held.update(over_cap)
        writes: list[Coroutine[Any, Any, None]] = []
        held_counts: dict[str, dict[QuotaLimit, int]] = {}

        def hold(request: JobRequest, verdict: QuotaVerdict) -> None:
            assert verdict.limit is not None
            counts = held_counts.setdefault(request.namespace, {})
            counts[verdict.limit] = counts.get(verdict.limit, 0) + 1
            state = self.jobs[request.uid]
            if str(verdict) != state.last_summary:
                writes.append(self._quota_exceeded(state, verdict))

        by_uid = {r.uid: r for r in requests} if held else {}
        for uid, verdict in held.items():
            hold(by_uid[uid], verdict)
        models = sorted({o.gpu_model for o in offers.values()})
        queue = FairShareQueue(kept, usage, {t: q.weight for t, q in quotas.items()})
        for request in queue:
            state = self.jobs[request.uid]
            quota = quotas.get(request.namespace)
            to_place = request
            if quota is not None:
                verdict = check(quota, queue.usage(request.namespace), request, known_models=models)
                if verdict.request is None:
                    hold(request, verdict)
                    queue.skipped(request)
                    continue
                to_place = verdict.request
            started = time.perf_counter()
            decision = place(to_place, snapshot)
            self.metrics.placement_seconds.observe(time.perf_counter() - started)
            if decision.chosen is None:
                self.metrics.placements.labels(result="unschedulable").inc()
                if decision.summary != state.last_summary:
                    writes.append(self._unschedulable(state, decision))
                queue.skipped(request)
                continue
            chosen = decision.chosen
            if quota is not None:
                estimate = check_estimate(quota, queue.usage(request.namespace), chosen)
                if not estimate.allowed:
                    hold(request, estimate)
                    queue.skipped(request)
                    continue
            self.metrics.placements.labels(result="placed").inc()
            queue.placed(request, model=chosen.gpu_model)
            view = offers[chosen.offer]
            self.ledger = self.ledger.reserve(chosen.offer, request.uid, request.cards,
                                              free_now=view.cards_free + self.ledger.reserved(chosen.offer))
            # Every offer sharing the chosen one's cards loses them too.
            for name, other in offers.items():
                if other.node == view.node and other.gpu_model == view.gpu_model:
                    offers[name] = replace(other, cards_free=max(0, other.cards_free - request.cards))
                    snapshot = snapshot.with_offer(offers[name])
            self.placements += 1
            self._scheduled(state, decision, at)
            self._dispatch_soon(state)
        self._held = held_counts
        if writes:
            await asyncio.gather(*writes, return_exceptions=True)

    async def _quota_exceeded(self, state: JobState, verdict: QuotaVerdict) -> None:
        summary = str(verdict)
        state.last_summary = summary
        self._set(state, "Scheduled", False, "QuotaExceeded", verdict.message)
        unschedulable = {"summary": summary[:1024], "reasons": [], "candidates": []}
        await self._patch_job(state, {"phase": JobPhase.PENDING.value, "unschedulable": unschedulable,
                                      "conditions": [to_api(c) for c in state.conditions]})
        self.events.record(state.ref, "Warning", "QuotaExceeded", verdict.message)

    # ------------------------------------------------------------------ quotas

    def tenant_usage(self, at: dt.datetime) -> dict[str, TenantUsage]:
        """Every tenant's cards in use, pending jobs and (where a budget needs it) spend this month."""
        budgeted = {q.spec.namespace for q in self.quotas.values() if q.spec.limits.monthly_spend is not None}
        if not budgeted:  # the common case, once per placement pass: cards and pending counts only
            cards: dict[str, int] = {}
            by_model: dict[str, dict[str, int]] = {}
            pending: dict[str, int] = {}
            for s in self.jobs.values():
                tenant = s.model.metadata.namespace or ""
                if s.phase in ACTIVE:
                    held = s.cards
                    cards[tenant] = cards.get(tenant, 0) + held
                    if s.placement:
                        models = by_model.setdefault(tenant, {})
                        models[s.placement["gpuModel"]] = models.get(s.placement["gpuModel"], 0) + held
                elif s.phase is JobPhase.PENDING:
                    pending[tenant] = pending.get(tenant, 0) + 1
            month = Month.of(at)
            return {t: TenantUsage(cards=cards.get(t, 0), cards_by_model=by_model.get(t, {}),
                                   pending=pending.get(t, 0), month=month)
                    for t in cards.keys() | pending.keys()}
        return tenant_usage((self._quota_job(s, at if s.model.metadata.namespace in budgeted else None)
                             for s in self.jobs.values()), at)

    def _quota_job(self, state: JobState, charged_at: dt.datetime | None) -> QuotaJob:
        """The job as quotas count it; with ``charged_at``, also what each attempt has cost so far."""
        spent: list[Charge] = []
        if charged_at is not None:
            for attempt, money in self._costs(state, state.usage).items():
                if money.amount > 0:
                    spent.append(Charge(money, None, state.lost_at(attempt) or charged_at))
        return QuotaJob(namespace=state.model.metadata.namespace or "", phase=state.phase,
                        cards=state.model.spec.gpus.count * state.model.spec.replicas,
                        gpu_model=state.placement["gpuModel"] if state.placement else None, charges=tuple(spent))

    async def quota_changed(self, body: dict[str, Any]) -> None:
        quota = ComputeQuota.model_validate(body)
        self.quotas[quota.metadata.name] = quota
        self._quota_status.pop(quota.metadata.name, None)
        self.wake()

    def quota_deleted(self, name: str) -> None:
        quota = self.quotas.pop(name, None)
        self._quota_status.pop(name, None)
        if quota is not None:
            self.metrics.forget_quota(quota.spec.namespace)
        self.wake()

    async def _write_quota_status(self) -> None:
        """Each ComputeQuota's usage in its status (when it changed) and in Prometheus."""
        if not self.quotas:
            return
        at = now()
        usage = self.tenant_usage(at)
        weights = {q.spec.namespace: q.spec.weight for q in self.quotas.values()}
        for name, quota in list(self.quotas.items()):
            tenant = quota.spec.namespace
            used = usage.get(tenant, NO_USAGE)
            share = dominant_share(used, weights[tenant])
            self.metrics.set_quota(tenant, tenant_quota(quota), used, share=share, held=self._held.get(tenant))
            status = quota_status(quota, used, share=share, now=at)
            comparable = {k: v for k, v in status.items() if k != "conditions"} | {
                "conditions": [{k: v for k, v in c.items() if k != "lastTransitionTime"} for c in status["conditions"]]}
            if self._quota_status.get(name) == comparable:
                continue
            await self.hub.patch_status("computequotas", name, {"status": status})
            self._quota_status[name] = comparable
            quota.status = type(quota.status).model_validate({**quota.status.model_dump(by_alias=True),
                                                             "conditions": status["conditions"]})

    async def _unschedulable(self, state: JobState, decision: Decision) -> None:
        state.last_summary = decision.summary
        self._set(state, "Scheduled", False, "Unschedulable", decision.summary)
        counts = sorted(decision.reason_counts.items(), key=lambda kv: (-kv[1], kv[0].value))
        unschedulable = {
            "summary": decision.summary[:1024],
            "reasons": [{"reason": r.value, "count": n} for r, n in counts][:32],
            "candidates": [{"offer": r.offer, "node": r.node, "reason": r.message[:1024]}
                           for r in decision.rejected[:100]],
        }
        await self._patch_job(state, {"phase": JobPhase.PENDING.value, "unschedulable": unschedulable,
                                      "conditions": [to_api(c) for c in state.conditions]})
        self.events.record(state.ref, "Warning", "FailedScheduling", decision.summary)

    def _scheduled(self, state: JobState, decision: Decision, at: dt.datetime) -> None:
        chosen = decision.chosen
        assert chosen is not None
        offer = self.offers[chosen.offer]
        state.attempt += 1
        state.phase = JobPhase.SCHEDULED
        state.last_summary = None
        state.member_job_deleted = False
        price = offer.spec.price
        state.placement = {
            "node": chosen.node, "identityCode": chosen.identity_code, "offer": chosen.offer,
            "price": to_api(price), "tier": chosen.tier.value, "region": chosen.region,
            "gpuModel": chosen.gpu_model, "placedAt": iso(at),
        }
        industry = self.nodes[chosen.node].model.spec.industry
        if industry:
            state.placement["industry"] = str(industry.value if hasattr(industry, "value") else industry)
        node_state = self.nodes[chosen.node]
        state.member_job = {"cluster": chosen.node, "namespace": node_state.model.spec.connection.namespace,
                            "name": member_job_name(state.uid, state.attempt)}
        state.history = [h for h in state.history if h["attempt"] != state.attempt] + [{
            "attempt": state.attempt, "node": chosen.node, "memberJobName": state.member_job["name"],
            "offer": chosen.offer, "price": to_api(price)}]
        # The usage series exist at 0 from placement on, before the first card-hour, so that
        # Prometheus' increase() sees all of it.
        state.attempt_labels[state.attempt] = self._usage_labels(state, state.attempt)
        self.metrics.register_usage(state.attempt_labels[state.attempt])
        self._set(state, "Scheduled", True, "Placed",
                  f"offer {chosen.offer} on {chosen.node} ({chosen.identity_code}, {chosen.region}), "
                  f"tier {chosen.tier.value}, {chosen.effective_price} per card-hour; {decision.summary}")

    def _dispatch_soon(self, state: JobState) -> None:
        state.dispatching = state.attempt
        self._spawn(self._dispatch(state.uid, state.attempt), name=f"dispatch-{state.uid}-{state.attempt}")

    async def _dispatch(self, uid: str, attempt: int) -> None:
        """Persist the placement, then create (or adopt) the member Job; retry until it exists.

        Stops as soon as the attempt is superseded (its node was lost): a member Job it still
        manages to create is deleted by the fence.
        """
        backoff = 0.5
        state = self.jobs.get(uid)
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
                    await self.journal.record(uid, placed)
                    if state.attempt != attempt or state.phase is not JobPhase.SCHEDULED:
                        self.journal.settled(uid)  # superseded while it was written
                        break
                    state.unwritten.update(placed)
                    state.durable_attempt = attempt
                    # Off the critical path: an event is best effort, the member Job is not.
                    self.events.record(state.ref, "Normal", "Scheduled", (
                        state.conditions[-1].message if state.conditions else "placed")
                        + f"; member Job {state.member_job['namespace']}/{state.member_job['name']}")
                node = self.nodes.get(state.placement["node"])
                if node is None or node.member is None:
                    raise MemberUnavailable(f"member {state.placement['node']} is not connected")
                if node.fencing or node.lost_since is not None:
                    raise MemberUnavailable(f"member {node.name} is {node.ready_reason}: {node.ready_message}")
                offer = self.offers.get(state.placement["offer"])
                selector = offer.spec.node_selector.match_labels if offer and offer.spec.node_selector else {}
                manifest = build_member_job(
                    state.model, attempt=state.attempt, namespace=state.member_job["namespace"],
                    offer=state.placement["offer"], gpu_model=state.placement["gpuModel"], node_selector=selector,
                    allowed_tolerations=[to_api(t) for t in offer.spec.tolerations] if offer else [],
                    trace={"node": state.placement["node"], "identity-code": str(state.placement["identityCode"]),
                           "price": f"{state.placement['price']['amount']} {state.placement['price']['currency']}"
                                    f"/{state.placement['price']['unit']}"})
                member_uid, created = await node.member.create_job(manifest)
                if state.attempt != attempt or state.phase is not JobPhase.SCHEDULED:
                    break  # superseded meanwhile: the fence deletes what was just created
                if created:
                    self._observe_latency(state, "created")
                state.member_job = {**state.member_job, "uid": member_uid}
                state.phase = JobPhase.DISPATCHED
                self._set(state, "Dispatched", True, "MemberJobCreated" if created else "MemberJobAdopted",
                          f"Job {state.member_job['namespace']}/{state.member_job['name']} on {node.name}")
                # Not written at once: the pods usually run within a second, and the Running write
                # then carries this too (one hub write per job less). A restart before either is
                # written re-dispatches, and creating the same Job again adopts it.
                state.unwritten.update(phase=JobPhase.DISPATCHED.value, memberJob=state.member_job,
                                       conditions=[to_api(c) for c in state.conditions])
                self._spawn(self._flush_later(uid), name=f"flush-{uid}")
                self._mark_dirty(uid)
            except asyncio.CancelledError:
                raise
            except WorkloadPolicyError as exc:
                # Admission should have refused it; never sent to a member, and retrying cannot help.
                await self._refuse_workload(state, str(exc))
                break
            except Exception as exc:
                if isinstance(exc, ApiException) and member_refused(exc.status):
                    # The member will never take this Job (422 invalid, 403 forbidden by its quota
                    # or admission, ...): retrying would hold the cards for nothing.
                    await self._refuse_workload(
                        state, f"member {state.placement['node']} refused the Job (HTTP {exc.status}): "
                        f"{_api_message(exc)}", reason="MemberRejected")
                    break
                log.warning("dispatch of %s failed: %s; retrying in %.1fs", uid, exc, backoff)
                if state.durable_attempt == attempt and "placement" in state.unwritten:
                    # It may wait long (member down): show where it is going and why it waits.
                    with contextlib.suppress(Exception):
                        await self._patch_job(state, {})
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 10.0)
                state = self.jobs.get(uid)
        if state is not None and state.dispatching == attempt:
            state.dispatching = None

    async def _flush_later(self, uid: str) -> None:
        """Write what is still unwritten of a job's status after a short while."""
        await asyncio.sleep(DEFERRED_WRITE_SECONDS)
        for _ in range(5):
            state = self.jobs.get(uid)
            if state is None or not state.unwritten:
                return
            try:
                await self._patch_job(state, {})
                return
            except Exception as exc:
                log.warning("status of %s not written yet: %s", uid, exc)
                await asyncio.sleep(2.0)

    async def _refuse_workload(self, state: JobState, message: str, reason: str = "WorkloadPolicy") -> None:
        """End the job as Failed: its workload can never run (our policy or the member refuses it).
        The status write comes first; the cards go back once it is durable."""
        message = summarised(message)
        conditions = set_condition(state.conditions, "Failed", True, reason, message,
                                   state.model.metadata.generation, now())
        await self._patch_job(state, {"phase": JobPhase.FAILED.value, "completionTime": iso(now()),
                                      "conditions": [to_api(c) for c in conditions]})
        state.phase, state.conditions = JobPhase.FAILED, conditions
        self.ledger = self.ledger.release(state.uid)
        self.events.record(state.ref, "Warning", reason, message)
        self.wake()

    # ------------------------------------------------------------------ metering

    def _observe_latency(self, state: JobState, stage: str) -> None:
        created = state.model.metadata.creation_timestamp
        if created is not None:
            self.metrics.dispatch_latency.labels(stage=stage).observe(max(0.0, (now() - created).total_seconds()))

    def _costs(self, state: JobState, record: UsageRecord) -> dict[int, Money]:
        spec = state.model.spec
        out: dict[int, Money] = {}
        for attempt in record.attempts:
            price = _attempt_price(state, attempt)
            if price is None:
                continue
            out[attempt] = cost(record.card_time(attempt), price_of(_api_price(price)), spec.gpus.count,
                                spec.replicas)
        return out

    def _accrue(self, state: JobState, pods: list[DispatchedPod], at: dt.datetime, final: bool = False,
                attempt: int | None = None) -> tuple[dict[str, Any] | None, list[UsageDelta]]:
        """The new usage status and, per attempt, the increase of card-hours, cost and lost card-hours.

        ``pods`` belong to ``attempt`` (default: the current one); a superseded attempt's time
        after its node was declared lost is recorded apart and not charged.
        """
        attempt = state.attempt if attempt is None else attempt
        runs = [PodRun(p.uid, p.gpus, p.started, p.finished) for p in pods if p.started is not None]
        old = state.usage
        new = accrue(old, runs, at, attempt, lost_since=state.lost_at(attempt)) if runs else old
        if new == old and not final:
            return None, []
        old_costs, new_costs = self._costs(state, old), self._costs(state, new)
        deltas = []
        for each in new.attempts:
            hours = new.card_time(each).increase_over(old.card_time(each)).card_hours
            lost = new.lost_card_time(each).increase_over(old.lost_card_time(each)).card_hours
            zero = Money(Decimal(0), new_costs[each].currency) if each in new_costs else None
            spent = (new_costs[each] - old_costs.get(each, zero)).amount if zero is not None else Decimal(0)
            deltas.append(UsageDelta(each, hours, max(Decimal(0), spent), lost))
        state.usage = new
        total = sum((c.amount for c in new_costs.values()), Decimal(0))
        currency = next(iter(new_costs.values())).currency if new_costs else None
        for entry in state.history:
            entry["cardHours"] = _decimal_text(new.card_hours(entry["attempt"]))
        usage: dict[str, Any] = {
            "cardHours": _decimal_text(new.card_hours()),
            "cost": format_amount(total, currency) if currency else _decimal_text(total),
            "accruedUntil": iso(at),
            "pods": [{"attempt": p.attempt, "pod": p.pod_uid, "gpus": p.gpus, "microseconds": p.microseconds,
                      "finished": p.finished, **({"lostMicroseconds": p.lost_microseconds}
                                                 if p.lost_microseconds else {})} for p in new.pods],
        }
        if currency:
            usage["currency"] = currency
        lost_time = new.lost_card_time()
        if lost_time.card_microseconds:
            usage["lostCardHours"] = _decimal_text(lost_time.card_hours)
        return usage, deltas

    def _usage_labels(self, state: JobState, attempt: int) -> dict[str, str]:
        """The counters' labels of one attempt: where it ran, at which offer and currency."""
        if attempt in state.attempt_labels:
            return state.attempt_labels[attempt]
        entry = next((h for h in state.history if h["attempt"] == attempt), {})
        placement = state.placement if attempt == state.attempt and state.placement else None
        node_name = str(entry.get("node") or (placement or {}).get("node") or "unknown")
        node = self.nodes.get(node_name)
        offer_name = str(entry.get("offer") or (placement or {}).get("offer") or "unknown")
        offer = self.offers.get(offer_name)
        price = _attempt_price(state, attempt) or {}
        if placement is not None:
            code, region = placement.get("identityCode"), placement["region"]
            gpu_model, industry = placement["gpuModel"], placement.get("industry")
        else:  # an earlier attempt, after a restart: from its node and offer as they are now
            code = node.model.status.identity_code if node else None
            region = node.model.spec.region if node else "unknown"
            gpu_model = offer.spec.gpu_model if offer else "unknown"
            industry = node.model.spec.industry.value if node and node.model.spec.industry else None
        return {"node": str(code or node_name), "offer": offer_name, "gpu_model": str(gpu_model),
                "tenant": state.model.metadata.namespace or "", "region": str(region),
                "industry": str(industry or "none"), "currency": str(price.get("currency", "CNY"))}

    def _count(self, state: JobState, deltas: list[UsageDelta]) -> None:
        """Add usage increases to the counters, after they are durable in the job's status."""
        for delta in deltas:
            labels = self._usage_labels(state, delta.attempt)
            self.metrics.add_usage(labels, delta.card_hours, delta.cost)
            self.metrics.add_lost(labels, delta.lost_card_hours)

    async def _metering_loop(self) -> None:
        while True:
            await asyncio.sleep(self.settings.metering_interval)
            try:
                await self.meter_running()
            except Exception:
                self.metrics.reconcile_errors.labels(loop="metering").inc()
                log.exception("metering pass failed")

    def _member_clock(self, state: JobState) -> dt.datetime | None:
        """Up to when a running pod's time can be counted without overshooting its finish.

        The hub only knows a pod still runs as of the last time its member answered (and a
        finish reaches the hub through the watch a little later): running time is counted up to
        then, less a margin, never to the hub's own clock. A member that does not answer accrues
        nothing until it does; its pods' real timestamps settle the figure then.
        """
        node = self.nodes.get(state.placement["node"]) if state.placement else None
        if node is None or node.last_ok is None:
            return None
        answered = now() - dt.timedelta(seconds=time.monotonic() - node.last_ok)
        return answered - dt.timedelta(seconds=ACCRUAL_MARGIN_SECONDS)

    async def meter_running(self) -> None:
        for state in [s for s in self.jobs.values() if s.phase in (JobPhase.RUNNING, JobPhase.DISPATCHED)]:
            at = self._member_clock(state)
            if at is None:
                continue
            _, _, pods = self._member_objects(state)
            await self._write_usage(state, pods, at)

    async def _write_usage(self, state: JobState, pods: list[DispatchedPod], at: dt.datetime,
                           attempt: int | None = None) -> None:
        """Accrue an attempt's pods into the job's status, then (once durable) into the counters."""
        before = (state.usage, [dict(h) for h in state.history])
        usage, deltas = self._accrue(state, pods, at, attempt=attempt)
        if usage is None:
            return
        try:
            await self._patch_job(state, {"usage": usage, "attemptHistory": state.history})
        except Exception:
            state.usage, state.history = before
            raise
        self._count(state, deltas)

    # ------------------------------------------------------------------ sync from members

    def _member_changed(self, member: str, change: MemberChange) -> None:
        value = change.new if change.new is not None else change.old
        if isinstance(value, DispatchedJob | DispatchedPod):
            if (isinstance(value, DispatchedJob) and change.new is not None and not value.deleting
                    and self.started.is_set() and value.name not in self._deleting
                    and self._superseded(value.job_uid, value.attempt)):
                # e.g. a create sent before the member froze, carried out after it came back
                self._deleting.add(value.name)
                self._spawn(self._delete_superseded(member, value), name=f"fence-{value.name}")
            if isinstance(value, DispatchedJob) and change.new is None and value.name not in self._deleting:
                state = self.jobs.get(value.job_uid)
                if state is not None and state.attempt == value.attempt:
                    state.member_job_deleted = True
            self._mark_dirty(value.job_uid)
        else:
            self.wake()  # capacity changed: pending jobs may fit now

    def _mark_dirty(self, uid: str) -> None:
        self._dirty.add(uid)
        self._dirty_event.set()

    async def _sync_loop(self) -> None:
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
                self._spawn(self._sync_one(uid), name=f"sync-{uid}")

    async def _sync_one(self, uid: str) -> None:
        try:
            await self.sync_job(uid)
        except Exception as exc:
            log.warning("sync of %s failed: %s; retrying", uid, exc)
            await asyncio.sleep(0.5)
            self._resync.add(uid)
        finally:
            self._syncing.discard(uid)
            if uid in self._resync:
                self._resync.discard(uid)
                self._mark_dirty(uid)

    def _member_objects(self, state: JobState) -> tuple[MemberCluster | None, DispatchedJob | None,
                                                        list[DispatchedPod]]:
        if not state.placement:
            return None, None, []
        node = self.nodes.get(state.placement["node"])
        if node is None or node.member is None:
            return None, None, []
        member = node.member
        return member, member.cached_job(state.uid, state.attempt), member.cached_pods(state.uid, state.attempt)

    async def sync_job(self, uid: str) -> None:
        state = self.jobs.get(uid)
        if state is None or state.phase not in (JobPhase.DISPATCHED, JobPhase.RUNNING):
            return
        member, mjob, pods = self._member_objects(state)
        if member is None:
            return
        saved = (state.phase, list(state.conditions), state.usage, [dict(h) for h in state.history])
        status: dict[str, Any] = {}
        events: list[tuple[str, str, str]] = []
        started = [p.started for p in pods if p.started]
        if mjob is None:
            if state.member_job_deleted:
                state.phase = JobPhase.FAILED
                msg = (f"the member Job {state.member_job and state.member_job['name']} was deleted on "
                       f"{member.name} by someone other than the hub")
                self._set(state, "Failed", True, "MemberJobDeleted", msg)
                status.update(phase=state.phase.value, completionTime=iso(now()))
                events.append(("Warning", "MemberJobDeleted", msg))
        elif mjob.complete:
            state.phase = JobPhase.SUCCEEDED
            self._set(state, "Succeeded", True, "Completed", f"the member Job completed on {member.name}")
            status.update(phase=state.phase.value, completionTime=iso(mjob.completion_time or now()))
            events.append(("Normal", "Completed", f"completed on {member.name}"))
        elif mjob.failed_reason:
            state.phase = JobPhase.FAILED
            msg = failure_summary(mjob.failed_reason, mjob.failed_message,
                                  [(p.name, p.message or p.reason or "") for p in pods if p.phase == "Failed"])
            self._set(state, "Failed", True, mjob.failed_reason, msg)
            status.update(phase=state.phase.value, completionTime=iso(mjob.completion_time or now()))
            events.append(("Warning", "Failed", msg))
        elif any(p.phase == "Running" for p in pods) and state.phase is not JobPhase.RUNNING:
            state.phase = JobPhase.RUNNING
            self._observe_latency(state, "running")
            self._set(state, "Running", True, "PodsRunning", f"running on {member.name}")
            status.update(phase=state.phase.value)
            # No event: the Running condition says it, and an event per job start is a hub write.
        else:
            unschedulable = next((p.unschedulable for p in pods if p.unschedulable), None)
            if unschedulable:
                self._set(state, "Running", False, "MemberUnschedulable", unschedulable)
        if started and "startTime" not in (state.status_patch or {}):
            status["startTime"] = iso(min(started))
            state.status_patch["startTime"] = status["startTime"]
        deltas: list[UsageDelta] = []
        if state.phase.is_terminal:
            self.ledger = self.ledger.release(uid)
            self.wake()
            usage, deltas = self._accrue(state, pods, self._member_clock(state) or now(), final=True)
            if usage is not None:
                status["usage"] = usage
                status["attemptHistory"] = state.history
        if status or events:
            status["conditions"] = [to_api(c) for c in state.conditions]
            try:
                await self._patch_job(state, status)
            except Exception:
                # Not durable, so not done: roll back and let the sync loop try again.
                state.phase, state.conditions, state.usage, state.history = saved
                raise
            self._count(state, deltas)
            for type_, reason, message in events:
                self.events.record(state.ref, type_, reason, message)


def _attempt_price(state: JobState, attempt: int) -> dict[str, Any] | None:
    for entry in state.history:
        if entry["attempt"] == attempt and entry.get("price"):
            return entry["price"]  # type: ignore[no-any-return]
    return state.placement["price"] if state.placement else None


def _job_key(obj: Mapping[str, Any]) -> tuple[int, bool]:
    """What a ComputeJob watch event must be acted on for: a new generation, or its deletion."""
    meta = obj.get("metadata") or {}
    return int(meta.get("generation") or 0), bool(meta.get("deletionTimestamp"))


def _declared_lost_at(node: ComputeNode) -> dt.datetime | None:
    """When a node was declared lost, from its own status (it survives an operator restart)."""
    ready = next((c for c in node.status.conditions if c.type == "Ready"), None)
    if ready is None or ready.status != "False" or ready.reason not in ("MemberUnavailable", CREDENTIALS_EXPIRED):
        return None
    return ready.last_transition_time


def member_refused(status: int | None) -> bool:
    """A member's answer that no retry can change: a 4xx other than 409 (it exists: adopt it),
    429 (throttled) and 408 (timed out), and other than 401 (our credential: the node's Ready
    condition says so, and a re-join fixes it)."""
    return status is not None and 400 <= status < 500 and status not in (401, 408, 409, 429)


def _api_message(exc: ApiException) -> str:
    """The API server's own message of an error answer, without its JSON envelope."""
    try:
        body = json.loads(exc.body or "{}")
    except ValueError:
        return str(exc.reason or exc.status)
    return str(body.get("message") or exc.reason or exc.status) if isinstance(body, dict) else str(exc.reason)


def failure_summary(reason: str, message: str | None, pods: list[tuple[str, str]], shown: int = 5) -> str:
    """Why a member Job failed, with the reasons of a few of its failed pods: a job with 400
    failing pods gets one readable line, not 400 (which once overflowed the condition)."""
    text = f"{reason}: {message or ''}".strip()
    if not pods:
        return text
    by_reason: dict[str, list[str]] = {}
    for name, why in sorted(pods):
        by_reason.setdefault(why, []).append(name)
    parts = [f"{len(names)} pods: {why} (e.g. {names[0]})" if len(names) > 1 else f"{names[0]}: {why}"
             for why, names in sorted(by_reason.items(), key=lambda kv: (-len(kv[1]), kv[0]))[:shown]]
    more = len(by_reason) - shown
    return f"{text} ({'; '.join(parts)}{f'; {more} other reasons' if more > 0 else ''})"


MESSAGE_LIMIT = 4096
"""A condition message is summarised to this many characters (the API allows 32,768; a job's
status must stay far from the object size limit whatever a member or a tenant writes)."""


def summarised(message: str, limit: int = MESSAGE_LIMIT) -> str:
    """``message`` cut to ``limit`` characters, saying how much was left out."""
    if len(message) <= limit:
        return message
    tail = f" ... ({len(message) - limit} more characters)"
    return message[: limit - len(tail)] + tail


def _validation_message(exc: pydantic.ValidationError) -> str:
    """Each error as `field.path: what is wrong`, the way the API server words its own."""
    return "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())[:32000]


def _condition(type_: str, ok: bool, reason: str, message: str, body: dict[str, Any]) -> dict[str, Any]:
    return {"type": type_, "status": "True" if ok else "False", "reason": reason, "message": message,
            "lastTransitionTime": iso(now()), "observedGeneration": body["metadata"].get("generation")}


def _api_price(price: dict[str, Any]) -> Any:
    from interconnect.api.v1alpha1 import Price as ApiPrice

    return ApiPrice.model_validate(price)


def _decimal_text(value: Decimal) -> str:
    """A decimal string without exponent or trailing zeros (the API's Quantity pattern)."""
    text = format(value.normalize(), "f")
    return text


def make_latency(data: dict[str, str]) -> LatencyTable:
    import yaml

    text = data.get("latency.yaml")
    if not text:
        return LatencyTable.default()
    return LatencyTable.from_mapping(yaml.safe_load(text), base=LatencyTable.default())


Factory = Callable[[], Coroutine[Any, Any, Controller]]

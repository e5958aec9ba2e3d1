"""The member clusters: connections, readiness and loss, credentials, and each node's status.

`Members` owns one `NodeState` per ComputeNode and is the only place a node's readiness
changes: connecting, the heartbeat (a member silent on every channel for ``notReadyAfter`` is
declared lost; one that refuses the hub's token is `CredentialsExpired`), renewing the hub's
token, and writing the ComputeNode's status. Others ask it (`get`, `connected`, `answered_at`)
and are told through narrow hooks: ``wake`` when readiness changes (placement may change),
``fence`` when a node answers again (superseded attempts must go first), ``on_change`` for the
members' watch events (routed to the member sync).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pydantic

from interconnect.adapters.hub import Hub
from interconnect.adapters.member import MemberChange, MemberCluster, MemberUnauthorized, MemberUnavailable
from interconnect.adapters.metrics import Metrics
from interconnect.api.v1alpha1 import ComputeNode, set_condition, to_api, validation_message
from interconnect.core.capacity import capacity_by_model
from interconnect.core.credentials import CREDENTIALS_EXPIRED, ServiceAccountToken, expired, expired_message
from interconnect.core.eligibility import eligibility_failures
from interconnect.services.config import Settings
from interconnect.services.credentials import CredentialRenewer, Renewal
from interconnect.services.identity import IdentityRegistry
from interconnect.services.jobs import JobStore, iso, now

log = logging.getLogger(__name__)

MEMBER_UNAVAILABLE = "MemberUnavailable"
FENCING = "Fencing"


@dataclass
class NodeState:
    """One ComputeNode and its member: the connection and the node's readiness."""

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


class Deletions:
    """Names of member Jobs the hub is deleting itself: a Job that disappears without being
    here was deleted by someone else. A name is forgotten once its deletion is seen, and in any
    case ``keep`` seconds after it was marked: a Job that was already gone when the hub deleted
    it (404: no deletion will ever be seen) must not be remembered for ever. Forgetting one late
    is harmless: the hub deletes only Jobs of attempts that are over (the job ended, was deleted or
    superseded), for which nothing is decided from their disappearance any more."""

    KEEP_SECONDS = 3600.0

    def __init__(self, keep: float = KEEP_SECONDS, clock: Callable[[], float] = time.monotonic) -> None:
        self._names: dict[str, float] = {}
        """Name -> when it was marked, oldest first."""
        self._keep = keep
        self._clock = clock

    def mark(self, name: str) -> None:
        at = self._clock()
        self._names.pop(name, None)
        self._names[name] = at
        while self._names:  # the oldest first: amortised constant time per mark
            oldest, marked = next(iter(self._names.items()))
            if at - marked < self._keep:
                break
            del self._names[oldest]

    def __contains__(self, name: object) -> bool:
        return name in self._names

    def seen_gone(self, name: str) -> bool:
        """The Job is gone: True (and forgotten) when the hub deleted it. Also what a deleter
        calls when the Job was not there to delete (no deletion will be seen)."""
        return self._names.pop(name, None) is not None

    def __len__(self) -> int:
        return len(self._names)


def declared_lost_at(node: ComputeNode) -> dt.datetime | None:
    """When a node was declared lost, from its own status (it survives an operator restart)."""
    ready = next((c for c in node.status.conditions if c.type == "Ready"), None)
    if ready is None or ready.status != "False" or ready.reason not in (MEMBER_UNAVAILABLE, CREDENTIALS_EXPIRED):
        return None
    return ready.last_transition_time


def condition(type_: str, ok: bool, reason: str, message: str, body: dict[str, Any]) -> dict[str, Any]:
    """A condition of an object that did not validate (written from its raw body)."""
    return {"type": type_, "status": "True" if ok else "False", "reason": reason, "message": message,
            "lastTransitionTime": iso(now()), "observedGeneration": body["metadata"].get("generation")}


async def _nothing(_: NodeState) -> None:
    return None


class Members:
    """The member clusters (see the module docstring)."""

    def __init__(self, hub: Hub, settings: Settings, metrics: Metrics, jobs: JobStore, deletions: Deletions,
                 *, wake: Callable[[], None], started: asyncio.Event) -> None:
        self._hub = hub
        self._settings = settings
        self._metrics = metrics
        self._jobs = jobs
        self._deletions = deletions
        self._wake = wake
        self._started = started
        self._identity = IdentityRegistry(hub, settings.namespace, settings.identity_config_map)
        self._credentials = CredentialRenewer(hub, settings.token_renew_fraction)
        self._nodes: dict[str, NodeState] = {}
        self.fence: Callable[[NodeState], Awaitable[None]] = _nothing
        """Deletes what superseded attempts left on a member (the failover's; set by the wiring)."""
        self.on_change: Callable[[str, MemberChange], None] = lambda member, change: None
        """Where the members' watch events go (the member sync's; set by the wiring)."""

    # ------------------------------------------------------------------ queries

    def get(self, name: str) -> NodeState | None:
        return self._nodes.get(name)

    def __iter__(self) -> Iterator[NodeState]:
        return iter(list(self._nodes.values()))

    def connected(self, name: str) -> MemberCluster | None:
        """The member client of a node, if connected."""
        state = self._nodes.get(name)
        return state.member if state is not None else None

    def answered_at(self, name: str) -> dt.datetime | None:
        """The hub's wall time of the member's last answer (None: never, or unknown node)."""
        state = self._nodes.get(name)
        if state is None or state.last_ok is None:
            return None
        return now() - dt.timedelta(seconds=time.monotonic() - state.last_ok)

    # ------------------------------------------------------------------ ComputeNode events

    async def node_changed(self, body: dict[str, Any]) -> None:
        """A ComputeNode was created, changed or seen at start-up."""
        name = body["metadata"]["name"]
        try:
            node = ComputeNode.model_validate(body)
        except pydantic.ValidationError as exc:
            message = validation_message(exc)
            await self._hub.patch_status("computenodes", name, {"status": {
                "observedGeneration": body["metadata"].get("generation"),
                "conditions": [condition("Registered", False, "InvalidSpec", message, body),
                               condition("Ready", False, "NotRegistered", "the node is not registered", body)]}})
            await self._hub.event(body, "Warning", "InvalidSpec", message)
            await self.node_deleted(name)
            return
        state = self._nodes.get(name)
        if state is None or state.model.metadata.uid != node.metadata.uid:
            if state is not None and state.member is not None:
                await state.member.close()
            state = self._nodes[name] = NodeState(node)
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
            await self._hub.patch_status("computenodes", name, {"status": status})
            await self._hub.event(body, "Warning", "NotEligible", "; ".join(failures))
            if state.member is not None:
                await state.member.close()
                state.member = None
            self._wake()
            return
        code = node.status.identity_code or await self._identity.code_for(
            node=name, uid=node.metadata.uid or "", node_type=node.spec.type, region=node.spec.region)
        if node.status.identity_code is None:
            await self._hub.event(body, "Normal", "IdentityIssued", f"issued identity code {code}")
        state.registered = True
        status["identityCode"] = code
        state.model = node.model_copy(update={"status": node.status.model_copy(update={"identity_code": code})})
        conditions = set_condition(conditions, "Registered", True, "Eligible",
                                   f"identity code {code}; operating entity {entity.name} is eligible", gen, now())
        await self._connect(state)
        if self._started.is_set() and state.ready:
            await self.fence(state)
            if state.fencing:
                state.ready, state.ready_reason = False, FENCING
                state.ready_message = "deleting the Jobs of superseded attempts before new work"
        conditions = set_condition(conditions, "Ready", state.ready, state.ready_reason, state.ready_message, gen,
                                   now())
        status["conditions"] = [to_api(c) for c in conditions]
        state.model.status.conditions = conditions
        await self._hub.patch_status("computenodes", name, {"status": status})
        self._wake()

    async def node_deleted(self, name: str) -> None:
        """Forget a node; call ``drain`` first when the ComputeNode itself is being deleted."""
        self._credentials.forget(name)
        state = self._nodes.pop(name, None)
        if state is not None and state.member is not None:
            await state.member.close()
        self._wake()

    async def drain(self, name: str) -> str | None:
        """Clean a deleted node's member of everything of ours; what still blocks, else None.

        Jobs still active there keep the node (its finalizer stays until they end); finished
        member Jobs, already metered into their ComputeJobs' status, are deleted.
        """
        state = self._nodes.get(name)
        if state is None or state.member is None or state.ready_reason == CREDENTIALS_EXPIRED:
            return None  # nothing can be done on a member that refuses the hub's token (e.g. after leave)
        active = self._jobs.active_on(name)
        if active:
            names = ", ".join(f"{s.model.metadata.namespace}/{s.model.metadata.name}" for s in active[:5])
            return f"{len(active)} jobs still active on {name}: {names}"
        member = state.member
        leftovers = list(member.jobs.items.values())
        for job in leftovers:
            self._deletions.mark(job.name)
            if not await member.delete_job(job.name):
                self._deletions.seen_gone(job.name)  # already gone: no deletion to wait for
        if leftovers or member.pods.items:
            return f"waiting for {len(leftovers)} Jobs and {len(member.pods.items)} pods to go from {name}"
        return None

    def resync_nodes(self) -> None:
        """List every member's nodes again (the accelerator catalogue that reads them changed)."""
        for state in self._nodes.values():
            if state.member is not None:
                state.member.nodes.resync()

    async def close(self) -> None:
        for state in self._nodes.values():
            if state.member is not None:
                await state.member.close()

    # ------------------------------------------------------------------ connection

    async def _connect(self, state: NodeState) -> None:
        conn = state.model.spec.connection
        key = (conn.secret_ref.namespace, conn.secret_ref.name, conn.secret_ref.key, conn.namespace)
        if state.member is not None and state.connection_key == key:
            return
        if state.member is not None:
            await state.member.close()
            state.member = None
        try:
            kubeconfig = await self._hub.read_secret_key(conn.secret_ref.namespace, conn.secret_ref.name,
                                                         conn.secret_ref.key)
            member = await MemberCluster.connect(state.name, kubeconfig, conn.namespace, self.on_change,
                                                 fence=self._hub.fence)
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
            state.ready, state.ready_reason, state.ready_message = False, MEMBER_UNAVAILABLE, str(exc)
            state.lost_since = declared_lost_at(state.model) or now().replace(microsecond=0)
            return
        synced = await member.synced(self._settings.member_sync_timeout)
        state.last_ok = time.monotonic()
        state.ready = synced
        state.ready_reason = "MemberReady" if synced else "WatchNotSynced"
        state.ready_message = "the member's API server answers" if synced else "the member's watches did not sync"

    async def _reconnect_if_changed(self, state: NodeState) -> None:
        """Connect again when the node's Secret holds another kubeconfig than the one in use (a
        re-join after CredentialsExpired); an unreadable Secret leaves things as they are."""
        conn = state.model.spec.connection
        try:
            text = await self._hub.read_secret_key(conn.secret_ref.namespace, conn.secret_ref.name,
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
            state.lost_since = declared_lost_at(state.model) or now().replace(microsecond=0)

    async def _renew_credentials(self, state: NodeState) -> None:
        member = state.member
        if member is None:
            return
        ref = state.model.spec.connection.secret_ref
        outcome = await self._credentials.renew_if_due(state.name, member, (ref.namespace, ref.name, ref.key))
        if outcome is Renewal.RENEWED:
            self._metrics.token_renewals.labels(node=state.name).inc()
        elif outcome is Renewal.SUPERSEDED:
            await self._reconnect_if_changed(state)

    # ------------------------------------------------------------------ heartbeat

    async def run(self) -> None:
        """The heartbeat loop: ping every registered member, then renew the tokens that are due."""
        while True:
            await asyncio.sleep(self._settings.heartbeat_interval)
            await self.heartbeat_all()

    async def heartbeat_all(self) -> None:
        nodes = [s for s in self if s.registered]
        results = await asyncio.gather(*(self._heartbeat(s) for s in nodes), return_exceptions=True)
        for node, result in zip(nodes, results, strict=True):
            if isinstance(result, Exception):
                self._metrics.reconcile_errors.labels(loop="heartbeat").inc()
                log.warning("heartbeat of %s failed: %r", node.name, result)
        # Tokens are renewed while the member answers (a renewal is a request to it); a
        # failure is counted and tried again later: the current token still works meanwhile.
        answering = [s for s in nodes if s.member is not None and (s.ready or s.fencing)]
        renewed = await asyncio.gather(*(self._renew_credentials(s) for s in answering), return_exceptions=True)
        for node, result in zip(answering, renewed, strict=True):
            if isinstance(result, Exception):
                self._metrics.reconcile_errors.labels(loop="credentials").inc()
                log.warning("renewing the hub's token for %s failed: %s", node.name,
                            str(result) or type(result).__name__)

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
                    await self.fence(state)
                if state.fencing:
                    state.ready, state.ready_reason = False, FENCING
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
                if silent >= self._settings.not_ready_after:
                    if state.lost_since is None:
                        state.lost_since = now().replace(microsecond=0)
                    state.ready, state.ready_reason = False, MEMBER_UNAVAILABLE
                    state.ready_message = f"no answer for {silent:.0f}s: {exc}"
        due = time.monotonic() - state.last_status_write >= max(15.0, self._settings.heartbeat_interval)
        if state.ready != was_ready or state.ready_reason != was_reason or due:
            await self._write_status(state)
        if state.ready != was_ready:
            self._wake()

    async def _write_status(self, state: NodeState) -> None:
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
        await self._hub.patch_status("computenodes", state.name, {"status": status})

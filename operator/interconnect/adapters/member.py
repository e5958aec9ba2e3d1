"""One member cluster as the hub sees it: an asynchronous client and four watches.

The hub never blocks its event loop on a member: every call is asynchronous, every member has
its own client (closed on cleanup), and what the member runs is known from watches (nodes,
GPU-holding pods, and the Jobs and pods the hub dispatched), not from polling.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Any, TypeVar

import yaml
from kubernetes_asyncio import client as k8s
from kubernetes_asyncio.client.exceptions import ApiException
from kubernetes_asyncio.config import new_client_from_config_dict
from kubernetes_asyncio.config.config_exception import ConfigException

from interconnect.adapters.hub import direct
from interconnect.adapters.informer import Change, Informer, read_json
from interconnect.core.accelerators import model_of_node, resource_of
from interconnect.core.capacity import MemberNode, MemberPod, gpus_requested
from interconnect.core.credentials import ServiceAccountToken, decode_token, kubeconfig_token, with_token
from interconnect.core.leadership import EPOCH_LABEL, Fence, epoch_of, may_delete, unfenced
from interconnect.core.quantity import parse_quantity
from interconnect.core.vocabulary import GPU_RESOURCE

log = logging.getLogger(__name__)

MANAGED_BY = "interconnect.dev/managed-by"
MANAGED_BY_VALUE = "interconnect-hub"
JOB_UID = "interconnect.dev/job-uid"
ATTEMPT = "interconnect.dev/attempt"
OFFER = "interconnect.dev/offer"
NODE = "interconnect.dev/node"
"""The ComputeNode a member Job and its pods were dispatched through. Two ComputeNodes may point
at one member cluster, even at one namespace of it: each takes for its own only what carries its
name (or no name: dispatched before the label existed), so one never fences, meters or deletes
the other's jobs."""
OURS = f"{MANAGED_BY}={MANAGED_BY_VALUE}"


class MemberUnavailable(Exception):
    """The member's API server did not answer (or refused us)."""


class MemberUnauthorized(MemberUnavailable):
    """The member's API server answered 401: it does not accept the hub's credential any more."""


def _time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


@dataclass(frozen=True, slots=True)
class DispatchedPod:
    """A pod of a Job the hub dispatched, with the member's own timestamps (for metering)."""

    uid: str
    name: str
    job_uid: str
    attempt: int
    member_job: str
    node: str | None
    phase: str
    gpus: int
    started: datetime | None
    finished: datetime | None
    reason: str | None
    message: str | None
    unschedulable: str | None
    deleted: bool
    epoch: int | None = None
    """The epoch of the leader that dispatched it (None: before epochs)."""


@dataclass(frozen=True, slots=True)
class DispatchedJob:
    uid: str
    name: str
    job_uid: str
    attempt: int
    active: int
    succeeded: int
    failed: int
    complete: bool
    failed_reason: str | None
    failed_message: str | None
    start_time: datetime | None
    completion_time: datetime | None
    deleting: bool
    epoch: int | None = None
    """The epoch of the leader that created it (None: before epochs)."""


def _with_label(manifest: Mapping[str, Any], key: str, value: str) -> dict[str, Any]:
    """A copy of a Job manifest with one more label on the Job and on its pod template."""
    meta = manifest.get("metadata") or {}
    spec = manifest.get("spec") or {}
    template = spec.get("template") or {}
    tmeta = template.get("metadata") or {}
    pod_meta = {**tmeta, "labels": {**(tmeta.get("labels") or {}), key: value}}
    return {**manifest,
            "metadata": {**meta, "labels": {**(meta.get("labels") or {}), key: value}},
            "spec": {**spec, "template": {**template, "metadata": pod_meta}}}


def node_label(name: str) -> str:
    """A ComputeNode's name as a label value: itself when it fits 63 characters, else its first
    54 and a hash of the whole (names are DNS subdomains, so nothing else needs escaping)."""
    if len(name) <= 63:
        return name
    return f"{name[:54].rstrip('.-')}-{hashlib.sha256(name.encode()).hexdigest()[:8]}"


def _preconditions(uid: str | None) -> Any:
    """DeleteOptions that delete only the object with this uid (None: whatever has the name)."""
    return {"preconditions": {"uid": uid}} if uid else None


def project_node(obj: Mapping[str, Any]) -> MemberNode | None:
    """A node with accelerator cards: its model from its labels (the catalogue), its cards that
    model's device-plugin resource; None for a node without any."""
    status = obj.get("status") or {}
    labels = dict(obj["metadata"].get("labels") or {})
    model = model_of_node(labels)
    resource = resource_of(model) if model is not None else GPU_RESOURCE
    # A node's cards are whole; a fraction is rounded down, never sold.
    allocatable = int(parse_quantity((status.get("allocatable") or {}).get(resource, "0")))
    capacity = int(parse_quantity((status.get("capacity") or {}).get(resource, "0")))
    if capacity == 0 and allocatable == 0:
        return None
    ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or [])
    return MemberNode(
        name=obj["metadata"]["name"],
        uid=obj["metadata"].get("uid", ""),
        labels=labels,
        model=model,
        capacity_gpus=capacity,
        allocatable_gpus=allocatable,
        ready=ready,
        schedulable=not (obj.get("spec") or {}).get("unschedulable", False),
    )


def _pod_gpus(obj: Mapping[str, Any]) -> int:
    spec = obj.get("spec") or {}
    return gpus_requested(spec.get("containers") or [], spec.get("initContainers") or [])


def project_gpu_pod(obj: Mapping[str, Any]) -> MemberPod | None:
    gpus = _pod_gpus(obj)
    if gpus == 0:
        return None
    labels = obj["metadata"].get("labels") or {}
    phase = (obj.get("status") or {}).get("phase")
    return MemberPod(
        uid=obj["metadata"]["uid"],
        node=(obj.get("spec") or {}).get("nodeName"),
        gpus=gpus,
        terminal=phase in ("Succeeded", "Failed"),
        offer=labels.get(OFFER),
        job_uid=labels.get(JOB_UID),
    )


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _instant(value: str | None) -> datetime | None:
    """A container timestamp, or None for the zero time the kubelet reports for a container that
    never started (``StartError``: ``startedAt: 1970-01-01T00:00:00Z``, kubernetes#120331)."""
    t = _time(value)
    return t if t is not None and t > _EPOCH else None


def _runs(cs: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The runs of one container the kubelet still shows: its current one and the one before."""
    state, last = cs.get("state") or {}, cs.get("lastState") or {}
    return [run for run in (state.get("running"), state.get("terminated"), last.get("terminated")) if run]


def _sidecars(obj: Mapping[str, Any]) -> set[str]:
    """The names of the pod's native sidecars: init containers with ``restartPolicy: Always``."""
    return {c.get("name") for c in (obj.get("spec") or {}).get("initContainers") or []
            if c.get("restartPolicy") == "Always"}


def _pod_done(phase: str | None, statuses: list[Mapping[str, Any]], restart_policy: str, deleting: bool,
              sidecars: set[str]) -> bool:
    """Whether none of the pod's containers will run again.

    A terminal phase says so. Otherwise every container, init containers included, must be
    terminated (a waiting one, e.g. CrashLoopBackOff between two restarts, will run again) and the
    kubelet must not be about to restart one: with ``OnFailure`` a failed container (a sidecar's
    exit code does not count) is restarted while the phase stays Running (kubelet ``getPhase``).
    """
    if phase in ("Succeeded", "Failed"):
        return True
    states = {cs.get("name"): {k: v for k, v in (cs.get("state") or {}).items() if v} for cs in statuses}
    if not states or not all(set(s) == {"terminated"} for s in states.values()):
        return False
    failed = any((s["terminated"].get("exitCode") or 0) != 0 for name, s in states.items() if name not in sidecars)
    return deleting or restart_policy == "Never" or (restart_policy == "OnFailure" and not failed)


def _pod_span(status: Mapping[str, Any], restart_policy: str, deleting: bool,
              sidecars: set[str]) -> tuple[datetime | None, datetime | None]:
    """When the pod's first container started, and (once the pod is done) when its last one ended.

    Every container counts, init containers and native sidecars included, and every run the
    kubelet still shows (``state`` and ``lastState``): cards are held from the first start to the
    last finish, restarts and the gaps between them included. The kubelet forgets runs older than
    the last one; the hub keeps the earliest start it saw (``core.metering.accrue``).
    """
    statuses = [*(status.get("initContainerStatuses") or []), *(status.get("containerStatuses") or [])]
    runs = [run for cs in statuses for run in _runs(cs)]
    starts = [t for t in (_instant(run.get("startedAt")) for run in runs) if t is not None]
    started = min(starts, default=None)
    if not _pod_done(status.get("phase"), statuses, restart_policy, deleting, sidecars):
        return started, None
    finishes = [t for t in (_instant(run.get("finishedAt")) for run in runs) if t is not None]
    return started, max(finishes, default=None)


def _pod_failure(status: Mapping[str, Any], sidecars: set[str]) -> tuple[str | None, str | None]:
    """The pod's reason and message, or else those of its first failed container, init containers
    first. Native sidecars (init containers with ``restartPolicy: Always``) are left out: the kubelet
    stops them when the pod ends, and, as for the pod's phase, their exit code says nothing of it."""
    reason, message = status.get("reason"), status.get("message")
    for cs in [*(status.get("initContainerStatuses") or []), *(status.get("containerStatuses") or [])]:
        term = (cs.get("state") or {}).get("terminated")
        if term and term.get("exitCode", 0) != 0 and cs.get("name") not in sidecars:
            reason = reason or term.get("reason")
            message = message or f"container {cs.get('name')} exited with code {term.get('exitCode')}"
    return reason, message


def project_dispatched_pod(obj: Mapping[str, Any]) -> DispatchedPod | None:
    meta = obj["metadata"]
    labels = meta.get("labels") or {}
    if JOB_UID not in labels:
        return None
    status = obj.get("status") or {}
    spec = obj.get("spec") or {}
    deleting = bool(meta.get("deletionTimestamp"))
    sidecars = _sidecars(obj)
    started, finished = _pod_span(status, spec.get("restartPolicy") or "Always", deleting, sidecars)
    reason, message = _pod_failure(status, sidecars)
    unschedulable = None
    for cond in status.get("conditions") or []:
        if cond.get("type") == "PodScheduled" and cond.get("reason") == "Unschedulable":
            unschedulable = cond.get("message")
    owner = next((o.get("name") for o in meta.get("ownerReferences") or [] if o.get("kind") == "Job"), "")
    return DispatchedPod(
        uid=meta["uid"],
        name=meta["name"],
        job_uid=labels[JOB_UID],
        attempt=int(labels.get(ATTEMPT, "1")),
        member_job=owner,
        node=spec.get("nodeName"),
        phase=status.get("phase", "Pending"),
        gpus=_pod_gpus(obj),
        started=started,
        finished=finished,
        reason=reason,
        message=message,
        unschedulable=unschedulable,
        deleted=deleting,
        epoch=epoch_of(labels),
    )


def project_dispatched_job(obj: Mapping[str, Any]) -> DispatchedJob | None:
    meta = obj["metadata"]
    labels = meta.get("labels") or {}
    if JOB_UID not in labels:
        return None
    status = obj.get("status") or {}
    conds = {c.get("type"): c for c in status.get("conditions") or [] if c.get("status") == "True"}
    failed = conds.get("Failed")
    return DispatchedJob(
        uid=meta["uid"],
        name=meta["name"],
        job_uid=labels[JOB_UID],
        attempt=int(labels.get(ATTEMPT, "1")),
        active=int(status.get("active", 0)),
        succeeded=int(status.get("succeeded", 0)),
        failed=int(status.get("failed", 0)),
        complete="Complete" in conds,
        failed_reason=failed.get("reason") if failed else None,
        failed_message=failed.get("message") if failed else None,
        start_time=_time(status.get("startTime")),
        completion_time=_time(status.get("completionTime")),
        deleting=bool(meta.get("deletionTimestamp")),
        epoch=epoch_of(labels),
    )


MemberChange = Change[Any]
V = TypeVar("V")


K = TypeVar("K")


def _file(index: dict[K, dict[str, V]], owner: K, key: str, value: V | None) -> None:
    """Add (or, with None, remove) one object under its owner in an index."""
    if value is not None:
        index.setdefault(owner, {})[key] = value
        return
    bucket = index.get(owner)
    if bucket is not None:
        bucket.pop(key, None)
        if not bucket:
            del index[owner]


async def _list_json(lister: Callable[..., Any]) -> list[dict[str, Any]]:
    body = await read_json(await lister(_preload_content=False, _request_timeout=30))
    return list(body.get("items", []))


WRITE_CONCURRENCY = 48
"""Writes in flight per member (of the client's 100 connections: the rest for the watches, the
heartbeat and lists). Without a bound, a burst of thousands of creates queued for the
connections, timed out there (the timeout counts the wait), were retried, and starved the
heartbeat: a busy member was declared lost and its jobs re-placed."""


class MemberCluster:
    """Client and watches of one member; `start()` once, `close()` on cleanup."""

    def __init__(self, name: str, api: k8s.ApiClient, namespace: str,
                 on_change: Callable[[str, MemberChange], None], kubeconfig: Mapping[str, Any] | None = None,
                 fence: Fence = unfenced) -> None:
        self.name = name
        self.node_label = node_label(name)
        self.fence = fence
        """Asked before every write (see `Hub`): the epoch to stamp, or NotLeader."""
        self.namespace = namespace
        self.api = api
        self.kubeconfig: dict[str, Any] = dict(kubeconfig or {})
        """The kubeconfig the client was made from, with the token in use (never logged)."""
        self._on_change = on_change
        self._tasks: list[asyncio.Task[None]] = []
        self.last_error: str | None = None
        self.last_ok: float | None = None
        """When the member last answered anything: a watch event, a write, a ping."""
        self.api_errors = 0
        self._writes = asyncio.Semaphore(WRITE_CONCURRENCY)
        self._jobs_by_attempt: dict[tuple[str, int], dict[str, DispatchedJob]] = {}
        self._pods_by_attempt: dict[tuple[str, int], dict[str, DispatchedPod]] = {}
        self._gpu_pods_by_node: dict[str, dict[str, MemberPod]] = {}
        self._unbound_gpu_pods: dict[str, dict[str, MemberPod]] = {}
        """GPU pods not bound to a node yet, by the offer they were dispatched for."""
        core = k8s.CoreV1Api(api)
        batch = k8s.BatchV1Api(api)
        notify = partial(self._notify)
        self.nodes: Informer[MemberNode] = Informer(
            f"{name}/nodes", core.list_node, project_node, notify, on_error=self._error)
        self.gpu_pods: Informer[MemberPod] = Informer(
            f"{name}/gpu-pods",
            partial(core.list_pod_for_all_namespaces, field_selector="status.phase!=Succeeded,status.phase!=Failed"),
            project_gpu_pod, notify, on_error=self._error)
        self.pods: Informer[DispatchedPod] = Informer(
            f"{name}/pods", partial(core.list_namespaced_pod, namespace, label_selector=OURS),
            self._project_pod, notify, on_error=self._error)
        self.jobs: Informer[DispatchedJob] = Informer(
            f"{name}/jobs", partial(batch.list_namespaced_job, namespace, label_selector=OURS),
            self._project_job, notify, on_error=self._error)
        self._batch = batch
        self._core = core

    def mine(self, obj: Mapping[str, Any]) -> bool:
        """Dispatched through this ComputeNode (see `NODE`)."""
        labels = (obj.get("metadata") or {}).get("labels") or {}
        return bool(labels.get(NODE, self.node_label) == self.node_label)

    def _project_pod(self, obj: Mapping[str, Any]) -> DispatchedPod | None:
        return project_dispatched_pod(obj) if self.mine(obj) else None

    def _project_job(self, obj: Mapping[str, Any]) -> DispatchedJob | None:
        return project_dispatched_job(obj) if self.mine(obj) else None

    @classmethod
    async def connect(cls, name: str, kubeconfig: str, namespace: str,
                      on_change: Callable[[str, MemberChange], None], fence: Fence = unfenced) -> MemberCluster:
        # The errors end up in the ComputeNode's status: never quote the kubeconfig (YAML errors
        # show the offending line, which may be the token), only where and what kind of error.
        try:
            config = yaml.safe_load(kubeconfig)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
            raise ValueError(f"the Secret's kubeconfig is not valid YAML{where}") from None
        if not isinstance(config, dict) or "clusters" not in config:
            raise ValueError("the Secret does not hold a kubeconfig (no clusters)")
        try:
            api = direct(await new_client_from_config_dict(config))
        except ConfigException as exc:  # names the missing or mistyped key, never a value
            raise ValueError(str(exc)) from None
        except Exception as exc:
            raise ValueError(f"the Secret's kubeconfig is not usable ({type(exc).__name__})") from None
        return cls(name, api, namespace, on_change, config, fence)

    def same_kubeconfig(self, text: str) -> bool:
        """Whether ``text`` (a Secret's kubeconfig) is the one this client uses now."""
        try:
            return bool(yaml.safe_load(text) == self.kubeconfig)
        except yaml.YAMLError:
            return False

    @property
    def token(self) -> ServiceAccountToken | None:
        """The claims of the service-account token the hub uses here; None for other credentials
        (client certificates, a static token), which are not renewed."""
        token = kubeconfig_token(self.kubeconfig)
        return decode_token(token) if token else None

    async def request_token(self, current: ServiceAccountToken, lifetime: int, timeout: float = 10.0) -> str:
        """A new token for the same service account, bound to the same Secret, asked for with the
        current one (TokenRequest: the member chart lets the hub's account do this for itself only)."""
        spec: dict[str, Any] = {"expirationSeconds": lifetime}
        if current.secret:
            spec["boundObjectRef"] = {"apiVersion": "v1", "kind": "Secret", "name": current.secret,
                                      **({"uid": current.secret_uid} if current.secret_uid else {})}
        body: Any = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": spec}
        try:
            response: Any = await self._core.create_namespaced_service_account_token(
                current.service_account, current.namespace, body, _preload_content=False, _request_timeout=timeout)
            issued = await read_json(response)
        except ApiException as exc:
            self._error(exc)
            if exc.status == 401:
                raise MemberUnauthorized(f"401 {exc.reason}") from None
            raise MemberUnavailable(f"TokenRequest for {current.subject}: {exc.status} {exc.reason}") from None
        except (TimeoutError, OSError) as exc:
            self._error(exc)
            raise MemberUnavailable(str(exc) or type(exc).__name__) from exc
        self.last_ok = time.monotonic()
        token = str((issued.get("status") or {}).get("token") or "")
        if decode_token(token) is None:
            raise MemberUnavailable(f"TokenRequest for {current.subject} answered without a service-account token")
        return token

    def use_token(self, token: str) -> dict[str, Any]:
        """Send ``token`` from now on (the watches pick it up when they next connect); the
        kubeconfig with it."""
        self.kubeconfig = with_token(self.kubeconfig, token)
        self.api.configuration.api_key["BearerToken"] = f"Bearer {token}"
        return self.kubeconfig

    def _notify(self, change: MemberChange) -> None:
        self.last_ok = time.monotonic()
        self._index(change)
        self._on_change(self.name, change)

    def _index(self, change: MemberChange) -> None:
        """Keep the Jobs and pods of each (ComputeJob, attempt) at hand: a sync per job must not
        scan every Job and pod of the member (quadratic with thousands of jobs). And the GPU pods
        by node: an offer's free cards are read from its own nodes' pods, not from all of them."""
        for value, present in ((change.old, False), (change.new, True)):
            if isinstance(value, DispatchedJob):
                _file(self._jobs_by_attempt, (value.job_uid, value.attempt), change.key, value if present else None)
            elif isinstance(value, DispatchedPod):
                _file(self._pods_by_attempt, (value.job_uid, value.attempt), change.key, value if present else None)
            elif isinstance(value, MemberPod):
                if value.node:
                    _file(self._gpu_pods_by_node, value.node, change.key, value if present else None)
                elif value.offer:
                    _file(self._unbound_gpu_pods, value.offer, change.key, value if present else None)

    def gpu_pods_on(self, node: str) -> Iterable[MemberPod]:
        """The GPU pods bound to ``node``, as the watch last saw them."""
        return self._gpu_pods_by_node.get(node, {}).values()

    def unbound_gpu_pods(self, offer: str) -> Iterable[MemberPod]:
        """The GPU pods dispatched for ``offer`` that are not bound to a node yet."""
        return self._unbound_gpu_pods.get(offer, {}).values()

    def cached_job(self, job_uid: str, attempt: int) -> DispatchedJob | None:
        """The member Job of a ComputeJob's attempt, as the watch last saw it."""
        return next(iter(self._jobs_by_attempt.get((job_uid, attempt), {}).values()), None)

    def cached_pods(self, job_uid: str, attempt: int) -> list[DispatchedPod]:
        """The pods of a ComputeJob's attempt, as the watch last saw them."""
        return list(self._pods_by_attempt.get((job_uid, attempt), {}).values())

    def _error(self, exc: BaseException) -> None:
        self.api_errors += 1
        self.last_error = str(exc) or type(exc).__name__

    def start(self) -> None:
        for informer in (self.nodes, self.gpu_pods, self.pods, self.jobs):
            self._tasks.append(asyncio.create_task(informer.run(), name=informer.name))

    @property
    def informers(self) -> tuple[Informer[Any], ...]:
        return (self.nodes, self.gpu_pods, self.pods, self.jobs)

    async def synced(self, timeout: float) -> bool:
        try:
            await asyncio.wait_for(asyncio.gather(*(i.synced.wait() for i in self.informers)), timeout)
        except TimeoutError:
            return False
        return True

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
        await self.api.close()

    async def ping(self, timeout: float = 5.0) -> str:
        """The member's version, or MemberUnavailable: the heartbeat."""
        try:
            version = await k8s.VersionApi(self.api).get_code(_request_timeout=timeout)
        except ApiException as exc:
            self._error(exc)
            if exc.status == 401:
                raise MemberUnauthorized(f"401 {exc.reason}") from exc
            raise MemberUnavailable(str(exc) or type(exc).__name__) from exc
        except (TimeoutError, OSError) as exc:
            self._error(exc)
            raise MemberUnavailable(str(exc) or type(exc).__name__) from exc
        except Exception as exc:
            self._error(exc)
            raise MemberUnavailable(str(exc) or type(exc).__name__) from exc
        self.last_ok = time.monotonic()
        return str(version.git_version)

    async def create_job(self, manifest: Mapping[str, Any]) -> tuple[str, bool]:
        """Create the Job, or adopt the one a previous try created: (uid, created).

        The Job and its pods carry the epoch of the leader that creates them, so that an older
        leader never deletes them (`delete_job`)."""
        name = manifest["metadata"]["name"]
        try:
            async with self._writes:
                epoch = str(self.fence())  # after the wait for a slot: right before the request
                stamped = _with_label(_with_label(manifest, EPOCH_LABEL, epoch), NODE, self.node_label)
                # The answer is read as JSON for its UID only (no generated-model deserialisation).
                response: Any = await self._batch.create_namespaced_job(
                    self.namespace, stamped, _request_timeout=30,  # type: ignore[arg-type]  # dicts are sent as-is
                    _preload_content=False)
                created = await read_json(response)
            self.last_ok = time.monotonic()
            return str(created["metadata"]["uid"]), True
        except ApiException as exc:
            if exc.status != 409:
                self._error(exc)
                raise
        existing = await self._batch.read_namespaced_job(name, self.namespace, _request_timeout=30)
        want = manifest["metadata"]["labels"][JOB_UID]
        if (existing.metadata.labels or {}).get(JOB_UID) != want:
            raise RuntimeError(f"Job {self.namespace}/{name} on {self.name} belongs to another ComputeJob")
        return str(existing.metadata.uid), False

    async def list_ours(self) -> tuple[list[DispatchedJob], list[DispatchedPod]]:
        """Our Jobs and pods as the member's API server has them now (not the watches' cache).

        Fencing needs this: after an outage the watches may still be catching up.
        """
        jobs = await self._listed(partial(self._batch.list_namespaced_job, self.namespace, label_selector=OURS))
        pods = await self._pods_matching(OURS)
        return [j for j in map(self._project_job, jobs) if j is not None], pods

    async def pods_of(self, job_uid: str) -> list[DispatchedPod]:
        """One ComputeJob's pods as the member's API server has them now, selected by the server:
        deleting a thousand superseded Jobs must not list every pod of ours a thousand times."""
        return await self._pods_matching(f"{OURS},{JOB_UID}={job_uid}")

    async def _pods_matching(self, selector: str) -> list[DispatchedPod]:
        pods = await self._listed(partial(self._core.list_namespaced_pod, self.namespace, label_selector=selector))
        return [p for p in map(self._project_pod, pods) if p is not None]

    async def _listed(self, lister: Callable[..., Any]) -> list[dict[str, Any]]:
        """A list from the member's API server; MemberUnavailable when it does not answer."""
        try:
            return await _list_json(lister)
        except (TimeoutError, ApiException, OSError) as exc:
            self._error(exc)
            raise MemberUnavailable(str(exc) or type(exc).__name__) from exc

    async def delete_pod(self, name: str, *, uid: str | None = None, epoch: int | None = None) -> bool:
        """Delete a pod of ours left behind by a deleted Job; False when it was already gone, or
        was dispatched by a newer leader than this one (out of its reach)."""
        try:
            async with self._writes:
                if not self._may_delete(f"pod {name}", epoch):
                    return False
                await self._core.delete_namespaced_pod(name, self.namespace, grace_period_seconds=0,
                                                       body=_preconditions(uid), _request_timeout=30)
        except ApiException as exc:
            if exc.status in (404, 409):  # gone, or another object of that name now
                return False
            self._error(exc)
            raise
        return True

    async def delete_job(self, name: str, *, uid: str | None = None, epoch: int | None = None) -> bool:
        """Delete a dispatched Job and its pods; False when it was already gone, or was created by
        a newer leader than this one. With ``uid``, only that very object: a Job recreated under
        the same name meanwhile is left alone."""
        try:
            async with self._writes:
                if not self._may_delete(f"Job {name}", epoch):
                    return False
                await self._batch.delete_namespaced_job(
                    name, self.namespace, propagation_policy="Background", body=_preconditions(uid),
                    _request_timeout=30)
        except ApiException as exc:
            if exc.status in (404, 409):
                return False
            self._error(exc)
            raise
        return True

    def _may_delete(self, what: str, written_under: int | None) -> bool:
        own = self.fence()
        if may_delete(written_under, own):
            return True
        log.warning("%s on %s was written under epoch %s, newer than this leader's %d: left alone",
                    what, self.name, written_under, own)
        return False

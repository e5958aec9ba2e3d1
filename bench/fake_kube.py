"""In-memory Kubernetes API servers for benchmarks: the operator's own clients, no network, no cluster.

`install()` replaces the aiohttp session inside kubernetes_asyncio's REST client, and nothing
above it: every ApiClient made afterwards (the hub's, and each member's from its kubeconfig)
goes through the generated API classes, the REST client's encoding and the operator's adapters
(Hub, MemberCluster, Informer) as in production, and its requests are answered by the
`FakeApiServer` registered for the URL's host.

A server keeps objects as JSON-like dicts by (group, resource) and (namespace, name): create
(generateName too), get, list and watch (label selectors ``k=v``, ``k!=v``, ``k``, ``!k``; field
selectors ``a.b=v``, ``a.b!=v``, with the API server's transitions: an object that stops matching a
watch's selector is DELETED for it), JSON merge patch (the status subresource apart, a new
generation when the spec changes), replace and delete guarded by resourceVersion or uid
preconditions, and 410 Gone for a watch from a resourceVersion older than its short event log.
Hooks let a simulation refuse a create (admission) and react to writes (a Job controller and a
kubelet: see `MemberSimulation`). What it keeps is bounded: deleted objects go, every
collection's event log has a fixed length, closed watches are dropped, and ``write_only``
resources (events, records) are answered but not kept, so that a benchmark in the same process
measures the operator's memory, not the fake's.

Not a conformance implementation: no schema validation, admission or defaulting beyond the above.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import itertools
import json
import random
import string
import uuid
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs, urlsplit

from kubernetes_asyncio.client import rest

EVENT_LOG = 200
"""Events each collection keeps for watches that resume from a resourceVersion."""

SERVERS: dict[str, FakeApiServer] = {}
"""Host name -> the server that answers for it."""

Obj = dict[str, Any]
Key = tuple[str, str]
"""(namespace or "", name)."""


def install() -> None:
    """Every kubernetes_asyncio REST client made from now on talks to `SERVERS` (idempotent)."""

    def init(self: Any, configuration: Any, pools_size: int = 4, maxsize: int | None = None) -> None:
        self.proxy = configuration.proxy
        self.proxy_headers = configuration.proxy_headers
        self.server_hostname = configuration.tls_server_name
        self.pool_manager = Session()

    rest.RESTClientObject.__init__ = init


def now_text(offset: float = 0.0) -> str:
    t = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=offset)
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


# ------------------------------------------------------------------------------------------ transport


class Response:
    """What the REST client reads of an aiohttp response: status, reason, headers, body, content."""

    def __init__(self, status: int, payload: Any = None, stream: WatchStream | None = None) -> None:
        self.status = status
        self.reason = HTTPStatus(status).phrase
        self.headers = {"content-type": "application/json"}
        self._payload = b"" if payload is None else json.dumps(payload).encode()
        self.content = stream

    async def read(self) -> bytes:
        return self._payload

    def release(self) -> None:
        if self.content is not None:
            self.content.close()

    close = release


class Session:
    """Stands for the aiohttp ClientSession: routes each request to the server of its host."""

    _trust_env = False

    async def request(self, method: str, url: str, timeout: Any = None, headers: Any = None, data: Any = None,
                      **_: Any) -> Response:
        parts = urlsplit(url)
        server = SERVERS.get(parts.hostname or "")
        await asyncio.sleep(0)  # answered on a later step of the loop, as over a socket
        if server is None or server.down:
            raise OSError(f"connection refused: {parts.hostname}")
        body = json.loads(data) if isinstance(data, str | bytes) and data else None
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        return server.handle(method.upper(), parts.path, query, body)

    async def close(self) -> None:
        return None


def status_body(code: int, message: str, reason: str = "") -> Obj:
    return {"kind": "Status", "apiVersion": "v1", "status": "Failure", "message": message,
            "reason": reason or HTTPStatus(code).phrase.replace(" ", ""), "code": code}


class ApiError(Exception):
    def __init__(self, code: int, message: str, reason: str = "") -> None:
        super().__init__(message)
        self.code, self.message, self.reason = code, message, reason


# ------------------------------------------------------------------------------------------ selectors


def _lookup(obj: Mapping[str, Any], path: str) -> str:
    value: Any = obj
    for part in path.split("."):
        value = value.get(part) if isinstance(value, Mapping) else None
    return "" if value is None else str(value)


def selector(label_selector: str | None, field_selector: str | None) -> Callable[[Mapping[str, Any]], bool]:
    """A predicate for ``labelSelector`` and ``fieldSelector`` (equality terms only)."""
    labels = [t.strip() for t in (label_selector or "").split(",") if t.strip()]
    fields = [t.strip() for t in (field_selector or "").split(",") if t.strip()]

    def matches(obj: Mapping[str, Any]) -> bool:
        have = (obj.get("metadata") or {}).get("labels") or {}
        for term in labels:
            if "!=" in term:
                k, v = term.split("!=", 1)
                if have.get(k.strip()) == v.strip():
                    return False
            elif "=" in term:
                k, v = term.replace("==", "=").split("=", 1)
                if have.get(k.strip()) != v.strip():
                    return False
            elif term.startswith("!"):
                if term[1:] in have:
                    return False
            elif term not in have:
                return False
        for term in fields:
            if "!=" in term:
                k, v = term.split("!=", 1)
                if _lookup(obj, k.strip()) == v.strip():
                    return False
            else:
                k, v = term.replace("==", "=").split("=", 1)
                if _lookup(obj, k.strip()) != v.strip():
                    return False
        return True

    return matches


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch (a new value; ``target`` is not changed)."""
    if not isinstance(patch, Mapping):
        return patch
    out = dict(target) if isinstance(target, Mapping) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge_patch(out.get(key), value)
    return out


def copy(obj: Any) -> Any:
    return json.loads(json.dumps(obj))


# ------------------------------------------------------------------------------------------ watches


@dataclass(frozen=True, slots=True)
class Event:
    rv: int
    type: str
    new: Obj
    old: Obj | None


class WatchStream:
    """The body of a watch response: one JSON line per event, until the timeout or release()."""

    def __init__(self, collection: Collection, namespace: str | None, matches: Callable[[Mapping[str, Any]], bool],
                 timeout: float) -> None:
        self._collection = collection
        self._namespace = namespace
        self._matches = matches
        self._queue: asyncio.Queue[bytes | None] = asyncio.Queue()
        self._deadline = asyncio.get_running_loop().time() + timeout
        self.closed = False

    def _mine(self, obj: Mapping[str, Any] | None) -> bool:
        if obj is None:
            return False
        if self._namespace is not None and (obj.get("metadata") or {}).get("namespace") != self._namespace:
            return False
        return self._matches(obj)

    def offer(self, event: Event) -> None:
        """Send ``event`` as this watch sees it (an object leaving its selector is DELETED)."""
        was, now = self._mine(event.old), self._mine(event.new)
        if event.type == "DELETED":
            kind = "DELETED" if was or now else None
        elif was and now:
            kind = "MODIFIED"
        elif now:
            kind = "ADDED"
        elif was:
            kind = "DELETED"
        else:
            kind = None
        if kind is not None:
            self.send({"type": kind, "object": event.new})

    def send(self, event: Mapping[str, Any]) -> None:
        if not self.closed:
            self._queue.put_nowait(json.dumps(event).encode() + b"\n")

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self

    async def __anext__(self) -> bytes:
        left = self._deadline - asyncio.get_running_loop().time()
        if self.closed or left <= 0:
            raise StopAsyncIteration
        try:
            line = await asyncio.wait_for(self._queue.get(), left)
        except TimeoutError:
            raise StopAsyncIteration from None
        if line is None:
            raise StopAsyncIteration
        return line

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._collection.watches.discard(self)
            self._queue.put_nowait(None)


@dataclass
class Collection:
    objects: dict[Key, Obj] = field(default_factory=dict)
    log: deque[Event] = field(default_factory=lambda: deque(maxlen=EVENT_LOG))
    watches: set[WatchStream] = field(default_factory=set)
    dropped: int = 0
    """The resourceVersion of the last event dropped from the log (a watch from before it gets 410)."""


Hook = Callable[[str, Obj, Obj | None], None]
"""(event type, new object, old object) after a write to one resource."""
Admission = Callable[[Obj], ApiError | None]


# ------------------------------------------------------------------------------------------ the server


class FakeApiServer:
    """One cluster's API server (see the module docstring)."""

    def __init__(self, host: str, *, write_only: Iterable[str] = ()) -> None:
        self.host = host
        self.down = False
        """While True, every request fails as a refused connection."""
        self.write_only = set(write_only)
        self.collections: dict[tuple[str, str], Collection] = {}
        self.hooks: dict[str, list[Hook]] = {}
        self.admission: dict[str, list[Admission]] = {}
        self.fault: Callable[[str, str, str | None], ApiError | None] | None = None
        """(method, resource, subresource) -> an error to answer instead (a flaky API server)."""
        self.requests: dict[str, int] = {}
        """Requests answered, by method and resource (e.g. ``POST jobs``)."""
        self.created: dict[str, int] = {}
        """Objects created, by resource (write-only ones included)."""
        self._rv = itertools.count(1)
        self.rv = 0
        SERVERS[host] = self

    # -------------------------------------------------------------- in-process access (the simulations)

    def collection(self, group: str, resource: str) -> Collection:
        return self.collections.setdefault((group, resource), Collection())

    def objects(self, group: str, resource: str) -> dict[Key, Obj]:
        return self.collection(group, resource).objects

    def on(self, resource: str, hook: Hook) -> None:
        self.hooks.setdefault(resource, []).append(hook)

    def admit(self, resource: str, check: Admission) -> None:
        self.admission.setdefault(resource, []).append(check)

    def create(self, group: str, resource: str, obj: Obj) -> Obj:
        meta = obj.setdefault("metadata", {})
        ns = meta.get("namespace") or ""
        if not meta.get("name"):
            suffix = "".join(random.choices(string.ascii_lowercase + string.digits, k=5))
            meta["name"] = f"{meta.get('generateName', 'obj-')}{suffix}"
        for check in self.admission.get(resource, []):
            refusal = check(obj)
            if refusal is not None:
                raise refusal
        coll = self.collection(group, resource)
        key = (ns, meta["name"])
        if key in coll.objects:
            raise ApiError(409, f'{resource} "{meta["name"]}" already exists', "AlreadyExists")
        meta.update(uid=str(uuid.uuid4()), creationTimestamp=now_text(), generation=1)
        meta.pop("resourceVersion", None)
        self.created[resource] = self.created.get(resource, 0) + 1
        if resource in self.write_only:
            meta["resourceVersion"] = str(next(self._rv))
            return obj
        return self._store(group, resource, key, copy(obj), "ADDED", None)

    def update(self, group: str, resource: str, key: Key, change: Callable[[Obj], Obj]) -> Obj | None:
        """Apply ``change`` to a copy of the object (None: it is gone) and store the result."""
        coll = self.collection(group, resource)
        old = coll.objects.get(key)
        if old is None:
            return None
        new = change(copy(old))
        return self._store(group, resource, key, new, "MODIFIED", old)

    def delete(self, group: str, resource: str, key: Key, uid: str | None = None) -> Obj | None:
        coll = self.collection(group, resource)
        old = coll.objects.get(key)
        if old is None:
            return None
        if uid is not None and old["metadata"]["uid"] != uid:
            raise ApiError(409, f"Precondition failed: UID in precondition: {uid}, UID in object meta: "
                           f"{old['metadata']['uid']}", "Conflict")
        del coll.objects[key]
        gone = copy(old)
        self.rv = next(self._rv)
        gone["metadata"]["resourceVersion"] = str(self.rv)
        self._emit(coll, Event(self.rv, "DELETED", gone, old))
        for hook in self.hooks.get(resource, []):
            hook("DELETED", gone, old)
        return gone

    def _store(self, group: str, resource: str, key: Key, obj: Obj, kind: str, old: Obj | None) -> Obj:
        coll = self.collection(group, resource)
        self.rv = next(self._rv)
        obj["metadata"]["resourceVersion"] = str(self.rv)
        coll.objects[key] = obj
        self._emit(coll, Event(self.rv, kind, obj, old))
        for hook in self.hooks.get(resource, []):
            hook(kind, obj, old)
        return obj

    def _emit(self, coll: Collection, event: Event) -> None:
        if len(coll.log) == coll.log.maxlen:
            coll.dropped = coll.log[0].rv
        coll.log.append(event)
        for watch in list(coll.watches):
            watch.offer(event)

    # -------------------------------------------------------------- HTTP

    def handle(self, method: str, path: str, query: Mapping[str, str], body: Any) -> Response:
        try:
            return self._handle(method, path, query, body)
        except ApiError as exc:
            return Response(exc.code, status_body(exc.code, exc.message, exc.reason))

    def _handle(self, method: str, path: str, query: Mapping[str, str], body: Any) -> Response:
        parts = [p for p in path.split("/") if p]
        if parts == ["version"]:
            return Response(200, {"major": "1", "minor": "36", "gitVersion": "v1.36.0-fake", "gitCommit": "fake",
                                  "gitTreeState": "clean", "buildDate": "2026-01-01T00:00:00Z",
                                  "goVersion": "go1.25", "compiler": "gc", "platform": "linux/amd64"})
        if parts[:1] == ["api"]:
            group, rest_ = "", parts[2:]
        elif parts[:1] == ["apis"]:
            group, rest_ = parts[1], parts[3:]
        else:
            raise ApiError(404, f"no such path {path}")
        namespace: str | None = None
        if rest_[:1] == ["namespaces"] and len(rest_) >= 3:
            namespace, rest_ = rest_[1], rest_[2:]
        resource, name, sub = rest_[0], (rest_[1] if len(rest_) > 1 else None), (rest_[2] if len(rest_) > 2 else None)
        self.requests[f"{method} {resource}"] = self.requests.get(f"{method} {resource}", 0) + 1
        refusal = self.fault(method, resource, sub) if self.fault is not None else None
        if refusal is not None:
            raise refusal
        coll = self.collection(group, resource)
        key = (namespace or "", name or "")
        if method == "GET" and name is None:
            matches = selector(query.get("labelSelector"), query.get("fieldSelector"))
            if query.get("watch", "").lower() == "true":
                return self._watch(coll, namespace, matches, query)
            items = [o for (ns, _), o in coll.objects.items() if (namespace is None or ns == namespace) and matches(o)]
            return Response(200, {"kind": "List", "apiVersion": "v1", "metadata": {"resourceVersion": str(self.rv)},
                                  "items": items})
        if method == "GET":
            if key not in coll.objects:
                raise ApiError(404, f'{resource} "{name}" not found', "NotFound")
            return Response(200, coll.objects[key])
        if method == "POST":
            obj = dict(body or {})
            obj["metadata"] = {**(obj.get("metadata") or {}), **({"namespace": namespace} if namespace else {})}
            return Response(201, self.create(group, resource, obj))
        if method in ("PATCH", "PUT"):
            return Response(200, self._write(group, resource, key, method, sub, body or {}))
        if method == "DELETE":
            uid = ((body or {}).get("preconditions") or {}).get("uid")
            gone = self.delete(group, resource, key, uid)
            if gone is None:
                raise ApiError(404, f'{resource} "{name}" not found', "NotFound")
            return Response(200, gone)
        raise ApiError(405, f"{method} not allowed")

    def _write(self, group: str, resource: str, key: Key, method: str, sub: str | None, body: Obj) -> Obj:
        coll = self.collection(group, resource)
        old = coll.objects.get(key)
        if old is None:
            raise ApiError(404, f'{resource} "{key[1]}" not found', "NotFound")
        wanted = (body.get("metadata") or {}).get("resourceVersion")
        if wanted and wanted != old["metadata"]["resourceVersion"]:
            raise ApiError(409, "the object has been modified; please apply your changes to the latest version "
                           "and try again", "Conflict")
        if method == "PUT":
            new = copy(body)
            new["metadata"] = {**new.get("metadata", {}), **{k: old["metadata"][k] for k in
                                                             ("uid", "creationTimestamp", "generation")}}
        elif sub == "status":
            new = merge_patch(old, {"status": body.get("status")}) if "status" in body else copy(old)
        else:
            new = merge_patch(old, {k: v for k, v in body.items() if k != "status" or resource not in STATUS})
            if new.get("spec") != old.get("spec"):
                new["metadata"]["generation"] = int(old["metadata"].get("generation") or 1) + 1
        new = copy(new)
        new["metadata"].pop("resourceVersion", None)
        return self._store(group, resource, key, new, "MODIFIED", old)

    def _watch(self, coll: Collection, namespace: str | None, matches: Callable[[Mapping[str, Any]], bool],
               query: Mapping[str, str]) -> Response:
        stream = WatchStream(coll, namespace, matches, float(query.get("timeoutSeconds") or 300))
        since = int(query.get("resourceVersion") or 0)
        if since and since < coll.dropped:
            stream.send({"type": "ERROR", "object": status_body(410, f"too old resource version: {since}",
                                                               "Expired")})
            return Response(200, stream=stream)
        for event in coll.log:
            if event.rv > since:
                stream.offer(event)
        coll.watches.add(stream)
        return Response(200, stream=stream)

    def compact(self) -> None:
        """Forget the event logs, as etcd's compaction does: a watch that resumes from before now
        gets 410 Gone and lists again. (What a log holds at a given moment is noise in a measure.)"""
        for coll in self.collections.values():
            if coll.log:
                coll.dropped = coll.log[-1].rv
                coll.log.clear()

    def close(self) -> None:
        for coll in self.collections.values():
            for watch in list(coll.watches):
                watch.close()
        SERVERS.pop(self.host, None)

    def census(self) -> dict[str, int]:
        """Objects kept, per resource, and events and open watches in all: what the fake holds."""
        out = {f"{resource}": len(c.objects) for (_, resource), c in sorted(self.collections.items()) if c.objects}
        out["(events logged)"] = sum(len(c.log) for c in self.collections.values())
        out["(open watches)"] = sum(len(c.watches) for c in self.collections.values())
        return out


STATUS = {"computejobs", "computenodes", "computeoffers", "computequotas", "jobs", "pods", "nodes"}
"""Resources with a status subresource: a write to the main resource leaves their status alone."""


# ------------------------------------------------------------------------------------------ a member's controllers


REFUSE = "bench.interconnect.dev/refuse"
"""A pod template annotation: the member refuses the Job (422), as it would an invalid one."""
OUTCOME = "testbed.interconnect.dev/outcome"
"""A pod template annotation (the test bed's): ``fail`` makes the pods exit with code 1."""


class MemberSimulation:
    """What a member's Job controller, scheduler and kubelet do to the hub's Jobs, in fast motion.

    A created Job gets its pods (``parallelism``) bound to GPU nodes round robin, Running after
    ``start_after`` seconds, and ending ``run_for`` seconds later; the container timestamps say
    the pods ran ``reported_run`` seconds (whole seconds, as the kubelet reports them), so that
    short real runs meter as card-time. A deleted Job's pods go too (background propagation).
    """

    def __init__(self, server: FakeApiServer, nodes: list[str], *, start_after: float = 0.01,
                 run_for: float = 0.05, reported_run: int = 10) -> None:
        self.server = server
        self.nodes = nodes
        self.start_after = start_after
        self.run_for = run_for
        self.reported_run = reported_run
        self._next_node = itertools.cycle(nodes)
        self._pods_of: dict[str, set[Key]] = {}
        """Job uid -> its pods' keys (gone with the Job)."""
        server.admit("jobs", self._admit)
        server.on("jobs", self._job_written)

    @staticmethod
    def _admit(job: Obj) -> ApiError | None:
        annotations = (((job.get("spec") or {}).get("template") or {}).get("metadata") or {}).get("annotations") or {}
        if annotations.get(REFUSE):
            return ApiError(422, f'Job.batch "{job["metadata"]["name"]}" is invalid: spec.template.spec: '
                            "refused by the benchmark's admission", "Invalid")
        return None

    def _job_written(self, kind: str, job: Obj, old: Obj | None) -> None:
        loop = asyncio.get_running_loop()
        uid = job["metadata"]["uid"]
        if kind == "ADDED":
            self._pods_of[uid] = set()
            for _ in range(int(job["spec"].get("parallelism") or 1)):
                loop.call_later(self.start_after / 2, self._create_pod, job)
        elif kind == "DELETED":
            for key in self._pods_of.pop(uid, set()):
                self._terminate(key)

    def _terminate(self, key: Key) -> None:
        """The garbage collector deletes the pod: a running one terminates first (deletionTimestamp,
        its containers stopped a moment later, exit 143), a finished one goes at once."""
        pod = self.server.objects("", "pods").get(key)
        if pod is None:
            return
        if pod["status"].get("phase") != "Running":
            self._delete_pod(key)
            return
        stopping = now_text()

        def deleting(obj: Obj) -> Obj:
            obj["metadata"]["deletionTimestamp"] = stopping
            obj["metadata"]["deletionGracePeriodSeconds"] = 30
            return obj

        def stopped(obj: Obj) -> Obj:
            obj["status"]["phase"] = "Failed"
            obj["status"]["containerStatuses"] = [
                {**cs, "ready": False, "state": {"terminated": {
                    "exitCode": 143, "reason": "Error", "startedAt": (cs["state"].get("running") or {}).get(
                        "startedAt"), "finishedAt": now_text()}}} for cs in obj["status"]["containerStatuses"]]
            return obj

        self.server.update("", "pods", key, deleting)
        loop = asyncio.get_running_loop()
        loop.call_later(self.run_for, lambda: (self.server.update("", "pods", key, stopped), self._delete_pod(key)))

    def node_for(self, pod_spec: Obj) -> str:
        """The node a new pod is bound to: round robin (a simulation with node pools overrides it)."""
        return next(self._next_node)

    def _create_pod(self, job: Obj) -> None:
        meta, uid = job["metadata"], job["metadata"]["uid"]
        if uid not in self._pods_of:
            return  # deleted meanwhile
        template = job["spec"]["template"]
        pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {
            "generateName": f"{meta['name']}-", "namespace": meta["namespace"],
            "labels": {**(template["metadata"].get("labels") or {}), "batch.kubernetes.io/controller-uid": uid,
                       "batch.kubernetes.io/job-name": meta["name"]},
            "annotations": dict(template["metadata"].get("annotations") or {}),
            "ownerReferences": [{"apiVersion": "batch/v1", "kind": "Job", "name": meta["name"], "uid": uid,
                                 "controller": True}]},
            "spec": {**template["spec"], "nodeName": self.node_for(template["spec"])},
            "status": {"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "True"}]}}
        created = self.server.create("", "pods", pod)
        key = (meta["namespace"], created["metadata"]["name"])
        self._pods_of[uid].add(key)
        loop = asyncio.get_running_loop()
        loop.call_later(self.start_after / 2, self._start, job, key)

    def _start(self, job: Obj, key: Key) -> None:
        started = now_text(-self.reported_run)

        def running(pod: Obj) -> Obj:
            names = [c["name"] for c in pod["spec"]["containers"]]
            pod["status"] = {"phase": "Running", "startTime": started, "conditions": [
                {"type": "PodScheduled", "status": "True"}, {"type": "Ready", "status": "True"}],
                "containerStatuses": [{"name": n, "ready": True, "restartCount": 0,
                                       "state": {"running": {"startedAt": started}}} for n in names]}
            return pod

        if self.server.update("", "pods", key, running) is None:
            return
        self._job_status(job, lambda s: {**s, "active": s.get("active", 0) + 1, "startTime": started})
        asyncio.get_running_loop().call_later(self.run_for, self._finish, job, key, started)

    def _finish(self, job: Obj, key: Key, started: str) -> None:
        failed = (job["spec"]["template"]["metadata"].get("annotations") or {}).get(OUTCOME) == "fail"
        finished = now_text()
        code = 1 if failed else 0

        pod = self.server.objects("", "pods").get(key)
        if pod is None or pod["metadata"].get("deletionTimestamp"):
            return  # deleted meanwhile: it terminates as the deletion says

        def ended(pod: Obj) -> Obj:
            status = pod["status"]
            status["phase"] = "Failed" if failed else "Succeeded"
            status["conditions"] = [{"type": "PodScheduled", "status": "True"}, {"type": "Ready", "status": "False"}]
            status["containerStatuses"] = [
                {**cs, "ready": False, "state": {"terminated": {
                    "exitCode": code, "reason": "Error" if failed else "Completed", "startedAt": started,
                    "finishedAt": finished}}} for cs in status["containerStatuses"]]
            return pod

        if self.server.update("", "pods", key, ended) is None:
            return

        def done(status: Obj) -> Obj:
            status = {**status, "active": max(0, status.get("active", 0) - 1)}
            if failed:
                status["failed"] = status.get("failed", 0) + 1
                status["conditions"] = [{"type": "FailureTarget", "status": "True", "reason": "BackoffLimitExceeded"},
                                        {"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded",
                                         "message": "Job has reached the specified backoff limit"}]
            else:
                status["succeeded"] = status.get("succeeded", 0) + 1
                if status["succeeded"] >= int(job["spec"].get("completions") or 1):
                    status["completionTime"] = finished
                    status["conditions"] = [{"type": "SuccessCriteriaMet", "status": "True"},
                                            {"type": "Complete", "status": "True"}]
            return status

        self._job_status(job, done)

    def _job_status(self, job: Obj, change: Callable[[Obj], Obj]) -> None:
        key = (job["metadata"]["namespace"], job["metadata"]["name"])

        def apply(obj: Obj) -> Obj:
            if obj["metadata"]["uid"] == job["metadata"]["uid"]:
                obj["status"] = change(obj.get("status") or {})
            return obj

        self.server.update("batch", "jobs", key, apply)

    def _delete_pod(self, key: Key) -> None:
        with contextlib.suppress(ApiError):
            self.server.delete("", "pods", key)

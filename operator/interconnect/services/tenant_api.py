"""The tenant API: an aggregated API (``tenant.interconnect.dev/v1alpha1``) served by the operator.

What a tenant may see but cannot read itself with the hub's RBAC:

- ``GET .../namespaces/<ns>/computejobs/<name>/log``: the pod logs of a job's attempt, read on the
  member with the hub's own member credential (``pods/log``), for a user who may ``get`` that
  ComputeJob;
- ``GET .../namespaces/<ns>/usages``: the namespace's ComputeUsage records (the bill; the records
  are cluster-scoped and hold every tenant's figures, so no RBAC rule can hand out one
  namespace's), for a user who may ``list`` ComputeJobs there.

The hub's API server authenticates and authorizes the user (RBAC on the ``tenant.interconnect.dev``
resources), then forwards the request with a front-proxy client certificate and the user in
``X-Remote-*`` headers, as to any aggregated API (metrics-server). Here, every request must come
over TLS with a client certificate the front-proxy CA signed (and, if the hub lists them, one of
the allowed names): only then are the headers believed. The user is then authorized again, per
request, by the hub's authorizer (SubjectAccessReview) for the ComputeJobs themselves. See
docs/architecture.md, "The tenant API".
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import ssl
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from aiohttp import web
from kubernetes_asyncio import client as k8s
from kubernetes_asyncio.client.exceptions import ApiException

from interconnect.adapters.access import (
    FrontProxyConfig,
    UserInfo,
    common_name,
    front_proxy_config,
    may,
    user_from_headers,
)
from interconnect.adapters.hub import Hub
from interconnect.adapters.member_logs import (
    AttemptPod,
    MemberAccess,
    MemberLogError,
    PodLog,
    attempt_pods,
    client_from_kubeconfig,
    open_pod_log,
)
from interconnect.api.v1alpha1.usage import TENANT_LABEL
from interconnect.core.vocabulary import GROUP

log = logging.getLogger(__name__)

TENANT_GROUP = "tenant.interconnect.dev"
TENANT_VERSION = "v1alpha1"
PREFIX = f"/apis/{TENANT_GROUP}/{TENANT_VERSION}"
MAX_FOLLOWED = 64
"""At most this many containers are followed by one request (a job of 1024 replicas: ask per pod)."""
MAX_STREAMS = 256
"""Log requests served at once by one replica; more are answered 429."""


class RequestError(Exception):
    """Answered as a Kubernetes Status with this code and reason."""

    def __init__(self, code: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason


REASONS = {400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound", 409: "Conflict",
           429: "TooManyRequests", 502: "BadGateway", 503: "ServiceUnavailable"}


def failure(code: int, message: str) -> RequestError:
    return RequestError(code, REASONS.get(code, "InternalError"), message)


def status_body(code: int, reason: str, message: str) -> dict[str, Any]:
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message,
            "reason": reason, "code": code}


# ---------------------------------------------------------------------------------------------
# Settings
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TenantApiSettings:
    port: int
    cert_file: str
    key_file: str
    address: str = "0.0.0.0"
    proxy_ca_file: str = ""
    """The front-proxy CA, when the hub's API server does not publish one (no --requestheader-client-ca-file)."""
    proxy_names: tuple[str, ...] = ()
    """With proxy_ca_file: the common names the front-proxy certificate may have."""

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> TenantApiSettings | None:
        """None when the tenant API is off (``INTERCONNECT_TENANT_API_PORT`` unset or empty)."""
        env = os.environ if env is None else env
        port = env.get("INTERCONNECT_TENANT_API_PORT", "")
        if not port:
            return None
        cert, key = env.get("INTERCONNECT_TENANT_API_CERT", ""), env.get("INTERCONNECT_TENANT_API_KEY", "")
        if not cert or not key:
            raise ValueError("INTERCONNECT_TENANT_API_PORT is set: INTERCONNECT_TENANT_API_CERT and "
                             "INTERCONNECT_TENANT_API_KEY must name the serving certificate and its key")
        names = tuple(n.strip() for n in env.get("INTERCONNECT_TENANT_API_PROXY_NAMES", "").split(",") if n.strip())
        return cls(port=int(port), cert_file=cert, key_file=key,
                   address=env.get("INTERCONNECT_TENANT_API_ADDRESS", "") or "0.0.0.0",
                   proxy_ca_file=env.get("INTERCONNECT_TENANT_API_PROXY_CA", ""), proxy_names=names)


# ---------------------------------------------------------------------------------------------
# What a log request reads (pure)
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LogQuery:
    attempt: int | None = None
    container: str | None = None
    pod: str | None = None
    follow: bool = False
    tail_lines: int | None = None
    timestamps: bool = False
    limit_bytes: int | None = None

    @classmethod
    def parse(cls, query: Mapping[str, str]) -> LogQuery:
        def number(key: str, low: int) -> int | None:
            text = query.get(key)
            if text in (None, ""):
                return None
            try:
                value = int(text)
            except ValueError:
                raise failure(400, f"{key}={text!r}: expected a whole number") from None
            if value < low:
                raise failure(400, f"{key}={value}: must be at least {low}")
            return value

        def flag(key: str) -> bool:
            return query.get(key, "false").lower() in ("true", "1", "yes")

        return cls(attempt=number("attempt", 1), container=query.get("container") or None,
                   pod=query.get("pod") or None, follow=flag("follow"), tail_lines=number("tailLines", 0),
                   timestamps=flag("timestamps"), limit_bytes=number("limitBytes", 1))


def attempt_node(job: Mapping[str, Any], attempt: int | None) -> tuple[int, str]:
    """The attempt a log request means (the latest by default) and the ComputeNode it ran on."""
    meta, status = job.get("metadata") or {}, job.get("status") or {}
    what = f"ComputeJob {meta.get('namespace')}/{meta.get('name')}"
    latest = int(status.get("attempts") or 0)
    if latest == 0:
        raise failure(409, f"{what} has not been placed yet: no pods, no logs "
                           f"(kubectl compute explain cjob {meta.get('name')})")
    wanted = attempt or latest
    if wanted > latest:
        raise failure(404, f"{what} has no attempt {wanted}: it has had {latest}")
    for entry in status.get("attemptHistory") or []:
        if entry.get("attempt") == wanted and entry.get("node"):
            return wanted, str(entry["node"])
    placement = status.get("placement") or {}
    if wanted == latest and placement.get("node"):
        return wanted, str(placement["node"])
    raise failure(404, f"{what}: the node of attempt {wanted} is not recorded")


def log_targets(pods: list[AttemptPod], query: LogQuery, what: str) -> list[tuple[str, str]]:
    """(pod, container) pairs to read, in order: the query's pod and container, else every
    container of every pod that has started."""
    chosen = pods
    if query.pod:
        chosen = [p for p in pods if p.name == query.pod]
        if not chosen:
            raise failure(404, f"{what} has no pod {query.pod} (its pods: {', '.join(p.name for p in pods)})")
    started = [p for p in chosen if p.started]
    if not started:
        phases = ", ".join(sorted({p.phase for p in chosen}))
        raise failure(409, f"{what}: no pod has started yet ({phases})")
    targets: list[tuple[str, str]] = []
    for pod in started:
        if query.container:
            if query.container not in pod.containers:
                raise failure(400, f"pod {pod.name} has no container {query.container} "
                                   f"(its containers: {', '.join(pod.containers)})")
            targets.append((pod.name, query.container))
        else:
            targets += [(pod.name, c) for c in pod.containers]
    if query.follow and len(targets) > MAX_FOLLOWED:
        raise failure(400, f"{what}: {len(targets)} containers are too many to follow at once "
                           f"(at most {MAX_FOLLOWED}): choose one with --pod")
    return targets


def split_lines(rest: bytes, chunk: bytes) -> tuple[list[bytes], bytes]:
    """Complete lines (without their newline) of ``rest + chunk``, and what is left after the last one."""
    *lines, left = (rest + chunk).split(b"\n")
    return lines, left


# ---------------------------------------------------------------------------------------------
# The server
# ---------------------------------------------------------------------------------------------


class MembersView(Protocol):
    def connected(self, name: str) -> Any: ...


class ControllerView(Protocol):
    @property
    def members(self) -> MembersView: ...


class TenantApi:
    """The aggregated API's HTTPS server (start once, stop on cleanup)."""

    def __init__(self, api: k8s.ApiClient, settings: TenantApiSettings,
                 controller: Callable[[], ControllerView | None] = lambda: None) -> None:
        self.api = api
        self.hub = Hub(api)
        self.settings = settings
        self._controller = controller
        self._runner: web.AppRunner | None = None
        self.proxy: FrontProxyConfig | None = None
        self._streams = asyncio.Semaphore(MAX_STREAMS)
        self.app = web.Application(middlewares=[self._errors])
        self.app.router.add_get("/healthz", self._healthz)
        self.app.router.add_get("/apis", self._group_list)
        self.app.router.add_get(f"/apis/{TENANT_GROUP}", self._group)
        self.app.router.add_get(PREFIX, self._resources)
        self.app.router.add_get(PREFIX + "/namespaces/{namespace}/computejobs/{name}/log", self._log)
        self.app.router.add_get(PREFIX + "/namespaces/{namespace}/usages", self._usages)

    # ------------------------------------------------------------------ lifecycle

    async def load_proxy_config(self) -> FrontProxyConfig:
        if self.settings.proxy_ca_file:
            path = Path(self.settings.proxy_ca_file)
            return FrontProxyConfig(client_ca=await asyncio.to_thread(path.read_text, encoding="utf-8"),
                                    allowed_names=self.settings.proxy_names)
        return await front_proxy_config(self.api)

    def ssl_context(self, proxy: FrontProxyConfig) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(self.settings.cert_file, self.settings.key_file)
        # A client certificate is optional at the TLS level (the probes have none), but one that is
        # presented must chain to the front-proxy CA; the handlers refuse requests without one.
        context.verify_mode = ssl.CERT_OPTIONAL
        context.load_verify_locations(cadata=proxy.client_ca)
        return context

    async def start(self) -> None:
        proxy = await self.load_proxy_config()
        if not proxy.client_ca:
            raise RuntimeError(
                "the hub's API server publishes no front-proxy CA (requestheader-client-ca-file in "
                "kube-system/extension-apiserver-authentication): without it no request can be told to come "
                "from it. Configure --requestheader-client-ca-file and --proxy-client-cert-file on the API "
                "server, or set INTERCONNECT_TENANT_API_PROXY_CA and INTERCONNECT_TENANT_API_PROXY_NAMES")
        self.proxy = proxy
        self._runner = web.AppRunner(self.app, access_log=None, handle_signals=False, shutdown_timeout=2.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.settings.address, self.settings.port,
                           ssl_context=self.ssl_context(proxy))
        await site.start()
        log.info("tenant API (%s) listening on %s:%d; front proxy names: %s", TENANT_GROUP, self.settings.address,
                 self.settings.port, ", ".join(proxy.allowed_names) or "any the CA signed")

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # ------------------------------------------------------------------ plumbing

    @web.middleware
    async def _errors(self, request: web.Request,
                      handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
        try:
            return await handler(request)
        except RequestError as exc:
            return web.json_response(status_body(exc.code, exc.reason, str(exc)), status=exc.code)
        except MemberLogError as exc:
            return web.json_response(status_body(exc.status, REASONS.get(exc.status, "InternalError"), str(exc)),
                                     status=exc.status)
        except ApiException as exc:
            message = _api_message(exc)
            code = exc.status if exc.status in (400, 404) else 503
            return web.json_response(status_body(code, REASONS.get(code, "ServiceUnavailable"),
                                                 f"the hub answered {exc.status}: {message}"), status=code)
        except web.HTTPException:
            raise
        except (TimeoutError, OSError) as exc:
            return web.json_response(status_body(503, "ServiceUnavailable", f"the hub does not answer: {exc}"),
                                     status=503)

    def _front_proxy(self, request: web.Request) -> FrontProxyConfig:
        """The request came from the hub's front proxy: a verified client certificate with an
        allowed name (else 401)."""
        assert self.proxy is not None
        transport = request.transport
        name = common_name(transport.get_extra_info("peercert") if transport is not None else None)
        if name is None:
            raise failure(401, "the tenant API answers the hub's API server only (no client certificate): "
                               f"use kubectl, /apis/{TENANT_GROUP}/...")
        if self.proxy.allowed_names and name not in self.proxy.allowed_names:
            raise failure(401, f"client certificate {name!r} is not one of the hub's front-proxy names")
        return self.proxy

    def _user(self, request: web.Request) -> UserInfo:
        user = user_from_headers(request.headers.items(), self._front_proxy(request))
        if user is None:
            raise failure(401, "the request names no user")
        return user

    async def _authorize(self, user: UserInfo, verb: str, namespace: str, name: str = "") -> None:
        allowed, reason = await may(self.api, user, verb=verb, group=GROUP, resource="computejobs",
                                    namespace=namespace, name=name)
        if not allowed:
            target = f'computejobs.{GROUP} "{name}"' if name else f"computejobs.{GROUP}"
            raise failure(403, f'{target} is forbidden: User "{user.name}" cannot {verb} resource "computejobs" '
                               f'in API group "{GROUP}" in the namespace "{namespace}"'
                               + (f": {reason}" if reason else ""))

    # ------------------------------------------------------------------ discovery

    async def _healthz(self, request: web.Request) -> web.StreamResponse:
        return web.Response(text="ok")

    async def _group_list(self, request: web.Request) -> web.StreamResponse:
        self._front_proxy(request)
        return web.json_response({"kind": "APIGroupList", "apiVersion": "v1", "groups": [_group_body()]})

    async def _group(self, request: web.Request) -> web.StreamResponse:
        self._front_proxy(request)
        return web.json_response(_group_body())

    async def _resources(self, request: web.Request) -> web.StreamResponse:
        self._front_proxy(request)
        return web.json_response({
            "kind": "APIResourceList", "apiVersion": "v1", "groupVersion": f"{TENANT_GROUP}/{TENANT_VERSION}",
            "resources": [
                {"name": "computejobs/log", "singularName": "", "namespaced": True, "kind": "ComputeJobLog",
                 "verbs": ["get"]},
                {"name": "usages", "singularName": "usage", "namespaced": True, "kind": "ComputeUsage",
                 "verbs": ["list"]},
            ]})

    # ------------------------------------------------------------------ usage

    async def _usages(self, request: web.Request) -> web.StreamResponse:
        user = self._user(request)
        namespace = request.match_info["namespace"]
        await self._authorize(user, "list", namespace)
        selector = f"{TENANT_LABEL}={namespace}"
        extra = request.query.get("labelSelector", "")
        if extra:
            selector += "," + extra  # selectors are ANDed: another tenant's records cannot be added
        records = [r for r in await self.hub.list_all("computeusages", selector)
                   if (r.get("spec") or {}).get("tenant") == namespace]
        return web.json_response({"kind": "ComputeUsageList", "apiVersion": f"{TENANT_GROUP}/{TENANT_VERSION}",
                                  "metadata": {}, "items": records})

    # ------------------------------------------------------------------ logs

    async def _member(self, node: str) -> tuple[MemberAccess, Callable[[], Awaitable[None]] | None]:
        """The controller's client of the node's member when this replica has one, else one made
        for this request from the node's kubeconfig Secret (a standby serves logs too)."""
        controller = self._controller()
        if controller is not None:
            member = controller.members.connected(node)
            if member is not None:
                return member, None
        body = await self.hub.get("computenodes", node)
        if body is None:
            raise failure(404, f"ComputeNode {node} is gone: the attempt's logs went with it")
        connection = (body.get("spec") or {}).get("connection") or {}
        ref = connection.get("secretRef") or {}
        try:
            text = await self.hub.read_secret_key(ref.get("namespace", ""), ref.get("name", ""),
                                                  ref.get("key", "kubeconfig"))
        except (ApiException, KeyError) as exc:
            raise failure(503, f"cannot read the kubeconfig Secret of node {node}: {type(exc).__name__}") from None
        short = await client_from_kubeconfig(text, str(connection.get("namespace", "")))
        return short, short.close

    async def _log(self, request: web.Request) -> web.StreamResponse:
        user = self._user(request)
        namespace, name = request.match_info["namespace"], request.match_info["name"]
        query = LogQuery.parse(request.query)
        await self._authorize(user, "get", namespace, name)
        job = await self.hub.get("computejobs", name, namespace)
        if job is None:
            raise failure(404, f'computejobs.{GROUP} "{name}" not found')
        attempt, node = attempt_node(job, query.attempt)
        what = f"attempt {attempt} of ComputeJob {namespace}/{name} on {node}"
        if self._streams.locked():
            raise failure(429, "too many log requests at once: try again shortly")
        async with self._streams:
            member, close = await self._member(node)
            try:
                pods = await attempt_pods(member, str(job["metadata"]["uid"]), attempt)
                if not pods:
                    raise failure(404, f"{what}: no pods (not created yet, or deleted with a superseded attempt)")
                targets = log_targets(pods, query, what)
                log.info("%s reads the logs of %s (%d containers%s)", user.name, what, len(targets),
                         ", following" if query.follow else "")
                return await self._stream(request, member, targets, query)
            finally:
                if close is not None:
                    await close()

    async def _open(self, member: MemberAccess, target: tuple[str, str], query: LogQuery) -> PodLog:
        return await open_pod_log(member, target[0], target[1], follow=query.follow, tail_lines=query.tail_lines,
                                  timestamps=query.timestamps, limit_bytes=query.limit_bytes)

    async def _stream(self, request: web.Request, member: MemberAccess, targets: list[tuple[str, str]],
                      query: LogQuery) -> web.StreamResponse:
        first = await self._open(member, targets[0], query)  # its failure is the answer's status
        response = web.StreamResponse(headers={"Content-Type": "text/plain; charset=utf-8",
                                               "Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"})
        prefixed = len(targets) > 1
        queue: asyncio.Queue[bytes | None] = asyncio.Queue(maxsize=256)

        async def pump(target: tuple[str, str], opened: PodLog | None) -> None:
            head = f"[pod/{target[0]}/{target[1]}] ".encode() if prefixed else b""
            try:
                current = opened or await self._open(member, target, query)
            except MemberLogError as exc:
                await queue.put(head + f"error: {exc}\n".encode())
                return
            rest = b""
            try:
                async for chunk in current.chunks():
                    if not prefixed:
                        await queue.put(chunk)
                        continue
                    lines, rest = split_lines(rest, chunk)
                    for line in lines:
                        await queue.put(head + line + b"\n")
                if rest:
                    await queue.put(head + rest + b"\n")
            except MemberLogError as exc:
                await queue.put(head + f"error: {exc}\n".encode())
            finally:
                current.close()

        async def produce() -> None:
            try:
                if query.follow:  # every container at once, lines interleaved as they come
                    await asyncio.gather(*(pump(t, first if i == 0 else None) for i, t in enumerate(targets)))
                else:  # one after the other, in order
                    for i, target in enumerate(targets):
                        await pump(target, first if i == 0 else None)
            finally:
                await queue.put(None)

        await response.prepare(request)
        producer = asyncio.create_task(produce(), name="tenant-api-log")
        try:
            while (item := await queue.get()) is not None:
                await response.write(item)
            await response.write_eof()
        finally:  # done, or the client went away: stop reading the member

            producer.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await producer
            first.close()
        return response


def _group_body() -> dict[str, Any]:
    version = {"groupVersion": f"{TENANT_GROUP}/{TENANT_VERSION}", "version": TENANT_VERSION}
    return {"kind": "APIGroup", "apiVersion": "v1", "name": TENANT_GROUP, "versions": [version],
            "preferredVersion": version}


def _api_message(exc: ApiException) -> str:
    try:
        return str(json.loads(exc.body or "{}").get("message") or exc.reason)
    except (ValueError, AttributeError):
        return str(exc.reason)

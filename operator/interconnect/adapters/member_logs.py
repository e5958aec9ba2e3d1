"""Reading the logs of a dispatched job's pods on a member, for the tenant API.

The hub's service account reads them with ``pods/log`` in the dispatch namespace (the member
chart's ``interconnect-hub-dispatch`` Role); nothing here writes. A member client is either the
controller's live one (its ``api`` and ``namespace``) or, on a replica without a controller, a
short-lived one made from the ComputeNode's kubeconfig Secret (`client_from_kubeconfig`).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import aiohttp
import yaml
from kubernetes_asyncio import client as k8s
from kubernetes_asyncio.client.exceptions import ApiException
from kubernetes_asyncio.config import new_client_from_config_dict
from kubernetes_asyncio.config.config_exception import ConfigException

from interconnect.adapters.hub import direct
from interconnect.adapters.informer import read_json
from interconnect.adapters.member import ATTEMPT, JOB_UID, OURS

CHUNK = 16 * 1024


class MemberAccess(Protocol):
    """What log reading needs of a member client (`MemberCluster` has both)."""

    @property
    def api(self) -> k8s.ApiClient: ...

    @property
    def namespace(self) -> str: ...


@dataclass(frozen=True)
class ShortLivedMember:
    """A member client made for one request (closed by the caller)."""

    api: k8s.ApiClient
    namespace: str

    async def close(self) -> None:
        await self.api.close()


class MemberLogError(Exception):
    """The member did not give the logs: ``status`` is the HTTP status to answer with."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True, slots=True)
class AttemptPod:
    name: str
    phase: str
    containers: tuple[str, ...]
    """The pod's containers (not its init containers), in the spec's order."""
    started: bool
    """Whether any container has started (a pod that never ran has no log)."""


async def client_from_kubeconfig(text: str, namespace: str) -> ShortLivedMember:
    """A member client from a kubeconfig Secret's text. Errors name the problem, never the text."""
    try:
        config = yaml.safe_load(text)
    except yaml.YAMLError:
        raise MemberLogError(502, "the member's kubeconfig Secret is not valid YAML") from None
    if not isinstance(config, dict) or "clusters" not in config:
        raise MemberLogError(502, "the member's kubeconfig Secret holds no kubeconfig")
    try:
        api = direct(await new_client_from_config_dict(config))
    except ConfigException as exc:
        raise MemberLogError(502, f"the member's kubeconfig is not usable: {exc}") from None
    return ShortLivedMember(api, namespace)


def _member_error(exc: BaseException, what: str) -> MemberLogError:
    if isinstance(exc, ApiException):
        message = exc.reason or ""
        with contextlib.suppress(ValueError, AttributeError):
            message = json.loads(exc.body or "{}").get("message") or message
        # 404: the pod or container is gone; 400: the container has not started (the kubelet's
        # "is waiting to start"); anything else is the hub's problem with the member, not the user's.
        status = {404: 404, 400: 409}.get(exc.status or 0, 502)
        return MemberLogError(status, f"{what}: the member answered {exc.status}: {message}")
    return MemberLogError(503, f"{what}: the member does not answer ({str(exc) or type(exc).__name__})")


def project_attempt_pod(obj: Mapping[str, Any]) -> AttemptPod:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    statuses = [*(status.get("initContainerStatuses") or []), *(status.get("containerStatuses") or [])]
    started = any((cs.get("state") or {}).get("running") or (cs.get("state") or {}).get("terminated")
                  or (cs.get("lastState") or {}).get("terminated") for cs in statuses)
    return AttemptPod(name=obj["metadata"]["name"], phase=str(status.get("phase") or "Unknown"),
                      containers=tuple(str(c["name"]) for c in spec.get("containers") or []), started=bool(started))


async def attempt_pods(member: MemberAccess, job_uid: str, attempt: int) -> list[AttemptPod]:
    """The pods of one attempt of a ComputeJob on the member (by the labels the hub gave them), by name."""
    selector = f"{OURS},{JOB_UID}={job_uid},{ATTEMPT}={attempt}"
    try:
        response: Any = await k8s.CoreV1Api(member.api).list_namespaced_pod(
            member.namespace, label_selector=selector, _preload_content=False, _request_timeout=15)
        body = await read_json(response)
    except (ApiException, TimeoutError, OSError, aiohttp.ClientError) as exc:
        raise _member_error(exc, "listing the attempt's pods") from None
    return sorted((project_attempt_pod(p) for p in body.get("items") or []), key=lambda p: p.name)


class PodLog:
    """One container's log, opened (the member answered 200); read with `chunks`, then `close`."""

    def __init__(self, response: Any, pod: str, container: str) -> None:
        self._response = response
        self.pod = pod
        self.container = container

    async def chunks(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._response.content.iter_chunked(CHUNK):
                yield chunk
        except (TimeoutError, OSError, aiohttp.ClientError) as exc:
            raise _member_error(exc, f"the log of {self.pod}/{self.container}") from None

    def close(self) -> None:
        self._response.release()


async def open_pod_log(member: MemberAccess, pod: str, container: str, *, follow: bool = False,
                       tail_lines: int | None = None, timestamps: bool = False,
                       limit_bytes: int | None = None) -> PodLog:
    """One container's log as the member's API server streams it (``follow``: until the
    container ends or the caller closes it). MemberLogError when the member refuses or fails."""
    options: dict[str, Any] = {"container": container, "follow": follow, "timestamps": timestamps,
                               "_preload_content": False,
                               # A followed log has no end; connecting must still be quick.
                               "_request_timeout": aiohttp.ClientTimeout(total=None, sock_connect=10,
                                                                         sock_read=None if follow else 60)}
    if tail_lines is not None:
        options["tail_lines"] = tail_lines
    if limit_bytes is not None:
        options["limit_bytes"] = limit_bytes
    what = f"the log of {pod}/{container}"
    try:
        response: Any = await k8s.CoreV1Api(member.api).read_namespaced_pod_log(pod, member.namespace, **options)
    except (ApiException, TimeoutError, OSError, aiohttp.ClientError) as exc:
        raise _member_error(exc, what) from None
    if not 200 <= response.status <= 299:
        try:
            body = (await response.read())[:32768].decode(errors="replace")
        except (TimeoutError, OSError, aiohttp.ClientError):
            body = ""
        finally:
            response.release()
        error = ApiException(status=response.status, reason=str(response.reason or ""))
        error.body = body
        raise _member_error(error, what)
    return PodLog(response, pod, container)

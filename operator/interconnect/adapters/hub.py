"""The hub's API, for writes that happen outside kopf's handlers.

Status written from member events, ComputeUsage records (created once, never changed),
Kubernetes events, Secrets, and the identity registry (a ConfigMap updated with optimistic
concurrency, so codes are unique and never reused).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import os
from collections.abc import Mapping
from typing import Any

from kubernetes_asyncio import client as k8s
from kubernetes_asyncio import config as k8s_config
from kubernetes_asyncio.client.exceptions import ApiException

from interconnect.adapters.informer import read_json
from interconnect.core.leadership import Fence, unfenced
from interconnect.core.vocabulary import GROUP, VERSION

log = logging.getLogger(__name__)

COMPONENT = "interconnect-hub"
STATUS_WRITE_CONCURRENCY = 32
"""Status writes in flight (of the client's 64 connections: the rest for the journal, events and
reads). Unbounded, a burst of thousands queued for the connections and timed out there (the
timeout counts the wait), then were retried: more load on a hub already behind. Bounded, they
wait their turn here and the timeout measures the server."""
MERGE_PATCH = "application/merge-patch+json"


class Conflict(Exception):
    """Someone else changed the object first: read again and retry."""


async def connect(context: str | None = None) -> k8s.ApiClient:
    """A client for the hub: in-cluster when running in a pod, else the kubeconfig."""
    configuration = k8s.Configuration()
    if os.environ.get("KUBERNETES_SERVICE_HOST") and not context:
        k8s_config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
    else:
        await k8s_config.load_kube_config(config_file=os.environ.get("KUBECONFIG"), context=context,
                                          client_configuration=configuration)
    configuration.connection_pool_maxsize = 64
    return direct(k8s.ApiClient(configuration))


def direct(api: k8s.ApiClient) -> k8s.ApiClient:
    """No proxy or netrc lookup from the environment per request.

    aiohttp's trust_env does both on every call (a thread hop and a file read each): about a
    sixth of the operator's CPU under load. API servers are reached directly, or through the
    kubeconfig's proxy-url, which the client still honours.
    """
    api.rest_client.pool_manager._trust_env = False
    return api


async def _settle(response: Any, what: str, *, missing_ok: bool = False) -> None:
    """Release an unread response, raising like the client would on a failure status."""
    try:
        if missing_ok and response.status == 404:
            return
        if not 200 <= response.status <= 299:
            raise ApiException(status=response.status, reason=f"{what}: {(await response.read())[:500]!r}")
    finally:
        response.release()


class Hub:
    """The hub's API for one leadership term: every write first asks ``fence`` whether this
    replica still leads (NotLeader when it cannot confirm it), so a replica cut off from the
    Lease stops writing even where a request would still get through."""

    def __init__(self, api: k8s.ApiClient, fence: Fence = unfenced) -> None:
        self.api = api
        self.fence = fence
        self.custom = k8s.CustomObjectsApi(api)
        self.core = k8s.CoreV1Api(api)
        self.coordination = k8s.CoordinationV1Api(api)
        self.errors = 0
        self._status_writes = asyncio.Semaphore(STATUS_WRITE_CONCURRENCY)

    async def close(self) -> None:
        await self.api.close()

    @property
    def epoch(self) -> int:
        """The leader's epoch to stamp on what it writes (NotLeader when it no longer leads)."""
        return self.fence()

    async def patch_status(self, plural: str, name: str, patch: Mapping[str, Any],
                           namespace: str | None = None) -> None:
        """JSON merge patch of the status subresource; a missing object is not an error."""
        async with self._status_writes:
            self.fence()  # after the wait for a slot: right before the request
            try:
                # The answer (the whole object) is not read: the watch brings it, and decoding it per
                # write was a tenth of the operator's CPU.
                if namespace is None:
                    response = await self.custom.patch_cluster_custom_object_status(  # type: ignore[call-arg]
                        GROUP, VERSION, plural, name, patch, _content_type=MERGE_PATCH, _preload_content=False,
                        _request_timeout=30)
                else:
                    response = await self.custom.patch_namespaced_custom_object_status(  # type: ignore[call-arg]
                        GROUP, VERSION, namespace, plural, name, patch, _content_type=MERGE_PATCH,
                        _preload_content=False, _request_timeout=30)
            except ApiException as exc:
                if exc.status == 404:
                    return
                self.errors += 1
                raise
            await _settle(response, f"{plural}/{name}", missing_ok=True)  # deleted meanwhile: nothing to write

    async def get(self, plural: str, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        try:
            if namespace is None:
                obj = await self.custom.get_cluster_custom_object(GROUP, VERSION, plural, name)
            else:
                obj = await self.custom.get_namespaced_custom_object(GROUP, VERSION, namespace, plural, name)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        return dict(obj)

    async def create(self, plural: str, body: Mapping[str, Any]) -> bool:
        """Create a cluster-scoped object of our group; False when one of its name already exists
        (409 AlreadyExists: for objects named after what they record, the create already happened).
        The answer (the whole object again) is not read."""
        self.fence()
        name = body.get("metadata", {}).get("name")
        try:
            response: Any = await self.custom.create_cluster_custom_object(
                GROUP, VERSION, plural, body, _preload_content=False, _request_timeout=30)
        except ApiException as exc:
            if exc.status == 409:
                return False
            raise
        if response.status == 409:
            response.release()
            return False
        await _settle(response, f"{plural}/{name}")
        return True

    async def list_all(self, plural: str, selector: str | None = None, page: int = 500) -> list[dict[str, Any]]:
        """Every cluster-scoped object of our group's ``plural`` matching the label selector, read
        page by page."""
        items: list[dict[str, Any]] = []
        token: str | None = None
        while True:
            options: dict[str, Any] = {"limit": page, "_preload_content": False, "_request_timeout": 60}
            if selector:
                options["label_selector"] = selector
            if token:
                options["_continue"] = token
            body = await read_json(await self.custom.list_cluster_custom_object(GROUP, VERSION, plural, **options))
            items.extend(body.get("items") or [])
            token = (body.get("metadata") or {}).get("continue")
            if not token:
                return items

    async def remove_finalizer(self, plural: str, name: str, finalizer: str, namespace: str | None = None) -> None:
        """Drop one finalizer (guarded by resourceVersion, retried on conflict); gone objects are fine."""
        self.fence()
        for _ in range(5):
            obj = await self.get(plural, name, namespace)
            if obj is None:
                return
            meta = obj["metadata"]
            kept = [f for f in meta.get("finalizers") or [] if f != finalizer]
            if kept == (meta.get("finalizers") or []):
                return
            patch = {"metadata": {"finalizers": kept, "resourceVersion": meta["resourceVersion"]}}
            try:
                if namespace is None:
                    await self.custom.patch_cluster_custom_object(  # type: ignore[call-arg]
                        GROUP, VERSION, plural, name, patch, _content_type=MERGE_PATCH)
                else:
                    await self.custom.patch_namespaced_custom_object(  # type: ignore[call-arg]
                        GROUP, VERSION, namespace, plural, name, patch, _content_type=MERGE_PATCH)
                return
            except ApiException as exc:
                if exc.status == 404:
                    return
                if exc.status != 409:
                    raise

    async def read_peering(self, name: str) -> dict[str, Any] | None:
        """kopf's ClusterKopfPeering object (its status lists the live replicas), None if absent."""
        try:
            obj = await self.custom.get_cluster_custom_object("kopf.dev", "v1", "clusterkopfpeerings", name,
                                                              _request_timeout=5)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        return dict(obj)

    async def read_lease(self, namespace: str, name: str) -> dict[str, Any] | None:
        """The coordination.k8s.io Lease as JSON, None if absent (short timeout: leadership
        decisions cannot wait for a hub that does not answer)."""
        try:
            lease: dict[str, Any] = await read_json(await self.coordination.read_namespaced_lease(
                name, namespace, _preload_content=False, _request_timeout=5))
            return lease
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    async def write_lease(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """Create the Lease, or replace it only at the resourceVersion in ``body`` (Conflict when
        another replica wrote it first): the one atomic step of leader election."""
        meta = body["metadata"]
        sent: Any = dict(body)  # a dict is sent as it is
        try:
            if meta.get("resourceVersion"):
                response: Any = await self.coordination.replace_namespaced_lease(
                    meta["name"], meta["namespace"], sent, _preload_content=False, _request_timeout=5)
            else:
                response = await self.coordination.create_namespaced_lease(
                    meta["namespace"], sent, _preload_content=False, _request_timeout=5)
            written: dict[str, Any] = await read_json(response)
        except ApiException as exc:
            if exc.status == 409:
                raise Conflict(f"Lease {meta['namespace']}/{meta['name']} changed") from exc
            raise
        return written

    async def event(self, obj: Mapping[str, Any], type_: str, reason: str, message: str) -> None:
        """Post a Kubernetes event about an object; never fails the caller."""
        meta = obj.get("metadata", {})
        now = dt.datetime.now(dt.UTC)
        namespace = meta.get("namespace") or "default"
        body = k8s.CoreV1Event(
            metadata=k8s.V1ObjectMeta(generate_name=f"{meta.get('name', 'object')}.", namespace=namespace),
            involved_object=k8s.V1ObjectReference(
                api_version=obj.get("apiVersion"), kind=obj.get("kind"), name=meta.get("name"),
                namespace=meta.get("namespace"), uid=meta.get("uid"),
                resource_version=meta.get("resourceVersion")),
            reason=reason,
            message=message[:1024],
            type=type_,
            first_timestamp=now,
            last_timestamp=now,
            count=1,
            source=k8s.V1EventSource(component=COMPONENT),
            reporting_component=COMPONENT,
            reporting_instance=os.environ.get("HOSTNAME", COMPONENT),
        )
        try:
            response = await self.core.create_namespaced_event(namespace, body, _preload_content=False)
            await _settle(response, f"event {reason}")
        except (TimeoutError, ApiException, OSError) as exc:
            log.warning("could not post event %s on %s: %s", reason, meta.get("name"), exc)

    async def read_secret_key(self, namespace: str, name: str, key: str) -> str:
        import base64

        secret = await self.core.read_namespaced_secret(name, namespace)
        data = secret.data or {}
        if key not in data:
            raise KeyError(f"Secret {namespace}/{name} has no key {key!r}")
        return base64.b64decode(data[key]).decode()

    async def read_secret_version(self, namespace: str, name: str, key: str) -> tuple[str, str]:
        """One key of a Secret, decoded, and the Secret's resourceVersion (for a guarded write)."""
        import base64

        secret = await self.core.read_namespaced_secret(name, namespace, _request_timeout=15)
        data = secret.data or {}
        if key not in data:
            raise KeyError(f"Secret {namespace}/{name} has no key {key!r}")
        return base64.b64decode(data[key]).decode(), str(secret.metadata.resource_version)

    async def write_secret_key(self, namespace: str, name: str, key: str, value: str, resource_version: str) -> None:
        """Set one key of an existing Secret, only if nobody changed it since ``resource_version``
        (else Conflict). A merge patch: the operator may patch Secrets of its namespace, never
        create or list them."""
        self.fence()
        import base64

        patch = {"metadata": {"resourceVersion": resource_version},
                 "data": {key: base64.b64encode(value.encode()).decode()}}
        try:
            response: Any = await self.core.patch_namespaced_secret(  # type: ignore[call-arg]
                name, namespace, patch, _content_type=MERGE_PATCH, _preload_content=False, _request_timeout=15)
        except ApiException as exc:
            if exc.status == 409:
                raise Conflict(f"Secret {namespace}/{name} changed") from None
            raise
        await _settle(response, f"secret {namespace}/{name}")

    async def read_config_map(self, namespace: str, name: str) -> tuple[dict[str, str], str | None]:
        """The ConfigMap's data and resourceVersion; empty and None when it does not exist."""
        try:
            cm = await self.core.read_namespaced_config_map(name, namespace)
        except ApiException as exc:
            if exc.status == 404:
                return {}, None
            raise
        return dict(cm.data or {}), cm.metadata.resource_version

    async def write_config_map(self, namespace: str, name: str, data: Mapping[str, str],
                               resource_version: str | None) -> None:
        """Create, or replace only if nobody changed it since ``resource_version`` (else Conflict)."""
        self.fence()
        body = k8s.V1ConfigMap(
            metadata=k8s.V1ObjectMeta(name=name, namespace=namespace, resource_version=resource_version,
                                      labels={"app.kubernetes.io/managed-by": COMPONENT}),
            data=dict(data))
        try:
            if resource_version is None:
                await self.core.create_namespaced_config_map(namespace, body)
            else:
                await self.core.replace_namespaced_config_map(name, namespace, body)
        except ApiException as exc:
            if exc.status == 409:
                raise Conflict(f"ConfigMap {namespace}/{name} changed") from exc
            raise

    async def create_config_map(self, namespace: str, name: str, data: Mapping[str, str],
                                labels: Mapping[str, str]) -> None:
        """Create a ConfigMap; the answer (the whole object again) is not read."""
        self.fence()
        body: Any = {"apiVersion": "v1", "kind": "ConfigMap", "data": dict(data), "metadata": {
            "name": name, "namespace": namespace, "labels": {"app.kubernetes.io/managed-by": COMPONENT, **labels}}}
        response: Any = await self.core.create_namespaced_config_map(namespace, body, _preload_content=False,
                                                                _request_timeout=30)
        await _settle(response, f"configmap {namespace}/{name}")

    async def list_config_maps(self, namespace: str, selector: str) -> list[tuple[str, dict[str, str]]]:
        """Name and data of each ConfigMap matching the label selector."""
        body = await read_json(await self.core.list_namespaced_config_map(
            namespace, label_selector=selector, _preload_content=False, _request_timeout=30))
        return [(i["metadata"]["name"], dict(i.get("data") or {})) for i in body["items"]]

    async def delete_config_map(self, namespace: str, name: str) -> None:
        """Delete a ConfigMap; one already gone is fine."""
        self.fence()
        try:
            response: Any = await self.core.delete_namespaced_config_map(name, namespace, _preload_content=False)
        except ApiException as exc:
            if exc.status == 404:
                return
            raise
        await _settle(response, f"configmap {namespace}/{name}", missing_ok=True)

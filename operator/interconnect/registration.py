"""Joining and leaving: the one front door for node operators.

``join`` turns a member cluster where the member chart is installed into a ComputeNode on
the hub: it reads the token of the chart's least-privilege service account (never the
installer's own credentials), writes a kubeconfig with it into a Secret on the hub, and applies
the ComputeNode and its ComputeOffers from the chart's values. ``leave`` drains: it cordons the
node, waits until none of its jobs is still active, then removes offers, node and Secret.
"""

from __future__ import annotations

import base64
import time
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from interconnect.core.vocabulary import API_VERSION, GROUP, VERSION

ACTIVE_PHASES = ("Scheduled", "Dispatched", "Running")


def _api(kubeconfig: str | None, context: str | None) -> client.ApiClient:
    return config.new_client_from_config(config_file=kubeconfig, context=context)


def _server_of(kubeconfig: str | None, context: str | None) -> str:
    """The API server URL of a context: where the hub will reach the member."""
    import os

    path = kubeconfig or os.environ.get("KUBECONFIG", "").split(os.pathsep)[0] or os.path.expanduser("~/.kube/config")
    data = yaml.safe_load(Path(path).read_text())
    name = context or data.get("current-context")
    ctx = next(c["context"] for c in data.get("contexts") or [] if c["name"] == name)
    cluster = next(c["cluster"] for c in data.get("clusters") or [] if c["name"] == ctx["cluster"])
    return str(cluster["server"])


def member_kubeconfig(member: client.ApiClient, server: str, namespace: str, service_account: str,
                      cluster_name: str, timeout: float = 60) -> str:
    """A kubeconfig for the hub, with the member chart's service-account token."""
    core = client.CoreV1Api(member)
    deadline = time.monotonic() + timeout
    while True:
        secret = core.read_namespaced_secret(f"{service_account}-token", namespace)
        data = secret.data or {}
        if data.get("token") and data.get("ca.crt"):
            break
        if time.monotonic() > deadline:
            raise SystemExit(f"join: the token of {namespace}/{service_account} was not issued in {timeout:.0f}s "
                             "(is the member chart installed, and the token controller running?)")
        time.sleep(1)
    token = base64.b64decode(data["token"]).decode()
    kubeconfig = {
        "apiVersion": "v1", "kind": "Config", "current-context": cluster_name,
        "clusters": [{"name": cluster_name, "cluster": {"server": server,
                                                         "certificate-authority-data": data["ca.crt"]}}],
        "users": [{"name": f"{cluster_name}-hub", "user": {"token": token}}],
        "contexts": [{"name": cluster_name, "context": {"cluster": cluster_name, "user": f"{cluster_name}-hub",
                                                         "namespace": namespace}}],
    }
    return yaml.safe_dump(kubeconfig)


def node_manifest(values: dict[str, Any], secret: str, operator_namespace: str) -> dict[str, Any]:
    node = values["node"]
    spec: dict[str, Any] = {
        "type": node["type"], "region": node["region"],
        "operatingEntity": node["operatingEntity"],
        "connection": {"secretRef": {"name": secret, "namespace": operator_namespace, "key": "kubeconfig"},
                       "namespace": values.get("dispatchNamespace", "interconnect-jobs")},
    }
    if node.get("industry"):
        spec["industry"] = node["industry"]
    if node.get("parentNode"):
        spec["parentNode"] = node["parentNode"]
    return {"apiVersion": API_VERSION, "kind": "ComputeNode", "metadata": {"name": node["name"]}, "spec": spec}


def offer_manifests(values: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for offer in values.get("offers") or []:
        spec = {k: v for k, v in offer.items() if k != "name"}
        spec["nodeRef"] = values["node"]["name"]
        out.append({"apiVersion": API_VERSION, "kind": "ComputeOffer", "metadata": {"name": offer["name"]},
                    "spec": spec})
    return out


def _upsert_cluster_object(custom: client.CustomObjectsApi, plural: str, body: dict[str, Any]) -> None:
    name = body["metadata"]["name"]
    try:
        current = custom.get_cluster_custom_object(GROUP, VERSION, plural, name)
    except ApiException as exc:
        if exc.status != 404:
            raise
        custom.create_cluster_custom_object(GROUP, VERSION, plural, body)
        return
    body = {**body, "metadata": {**body["metadata"], "resourceVersion": current["metadata"]["resourceVersion"]}}
    custom.replace_cluster_custom_object(GROUP, VERSION, plural, name, body)


def join(*, kubeconfig: str | None, member_context: str, hub_context: str, values_file: Path,
         namespace: str | None, service_account: str | None, operator_namespace: str) -> str:
    values = yaml.safe_load(values_file.read_text()) or {}
    if not (values.get("node") or {}).get("name"):
        raise SystemExit(f"join: {values_file} sets no node.name")
    namespace = namespace or values.get("dispatchNamespace", "interconnect-jobs")
    service_account = service_account or values.get("hubServiceAccount", "interconnect-hub")
    values["dispatchNamespace"] = namespace
    name = values["node"]["name"]
    member = _api(kubeconfig, member_context)
    hub = _api(kubeconfig, hub_context)
    text = member_kubeconfig(member, _server_of(kubeconfig, member_context), namespace, service_account, name)
    core = client.CoreV1Api(hub)
    try:
        core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=operator_namespace)))
    except ApiException as exc:
        if exc.status != 409:
            raise
    secret_name = f"{name}-kubeconfig"
    secret = client.V1Secret(
        metadata=client.V1ObjectMeta(name=secret_name, namespace=operator_namespace,
                                     labels={"interconnect.dev/node": name}),
        string_data={"kubeconfig": text}, type="Opaque")
    try:
        core.create_namespaced_secret(operator_namespace, secret)
    except ApiException as exc:
        if exc.status != 409:
            raise
        core.replace_namespaced_secret(secret_name, operator_namespace, secret)
    custom = client.CustomObjectsApi(hub)
    _upsert_cluster_object(custom, "computenodes", node_manifest(values, secret_name, operator_namespace))
    for offer in offer_manifests(values):
        _upsert_cluster_object(custom, "computeoffers", offer)
    member.close()
    hub.close()
    return name


def leave(*, kubeconfig: str | None, hub_context: str, node: str, operator_namespace: str,
          timeout: float = 3600) -> None:
    hub = _api(kubeconfig, hub_context)
    custom = client.CustomObjectsApi(hub)
    custom.patch_cluster_custom_object(GROUP, VERSION, "computenodes", node, {"spec": {"cordoned": True}})
    deadline = time.monotonic() + timeout
    while True:
        jobs = custom.list_cluster_custom_object(GROUP, VERSION, "computejobs")["items"]
        active = [f"{j['metadata']['namespace']}/{j['metadata']['name']}" for j in jobs
                  if ((j.get("status") or {}).get("placement") or {}).get("node") == node
                  and (j.get("status") or {}).get("phase") in ACTIVE_PHASES]
        if not active:
            break
        if time.monotonic() > deadline:
            raise SystemExit(f"leave: {len(active)} jobs still active on {node}: {', '.join(active[:10])}")
        time.sleep(2)
    for offer in custom.list_cluster_custom_object(GROUP, VERSION, "computeoffers")["items"]:
        if offer["spec"]["nodeRef"] == node:
            custom.delete_cluster_custom_object(GROUP, VERSION, "computeoffers", offer["metadata"]["name"])
    current = custom.get_cluster_custom_object(GROUP, VERSION, "computenodes", node)
    secret = current["spec"]["connection"]["secretRef"]
    custom.delete_cluster_custom_object(GROUP, VERSION, "computenodes", node)
    try:
        client.CoreV1Api(hub).delete_namespaced_secret(secret["name"], secret["namespace"])
    except ApiException as exc:
        if exc.status != 404:
            raise
    hub.close()

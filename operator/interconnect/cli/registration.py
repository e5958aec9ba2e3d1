"""Joining and leaving: the one front door for node operators.

``join`` turns a member cluster where the member chart is installed into a ComputeNode on
the hub. With the installer's member credentials it creates (if missing) an Opaque "binding"
Secret in the member's hub namespace and asks the member's API server (TokenRequest) for a token
of the hub's service account, bound to that Secret and valid for ``--token-lifetime`` (12h by
default, 10m to 24h); it writes a kubeconfig with that token, never the installer's credentials,
into a Secret on the hub (the operator's namespace), and applies the ComputeNode and its
ComputeOffers from the chart's values. The operator renews the token before it expires. Nothing
of the hub's credential is ever in the dispatch namespace, where tenant pods run.

``leave`` drains: it cordons the node, waits until none of its jobs is still active, removes
offers and node, then revokes what join issued (with the hub's own token it deletes the binding
Secret on the member, which invalidates every token bound to it) and deletes the kubeconfig
Secret on the hub.
"""

from __future__ import annotations

import base64
import os
import sys
import time
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from interconnect.core.credentials import (
    DEFAULT_LIFETIME_SECONDS,
    MAX_LIFETIME_SECONDS,
    MIN_LIFETIME_SECONDS,
    decode_token,
    kubeconfig_token,
)
from interconnect.core.vocabulary import ACTIVE_PHASES, API_VERSION, GROUP, VERSION

ACTIVE = {phase.value for phase in ACTIVE_PHASES}
DEFAULT_HUB_NAMESPACE = "interconnect-hub"
DEFAULT_SERVICE_ACCOUNT = "interconnect-hub"
BINDING_LABEL = "interconnect.dev/token-binding"
"""On the binding Secret: the service account whose tokens it binds."""


def binding_secret_name(service_account: str) -> str:
    """The Secret the hub's tokens are bound to (the member chart's Role names it too)."""
    return f"{service_account}-binding"


def api_client(kubeconfig: str | None, context: str | None) -> client.ApiClient:
    return config.new_client_from_config(config_file=kubeconfig, context=context)


def _kubeconfig_paths(kubeconfig: str | None) -> list[Path]:
    if kubeconfig:
        return [Path(kubeconfig)]
    listed = [p for p in os.environ.get("KUBECONFIG", "").split(os.pathsep) if p]
    return [Path(p) for p in listed] or [Path(os.path.expanduser("~/.kube/config"))]


def cluster_of(kubeconfig: str | None, context: str | None, *, server: str | None = None,
               what: str = "join") -> dict[str, Any]:
    """The cluster entry of a context as another party will reach it: its server (or ``server``,
    when the installer's kubeconfig names 127.0.0.1 or a tunnel), and its CA as data (a
    ``certificate-authority`` file is read, relative to its kubeconfig)."""
    files = [(p, yaml.safe_load(p.read_text()) or {}) for p in _kubeconfig_paths(kubeconfig) if p.exists()]
    name = context or next((d.get("current-context") for _, d in files if d.get("current-context")), None)
    ctx = next((c["context"] for _, d in files for c in d.get("contexts") or [] if c["name"] == name), None)
    if ctx is None:
        raise SystemExit(f"{what}: no context {name!r} in {', '.join(str(p) for p, _ in files) or 'the kubeconfig'}")
    path, cluster = next(((p, c["cluster"]) for p, d in files for c in d.get("clusters") or []
                          if c["name"] == ctx["cluster"]), (None, None))
    if cluster is None or path is None:
        raise SystemExit(f"{what}: context {name!r} names cluster {ctx['cluster']!r}, which is not in the kubeconfig")
    out: dict[str, Any] = {"server": str(cluster["server"])}
    if cluster.get("certificate-authority-data"):
        out["certificate-authority-data"] = cluster["certificate-authority-data"]
    elif cluster.get("certificate-authority"):
        ca = Path(cluster["certificate-authority"])
        ca = ca if ca.is_absolute() else path.parent / ca
        out["certificate-authority-data"] = base64.b64encode(ca.read_bytes()).decode()
    for key in ("tls-server-name", "insecure-skip-tls-verify"):
        if key in cluster:
            out[key] = cluster[key]
    if server:
        if not server.startswith("https://"):
            raise SystemExit(f"{what}: --member-server/--hub-server {server!r}: an https:// URL is expected")
        out["server"] = server
    return out


def ensure_binding_secret(core: client.CoreV1Api, namespace: str, service_account: str) -> tuple[str, str]:
    """The binding Secret's name and UID, created if missing (an Opaque Secret holding nothing:
    deleting it invalidates every token bound to it)."""
    name = binding_secret_name(service_account)
    body = client.V1Secret(
        metadata=client.V1ObjectMeta(
            name=name, namespace=namespace,
            labels={BINDING_LABEL: service_account, "app.kubernetes.io/part-of": "compute-interconnect"},
            annotations={"interconnect.dev/purpose": "the hub's tokens are bound to this Secret: deleting it "
                         "revokes them (kubectl compute leave does)"}),
        type="Opaque")
    try:
        created = core.create_namespaced_secret(namespace, body)
        return name, str(created.metadata and created.metadata.uid)
    except ApiException as exc:
        if exc.status == 404:
            raise SystemExit(f"join: namespace {namespace} does not exist on the member: is the member chart "
                             "installed (with these values)?") from None
        if exc.status != 409:
            raise
    existing = core.read_namespaced_secret(name, namespace)
    if existing.type != "Opaque":
        raise SystemExit(f"join: Secret {namespace}/{name} on the member is of type {existing.type}, not Opaque")
    return name, str(existing.metadata and existing.metadata.uid)


def issue_token(member: client.ApiClient, namespace: str, service_account: str, lifetime: int) -> str:
    """A token of the hub's service account, bound to the binding Secret, for ``lifetime`` seconds."""
    if not MIN_LIFETIME_SECONDS <= lifetime <= MAX_LIFETIME_SECONDS:
        raise SystemExit(f"join: a token lifetime of {lifetime}s is outside 10m..24h")
    core = client.CoreV1Api(member)
    try:
        core.read_namespaced_service_account(service_account, namespace)
    except ApiException as exc:
        if exc.status != 404:
            raise
        raise SystemExit(f"join: no service account {namespace}/{service_account} on the member: is the member "
                         "chart installed (with these values)?") from None
    secret, uid = ensure_binding_secret(core, namespace, service_account)
    request = client.AuthenticationV1TokenRequest(spec=client.V1TokenRequestSpec(
        audiences=[], expiration_seconds=lifetime,
        bound_object_ref=client.V1BoundObjectReference(api_version="v1", kind="Secret", name=secret, uid=uid)))
    issued = core.create_namespaced_service_account_token(service_account, namespace, request)
    token = str(issued.status.token if issued.status else "")
    if decode_token(token) is None:
        raise SystemExit("join: the member's API server answered the TokenRequest without a service-account token")
    return token


def member_kubeconfig(cluster: dict[str, Any], token: str, namespace: str, cluster_name: str) -> str:
    """A kubeconfig for the hub: the member's server and CA, and the hub's bound token."""
    kubeconfig = {
        "apiVersion": "v1", "kind": "Config", "current-context": cluster_name,
        "clusters": [{"name": cluster_name, "cluster": cluster}],
        "users": [{"name": f"{cluster_name}-hub", "user": {"token": token}}],
        "contexts": [{"name": cluster_name, "context": {"cluster": cluster_name, "user": f"{cluster_name}-hub",
                                                         "namespace": namespace}}],
    }
    return yaml.safe_dump(kubeconfig)


def _check_kubeconfig(text: str, namespace: str) -> None:
    """The new kubeconfig works: it may list Jobs in the dispatch namespace (server, CA, token, RBAC)."""
    api = config.new_client_from_config_dict(yaml.safe_load(text))
    try:
        client.BatchV1Api(api).list_namespaced_job(namespace, limit=1, _request_timeout=15)
    except ApiException as exc:
        raise SystemExit(f"join: the hub's new token cannot list Jobs in {namespace} on the member: "
                         f"{exc.status} {exc.reason}") from None
    finally:
        api.close()


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
    if node.get("energy"):
        spec["energy"] = node["energy"]
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


def join(*, kubeconfig: str | None, member_context: str, hub_context: str | None, values_file: Path,
         namespace: str | None, service_account: str | None, operator_namespace: str,
         hub_namespace: str | None = None, token_lifetime: int = DEFAULT_LIFETIME_SECONDS,
         hub_kubeconfig: str | None = None, member_server: str | None = None) -> str:
    """Register the member. On the hub it needs only what a registration credential grants
    (``hub_kubeconfig``, from `token create`): this node's ComputeNode, Secret and offers."""
    values = yaml.safe_load(values_file.read_text()) or {}
    if not (values.get("node") or {}).get("name"):
        raise SystemExit(f"join: {values_file} sets no node.name")
    namespace = namespace or values.get("dispatchNamespace", "interconnect-jobs")
    service_account = service_account or values.get("hubServiceAccount", DEFAULT_SERVICE_ACCOUNT)
    hub_namespace = hub_namespace or values.get("hubNamespace", DEFAULT_HUB_NAMESPACE)
    values["dispatchNamespace"] = namespace
    name = values["node"]["name"]
    member = api_client(kubeconfig, member_context)
    hub = api_client(hub_kubeconfig, None) if hub_kubeconfig else api_client(kubeconfig, hub_context)
    token = issue_token(member, hub_namespace, service_account, token_lifetime)
    text = member_kubeconfig(cluster_of(kubeconfig, member_context, server=member_server), token, namespace, name)
    _check_kubeconfig(text, namespace)
    core = client.CoreV1Api(hub)
    try:
        core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=operator_namespace)))
    except ApiException as exc:
        # 409: it is there; 403: a registration credential may not create namespaces (the hub
        # chart made this one).
        if exc.status not in (403, 409):
            raise
    secret_name = f"{name}-kubeconfig"
    secret = client.V1Secret(
        metadata=client.V1ObjectMeta(name=secret_name, namespace=operator_namespace,
                                     labels={"interconnect.dev/node": name}),
        string_data={"kubeconfig": text}, type="Opaque")
    try:
        try:
            core.create_namespaced_secret(operator_namespace, secret)
        except ApiException as exc:
            if exc.status != 409:
                raise
            core.replace_namespaced_secret(secret_name, operator_namespace, secret)
    except ApiException as exc:
        raise SystemExit(f"join: the hub refused Secret {operator_namespace}/{secret_name}: {_reason(exc)}") from None
    custom = client.CustomObjectsApi(hub)
    for plural, body in [("computenodes", node_manifest(values, secret_name, operator_namespace)),
                         *(("computeoffers", offer) for offer in offer_manifests(values))]:
        try:
            _upsert_cluster_object(custom, plural, body)
        except ApiException as exc:
            raise SystemExit(f"join: the hub refused {plural} {body['metadata']['name']}: {_reason(exc)}") from None
    member.close()
    hub.close()
    claims = decode_token(token)
    if claims is not None:
        until = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(claims.expires_at))
        print(f"the hub's token ({claims.subject}, bound to Secret {hub_namespace}/{claims.secret}) is valid until "
              f"{until}; the operator renews it before then")
    return name


def _reason(exc: ApiException) -> str:
    """The API server's message (one line), e.g. the admission policy's."""
    try:
        message = str((yaml.safe_load(exc.body or "") or {}).get("message") or "")
    except (yaml.YAMLError, AttributeError):
        message = ""
    return f"{exc.status} {message or exc.reason}"


def revoke(text: str, node: str) -> None:
    """Delete the Secret the hub's tokens for ``node`` are bound to, on the member, with the hub's
    own token (kubeconfig ``text``): every token bound to it stops working. Says on stderr what
    could not be done; never raises."""
    try:
        kubeconfig = yaml.safe_load(text) or {}
    except yaml.YAMLError:
        kubeconfig = {}
    token = kubeconfig_token(kubeconfig) if isinstance(kubeconfig, dict) else None
    claims = decode_token(token) if token else None
    if claims is None or claims.secret is None:
        print(f"leave: the kubeconfig of {node} holds no token bound to a Secret: nothing to revoke on the member",
              file=sys.stderr)
        return
    where = f"Secret {claims.namespace}/{claims.secret}"
    by_hand = (f"delete it there yourself: kubectl --context <member> -n {claims.namespace} delete secret "
               f"{claims.secret}")
    try:
        api = config.new_client_from_config_dict(kubeconfig)
    except Exception as exc:
        print(f"leave: cannot use the kubeconfig of {node} ({type(exc).__name__}): the hub's tokens were not "
              f"revoked; {by_hand}", file=sys.stderr)
        return
    options = client.V1DeleteOptions(preconditions=client.V1Preconditions(uid=claims.secret_uid)
                                      if claims.secret_uid else None)
    try:
        client.CoreV1Api(api).delete_namespaced_secret(claims.secret, claims.namespace, body=options,
                                                       _request_timeout=15)
        print(f"revoked the hub's tokens for {node}: deleted {where} on the member")
    except ApiException as exc:
        if exc.status in (404, 409):  # gone, or replaced by a later join: tokens bound to it are void
            print(f"revoked the hub's tokens for {node}: {where} was already gone on the member")
        else:
            print(f"leave: the member refused to delete {where} ({exc.status} {exc.reason}): the hub's tokens were "
                  f"not revoked (they expire on their own); {by_hand}", file=sys.stderr)
    except Exception as exc:
        print(f"leave: the member did not answer ({type(exc).__name__}): the hub's tokens for {node} were not revoked "
              f"(they expire on their own); {by_hand}", file=sys.stderr)
    finally:
        api.close()


def leave(*, kubeconfig: str | None, hub_context: str, node: str, operator_namespace: str,
          timeout: float = 3600) -> None:
    hub = api_client(kubeconfig, hub_context)
    custom = client.CustomObjectsApi(hub)
    custom.patch_cluster_custom_object(GROUP, VERSION, "computenodes", node, {"spec": {"cordoned": True}})
    deadline = time.monotonic() + timeout
    while True:
        jobs = custom.list_cluster_custom_object(GROUP, VERSION, "computejobs")["items"]
        active = [f"{j['metadata']['namespace']}/{j['metadata']['name']}" for j in jobs
                  if ((j.get("status") or {}).get("placement") or {}).get("node") == node
                  and (j.get("status") or {}).get("phase") in ACTIVE]
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
    # The operator cleans the member (finished Jobs) before the node is gone, with the hub's
    # token: revoke only after that, or it could not.
    gone_by = time.monotonic() + max(5.0, min(60.0, deadline - time.monotonic()))
    while True:
        try:
            custom.get_cluster_custom_object(GROUP, VERSION, "computenodes", node)
        except ApiException as exc:
            if exc.status == 404:
                break
            raise
        if time.monotonic() > gone_by:
            print(f"leave: ComputeNode {node} is still being removed (the operator cleans the member first); "
                  "revoking the hub's tokens anyway", file=sys.stderr)
            break
        time.sleep(1)
    core = client.CoreV1Api(hub)
    try:
        stored = core.read_namespaced_secret(secret["name"], secret["namespace"])
    except ApiException as exc:
        if exc.status != 404:
            raise
        stored = None
    if stored is not None:
        data = (stored.data or {}).get(secret.get("key", "kubeconfig"))
        if data:
            revoke(base64.b64decode(data).decode(), node)
        try:
            core.delete_namespaced_secret(secret["name"], secret["namespace"])
        except ApiException as exc:
            if exc.status != 404:
                raise
    hub.close()

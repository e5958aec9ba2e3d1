"""Registration credentials: a hub admin lets one node operator join one node, and nothing else.

Like Karmada's bootstrap tokens for ``karmadactl register``, but made of plain Kubernetes parts:
``token create --node NAME --ttl 24h`` makes a service account ``interconnect-join-NAME`` in the
operator's namespace, binds it to the hub chart's join roles (templates/join.yaml), and asks the
API server (TokenRequest) for a token of it that expires after ``--ttl``. It prints a kubeconfig
for the hub holding that token and nothing else: with it, ``join --hub-kubeconfig FILE`` creates
exactly that node's ComputeNode, its kubeconfig Secret and its offers. The chart's
ValidatingAdmissionPolicy holds the credential to its node (names, ``spec.nodeRef``, the Secret
the node connects through); RBAC alone cannot tie a create to a name. ``token revoke`` deletes
the service account, which voids every token issued for it at once.
"""

from __future__ import annotations

import re
import sys
from typing import Any

import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from interconnect.cli.registration import api_client as hub_client

JOIN_PREFIX = "interconnect-join-"
NODE_LABEL = "interconnect.dev/join-node"
_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")


def join_account(node: str) -> str:
    """The service account of ``node``'s registration credential (the admission policy derives
    the node from this name)."""
    return f"{JOIN_PREFIX}{node}"


def join_cluster_role(operator_namespace: str) -> str:
    """The hub chart's ClusterRole for registration credentials (templates/join.yaml)."""
    return f"interconnect-join-{operator_namespace}"


def check_node_name(node: str) -> str:
    if len(node) > 63 - len(JOIN_PREFIX) or not _DNS_LABEL.fullmatch(node):
        raise ValueError(f"--node {node!r}: a ComputeNode name is a DNS label (lowercase letters, digits and '-'), "
                         f"at most {63 - len(JOIN_PREFIX)} characters here")
    return node


def registration_kubeconfig(cluster: dict[str, Any], token: str, node: str, namespace: str) -> str:
    """The kubeconfig a node operator gets: the hub's server and CA, and the registration token."""
    name = f"hub-join-{node}"
    return yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": name,
        "clusters": [{"name": name, "cluster": cluster}],
        "users": [{"name": name, "user": {"token": token}}],
        "contexts": [{"name": name, "context": {"cluster": name, "user": name, "namespace": namespace}}],
    })


def _created(call: Any, *args: Any) -> None:
    """Create, or leave what is there (409): issuing a second token for a node reuses its account."""
    try:
        call(*args)
    except ApiException as exc:
        if exc.status != 409:
            raise


def create(*, kubeconfig: str | None, hub_context: str | None, node: str, ttl: int, operator_namespace: str,
           cluster: dict[str, Any]) -> str:
    """Issue a registration credential for ``node``; returns the kubeconfig that carries it."""
    check_node_name(node)
    api = hub_client(kubeconfig, hub_context)
    try:
        rbac = client.RbacAuthorizationV1Api(api)
        core = client.CoreV1Api(api)
        role = join_cluster_role(operator_namespace)
        try:
            rbac.read_cluster_role(role)
        except ApiException as exc:
            if exc.status == 404:
                raise SystemExit(f"token: ClusterRole {role} is missing: install the hub chart in namespace "
                                 f"{operator_namespace} with join.enabled=true (it ships that role and the admission "
                                 "policy that holds a registration credential to its node)") from None
            raise
        account = join_account(node)
        labels = {NODE_LABEL: node, "app.kubernetes.io/part-of": "compute-interconnect"}
        meta = client.V1ObjectMeta(name=account, namespace=operator_namespace, labels=labels)
        _created(core.create_namespaced_service_account, operator_namespace,
                 client.V1ServiceAccount(metadata=meta, automount_service_account_token=False))
        subject = client.RbacV1Subject(kind="ServiceAccount", name=account, namespace=operator_namespace)
        _created(rbac.create_cluster_role_binding, client.V1ClusterRoleBinding(
            metadata=client.V1ObjectMeta(name=f"{account}-{operator_namespace}", labels=labels),
            role_ref=client.V1RoleRef(api_group="rbac.authorization.k8s.io", kind="ClusterRole", name=role),
            subjects=[subject]))
        _created(rbac.create_namespaced_role_binding, operator_namespace, client.V1RoleBinding(
            metadata=client.V1ObjectMeta(name=account, namespace=operator_namespace, labels=labels),
            role_ref=client.V1RoleRef(api_group="rbac.authorization.k8s.io", kind="Role", name="interconnect-join"),
            subjects=[subject]))
        request = client.AuthenticationV1TokenRequest(spec=client.V1TokenRequestSpec(
            audiences=[], expiration_seconds=ttl))
        issued = core.create_namespaced_service_account_token(account, operator_namespace, request)
        if issued.status is None or not issued.status.token:
            raise SystemExit(f"token: the hub issued no token for ServiceAccount {operator_namespace}/{account}")
        return registration_kubeconfig(cluster, str(issued.status.token), node, operator_namespace)
    finally:
        api.close()  # type: ignore[no-untyped-call]


def revoke(*, kubeconfig: str | None, hub_context: str | None, node: str, operator_namespace: str) -> bool:
    """Void every registration credential of ``node`` (its service account and bindings deleted).
    False when there was none."""
    check_node_name(node)
    api = hub_client(kubeconfig, hub_context)
    account = join_account(node)
    found = False
    try:
        for delete, args in (
            (client.CoreV1Api(api).delete_namespaced_service_account, (account, operator_namespace)),
            (client.RbacAuthorizationV1Api(api).delete_cluster_role_binding, (f"{account}-{operator_namespace}",)),
            (client.RbacAuthorizationV1Api(api).delete_namespaced_role_binding, (account, operator_namespace)),
        ):
            try:
                delete(*args)
                found = True
            except ApiException as exc:
                if exc.status != 404:
                    print(f"token: cannot delete {args[0]}: {exc.status} {exc.reason}", file=sys.stderr)
                    raise
    finally:
        api.close()  # type: ignore[no-untyped-call]
    return found

"""Self-service join: a node operator holding only a registration credential for one node joins
a member and publishes its offers, and can touch nothing of any other node's."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
import urllib.parse
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from tests import testbed as tb
from tests.e2e import market as m
from tests.e2e.proxy import CuttableProxy

pytestmark = pytest.mark.e2e

CHARTS = m.REPO / "charts"
MEMBER, NODE, NS, HUB_NS = "member-2", "sc-selfjoin", "ic-selfjoin", "ic-selfjoin-hub"


def interconnect(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "interconnect", *args], capture_output=True, text=True,
                          cwd=m.REPO, env=dict(os.environ, PYTHONPATH=str(m.REPO / "operator")))


def helm(bed: tb.Testbed, cluster: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    c = bed.clusters[cluster]
    return subprocess.run([bed.helm, "--kubeconfig", str(c.kubeconfig), "--kube-context", c.context, *args],
                          capture_output=True, text=True, check=check)


def join_objects(bed: tb.Testbed) -> str:
    """The hub chart's join roles and admission policy, as the chart renders them."""
    return subprocess.run([bed.helm, "template", "interconnect-hub", str(CHARTS / "interconnect-hub"),
                           "--namespace", m.OPERATOR_NS, "--kube-version", "1.36.3",
                           "--show-only", "templates/join.yaml"],
                          capture_output=True, text=True, check=True).stdout


def kubectl_stdin(bed: tb.Testbed, verb: str, text: str) -> None:
    subprocess.run(bed.kubectl_cmd("hub", verb, "-f", "-"), input=text, capture_output=True, text=True,
                   check=verb == "apply")


def refusal(call: Any, *args: Any) -> str:
    """The hub's refusal of a call made with the registration credential (fails if it was allowed)."""
    try:
        call(*args)
    except ApiException as exc:
        assert exc.status in (403, 422), f"{exc.status} {exc.body}"
        return str(yaml.safe_load(exc.body or "{}").get("message", ""))
    raise AssertionError(f"the registration credential was allowed to {call.__name__}{args[:2]}")


def test_a_registration_credential_joins_its_node_and_nothing_else(testbed: tb.Testbed, operator: m.Operator,
                                                                    tmp_path: Path) -> None:
    hub = testbed.api("hub")
    kubectl_stdin(testbed, "apply", join_objects(testbed))
    # The installer's kubeconfig names 127.0.0.1: the hub is told to use another address (here a
    # proxy to the same API server, so that the node is Ready only if that address is used).
    member_config = yaml.safe_load(testbed.clusters[MEMBER].kubeconfig.read_text())
    server = urllib.parse.urlsplit(member_config["clusters"][0]["cluster"]["server"])
    assert server.hostname and server.port
    proxy = CuttableProxy(server.hostname, server.port)
    member_server = f"https://{server.hostname}:{proxy.port}"
    values: dict[str, Any] = {
        "dispatchNamespace": NS, "hubNamespace": HUB_NS,
        "node": {"name": NODE, "type": "regional", "region": "CN-SC",
                 "operatingEntity": {"name": "Sichuan Compute Co.", "creditCode": m.CREDIT_CODE,
                                     "telecomLicence": "B1-20240003", "registeredCapital": "60000000"}},
        # Dear enough that no other test's job lands here.
        "offers": [{"name": f"{NODE}-a100", "gpuModel": m.A100, "gpuMemoryGiB": 80, "cards": 4,
                    "price": {"amount": "500.00", "currency": "CNY", "unit": "card-hour"}}],
    }
    values_file = tmp_path / "member-values.yaml"
    values_file.write_text(yaml.safe_dump(values))
    helm(testbed, MEMBER, "uninstall", "interconnect-member", check=False)
    helm(testbed, MEMBER, "install", "interconnect-member", str(CHARTS / "interconnect-member"), "-f",
         str(values_file))
    credential = tmp_path / "registration.kubeconfig"
    try:
        # The hub admin issues it...
        issued = interconnect("token", "create", "--node", NODE, "--ttl", "1h", "--kubeconfig",
                              str(testbed.hub.kubeconfig), "--hub-context", testbed.hub.context,
                              "--operator-namespace", m.OPERATOR_NS, "-f", str(credential))
        assert issued.returncode == 0, issued.stderr
        assert credential.stat().st_mode & 0o077 == 0, "the credential file is readable by others"
        reg = yaml.safe_load(credential.read_text())
        assert set(reg["users"][0]["user"]) == {"token"}, "a token, nothing else"
        # ...and the node operator joins with it and the member's own kubeconfig, nothing of the hub's.
        joined = interconnect("join", "--kubeconfig", str(testbed.clusters[MEMBER].kubeconfig), "--member-context",
                              testbed.clusters[MEMBER].context, "--hub-kubeconfig", str(credential), "--values",
                              str(values_file), "--member-server", member_server, "--token-lifetime", "10m",
                              "--operator-namespace", m.OPERATOR_NS)
        assert joined.returncode == 0, joined.stderr
        stored = client.CoreV1Api(hub).read_namespaced_secret(f"{NODE}-kubeconfig", m.OPERATOR_NS)
        kubeconfig = yaml.safe_load(base64.b64decode(stored.data["kubeconfig"]))
        assert kubeconfig["clusters"][0]["cluster"]["server"] == member_server

        def ready() -> bool:
            obj = m.custom(hub).get_cluster_custom_object(m.GROUP, m.VERSION, "computenodes", NODE)
            return any(c["type"] == "Ready" and c["status"] == "True"
                       for c in (obj.get("status") or {}).get("conditions", []))

        m.wait_for(ready, 60, f"{NODE} Ready through --member-server")
        offer = m.custom(hub).get_cluster_custom_object(m.GROUP, m.VERSION, "computeoffers", f"{NODE}-a100")
        assert offer["spec"]["nodeRef"] == NODE

        # What the credential cannot do: another node's objects, another node's Secret, reading anything secret.
        api = config.new_client_from_config(config_file=str(credential))
        custom, core = client.CustomObjectsApi(api), client.CoreV1Api(api)
        other = {"apiVersion": f"{m.GROUP}/{m.VERSION}", "kind": "ComputeNode", "metadata": {"name": "sc-other"},
                 "spec": {**m.custom(hub).get_cluster_custom_object(m.GROUP, m.VERSION, "computenodes", NODE)["spec"]}}
        message = refusal(custom.create_cluster_custom_object, m.GROUP, m.VERSION, "computenodes", other)
        assert f"registers ComputeNode {NODE} only" in message, message
        stolen = {"apiVersion": f"{m.GROUP}/{m.VERSION}", "kind": "ComputeOffer", "metadata": {"name": "sc-stolen"},
                  "spec": {**offer["spec"], "nodeRef": "gz-regional"}}
        message = refusal(custom.create_cluster_custom_object, m.GROUP, m.VERSION, "computeoffers", stolen)
        assert "spec.nodeRef" in message and NODE in message, message
        theirs = m.custom(hub).get_cluster_custom_object(m.GROUP, m.VERSION, "computeoffers", "gz-a100")
        theirs["spec"]["cards"] = 1
        message = refusal(custom.replace_cluster_custom_object, m.GROUP, m.VERSION, "computeoffers", "gz-a100", theirs)
        assert "spec.nodeRef" in message, message
        message = refusal(custom.delete_cluster_custom_object, m.GROUP, m.VERSION, "computeoffers", "gz-a100")
        assert "spec.nodeRef" in message, message
        hijack = m.custom(hub).get_cluster_custom_object(m.GROUP, m.VERSION, "computenodes", NODE)
        hijack["spec"]["connection"]["secretRef"]["name"] = "member-1-kubeconfig"
        message = refusal(custom.replace_cluster_custom_object, m.GROUP, m.VERSION, "computenodes", NODE, hijack)
        assert "spec.connection.secretRef" in message, message
        secret = client.V1Secret(metadata=client.V1ObjectMeta(name="member-1-kubeconfig"),
                                 string_data={"kubeconfig": "x"})
        refusal(core.replace_namespaced_secret, "member-1-kubeconfig", m.OPERATOR_NS, secret)
        refusal(core.read_namespaced_secret, "member-1-kubeconfig", m.OPERATOR_NS)
        refusal(core.list_namespaced_secret, m.OPERATOR_NS)
        refusal(custom.list_cluster_custom_object, m.GROUP, m.VERSION, "computejobs")
        api.close()
    finally:
        left = interconnect("leave", NODE, "--kubeconfig", str(testbed.hub.kubeconfig), "--hub-context",
                            testbed.hub.context, "--operator-namespace", m.OPERATOR_NS, "--timeout", "60")
        revoked = interconnect("token", "revoke", "--node", NODE, "--kubeconfig", str(testbed.hub.kubeconfig),
                               "--hub-context", testbed.hub.context, "--operator-namespace", m.OPERATOR_NS)
        helm(testbed, MEMBER, "uninstall", "interconnect-member", check=False)
        kubectl_stdin(testbed, "delete", join_objects(testbed))
        proxy.cut()
    assert left.returncode == 0, left.stderr
    assert revoked.returncode == 0 and "revoked" in revoked.stdout, revoked.stderr
    # Revoked: nothing is allowed at once (its bindings are gone), and the token stops
    # authenticating once the API server's token cache notices the account is gone.
    api = config.new_client_from_config(config_file=str(credential))

    def answer() -> int:
        try:
            client.CustomObjectsApi(api).get_cluster_custom_object(m.GROUP, m.VERSION, "computeoffers", "gz-a100")
        except ApiException as exc:
            return int(exc.status)
        return 200

    try:
        assert answer() in (401, 403)
        m.wait_for(lambda: answer() == 401, 60, "the revoked credential to be refused as unauthenticated")
    finally:
        api.close()

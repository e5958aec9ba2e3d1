"""The Helm charts on the test bed: the hub chart installs; a member joins with one install and a
registration that uses only the chart's least-privilege identity; leaving drains and removes it."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from tests import testbed as tb
from tests.e2e import market as m

pytestmark = pytest.mark.e2e

CHARTS = m.REPO / "charts"


def helm(bed: tb.Testbed, cluster: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    c = bed.clusters[cluster]
    return subprocess.run([bed.helm, "--kubeconfig", str(c.kubeconfig), "--kube-context", c.context, *args],
                          capture_output=True, text=True, check=check)


def test_charts_lint_and_bad_values_fail_with_the_field(testbed: tb.Testbed) -> None:
    for chart in ("interconnect-hub", "interconnect-member"):
        lint = subprocess.run([testbed.helm, "lint", str(CHARTS / chart)], capture_output=True, text=True)
        assert lint.returncode == 0, lint.stdout + lint.stderr
    bad = subprocess.run([testbed.helm, "template", "x", str(CHARTS / "interconnect-member"), "--set",
                          "podSecurity=privileged"], capture_output=True, text=True)
    assert bad.returncode != 0 and "/podSecurity" in bad.stderr and "restricted" in bad.stderr, bad.stderr
    bad = subprocess.run([testbed.helm, "template", "x", str(CHARTS / "interconnect-hub"), "--kube-version",
                          "1.36.3", "--set", "replicaCount=0"], capture_output=True, text=True)
    assert bad.returncode != 0 and "/replicaCount" in bad.stderr, bad.stderr
    wrong_type = subprocess.run([testbed.helm, "template", "x", str(CHARTS / "interconnect-hub"), "--kube-version",
                                 "1.36.3", "--set-string", "replicaCount=two"], capture_output=True, text=True)
    assert wrong_type.returncode != 0 and "/replicaCount" in wrong_type.stderr and "integer" in wrong_type.stderr
    missing = subprocess.run([testbed.helm, "template", "x", str(CHARTS / "interconnect-hub"), "--kube-version",
                              "1.36.3", "--set", "image.repository=null"], capture_output=True, text=True)
    assert missing.returncode != 0 and "repository" in missing.stderr, missing.stderr


def test_every_rendered_manifest_is_accepted_by_a_real_api_server(testbed: tb.Testbed, operator: m.Operator) -> None:
    # The chart's CRDs (ours and kopf's peering) are installed as helm would, first.
    subprocess.run(testbed.kubectl_cmd("hub", "apply", "--server-side", "--force-conflicts", "-f",
                                       str(CHARTS / "interconnect-hub" / "crds")), check=True, capture_output=True)
    subprocess.run(testbed.kubectl_cmd("hub", "wait", "--for=condition=Established", "--timeout=60s",
                                       "crd/clusterkopfpeerings.kopf.dev"), check=True, capture_output=True)
    for chart, cluster, extra in (("interconnect-hub", "hub", ["--set", "replicaCount=2"]),
                                  ("interconnect-member", "member-2", [])):  # its namespace exists (market)
        rendered = helm(testbed, cluster, "template", "x", str(CHARTS / chart), "--namespace", "default",
                        "--kube-version", "1.36.3", *extra)
        applied = subprocess.run(testbed.kubectl_cmd(cluster, "apply", "--dry-run=server", "-f", "-"),
                                 input=rendered.stdout, capture_output=True, text=True)
        assert applied.returncode == 0, f"{chart}: {applied.stderr}"
        assert "created (server dry run)" in applied.stdout or "configured (server dry run)" in applied.stdout


def test_hub_chart_installs_a_production_operator(testbed: tb.Testbed, operator: m.Operator) -> None:
    ns = "ic-chart"
    helm(testbed, "hub", "uninstall", "interconnect-hub", "-n", ns, check=False)
    out = helm(testbed, "hub", "install", "interconnect-hub", str(CHARTS / "interconnect-hub"), "-n", ns,
               "--create-namespace", "--set", "replicaCount=2")
    helm(testbed, "hub", "upgrade", "interconnect-hub", str(CHARTS / "interconnect-hub"), "-n", ns,
         "--set", "replicaCount=3", "--set", "settings.heartbeatSeconds=7")
    try:
        assert "join a member cluster" in out.stdout  # NOTES.txt says what to do next
        api = testbed.api("hub")
        deploy = client.AppsV1Api(api).read_namespaced_deployment("interconnect-hub", ns)
        assert deploy.spec.replicas == 3
        pod = deploy.spec.template.spec
        container = pod.containers[0]
        assert "--priority" not in container.args, "replicas sharing a priority would all freeze"
        assert container.security_context.read_only_root_filesystem is True
        assert container.security_context.allow_privilege_escalation is False
        assert container.liveness_probe.http_get.path == "/healthz"
        assert container.resources.limits["memory"] == "512Mi"
        assert pod.service_account_name == "interconnect-hub"
        rules = client.RbacAuthorizationV1Api(api).read_cluster_role(f"interconnect-hub-{ns}").rules
        assert not any("*" in (r.verbs or []) or "*" in (r.resources or []) for r in rules), "least privilege"
        assert any("secrets" in (r.resources or []) for r in rules) is False, "Secrets only in its own namespace"
        peering = m.custom(api).get_cluster_custom_object("kopf.dev", "v1", "clusterkopfpeerings", "interconnect")
        assert peering["metadata"]["name"] == "interconnect"
        assert client.CoreV1Api(api).read_namespaced_service("interconnect-hub-metrics", ns).spec.ports[0].port == 9090
        env = {e.name: e.value for e in container.env if e.value}
        assert env["INTERCONNECT_HEARTBEAT_SECONDS"] == "7", "helm upgrade reached the Deployment"
    finally:
        helm(testbed, "hub", "uninstall", "interconnect-hub", "-n", ns, check=False)
    with pytest.raises(ApiException):
        client.AppsV1Api(testbed.api("hub")).read_namespaced_deployment("interconnect-hub", ns)


def merged_kubeconfig(bed: tb.Testbed, tmp_path: Path, *clusters: str) -> Path:
    env = dict(os.environ, KUBECONFIG=os.pathsep.join(str(bed.clusters[c].kubeconfig) for c in clusters))
    out = subprocess.run([bed.kubectl, "config", "view", "--flatten", "--raw"], env=env, capture_output=True,
                         text=True, check=True)
    path = tmp_path / "merged.kubeconfig"
    path.write_text(out.stdout)
    return path


def interconnect(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "interconnect", *args], capture_output=True, text=True,
                          cwd=m.REPO, env=dict(os.environ, PYTHONPATH=str(m.REPO / "operator")))


def test_member_joins_with_one_install_works_with_least_privilege_and_leaves(
    testbed: tb.Testbed, operator: m.Operator, tmp_path: Path
) -> None:
    member, node, ns = "member-1", "gz-joined", "ic-joined"
    values: dict[str, Any] = {
        "dispatchNamespace": ns,
        "node": {"name": node, "type": "regional", "region": "CN-GZ",
                 "operatingEntity": {"name": "Guizhou Compute Co.", "creditCode": m.CREDIT_CODE,
                                     "telecomLicence": "B1-20240002", "registeredCapital": "60000000"}},
        "offers": [{"name": "gz-joined-a100", "gpuModel": m.A100, "gpuMemoryGiB": 80, "cards": 8,
                    "price": {"amount": "7.50", "currency": "CNY", "unit": "card-hour"}}],
    }
    values_file = tmp_path / "member-values.yaml"
    values_file.write_text(yaml.safe_dump(values))
    helm(testbed, member, "uninstall", "interconnect-member", check=False)
    out = helm(testbed, member, "install", "interconnect-member", str(CHARTS / "interconnect-member"),
               "-f", str(values_file))
    assert "python -m interconnect join" in out.stdout
    kubeconfig = merged_kubeconfig(testbed, tmp_path, "hub", member)
    hub = testbed.api("hub")
    try:
        labels = client.CoreV1Api(testbed.api(member)).read_namespace(ns).metadata.labels
        assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
        sa = f"system:serviceaccount:{ns}:interconnect-hub"
        for verb, resource, where, allowed in (
            ("create", "jobs.batch", ns, "yes"), ("delete", "jobs.batch", ns, "yes"),
            ("list", "nodes", None, "yes"), ("watch", "pods", None, "yes"),
            ("get", "secrets", ns, "no"), ("list", "secrets", None, "no"),
            ("create", "jobs.batch", "default", "no"), ("delete", "pods", "kube-system", "no"),
            ("create", "pods", "default", "no"), ("create", "pods", ns, "no"),
        ):
            scope = ["-n", where] if where else ["--all-namespaces"]
            can = subprocess.run(testbed.kubectl_cmd(member, "auth", "can-i", verb, resource, "--as", sa, *scope),
                                 capture_output=True, text=True)
            assert can.stdout.strip() == allowed, f"can {sa} {verb} {resource} in {where}? {can.stdout}"
        joined = interconnect("join", "--kubeconfig", str(kubeconfig), "--member-context", member,
                              "--hub-context", "hub", "--values", str(values_file))
        assert joined.returncode == 0, joined.stderr
        # The hub holds the chart's service-account token, never the installer's credentials.
        secret = client.CoreV1Api(hub).read_namespaced_secret(f"{node}-kubeconfig", m.OPERATOR_NS)
        stored = yaml.safe_load(base64.b64decode(secret.data["kubeconfig"]))
        user = stored["users"][0]["user"]
        assert set(user) == {"token"}, f"expected a token only, got {sorted(user)}"

        def ready() -> dict[str, Any] | None:
            obj = m.custom(hub).get_cluster_custom_object(m.GROUP, m.VERSION, "computenodes", node)
            conds = {c["type"]: c["status"] for c in (obj.get("status") or {}).get("conditions", [])}
            return obj if conds.get("Ready") == "True" else None

        obj = m.wait_for(ready, 60, f"{node} Ready")
        assert obj["status"]["identityCode"].startswith("CIRGZ")
        # Work runs through the least-privilege identity.
        tenant = m.tenant(hub)
        job = m.job_manifest("via-join", tenant, origin="CN-GZ", tier="1ms", gpus=1, max_price="10",
                             run_for="1s", placement={"allowedNodes": [node]})
        job["spec"]["template"]["spec"]["securityContext"] = {
            "runAsNonRoot": True, "runAsUser": 1000, "seccompProfile": {"type": "RuntimeDefault"}}
        job["spec"]["template"]["spec"]["containers"][0]["securityContext"] = {
            "allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}
        m.custom(hub).create_namespaced_custom_object(m.GROUP, m.VERSION, tenant, "computejobs", job)
        m.wait_for(lambda: m.phase_of(hub, tenant, "via-join") == "Succeeded", 90, "the job to succeed")
        done = m.get_job(hub, tenant, "via-join")
        assert done["status"]["placement"]["node"] == node
        assert done["status"]["memberJob"]["namespace"] == ns
        # Leaving drains (nothing active here) and removes node, offers and Secret.
        left = interconnect("leave", node, "--kubeconfig", str(kubeconfig), "--hub-context", "hub",
                            "--timeout", "60")
        assert left.returncode == 0, left.stderr

        def gone() -> bool:
            try:
                m.custom(hub).get_cluster_custom_object(m.GROUP, m.VERSION, "computenodes", node)
            except ApiException as exc:
                return exc.status == 404
            return False

        m.wait_for(gone, 60, f"{node} to be removed")
        offers = m.custom(hub).list_cluster_custom_object(m.GROUP, m.VERSION, "computeoffers")["items"]
        assert all(o["spec"]["nodeRef"] != node for o in offers)
        with pytest.raises(ApiException):
            client.CoreV1Api(hub).read_namespaced_secret(f"{node}-kubeconfig", m.OPERATOR_NS)
        # Nothing of ours remains on the member.
        ours = "interconnect.dev/managed-by=interconnect-hub"
        member_api = testbed.api(member)
        m.wait_for(lambda: not client.BatchV1Api(member_api).list_namespaced_job(ns, label_selector=ours).items,
                   60, "the member Jobs to be removed")
        m.wait_for(lambda: not client.CoreV1Api(member_api).list_namespaced_pod(ns, label_selector=ours).items,
                   60, "the member pods to be removed")
        # ... and it gets no new work.
        late = m.job_manifest("after-leave", tenant, origin="CN-GZ", tier="1ms", gpus=1, max_price="10",
                              placement={"allowedNodes": [node]})
        m.custom(hub).create_namespaced_custom_object(m.GROUP, m.VERSION, tenant, "computejobs", late)
        m.wait_for(lambda: (m.get_job(hub, tenant, "after-leave").get("status") or {}).get("unschedulable"), 30,
                   "the job to be explained as unschedulable")
        assert m.phase_of(hub, tenant, "after-leave") == "Pending"
    finally:
        helm(testbed, member, "uninstall", "interconnect-member", check=False)
        interconnect("leave", node, "--kubeconfig", str(kubeconfig), "--hub-context", "hub", "--timeout", "5")

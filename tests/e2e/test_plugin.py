"""kubectl compute against the live hub: quotes predict the operator, explain says what fixes a wait;
a tenant holding only the chart's tenant role (impersonated: --as) quotes, explains, reads its
namespace's bill and its jobs' logs through the operator's tenant API (an aggregated API), and
nobody else's; errors are one line with their own exit status; no credential copy is left behind."""

from __future__ import annotations

import base64
import contextlib
import http.server
import json
import os
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from interconnect.cli.kube import Exit
from tests import testbed as tb
from tests.e2e import market as m
from tests.e2e.test_dispatch import TABLE, table_job, wait_phase

CHARTS = m.REPO / "charts"
MERGE_PATCH = "application/merge-patch+json"

pytestmark = pytest.mark.e2e


def compute(bed: tb.Testbed, *args: str, context: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "interconnect.cli.plugin", *args, "--kubeconfig",
                           str(bed.hub.kubeconfig), "--context", context or bed.hub.context],
                          capture_output=True, text=True,
                          env=dict(os.environ, PYTHONPATH=str(m.REPO / "operator")))


def test_quote_predicts_the_operators_choice_and_prices_it(
    testbed: tb.Testbed, operator: m.Operator, tmp_path: Path
) -> None:
    hub = testbed.api("hub")
    ns = m.tenant(hub)
    for name, spec, node, offer in TABLE:
        manifest = table_job(name, ns, spec)
        path = tmp_path / f"{name}.yaml"
        path.write_text(yaml.safe_dump(manifest))
        quoted = compute(testbed, "quote", "-f", str(path), "--hours", "2", "-o", "json")
        assert quoted.returncode == 0, quoted.stderr
        data = json.loads(quoted.stdout)
        chosen = [c for c in data["candidates"] if c["chosen"]]
        assert [(c["node"], c["offer"]) for c in chosen] == [(node, offer)], name
        cards = spec["gpus"] * spec.get("replicas", 1)
        _, _, _, _, amount, unit, per_machine = m.OFFERS[offer]
        billed = -(-cards // per_machine) if unit == "machine-hour" and per_machine else cards
        assert Decimal(chosen[0]["estimate"]) == Decimal(amount) * billed * 2, name
        m.custom(hub).create_namespaced_custom_object(m.GROUP, m.VERSION, ns, "computejobs", manifest)
        job = wait_phase(hub, ns, name, {"Succeeded", "Failed"}, timeout=90)
        assert (job["status"]["placement"]["node"], job["status"]["placement"]["offer"]) == (node, offer)


def test_explain_names_a_price_cap_that_then_places_the_job(testbed: tb.Testbed, operator: m.Operator) -> None:
    hub = testbed.api("hub")
    ns = m.tenant(hub)
    manifest = m.job_manifest("waiting", ns, origin="CN-SH", tier="1ms", gpus=1, max_price="3", run_for="1s")
    m.custom(hub).create_namespaced_custom_object(m.GROUP, m.VERSION, ns, "computejobs", manifest)
    m.wait_for(lambda: (m.get_job(hub, ns, "waiting").get("status") or {}).get("unschedulable"), 30,
               "the job to be explained as unschedulable")
    explained = compute(testbed, "explain", "cjob", "waiting", "-n", ns)
    assert explained.returncode == 0, explained.stderr
    line = next(x for x in explained.stdout.splitlines() if x.strip().startswith("maxPrice"))
    cap = line.split()[1]
    patch: dict[str, Any] = {"spec": {"maxPrice": {"amount": cap, "currency": "CNY"}}}
    m.custom(hub).patch_namespaced_custom_object(m.GROUP, m.VERSION, ns, "computejobs", "waiting", patch)
    job = wait_phase(hub, ns, "waiting", {"Succeeded"}, timeout=60)
    assert job["status"]["placement"]["offer"] == "sh-h800"


def test_topology_and_errors(testbed: tb.Testbed, operator: m.Operator, tmp_path: Path) -> None:
    topology = compute(testbed, "topology")
    assert topology.returncode == 0, topology.stderr
    for name in m.NODES:
        assert name in topology.stdout
    assert "└─ sh-finance (finance)" in topology.stdout  # an industry node under its regional parent
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(m.job_manifest("bad", "default", origin="CN-SH", tier="1ms", gpus=1,
                                                 max_price="3", backoffLimit=500)))
    rejected = compute(testbed, "quote", "-f", str(bad))
    assert rejected.returncode == Exit.INVALID and "Traceback" not in rejected.stderr
    assert "backoffLimit" in rejected.stderr or "backoff_limit" in rejected.stderr
    unknown = compute(testbed, "topology", context="no-such-context")
    assert unknown.returncode == Exit.CONFIG and "no-such-context" in one_line_error(unknown)


# ---------------------------------------------------------------------------------------------
# A tenant with the chart's tenant role only: quote, explain, usage and logs
# ---------------------------------------------------------------------------------------------


def openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_tls(directory: Path, name: str, sans: str) -> tuple[Path, Path]:
    """A self-signed certificate (its own CA) and key: for the stand-in kubelet."""
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", f"/CN={name}",
            "-addext", f"subjectAltName={sans}", "-keyout", f"{name}.key", "-out", f"{name}.crt", cwd=directory)
    return directory / f"{name}.crt", directory / f"{name}.key"


def machine_ip() -> str:
    """This machine's non-loopback address: the API servers refuse to proxy to loopback ones."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.connect(("192.0.2.1", 9))  # no packet is sent: this picks the outgoing interface
        return str(s.getsockname()[0])


def kubeconfig_user(bed: tb.Testbed) -> tuple[bytes, bytes]:
    """The hub kubeconfig's cluster CA and client certificate (PEM)."""
    config = yaml.safe_load(bed.hub.kubeconfig.read_text())
    ctx = next(c["context"] for c in config["contexts"] if c["name"] == bed.hub.context)
    cluster = next(c["cluster"] for c in config["clusters"] if c["name"] == ctx["cluster"])
    user = next(u["user"] for u in config["users"] if u["name"] == ctx["user"])

    def pem(entry: dict[str, Any], key: str) -> bytes:
        if entry.get(f"{key}-data"):
            return base64.b64decode(entry[f"{key}-data"])
        path = Path(entry[key])
        return (path if path.is_absolute() else bed.hub.kubeconfig.parent / path).read_bytes()

    return pem(cluster, "certificate-authority"), pem(user, "client-certificate")


def common_name(cert_pem: bytes, tmp: Path) -> str:
    (tmp / "client.crt").write_bytes(cert_pem)
    out = subprocess.run(["openssl", "x509", "-noout", "-subject", "-nameopt", "multiline", "-in", "client.crt"],
                         cwd=tmp, check=True, capture_output=True, text=True).stdout
    return next(line.split("=", 1)[1].strip() for line in out.splitlines() if "commonName" in line)


@dataclass
class Tenancy:
    release: str
    namespace: str
    """The chart's release namespace: its latency ConfigMap and the tenant API's Service."""
    alice: str
    bob: str
    """alice edits namespace alice, bob namespace bob (the built-in edit role, nothing else)."""
    front_proxy: str
    """How the tenant API was told to trust the hub's front proxy (for the report)."""

    def as_user(self, user: str) -> list[str]:
        return ["--as", user, "--operator-namespace", self.namespace]


def apiservice_available(bed: tb.Testbed) -> str | None:
    out = subprocess.run(bed.kubectl_cmd("hub", "get", "apiservice", "v1alpha1.tenant.interconnect.dev", "-o",
                                         "jsonpath={.status.conditions[?(@.type=='Available')]}"),
                         capture_output=True, text=True)
    state = json.loads(out.stdout) if out.returncode == 0 and out.stdout.strip() else {}
    return "yes" if state.get("status") == "True" else None


@pytest.fixture(scope="module")
def tenancy(testbed: tb.Testbed, operator: m.Operator, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tenancy]:
    """The hub chart's roles and its tenant API (APIService, Service, serving certificate), from a
    release of the chart without the operator (it runs as this session's local process: the
    Service is an ExternalName to this machine); the operator restarted with the tenant API on."""
    hub = testbed.api("hub")
    tmp = tmp_path_factory.mktemp("tenant-api")
    peering = CHARTS / "interconnect-hub" / "files" / "crds" / "clusterkopfpeerings.kopf.dev.yaml"
    subprocess.run(testbed.kubectl_cmd("hub", "apply", "--server-side", "--force-conflicts", "-f", str(peering)),
                   check=True, capture_output=True)
    subprocess.run(testbed.kubectl_cmd("hub", "wait", "--for=condition=Established", "--timeout=60s",
                                       "crd/clusterkopfpeerings.kopf.dev"), check=True, capture_output=True)
    suffix = uuid.uuid4().hex[:6]
    release, namespace, port, ip = f"plugin-{suffix}", f"ic-plugin-{suffix}", m.free_port(), machine_ip()
    helm(testbed, "install", release, str(CHARTS / "interconnect-hub"), "-n", namespace, "--create-namespace",
         "--set", "crds.install=false", "--set", "deployOperator=false", "--set", "tenantApi.enabled=true",
         "--set", f"tenantApi.externalName={ip}", "--set", f"tenantApi.port={port}")
    core, rbac = client.CoreV1Api(hub), client.RbacAuthorizationV1Api(hub)
    alice, bob = f"alice-{suffix}", f"bob-{suffix}"
    env = dict(operator.extra_env)
    try:
        # The serving certificate the chart made (its CA is the APIService's caBundle).
        secret = core.read_namespaced_secret("interconnect-hub-tenant-api-tls", namespace)
        for key in ("tls.crt", "tls.key"):
            (tmp / key).write_bytes(base64.b64decode(secret.data[key]))
        tenant_env = {"INTERCONNECT_TENANT_API_PORT": str(port), "INTERCONNECT_TENANT_API_CERT": str(tmp / "tls.crt"),
                      "INTERCONNECT_TENANT_API_KEY": str(tmp / "tls.key")}
        # The front proxy: kwokctl starts the test bed's API servers with --proxy-client-cert-file (its
        # admin certificate, from the cluster CA) but without --requestheader-client-ca-file, so
        # extension-apiserver-authentication names no front-proxy CA: the operator is told it (the
        # cluster CA) and the one name to accept, the proxy certificate's, which is the admin's
        # (system:masters: it may impersonate anyone anyway, so trusting it asserts nothing more).
        auth = core.read_namespaced_config_map("extension-apiserver-authentication", "kube-system").data or {}
        front_proxy = "requestheader-client-ca-file of the hub"
        if not auth.get("requestheader-client-ca-file"):
            ca, cert = kubeconfig_user(testbed)
            (tmp / "proxy-ca.crt").write_bytes(ca)
            tenant_env.update(INTERCONNECT_TENANT_API_PROXY_CA=str(tmp / "proxy-ca.crt"),
                              INTERCONNECT_TENANT_API_PROXY_NAMES=common_name(cert, tmp))
            front_proxy = f"cluster CA, name {tenant_env['INTERCONNECT_TENANT_API_PROXY_NAMES']}"
        operator.stop()
        operator.extra_env.update(tenant_env)
        operator.start()
        for user in (alice, bob):
            m.ensure_namespace(hub, user)
            rbac.create_namespaced_role_binding(user, client.V1RoleBinding(
                metadata=client.V1ObjectMeta(name=f"{user}-edit"),
                role_ref=client.V1RoleRef(api_group="rbac.authorization.k8s.io", kind="ClusterRole", name="edit"),
                subjects=[client.RbacV1Subject(api_group="rbac.authorization.k8s.io", kind="User", name=user)]))
        # The aggregation controller copies the chart's tenant rules into edit.
        try:
            m.wait_for(lambda: allowed(hub, alice, alice, "get", "tenant.interconnect.dev", "computejobs", "log"),
                       60, "edit to aggregate the tenant role")
        except AssertionError as exc:
            edit = client.RbacAuthorizationV1Api(hub).read_cluster_role("edit")
            rules = [r.to_dict() for r in edit.rules or [] if "interconnect" in str(r.api_groups)]
            raise AssertionError(f"{exc}; edit's interconnect rules: {rules}") from None
        try:
            m.wait_for(lambda: apiservice_available(testbed), 90, "the tenant API's APIService to be Available")
        except AssertionError as exc:
            raise AssertionError(f"{exc}\noperator log:\n{operator.log_tail()}") from None
        yield Tenancy(release, namespace, alice, bob, front_proxy)
    finally:
        helm(testbed, "uninstall", release, "-n", namespace, "--wait", check=False)
        for ns in (namespace, alice, bob):
            with contextlib.suppress(ApiException):
                core.delete_namespace(ns)
        operator.stop()
        operator.extra_env.clear()
        operator.extra_env.update(env)
        operator.start()


def helm(bed: tb.Testbed, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    out = subprocess.run([bed.helm, "--kubeconfig", str(bed.hub.kubeconfig), "--kube-context", bed.hub.context,
                          *args], capture_output=True, text=True)
    assert not check or out.returncode == 0, f"helm {' '.join(args)}: {out.stderr}"
    return out


def allowed(api: client.ApiClient, user: str, namespace: str, verb: str, group: str, resource: str,
            subresource: str = "") -> bool:
    """The hub's authorizer's answer for ``user`` (a SubjectAccessReview: no discovery involved)."""
    review = client.AuthorizationV1Api(api).create_subject_access_review(client.V1SubjectAccessReview(
        spec=client.V1SubjectAccessReviewSpec(user=user, groups=["system:authenticated"],
                                              resource_attributes=client.V1ResourceAttributes(
                                                  namespace=namespace, verb=verb, group=group, resource=resource,
                                                  subresource=subresource or None))))
    return bool(review.status and review.status.allowed)


def one_line_error(run: subprocess.CompletedProcess[str]) -> str:
    assert "Traceback" not in run.stderr, run.stderr
    lines = [x for x in run.stderr.splitlines() if x.startswith("error:")]
    assert len(lines) == 1, run.stderr
    return lines[0]


def submit(bed: tb.Testbed, user: str, manifest: dict[str, Any]) -> None:
    """Create a ComputeJob as ``user`` (impersonated: the tenant's own right to create it)."""
    api = bed.hub.api()
    api.set_default_header("Impersonate-User", user)
    ns = manifest["metadata"]["namespace"]
    m.custom(api).create_namespaced_custom_object(m.GROUP, m.VERSION, ns, "computejobs", manifest)


def test_a_tenant_quotes_explains_and_reads_its_bill_with_the_tenant_role_only(
    testbed: tb.Testbed, tenancy: Tenancy, tmp_path: Path
) -> None:
    hub = testbed.api("hub")
    alice, bob = tenancy.alice, tenancy.bob
    name, spec, node, offer = TABLE[0]
    manifest = table_job(f"{name}-quoted", alice, spec)
    path = tmp_path / "job.yaml"
    path.write_text(yaml.safe_dump(manifest))
    # The kubeconfig's context has no namespace: -n names it (a context's namespace is the default).
    quoted = compute(testbed, "quote", "-f", str(path), "-o", "json", *tenancy.as_user(alice))
    assert quoted.returncode == 0, quoted.stderr
    assert "warning" not in quoted.stderr, "the tenant reads the latency table: " + quoted.stderr
    chosen = [c for c in json.loads(quoted.stdout)["candidates"] if c["chosen"]]
    assert [(c["node"], c["offer"]) for c in chosen] == [(node, offer)]
    named = compute(testbed, "quote", "-f", str(path), "-o", "name", *tenancy.as_user(alice))
    assert named.stdout.strip() == f"computeoffer.{m.GROUP}/{offer}"
    wide = compute(testbed, "quote", "-f", str(path), "-o", "wide", *tenancy.as_user(alice))
    assert wide.returncode == 0 and "REGION" in wide.stdout.splitlines()[0], wide.stdout

    submit(testbed, alice, manifest)
    wait_phase(hub, alice, manifest["metadata"]["name"], {"Succeeded"}, timeout=90)
    waiting = m.job_manifest("waiting", alice, origin="CN-SH", tier="1ms", gpus=1, max_price="3", run_for="1s")
    submit(testbed, alice, waiting)
    m.wait_for(lambda: (m.get_job(hub, alice, "waiting").get("status") or {}).get("unschedulable"), 30,
               "the job to be explained as unschedulable")
    explained = compute(testbed, "explain", "cjob", "waiting", "-n", alice, *tenancy.as_user(alice))
    assert explained.returncode == 0, explained.stderr
    assert "maxPrice" in explained.stdout and "warning" not in explained.stderr, explained.stderr
    every = compute(testbed, "explain", "cjob", "-n", alice, "-o", "name", *tenancy.as_user(alice))
    assert sorted(every.stdout.split()) == sorted(f"computejob.{m.GROUP}/{n}" for n in (
        manifest["metadata"]["name"], "waiting")), every.stderr
    topology = compute(testbed, "topology", "-n", alice, *tenancy.as_user(alice))
    assert topology.returncode == 0 and f"jobs counted in namespace {alice}" in topology.stdout, topology.stderr

    # Another tenant's job, every namespace's jobs, every tenant's bill: one line, exit 6.
    for args in (("explain", "cjob", "waiting", "-n", alice), ("explain", "cjob", "-A"), ("topology", "-A"),
                 ("usage", "-A")):
        refused = compute(testbed, *args, *tenancy.as_user(bob))
        assert refused.returncode == Exit.FORBIDDEN, (args, refused.stdout, refused.stderr)
        assert "Forbidden (403)" in one_line_error(refused), refused.stderr
    gone = compute(testbed, "explain", "cjob", "nope", "-n", alice, *tenancy.as_user(alice))
    assert gone.returncode == Exit.NOT_FOUND and "NotFound (404)" in one_line_error(gone)

    # The bill of her namespace, through the tenant API (the records are cluster-scoped: RBAC
    # cannot hand her hers), in every format; bob's namespace has none of it.
    record = f"{m.get_job(hub, alice, manifest['metadata']['name'])['metadata']['uid']}-1"
    m.wait_for(lambda: compute(testbed, "usage", "-n", alice, "-o", "name", *tenancy.as_user(alice)).stdout.strip(),
               30, "the attempt's ComputeUsage record")
    usage = {fmt: compute(testbed, "usage", "-n", alice, "-o", fmt, *tenancy.as_user(alice))
             for fmt in ("table", "wide", "name", "json", "yaml")}
    for fmt, run in usage.items():
        assert run.returncode == 0, (fmt, run.stderr)
    assert usage["name"].stdout.split() == [f"computeusage.{m.GROUP}/{record}"]
    [row] = json.loads(usage["json"].stdout)
    assert row["tenant"] == alice and row["jobs"] == 1 and Decimal(row["cost"]) > 0
    assert yaml.safe_load(usage["yaml"].stdout) == [row], "yaml is the same data as json, not a table"
    assert usage["table"].stdout.split()[:5] == ["TENANT", "CURRENCY", "JOBS", "CARD-HOURS", "COST"]
    assert "ATTEMPTS" in usage["wide"].stdout.splitlines()[0]
    others = compute(testbed, "usage", "-n", bob, "-o", "json", *tenancy.as_user(bob))
    assert others.returncode == 0 and json.loads(others.stdout) == [], others.stderr
    peek = compute(testbed, "usage", "-n", alice, *tenancy.as_user(bob))
    assert peek.returncode == Exit.FORBIDDEN, peek.stderr


class StandInKubelet:
    """kwok runs no containers and serves no container logs here (the test bed's kwok has no
    Logs configuration), so a node's kubelet endpoint is pointed, for this test, at this HTTPS
    server, which answers the member API server's /containerLogs request with known lines.
    Everything before it is real: the hub's API server and aggregator, the operator's tenant API,
    its SubjectAccessReview, its member client and the member API server's pods/log."""

    def __init__(self, directory: Path, ip: str, lines: list[str], follow_delay: float) -> None:
        cert, key = make_tls(directory, "kubelet", f"IP:{ip}")
        self.requests: list[str] = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                outer.requests.append(self.path)
                follow = "follow=true" in self.path
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                for line in lines:
                    data = (line + "\n").encode()
                    self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
                    self.wfile.flush()
                    if follow:
                        time.sleep(follow_delay)
                self.wfile.write(b"0\r\n\r\n")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer((ip, 0), Handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.port = int(self.server.server_address[1])
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def pods_of(bed: tb.Testbed, member: str, uid: str) -> list[client.V1Pod]:
    return list(client.CoreV1Api(bed.api(member)).list_namespaced_pod(
        m.WORK_NS, label_selector=f"interconnect.dev/job-uid={uid}").items)


def test_a_tenant_reads_its_jobs_logs_and_no_one_elses(
    testbed: tb.Testbed, tenancy: Tenancy, tmp_path: Path
) -> None:
    hub = testbed.api("hub")
    alice, bob = tenancy.alice, tenancy.bob
    # Not placed yet: no logs (exit 8), one line.
    early = m.job_manifest("cold", alice, origin="CN-SH", tier="1ms", gpus=1, max_price="1", run_for="1s")
    submit(testbed, alice, early)
    m.wait_for(lambda: (m.get_job(hub, alice, "cold").get("status") or {}).get("unschedulable"), 30, "cold to wait")
    cold = compute(testbed, "logs", "cjob", "cold", "-n", alice, *tenancy.as_user(alice))
    assert cold.returncode == Exit.CONFLICT and "not been placed" in one_line_error(cold), cold.stderr

    manifest = m.job_manifest("talks", alice, origin="CN-GZ", tier="1ms", gpus=2, max_price="10", run_for="120s")
    submit(testbed, alice, manifest)
    job = wait_phase(hub, alice, "talks", {"Running"}, timeout=90)
    member = m.NODES[job["status"]["placement"]["node"]][0]
    [pod] = m.wait_for(lambda: [p for p in pods_of(testbed, member, job["metadata"]["uid"])
                                if p.spec.node_name and p.status.phase == "Running"], 30, "the running pod")
    # Before the stand-in: what the test bed's own kubelet endpoint gives (kwok's), as the tenant sees it.
    raw = compute(testbed, "logs", "cjob", "talks", "-n", alice, *tenancy.as_user(alice))
    evidence = tmp_path / "kwok-logs.txt"
    evidence.write_text(f"exit {raw.returncode}\nstdout: {raw.stdout!r}\nstderr: {raw.stderr!r}\n")
    print(f"\nkwok's own answer to pods/log, through the whole chain: exit {raw.returncode}: {raw.stderr.strip()}")

    member_core = client.CoreV1Api(testbed.api(member))
    node = member_core.read_node(pod.spec.node_name)
    original = {"addresses": [a.to_dict() for a in node.status.addresses or []],
                "daemonEndpoints": {"kubeletEndpoint": {"Port": node.status.daemon_endpoints.kubelet_endpoint.port}}}
    lines = [f"step {i} loss {1 / (i + 1):.3f}" for i in range(5)]
    kubelet = StandInKubelet(tmp_path, machine_ip(), lines, follow_delay=0.3)
    try:
        member_core.patch_node_status(pod.spec.node_name, {"status": {
            "addresses": [{"type": "InternalIP", "address": machine_ip()}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": kubelet.port}}}}, _content_type=MERGE_PATCH)
        read = compute(testbed, "logs", "cjob", "talks", "-n", alice, *tenancy.as_user(alice))
        assert read.returncode == 0, read.stderr
        assert read.stdout.splitlines() == lines, read.stdout
        assert any(f"/containerLogs/{m.WORK_NS}/{pod.metadata.name}/train" in r for r in kubelet.requests)
        followed = compute(testbed, "logs", "cjob", "talks", "-f", "--attempt", "1", "-n", alice,
                           *tenancy.as_user(alice))
        assert followed.returncode == 0 and followed.stdout.splitlines() == lines, followed.stderr
        assert any("follow=true" in r for r in kubelet.requests), kubelet.requests
        # Another tenant, another attempt, another container: refused, each with its own status.
        peek = compute(testbed, "logs", "cjob", "talks", "-n", alice, *tenancy.as_user(bob))
        assert peek.returncode == Exit.FORBIDDEN and "Forbidden (403)" in one_line_error(peek), peek.stderr
        later = compute(testbed, "logs", "cjob", "talks", "--attempt", "2", "-n", alice, *tenancy.as_user(alice))
        assert later.returncode == Exit.NOT_FOUND and "no attempt 2" in one_line_error(later), later.stderr
        wrong = compute(testbed, "logs", "cjob", "talks", "-c", "sidecar", "-n", alice, *tenancy.as_user(alice))
        assert wrong.returncode == Exit.INVALID and "no container sidecar" in one_line_error(wrong), wrong.stderr
    finally:
        member_core.patch_node_status(pod.spec.node_name, {"status": original}, _content_type=MERGE_PATCH)
        kubelet.close()
    # The tenant API refuses a request that does not come from the hub's front proxy, whatever
    # headers it carries.
    api = testbed.api("hub")
    service = client.CoreV1Api(api).read_namespaced_service("interconnect-hub-tenant-api", tenancy.namespace)
    port = service.spec.ports[0].port
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    request = urllib.request.Request(f"https://{machine_ip()}:{port}/apis/tenant.interconnect.dev/v1alpha1/"
                                     f"namespaces/{alice}/computejobs/talks/log", headers={"X-Remote-User": alice})
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request, context=context, timeout=10)
    assert caught.value.code == 401


def test_no_credential_copy_is_left_behind(testbed: tb.Testbed, operator: m.Operator, tmp_path: Path) -> None:
    """Every --context call used to leave a copy of the kubeconfig in /tmp."""
    private = tmp_path / "tmp"
    private.mkdir()
    run = subprocess.run([sys.executable, "-m", "interconnect.cli.plugin", "topology", "--kubeconfig",
                          str(testbed.hub.kubeconfig), "--context", testbed.hub.context],
                         capture_output=True, text=True,
                         env=dict(os.environ, PYTHONPATH=str(m.REPO / "operator"), TMPDIR=str(private)))
    assert run.returncode == 0, run.stderr
    assert list(private.iterdir()) == [], "credentials left behind"

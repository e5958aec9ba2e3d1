"""The Helm charts on the test bed: the hub chart installs; `helm upgrade` updates its CRDs and
`helm uninstall` keeps them; a member joins with one install and a registration that uses only the
chart's least-privilege identity; leaving drains and removes it."""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from interconnect.core.credentials import decode_token, with_token
from tests import testbed as tb
from tests.e2e import market as m

pytestmark = pytest.mark.e2e

CHARTS = m.REPO / "charts"
CHART_CRDS = CHARTS / "interconnect-hub" / "files" / "crds"


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
    # The chart's CRDs (ours and kopf's peering) first: the rendered peering object needs its CRD.
    subprocess.run(testbed.kubectl_cmd("hub", "apply", "--server-side", "--force-conflicts", "-f",
                                       str(CHART_CRDS)), check=True, capture_output=True)
    subprocess.run(testbed.kubectl_cmd("hub", "wait", "--for=condition=Established", "--timeout=60s",
                                       "crd/clusterkopfpeerings.kopf.dev"), check=True, capture_output=True)
    # A server dry run creates no namespace, so the member chart's must exist: the market made the
    # dispatch namespace; the hub's service account has its own (hubNamespace).
    m.ensure_namespace(testbed.api("member-2"), "interconnect-hub")
    isolation = ["--set-json", 'resourceQuota={"enabled":true,"hard":{"requests.nvidia.com/gpu":32,"pods":"200"}}',
                 "--set-json", 'networkPolicy.podCIDRs=["10.42.0.0/16"]', "--set-json",
                 'networkPolicy.apiServerCIDRs=["172.18.0.2/32"]', "--set", "limitRange.max.cpu=16"]
    for chart, cluster, extra in (("interconnect-hub", "hub", ["--set", "replicaCount=2"]),
                                  ("interconnect-member", "member-2", []),   # its namespace exists (market)
                                  ("interconnect-member", "member-2", isolation)):
        rendered = helm(testbed, cluster, "template", "x", str(CHARTS / chart), "--namespace", "default",
                        "--kube-version", "1.36.3", *extra)
        applied = subprocess.run(testbed.kubectl_cmd(cluster, "apply", "--dry-run=server", "-f", "-"),
                                 input=rendered.stdout, capture_output=True, text=True)
        assert applied.returncode == 0, f"{chart}: {applied.stderr}"
        assert "created (server dry run)" in applied.stdout or "configured (server dry run)" in applied.stdout
        if chart == "interconnect-member":
            for kind in ("networkpolicy.networking.k8s.io", "limitrange"):
                assert f"{kind}/interconnect-dispatch" in applied.stdout, applied.stdout
            assert ("resourcequota/interconnect-dispatch" in applied.stdout) == bool(extra), applied.stdout


def test_hub_chart_installs_a_production_operator(testbed: tb.Testbed, operator: m.Operator) -> None:
    ns = "ic-chart"
    helm(testbed, "hub", "uninstall", "interconnect-hub", "-n", ns, check=False)
    # The session's CRDs were applied with kubectl (tests/e2e/market.py), as CRDs installed before the
    # chart rendered them were: the release takes them over once (README, "Upgrading").
    out = helm(testbed, "hub", "install", "interconnect-hub", str(CHARTS / "interconnect-hub"), "-n", ns,
               "--create-namespace", "--set", "replicaCount=2", "--take-ownership")
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


# ------------------------------------------------------------------------------- CRD upgrades
#
# On a member's API server, which has never had the hub's CRDs (nothing there uses them): a fresh
# cluster for the hub chart, where "the live CRD" can only be what the chart put there. The
# previous chart is this chart with one CRD changed: ComputeUsage without its Currency column.

CRD_UPGRADE_NS, CRD_RELEASE = "ic-crd-upgrade", "ic-crds"
USAGE_CRD, COLUMN = "computeusages.interconnect.dev", "Currency"
CHART_CRD_NAMES = sorted(p.name.removesuffix(".yaml") for p in CHART_CRDS.glob("*.yaml"))


def previous_chart(tmp_path: Path, *, crds_directory: bool = False) -> Path:
    """The hub chart whose ComputeUsage CRD lacks the Currency printer column. ``crds_directory``: in
    the layout of the charts before this one, with the CRDs in crds/ (which helm installs at `helm
    install` only and never upgrades) instead of templates/crds.yaml."""
    chart = tmp_path / ("crds-directory" if crds_directory else "templated") / "interconnect-hub"
    shutil.copytree(CHARTS / "interconnect-hub", chart)
    path = chart / "files" / "crds" / f"{USAGE_CRD}.yaml"
    crd = yaml.safe_load(path.read_text(encoding="utf-8"))
    [served] = crd["spec"]["versions"]
    assert COLUMN in [c["name"] for c in served["additionalPrinterColumns"]]
    served["additionalPrinterColumns"] = [c for c in served["additionalPrinterColumns"] if c["name"] != COLUMN]
    path.write_text(yaml.safe_dump(crd, sort_keys=False), encoding="utf-8")
    meta = yaml.safe_load((chart / "Chart.yaml").read_text(encoding="utf-8"))
    meta["version"] = f"{meta['version']}-previous"
    (chart / "Chart.yaml").write_text(yaml.safe_dump(meta, sort_keys=False), encoding="utf-8")
    if crds_directory:
        (chart / "files" / "crds").rename(chart / "crds")
        (chart / "files").rmdir()
        (chart / "templates" / "crds.yaml").unlink()
    return chart


def columns(api: client.ApiClient, name: str = USAGE_CRD) -> list[str]:
    crd = client.ApiextensionsV1Api(api).read_custom_resource_definition(name)
    return [c.name for c in crd.spec.versions[0].additional_printer_columns or []]


def chart_columns() -> list[str]:
    crd = yaml.safe_load((CHART_CRDS / f"{USAGE_CRD}.yaml").read_text(encoding="utf-8"))
    return [c["name"] for c in crd["spec"]["versions"][0]["additionalPrinterColumns"]]


def crd_metadata(api: client.ApiClient, name: str) -> client.V1ObjectMeta:
    return client.ApiextensionsV1Api(api).read_custom_resource_definition(name).metadata


def remove_chart_crds(bed: tb.Testbed, cluster: str) -> None:
    # A CRD goes once the API server has deleted its objects: give a loaded machine its time, and
    # say what kubectl said if it still does not.
    done = subprocess.run(bed.kubectl_cmd(cluster, "delete", "crd", "--ignore-not-found", "--wait=true",
                                          "--timeout=180s", *CHART_CRD_NAMES), capture_output=True, text=True)
    if done.returncode != 0:
        # Seen in about one run in four: a CRD still Terminating after 180 s, where deleting the
        # same CRDs alone takes under a second. Wait once more, then say where each CRD is.
        again = subprocess.run(bed.kubectl_cmd(cluster, "wait", "--for=delete", "--timeout=180s",
                                               *(f"crd/{name}" for name in CHART_CRD_NAMES)),
                               capture_output=True, text=True)
        left = subprocess.run(bed.kubectl_cmd(cluster, "get", "crd", "-o",
                                              "jsonpath={range .items[*]}{.metadata.name} {.status.conditions}{\"\\n\"}"
                                              "{end}"), capture_output=True, text=True)
        assert again.returncode == 0 or "NotFound" in again.stderr, (
            f"deleting the chart's CRDs on {cluster}: {done.stdout} {done.stderr}; then {again.stderr}; "
            f"left: {left.stdout}")


@pytest.fixture
def bare_cluster(testbed: tb.Testbed) -> Iterator[str]:
    """A member's API server without the hub's CRDs and release, before and after the test."""
    cluster = testbed.members[-1].name

    def clean() -> None:
        helm(testbed, cluster, "uninstall", CRD_RELEASE, "-n", CRD_UPGRADE_NS, "--wait", check=False)
        remove_chart_crds(testbed, cluster)
        subprocess.run(testbed.kubectl_cmd(cluster, "delete", "namespace", CRD_UPGRADE_NS, "--ignore-not-found",
                                           "--wait=true", "--timeout=120s"), check=True, capture_output=True)

    clean()
    try:
        yield cluster
    finally:
        clean()


def hub_chart(bed: tb.Testbed, cluster: str, verb: str, chart: Path, *extra: str,
              check: bool = True) -> subprocess.CompletedProcess[str]:
    """helm install/upgrade of the hub chart without the operator (the CRDs are what is tested)."""
    return helm(bed, cluster, verb, CRD_RELEASE, str(chart), "-n", CRD_UPGRADE_NS, "--set", "deployOperator=false",
                *extra, check=check)


def test_helm_upgrade_updates_a_crd_and_uninstall_keeps_it(testbed: tb.Testbed, bare_cluster: str,
                                                           tmp_path: Path) -> None:
    api = testbed.api(bare_cluster)
    # Installed as the README says (no --wait): the CRDs are templates, and kopf's peering object, a
    # post-install hook, is created after them on a cluster that had neither.
    hub_chart(testbed, bare_cluster, "install", previous_chart(tmp_path), "--create-namespace")
    assert COLUMN not in columns(api), "the live CRD is the previous chart's"
    assert columns(api) == [c for c in chart_columns() if c != COLUMN]
    peering = m.custom(api).get_cluster_custom_object("kopf.dev", "v1", "clusterkopfpeerings", "interconnect")
    assert peering["metadata"]["name"] == "interconnect"
    before = {name: crd_metadata(api, name) for name in CHART_CRD_NAMES}
    for name, meta in before.items():
        assert meta.annotations["helm.sh/resource-policy"] == "keep", name
        assert meta.annotations["meta.helm.sh/release-name"] == CRD_RELEASE, name
        assert meta.labels["app.kubernetes.io/managed-by"] == "Helm", name

    upgraded = hub_chart(testbed, bare_cluster, "upgrade", CHARTS / "interconnect-hub")
    assert "has been upgraded" in upgraded.stdout, upgraded.stdout
    assert columns(api) == chart_columns(), "helm upgrade updated the live CRD"
    explained = subprocess.run(testbed.kubectl_cmd(bare_cluster, "get", "crd", USAGE_CRD, "-o",
                                                   "jsonpath={.spec.versions[0].additionalPrinterColumns[*].name}"),
                               capture_output=True, text=True, check=True)
    assert COLUMN in explained.stdout.split()

    gone = helm(testbed, bare_cluster, "uninstall", CRD_RELEASE, "-n", CRD_UPGRADE_NS, "--wait")
    assert "These resources were kept due to the resource policy" in gone.stdout, gone.stdout
    for name in CHART_CRD_NAMES:
        assert f"[CustomResourceDefinition] {name}" in gone.stdout, gone.stdout
        # The same object (not deleted and made again), so every object of its kind is still there.
        assert crd_metadata(api, name).uid == before[name].uid, name
    assert columns(api) == chart_columns()
    m.custom(api).get_cluster_custom_object("kopf.dev", "v1", "clusterkopfpeerings", "interconnect")


def test_upgrading_from_the_crds_directory_chart_takes_the_crds_over_once(
    testbed: tb.Testbed, bare_cluster: str, tmp_path: Path
) -> None:
    """The charts before this one kept the CRDs in crds/: Helm created them at install, owns none of
    them, and never upgrades them. The first upgrade to this chart must take them over
    (--take-ownership, Helm >= 3.17); without it Helm refuses and changes nothing."""
    api = testbed.api(bare_cluster)
    hub_chart(testbed, bare_cluster, "install", previous_chart(tmp_path, crds_directory=True), "--create-namespace")
    assert COLUMN not in columns(api)
    assert "meta.helm.sh/release-name" not in (crd_metadata(api, USAGE_CRD).annotations or {}), "crds/: not owned"

    refused = hub_chart(testbed, bare_cluster, "upgrade", CHARTS / "interconnect-hub", check=False)
    assert refused.returncode != 0, refused.stdout
    # (Helm names the first CRD it meets: any of them, none is the release's)
    assert "CustomResourceDefinition" in refused.stderr and "invalid ownership metadata" in refused.stderr, \
        refused.stderr
    assert COLUMN not in columns(api), "a refused upgrade changes nothing"

    hub_chart(testbed, bare_cluster, "upgrade", CHARTS / "interconnect-hub", "--take-ownership")
    assert columns(api) == chart_columns()
    meta = crd_metadata(api, USAGE_CRD)
    assert meta.annotations["meta.helm.sh/release-name"] == CRD_RELEASE
    assert meta.annotations["helm.sh/resource-policy"] == "keep"
    # From then on the release owns them: a plain upgrade (here of a setting) goes through.
    hub_chart(testbed, bare_cluster, "upgrade", CHARTS / "interconnect-hub", "--set", "logging.format=json")
    assert columns(api) == chart_columns()


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


HUB_NS, HUB_SA = "interconnect-hub", "interconnect-hub"   # the member chart's defaults
BINDING = f"{HUB_SA}-binding"


def stored_kubeconfig(hub: client.ApiClient, node: str) -> dict[str, Any]:
    """The kubeconfig join left on the hub for ``node``."""
    secret = client.CoreV1Api(hub).read_namespaced_secret(f"{node}-kubeconfig", m.OPERATOR_NS)
    return yaml.safe_load(base64.b64decode(secret.data["kubeconfig"]))  # type: ignore[no-any-return]


def token_of(kubeconfig: dict[str, Any]) -> str:
    """The hub holds a token, never the installer's credentials (certificates, exec plugins)."""
    [user] = kubeconfig["users"]
    assert set(user["user"]) == {"token"}, f"expected a token only, got {sorted(user['user'])}"
    return str(user["user"]["token"])


def answer_to(kubeconfig: dict[str, Any], token: str) -> int:
    """The member's HTTP status for a request made with ``token``: 200, or 401 once it is void."""
    api = config.new_client_from_config_dict(with_token(kubeconfig, token))
    try:
        client.VersionApi(api).get_code(_request_timeout=10)
    except ApiException as exc:
        return int(exc.status)
    finally:
        api.close()
    return 200


def assert_no_hub_credentials(bed: tb.Testbed, member: str, ns: str, tokens: list[str]) -> None:
    """What a tenant pod's namespace holds, read from the member's API server: no service-account
    token Secret, and none of the hub's tokens in any Secret."""
    secrets = client.CoreV1Api(bed.api(member)).list_namespaced_secret(ns).items
    legacy = [s.metadata.name for s in secrets if s.type == "kubernetes.io/service-account-token"]
    assert not legacy, f"service-account token Secrets in {ns}: {legacy}"
    for secret in secrets:
        for key, value in (secret.data or {}).items():
            text = base64.b64decode(value).decode(errors="replace")
            assert not any(t in text for t in tokens), f"Secret {ns}/{secret.metadata.name} ({key}) holds a hub token"


def ready_condition(hub: client.ApiClient, node: str) -> dict[str, Any]:
    obj = m.custom(hub).get_cluster_custom_object(m.GROUP, m.VERSION, "computenodes", node)
    return next((c for c in (obj.get("status") or {}).get("conditions", []) if c["type"] == "Ready"), {})


def test_member_joins_with_one_install_works_with_least_privilege_and_leaves(
    testbed: tb.Testbed, operator: m.Operator, tmp_path: Path
) -> None:
    member, node, ns = "member-1", "gz-joined", "ic-joined"
    values: dict[str, Any] = {
        "dispatchNamespace": ns,
        "resourceQuota": {"enabled": True, "hard": {"requests.nvidia.com/gpu": "16", "pods": 50}},
        "networkPolicy": {"podCIDRs": ["10.244.0.0/16", "10.245.0.0/16"], "serviceCIDRs": ["10.96.0.0/16"],
                          "extraExcept": ["192.168.0.0/16"]},
        "limitRange": {"max": {"cpu": "48"}},
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
    assert "--token-lifetime 12h" in out.stdout and "CredentialsExpired" in out.stdout  # NOTES.txt
    kubeconfig = merged_kubeconfig(testbed, tmp_path, "hub", member)
    hub = testbed.api("hub")
    try:
        member_core = client.CoreV1Api(testbed.api(member))
        labels = member_core.read_namespace(ns).metadata.labels
        assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
        # The hub's account is in a namespace of its own, with no token Secret anywhere.
        assert member_core.read_namespaced_service_account(HUB_SA, HUB_NS).automount_service_account_token is False
        assert_no_hub_credentials(testbed, member, ns, [])
        assert_no_hub_credentials(testbed, member, HUB_NS, [])
        sa = f"system:serviceaccount:{HUB_NS}:{HUB_SA}"
        for verb, resource, where, allowed in (
            ("create", "jobs.batch", ns, "yes"), ("delete", "jobs.batch", ns, "yes"),
            ("list", "nodes", None, "yes"), ("watch", "pods", None, "yes"),
            ("get", "secrets", ns, "no"), ("list", "secrets", None, "no"),
            ("create", "jobs.batch", "default", "no"), ("delete", "pods", "kube-system", "no"),
            ("create", "pods", "default", "no"), ("create", "pods", ns, "no"), ("delete", "pods", ns, "yes"),
        ):
            scope = ["-n", where] if where else ["--all-namespaces"]
            can = subprocess.run(testbed.kubectl_cmd(member, "auth", "can-i", verb, resource, "--as", sa, *scope),
                                 capture_output=True, text=True)
            assert can.stdout.strip() == allowed, f"can {sa} {verb} {resource} in {where}? {can.stdout}"
        # In its namespace: tokens for itself only, and get/delete of its binding Secret only.
        for args, allowed in (
            (["create", f"serviceaccounts/{HUB_SA}", "--subresource=token", "-n", HUB_NS], "yes"),
            (["create", "serviceaccounts/default", "--subresource=token", "-n", HUB_NS], "no"),
            (["create", "serviceaccounts/default", "--subresource=token", "-n", ns], "no"),
            (["get", f"secrets/{BINDING}", "-n", HUB_NS], "yes"),
            (["delete", f"secrets/{BINDING}", "-n", HUB_NS], "yes"),
            (["update", f"secrets/{BINDING}", "-n", HUB_NS], "no"), (["get", "secrets/other", "-n", HUB_NS], "no"),
            (["list", "secrets", "-n", HUB_NS], "no"), (["create", "secrets", "-n", HUB_NS], "no"),
        ):
            can = subprocess.run(testbed.kubectl_cmd(member, "auth", "can-i", *args, "--as", sa),
                                 capture_output=True, text=True)
            assert can.stdout.strip() == allowed, f"can {sa} {' '.join(args)}? {can.stdout}"
        join = ["join", "--kubeconfig", str(kubeconfig), "--member-context", member, "--hub-context", "hub",
                "--values", str(values_file), "--token-lifetime", "10m"]
        joined = interconnect(*join)
        assert joined.returncode == 0, joined.stderr
        # The hub holds a 10-minute token of the chart's account, bound to the binding Secret.
        stored = stored_kubeconfig(hub, node)
        first = token_of(stored)
        claims = decode_token(first)
        binding = member_core.read_namespaced_secret(BINDING, HUB_NS)
        assert binding.type == "Opaque" and not binding.data
        assert claims is not None and claims.subject == sa and claims.lifetime == 600
        assert (claims.secret, claims.secret_uid) == (BINDING, binding.metadata.uid)
        assert_no_hub_credentials(testbed, member, ns, [first])

        def ready() -> dict[str, Any] | None:
            obj = m.custom(hub).get_cluster_custom_object(m.GROUP, m.VERSION, "computenodes", node)
            conds = {c["type"]: c["status"] for c in (obj.get("status") or {}).get("conditions", [])}
            return obj if conds.get("Ready") == "True" else None

        obj = m.wait_for(ready, 60, f"{node} Ready")
        assert obj["status"]["identityCode"].startswith("CIRGZ")
        # The operator renews it (after 2% of its lifetime here: INTERCONNECT_TOKEN_RENEW_FRACTION)
        # with the token itself: same account, same binding, same lifetime.
        second = m.wait_for(lambda: (t := token_of(stored_kubeconfig(hub, node))) != first and t, 45,
                            "the operator to renew the hub's token")
        renewed = decode_token(second)
        assert renewed is not None and renewed.subject == sa and renewed.lifetime == 600
        assert (renewed.secret, renewed.secret_uid) == (claims.secret, claims.secret_uid)
        assert renewed.issued_at > claims.issued_at
        assert answer_to(stored, second) == 200 and ready(), "still Ready with the renewed token"
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
        # The namespace is isolated, and the hub's pods are among those isolated.
        assert_isolated(testbed, member, ns, values)
        assert_no_hub_credentials(testbed, member, ns, [first, second, token_of(stored_kubeconfig(hub, node))])
        # Revoked behind the hub's back (the binding Secret deleted): CredentialsExpired, with how to
        # re-join; a re-join writes a new kubeconfig, which the operator picks up.
        member_core.delete_namespaced_secret(BINDING, HUB_NS)
        expired = m.wait_for(lambda: (c := ready_condition(hub, node)).get("reason") == "CredentialsExpired" and c,
                             60, f"{node} Ready=False (CredentialsExpired)")
        assert expired["status"] == "False"
        assert "kubectl compute join --member-context <ctx> --hub-context <hub> --values <file>" in expired["message"]
        rejoined = interconnect(*join)
        assert rejoined.returncode == 0, rejoined.stderr
        m.wait_for(ready, 60, f"{node} Ready again after the re-join")
        rebound = decode_token(token_of(stored_kubeconfig(hub, node)))
        assert rebound is not None and rebound.secret_uid == member_core.read_namespaced_secret(
            BINDING, HUB_NS).metadata.uid != claims.secret_uid
        issued = [first, second, token_of(stored_kubeconfig(hub, node))]
        # Leaving drains (nothing active here) and removes node, offers and Secret.
        issued.append(token_of(stored_kubeconfig(hub, node)))
        left = interconnect("leave", node, "--kubeconfig", str(kubeconfig), "--hub-context", "hub",
                            "--timeout", "60")
        assert left.returncode == 0, left.stderr
        assert f"deleted Secret {HUB_NS}/{BINDING} on the member" in left.stdout, left.stdout + left.stderr
        # ... which revoked every token join and the operator issued (bound-token checks may lag a little).
        m.wait_for(lambda: all(answer_to(stored, t) == 401 for t in set(issued)), 30,
                   "the member to refuse every token the hub had (401)")
        with pytest.raises(ApiException) as revoked:
            member_core.read_namespaced_secret(BINDING, HUB_NS)
        assert revoked.value.status == 404

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


def label_selector(selector: client.V1LabelSelector) -> str:
    """A LabelSelector as the API's label_selector string ("" selects everything)."""
    parts = [f"{key}={value}" for key, value in (selector.match_labels or {}).items()]
    for expr in selector.match_expressions or []:
        parts.append({"In": f"{expr.key} in ({','.join(expr.values or [])})",
                      "NotIn": f"{expr.key} notin ({','.join(expr.values or [])})",
                      "Exists": expr.key, "DoesNotExist": f"!{expr.key}"}[expr.operator])
    return ",".join(parts)


def restricted_pod(name: str, resources: dict[str, Any] | None = None) -> dict[str, Any]:
    """A pod that Pod Security "restricted" admits, not from the hub."""
    container: dict[str, Any] = {"name": "c", "image": "registry.example/other:1", "securityContext": {
        "allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}}
    if resources:
        container["resources"] = resources
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": {"app": "not-the-hub"}},
            "spec": {"securityContext": {"runAsNonRoot": True, "runAsUser": 1000,
                                         "seccompProfile": {"type": "RuntimeDefault"}},
                     "containers": [container]}}


def assert_isolated(bed: tb.Testbed, member: str, ns: str, values: dict[str, Any]) -> None:
    """What the member chart installed in the dispatch namespace, read from the member's API server,
    after the hub dispatched a job there. Nothing here enforces a NetworkPolicy (no network plugin on
    the test bed): this checks the objects, what they select and that admission applies the limits."""
    api = bed.api(member)
    core = client.CoreV1Api(api)
    policy = client.NetworkingV1Api(api).read_namespaced_network_policy("interconnect-dispatch", ns)
    assert sorted(policy.spec.policy_types) == ["Egress", "Ingress"]
    assert not policy.spec.ingress, "no ingress rule"
    dns, internet = policy.spec.egress
    assert dns.to[0].namespace_selector.match_labels == {"kubernetes.io/metadata.name": "kube-system"}
    assert dns.to[0].pod_selector.match_labels == {"k8s-app": "kube-dns"}
    assert sorted((p.protocol, p.port) for p in dns.ports) == [("TCP", 53), ("UDP", 53)]
    [block] = internet.to
    assert block.ip_block.cidr == "0.0.0.0/0" and not internet.ports
    wanted = [*values["networkPolicy"]["podCIDRs"], *values["networkPolicy"]["serviceCIDRs"],
              *values["networkPolicy"]["extraExcept"], "169.254.169.254/32"]
    assert set(wanted) <= set(block.ip_block._except), block.ip_block._except
    # helm install looked up the addresses the member's API server advertises.
    advertised = client.DiscoveryV1Api(api).read_namespaced_endpoint_slice("kubernetes", "default")
    if advertised.address_type == "IPv4":   # the test bed's: 192.0.2.2
        addresses = [a for endpoint in advertised.endpoints or [] for a in endpoint.addresses]
        assert addresses and {f"{a}/32" for a in addresses} <= set(block.ip_block._except), block.ip_block._except

    # The policy's pods, against the real pods: every pod the hub dispatched, and any other pod.
    stranger = core.create_namespaced_pod(ns, restricted_pod("not-from-the-hub"))
    try:
        dispatched = {p.metadata.name for p in core.list_namespaced_pod(
            ns, label_selector="interconnect.dev/managed-by=interconnect-hub").items}
        assert dispatched, "the hub's pods are there"
        selected = {p.metadata.name for p in core.list_namespaced_pod(
            ns, label_selector=label_selector(policy.spec.pod_selector)).items}
        everything = {p.metadata.name for p in core.list_namespaced_pod(ns).items}
        assert dispatched <= selected and stranger.metadata.name in selected and selected == everything
        # The LimitRange gave the stranger (which set nothing) the defaults ...
        resources = stranger.spec.containers[0].resources
        assert resources.limits == {"cpu": "1", "memory": "2Gi", "ephemeral-storage": "20Gi"}
        assert resources.requests == {"cpu": "1", "memory": "2Gi", "ephemeral-storage": "0"}
    finally:
        core.delete_namespaced_pod(stranger.metadata.name, ns, grace_period_seconds=0)
    limits = core.read_namespaced_limit_range("interconnect-dispatch", ns).spec.limits[0]
    assert limits.max == {"cpu": "48", "memory": "1Ti", "ephemeral-storage": "1Ti"}
    # ... and refuses a container over its max (dry run: nothing is created).
    with pytest.raises(ApiException) as caught:
        core.create_namespaced_pod(ns, restricted_pod("greedy", {"limits": {"cpu": "64", "memory": "8Gi"}}),
                                   dry_run="All")
    assert caught.value.status == 403 and "maximum cpu usage per Container is 48" in caught.value.body, caught.value
    quota = core.read_namespaced_resource_quota("interconnect-dispatch", ns)
    assert quota.spec.hard == {"requests.nvidia.com/gpu": "16", "pods": "50"}
    assert quota.status.hard == quota.spec.hard, "the quota controller has taken it up"

"""Where the hub's credentials live, rendered with helm template: on a member (templates/hub-identity.yaml)
the hub's service account is in a namespace of its own with no token Secret, may request tokens for
itself only and touch one binding Secret by name, and keeps its dispatch and capacity rights; on the
hub the operator may patch (store a renewed token), not create, list or delete, Secrets of its own
namespace only. The real API server's verdicts are in tests/e2e/test_charts.py."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import yaml

from tests.unit.generate.test_alerts import helm

CHARTS = Path(__file__).resolve().parents[3] / "charts"
Docs = dict[tuple[str, str, str], dict[str, Any]]


def template(chart: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([helm(), "template", "rel", str(CHARTS / chart), "-n", "default", "--kube-version",
                           "1.36.3", *args], capture_output=True, text=True)


def render(chart: str, *args: str) -> Docs:
    out = template(chart, *args)
    assert out.returncode == 0, out.stderr
    return {(d["kind"], (d["metadata"].get("namespace") or ""), d["metadata"]["name"]): d
            for d in yaml.safe_load_all(out.stdout) if d}


def sa(namespace: str = "interconnect-hub", name: str = "interconnect-hub") -> dict[str, str]:
    return {"kind": "ServiceAccount", "name": name, "namespace": namespace}


def test_nothing_of_the_hubs_credentials_is_in_the_dispatch_namespace() -> None:
    docs = render("interconnect-member", "--set", "dispatchNamespace=jobs")
    assert not any(d.get("type") == "kubernetes.io/service-account-token" for d in docs.values())
    assert not any(kind == "Secret" for kind, _, _ in docs), "join creates the binding Secret, not the chart"
    in_jobs = {(kind, name) for kind, ns, name in docs if ns == "jobs"}
    assert ("ServiceAccount", "interconnect-hub") not in in_jobs
    assert ("ServiceAccount", "interconnect-hub", "interconnect-hub") in {(k, ns, n) for k, ns, n in docs}
    namespace = docs[("Namespace", "", "interconnect-hub")]
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    assert docs[("ServiceAccount", "interconnect-hub", "interconnect-hub")]["automountServiceAccountToken"] is False


def test_the_hub_account_may_request_tokens_for_itself_and_touch_only_its_binding_secret() -> None:
    docs = render("interconnect-member")
    role = docs[("Role", "interconnect-hub", "interconnect-hub-credentials")]
    assert role["rules"] == [
        {"apiGroups": [""], "resources": ["serviceaccounts/token"], "resourceNames": ["interconnect-hub"],
         "verbs": ["create"]},
        {"apiGroups": [""], "resources": ["secrets"], "resourceNames": ["interconnect-hub-binding"],
         "verbs": ["get", "delete"]},
    ]
    binding = docs[("RoleBinding", "interconnect-hub", "interconnect-hub-credentials")]
    assert binding["subjects"] == [sa()]
    assert binding["roleRef"]["name"] == "interconnect-hub-credentials"


def test_dispatch_and_capacity_rights_stay_and_are_bound_to_the_account_in_its_namespace() -> None:
    docs = render("interconnect-member", "--set", "dispatchNamespace=jobs", "--set", "hubNamespace=hub-here",
                  "--set", "hubServiceAccount=hub-sa")
    dispatch = docs[("Role", "jobs", "interconnect-hub-dispatch")]
    assert {(r["resources"][0], tuple(r["verbs"])) for r in dispatch["rules"]} == {
        ("jobs", ("get", "list", "watch", "create", "delete")), ("pods", ("get", "list", "watch", "delete")),
        ("pods/log", ("get",))}
    assert docs[("RoleBinding", "jobs", "interconnect-hub-dispatch")]["subjects"] == [sa("hub-here", "hub-sa")]
    capacity = docs[("ClusterRole", "", "interconnect-hub-capacity-jobs")]
    assert {v for r in capacity["rules"] for v in r["verbs"]} == {"get", "list", "watch"}
    assert docs[("ClusterRoleBinding", "", "interconnect-hub-capacity-jobs")]["subjects"] == [
        sa("hub-here", "hub-sa")]
    creds = docs[("Role", "hub-here", "interconnect-hub-credentials")]
    assert [r["resourceNames"] for r in creds["rules"]] == [["hub-sa"], ["hub-sa-binding"]]
    for doc in docs.values():
        for rule in doc.get("rules") or []:
            for field in ("apiGroups", "resources", "verbs"):
                assert "*" not in rule.get(field, []), doc["metadata"]["name"]


def test_the_hub_namespace_must_differ_from_the_dispatch_namespace() -> None:
    out = template("interconnect-member", "--set", "dispatchNamespace=same", "--set", "hubNamespace=same")
    assert out.returncode != 0 and "hubNamespace must differ from dispatchNamespace" in out.stderr, out.stderr
    bad = template("interconnect-member", "--set", "hubNamespace=Not_A_Name")
    assert bad.returncode != 0 and "hubNamespace" in bad.stderr, bad.stderr


def test_the_hub_operator_may_patch_secrets_of_its_namespace_only() -> None:
    docs = render("interconnect-hub", "-n", "ic")
    role = next(d for (kind, _, name), d in docs.items() if kind == "Role" and name == "interconnect-hub")
    [secrets] = [r for r in role["rules"] if "secrets" in r["resources"]]
    assert secrets["verbs"] == ["get", "patch"], "store a renewed token; never create, list or delete"
    cluster = next(d for (kind, _, name), d in docs.items() if kind == "ClusterRole" and name.startswith(
        "interconnect-hub-"))
    assert not any("secrets" in r["resources"] for r in cluster["rules"])
    env = {e["name"]: e.get("value") for d in docs.values() if d["kind"] == "Deployment"
           for e in d["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["INTERCONNECT_TOKEN_RENEW_FRACTION"] == "0.5"
    bad = template("interconnect-hub", "--set", "settings.tokenRenewFraction=1")
    assert bad.returncode != 0 and "tokenRenewFraction" in bad.stderr, bad.stderr

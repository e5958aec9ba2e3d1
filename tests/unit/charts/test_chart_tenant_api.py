"""The hub chart's tenant API (templates/tenant-api.yaml) and what tenants get for the plugin
(templates/rbac-people.yaml): the APIService with the CA of its serving certificate, the two
bindings the operator needs to authenticate and authorize forwarded requests, the tenant roles'
rights on tenant.interconnect.dev, and the latency table readable by the catalogue's readers. The
API server's verdicts: tests/e2e/test_plugin.py."""

from __future__ import annotations

import base64
import subprocess
from pathlib import Path
from typing import Any

from tests.unit.charts.test_chart_rbac import grants, render
from tests.unit.generate.test_alerts import helm

CHART = Path(__file__).resolve().parents[3] / "charts" / "interconnect-hub"
ON = ("--set", "tenantApi.enabled=true")


def test_off_unless_enabled() -> None:
    docs = render()
    assert not any(kind == "APIService" for kind, _ in docs)


def test_the_apiservice_trusts_the_certificate_the_chart_made() -> None:
    docs = render(*ON)
    api = docs[("APIService", "v1alpha1.tenant.interconnect.dev")]["spec"]
    assert (api["group"], api["version"]) == ("tenant.interconnect.dev", "v1alpha1")
    assert api["service"] == {"name": "interconnect-hub-tenant-api", "namespace": "ic", "port": 443}
    assert api["groupPriorityMinimum"] < 1000, "below the CRDs' groups"
    assert "insecureSkipTLSVerify" not in api
    secret = docs[("Secret", "interconnect-hub-tenant-api-tls")]
    assert secret["type"] == "kubernetes.io/tls" and api["caBundle"] == secret["data"]["ca.crt"]
    crt = base64.b64decode(secret["data"]["tls.crt"])
    ca = base64.b64decode(api["caBundle"])
    out = subprocess.run(["openssl", "x509", "-noout", "-ext", "subjectAltName"], input=crt, capture_output=True)
    assert b"interconnect-hub-tenant-api.ic.svc" in out.stdout, "the name the aggregator checks"
    service = docs[("Service", "interconnect-hub-tenant-api")]["spec"]
    assert service["ports"] == [{"name": "https", "port": 443, "targetPort": 8443}]
    assert service["selector"]["app.kubernetes.io/name"] == "interconnect-hub"
    assert ca.startswith(b"-----BEGIN CERTIFICATE-----")


def test_the_operator_may_review_access_and_read_the_front_proxy_settings() -> None:
    docs = render(*ON)
    delegator = docs[("ClusterRoleBinding", "interconnect-hub-ic-auth-delegator")]
    assert delegator["roleRef"]["name"] == "system:auth-delegator"
    reader = docs[("RoleBinding", "interconnect-hub-ic-auth-reader")]
    assert reader["metadata"]["namespace"] == "kube-system"
    assert reader["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                                 "name": "extension-apiserver-authentication-reader"}
    for binding in (delegator, reader):
        assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "interconnect-hub", "namespace": "ic"}]


def test_an_operator_elsewhere_is_an_external_name_and_one_is_required() -> None:
    docs = render(*ON, "--set", "deployOperator=false", "--set", "tenantApi.externalName=192.0.2.2",
                  "--set", "tenantApi.port=31234")
    service = docs[("Service", "interconnect-hub-tenant-api")]["spec"]
    assert (service["type"], service["externalName"]) == ("ExternalName", "192.0.2.2")
    assert docs[("APIService", "v1alpha1.tenant.interconnect.dev")]["spec"]["service"]["port"] == 31234
    for args, message in ((("--set", "deployOperator=false"), "tenantApi.externalName"),
                          (("--set", "tenantApi.tlsSecret=mine"), "tenantApi.caBundle")):
        out = subprocess.run([helm(), "template", "rel", str(CHART), "--kube-version", "1.36.3", *ON, *args],
                             capture_output=True, text=True)
        assert out.returncode != 0 and message in out.stderr, out.stderr
    own = render(*ON, "--set", "tenantApi.tlsSecret=mine", "--set", "tenantApi.caBundle=Q0E=")
    assert ("Secret", "mine") not in own and ("Secret", "interconnect-hub-tenant-api-tls") not in own
    assert own[("APIService", "v1alpha1.tenant.interconnect.dev")]["spec"]["caBundle"] == "Q0E="


def test_tenants_read_logs_and_their_bill_through_it_and_the_latency_table() -> None:
    docs = render()
    for role in ("rel-tenant", "rel-tenant-view"):
        rules = [r for r in docs[("ClusterRole", role)]["rules"] if r["apiGroups"] == ["tenant.interconnect.dev"]]
        assert grants(rules, "computejobs/log", "get") and grants(rules, "usages", "list"), role
        assert {v for r in rules for v in r["verbs"]} == {"get", "list"}, f"{role}: read only"
    latency: dict[str, Any] = docs[("Role", "rel-catalog-reader")]
    assert latency["metadata"]["namespace"] == "ic"
    assert latency["rules"] == [{"apiGroups": [""], "resources": ["configmaps"],
                                 "resourceNames": ["interconnect-latency"], "verbs": ["get"]}]
    binding = docs[("RoleBinding", "rel-catalog-reader")]
    assert binding["subjects"][0]["name"] == "system:authenticated"
    assert ("RoleBinding", "rel-catalog-reader") not in render("--set", "rbac.tenantsGroup=")

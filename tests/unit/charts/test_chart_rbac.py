"""The hub chart's roles for people (templates/rbac-people.yaml), rendered with helm template:
least privilege (no wildcards, no Secrets), the aggregation labels, the optional bindings and the
offers-by-node admission policy, and who may read and delete the bill (ComputeUsage). The real API
server's verdicts are in tests/e2e/test_tenancy_rbac.py."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import yaml

from tests.unit.generate.test_alerts import helm

CHART = Path(__file__).resolve().parents[3] / "charts" / "interconnect-hub"
ROLES = ("tenant", "tenant-view", "catalog-reader", "node-operator", "sre", "usage-admin")


def render(*args: str) -> dict[tuple[str, str], dict[str, Any]]:
    out = subprocess.run([helm(), "template", "rel", str(CHART), "-n", "ic", "--kube-version", "1.36.3", *args],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return {(d["kind"], d["metadata"]["name"]): d for d in yaml.safe_load_all(out.stdout) if d}


def rules_of(docs: dict[tuple[str, str], dict[str, Any]], kind: str, name: str) -> list[dict[str, Any]]:
    return docs[(kind, name)]["rules"]  # type: ignore[no-any-return]


def grants(rules: list[dict[str, Any]], resource: str, verb: str) -> bool:
    return any(resource in r["resources"] and verb in r["verbs"] for r in rules)


def test_people_roles_have_no_wildcards_and_no_secrets() -> None:
    docs = render("--set", "rbac.sreGroup=sre")
    people = [d for (kind, name), d in docs.items() if kind in ("ClusterRole", "Role") and name.startswith("rel-")]
    assert sorted(d["metadata"]["name"] for d in people if d["kind"] == "ClusterRole") == [f"rel-{r}" for r in
                                                                                           sorted(ROLES)]
    for role in people:
        for rule in role["rules"]:
            for field in ("apiGroups", "resources", "verbs"):
                assert "*" not in rule.get(field, []), f"{role['metadata']['name']}: wildcard in {field}"
            assert "secrets" not in rule["resources"], role["metadata"]["name"]
            assert not {"escalate", "bind", "impersonate"} & set(rule["verbs"]), role["metadata"]["name"]


def test_tenants_get_jobs_through_the_built_in_roles_and_read_the_catalogue() -> None:
    docs = render()
    tenant = docs[("ClusterRole", "rel-tenant")]
    labels = tenant["metadata"]["labels"]
    assert labels["rbac.authorization.k8s.io/aggregate-to-edit"] == "true"
    assert labels["rbac.authorization.k8s.io/aggregate-to-admin"] == "true"
    for verb in ("create", "get", "list", "watch", "update", "patch", "delete"):
        assert grants(tenant["rules"], "computejobs", verb)
    assert grants(tenant["rules"], "computejobs/status", "get")
    assert not grants(tenant["rules"], "computejobs/status", "patch"), "status is the operator's"
    assert all(r["resources"][0].startswith("computejobs") for r in tenant["rules"])
    view = docs[("ClusterRole", "rel-tenant-view")]
    assert view["metadata"]["labels"]["rbac.authorization.k8s.io/aggregate-to-view"] == "true"
    assert {v for r in view["rules"] for v in r["verbs"]} == {"get", "list", "watch"}
    catalogue = rules_of(docs, "ClusterRole", "rel-catalog-reader")
    assert {v for r in catalogue for v in r["verbs"]} == {"get", "list", "watch"}
    assert grants(catalogue, "computeoffers", "list") and grants(catalogue, "computenodes", "get")
    assert not grants(catalogue, "computejobs", "list"), "other tenants' jobs are not in the catalogue"
    for role in ("rel-tenant", "rel-tenant-view", "rel-catalog-reader", "rel-node-operator"):
        rules = rules_of(docs, "ClusterRole", role)
        assert not any("computeusages" in r["resources"] for r in rules), f"{role}: other tenants' bills"
    binding = docs[("ClusterRoleBinding", "rel-catalog-reader")]
    assert binding["subjects"] == [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group",
                                    "name": "system:authenticated"}]
    assert ("ClusterRoleBinding", "rel-catalog-reader") not in render("--set", "rbac.tenantsGroup=")


def test_node_operators_manage_offers_and_the_policy_binds_them_to_their_node() -> None:
    docs = render()
    rules = rules_of(docs, "ClusterRole", "rel-node-operator")
    for verb in ("create", "update", "patch", "delete", "get", "list", "watch"):
        assert grants(rules, "computeoffers", verb)
    assert grants(rules, "computenodes", "get") and not grants(rules, "computenodes", "update")
    assert not grants(rules, "computeoffers/status", "patch")
    assert ("ClusterRoleBinding", "rel-node-operator") not in docs, "bound only when a group is given"
    policy = docs[("ValidatingAdmissionPolicy", "rel-offers-by-node")]["spec"]
    [match] = policy["matchConstraints"]["resourceRules"]
    assert match["resources"] == ["computeoffers"] and set(match["operations"]) == {"CREATE", "UPDATE", "DELETE"}
    exempt, registration = policy["matchConditions"]
    assert '"system:serviceaccount:ic:interconnect-hub"' in exempt["expression"]
    # Registration credentials are held to their node by the join policy (test_chart_join.py).
    assert "system:serviceaccount:ic:interconnect-join-" in registration["expression"]
    assert '["system:masters"]' in exempt["expression"]
    assert "'interconnect:node-operators:' + variables.node" in str(policy["variables"])
    assert "only members of group interconnect:node-operators:" in policy["validations"][0]["messageExpression"]
    assert policy["failurePolicy"] == "Fail"
    binding = docs[("ValidatingAdmissionPolicyBinding", "rel-offers-by-node")]["spec"]
    assert binding == {"policyName": "rel-offers-by-node", "validationActions": ["Deny"]}
    off = render("--set", "rbac.nodeOperators.offersByNode=false", "--set", "rbac.nodeOperators.group=ops")
    assert not any(kind.startswith("ValidatingAdmissionPolicy") and "offers-by-node" in name for kind, name in off)
    assert off[("ClusterRoleBinding", "rel-node-operator")]["subjects"][0]["name"] == "ops"
    custom = render("--set", "rbac.nodeOperators.groupPrefix=corp:gpu:",
                    "--set-json", 'rbac.nodeOperators.adminGroups=["corp:admins"]')
    spec = custom[("ValidatingAdmissionPolicy", "rel-offers-by-node")]["spec"]
    assert '["corp:admins"]' in spec["matchConditions"][0]["expression"]
    assert "'corp:gpu:' + variables.node" in str(spec["variables"])


def test_the_offers_policy_checks_the_old_and_the_new_node() -> None:
    spec = render()[("ValidatingAdmissionPolicy", "rel-offers-by-node")]["spec"]
    variables = {v["name"]: " ".join(v["expression"].split()) for v in spec["variables"]}
    # DELETE: object is null, the node is the old object's; UPDATE: both the old and the new node.
    assert variables["node"].startswith("request.operation == 'DELETE' ? oldObject.spec.nodeRef :")
    assert "object.spec.nodeRef" in variables["node"].partition(":")[2]
    assert variables["oldNode"].startswith("request.operation == 'UPDATE' ?")
    assert "oldObject.spec.nodeRef" in variables["oldNode"]
    assert "variables.oldNode" in variables["mayOld"] and "variables.node" in variables["mayNew"]
    [rule] = spec["validations"]
    assert rule["expression"] == "variables.mayOld && variables.mayNew"
    assert "may not move to node" in rule["messageExpression"]


def test_sre_reads_everything_and_the_operator_namespace_without_secrets() -> None:
    docs = render()
    rules = rules_of(docs, "ClusterRole", "rel-sre")
    assert {v for r in rules for v in r["verbs"]} == {"get", "list", "watch"}
    for resource in ("computenodes", "computeoffers", "computejobs", "computequotas", "computeusages", "events"):
        assert grants(rules, resource, "list"), resource
    local = docs[("Role", "rel-sre")]
    assert local["metadata"]["namespace"] == "ic"
    assert grants(local["rules"], "pods/log", "get") and grants(local["rules"], "deployments", "list")
    assert {v for r in local["rules"] for v in r["verbs"]} == {"get", "list", "watch"}
    assert ("ClusterRoleBinding", "rel-sre") not in docs
    bound = render("--set", "rbac.sreGroup=sre")
    assert bound[("RoleBinding", "rel-sre")]["metadata"]["namespace"] == "ic"
    assert bound[("ClusterRoleBinding", "rel-sre")]["subjects"][0]["name"] == "sre"


def test_people_roles_can_be_left_out_and_bad_values_are_refused() -> None:
    docs = render("--set", "rbac.peopleRoles=false")
    assert not any(name.startswith("rel-") for _, name in docs)
    bad = subprocess.run([helm(), "template", "rel", str(CHART), "--kube-version", "1.36.3",
                          "--set", "rbac.nodeOperators.groupPrefix=it's"], capture_output=True, text=True)
    assert bad.returncode != 0 and "groupPrefix" in bad.stderr, bad.stderr


def test_the_bill_is_created_by_the_operator_only_and_deleted_by_hub_admins_only() -> None:
    docs = render("--set", "rbac.sreGroup=sre")
    operator = rules_of(docs, "ClusterRole", "interconnect-hub-ic")
    for verb in ("create", "get", "list", "watch"):
        assert grants(operator, "computeusages", verb), verb
    for verb in ("update", "patch", "delete", "deletecollection"):
        assert not grants(operator, "computeusages", verb), f"the operator never {verb}s a record"
    assert not grants(operator, "computeusages/status", "patch")
    admin = docs[("ClusterRole", "rel-usage-admin")]
    assert admin["metadata"]["labels"]["rbac.authorization.k8s.io/aggregate-to-admin"] == "true"
    assert not {k for k in admin["metadata"]["labels"] if k.endswith(("aggregate-to-edit", "aggregate-to-view"))}
    assert [r["resources"] for r in admin["rules"]] == [["computeusages"]]
    assert {v for r in admin["rules"] for v in r["verbs"]} == {"get", "list", "watch", "delete", "deletecollection"}
    # Nobody but the operator creates or changes a record.
    people = [d for (kind, name), d in docs.items() if kind in ("ClusterRole", "Role") and name.startswith("rel-")]
    for role in people:
        for verb in ("create", "update", "patch"):
            assert not grants(role["rules"], "computeusages", verb), (role["metadata"]["name"], verb)
    sre = rules_of(docs, "ClusterRole", "rel-sre")
    assert grants(sre, "computeusages", "list") and not grants(sre, "computeusages", "delete")

"""The hub chart's self-service join: what a registration credential is bound to, and the policy
that holds it to its node (its behaviour on a real API server: tests/e2e/test_join.py)."""

from __future__ import annotations

from tests.unit.charts.test_chart_credentials import render


def test_a_registration_credential_reads_no_secret_and_lists_nothing() -> None:
    docs = render("interconnect-hub", "-n", "hub-ns")
    cluster = docs[("ClusterRole", "", "interconnect-join-hub-ns")]
    granted = {(r["resources"][0], v) for r in cluster["rules"] for v in r["verbs"]}
    assert granted == {("computenodes", "get"), ("computenodes", "create"), ("computenodes", "update"),
                       ("computeoffers", "get"), ("computeoffers", "create"), ("computeoffers", "update"),
                       ("computeoffers", "delete")}
    [secrets] = docs[("Role", "hub-ns", "interconnect-join")]["rules"]
    assert secrets["resources"] == ["secrets"] and sorted(secrets["verbs"]) == ["create", "update"]


def test_the_policy_derives_the_node_from_the_account_name_and_checks_every_name() -> None:
    docs = render("interconnect-hub", "-n", "hub-ns")
    policy = docs[("ValidatingAdmissionPolicy", "", "interconnect-join-hub-ns")]["spec"]
    [condition] = policy["matchConditions"]
    assert "system:serviceaccount:hub-ns:interconnect-join-" in condition["expression"]
    rules = " ".join(v["expression"] for v in policy["validations"])
    for checked in ("metadata.name == variables.node", "secretRef.name == variables.secret",
                    "spec.nodeRef == variables.node", "oldObject.spec.nodeRef == variables.node"):
        assert checked in rules
    binding = docs[("ValidatingAdmissionPolicyBinding", "", "interconnect-join-hub-ns")]["spec"]
    assert binding == {"policyName": "interconnect-join-hub-ns", "validationActions": ["Deny"]}
    # The node operators' offer policy leaves registration credentials to this one.
    offers = docs[("ValidatingAdmissionPolicy", "", "rel-offers-by-node")]["spec"]
    assert any("interconnect-join-" in c["expression"] for c in offers["matchConditions"])


def test_join_can_be_left_out() -> None:
    docs = render("interconnect-hub", "-n", "hub-ns", "--set", "join.enabled=false")
    assert not any(name.startswith("interconnect-join") for _, _, name in docs)

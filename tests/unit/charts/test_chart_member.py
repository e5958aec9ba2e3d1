"""The member chart's isolation of the dispatch namespace (templates/networkpolicy.yaml and
templates/limits.yaml), rendered with helm template: a default-deny NetworkPolicy whose only egress
is DNS and the internet minus the cluster's own ranges and the metadata address, the LimitRange's
defaults and maximums, the optional ResourceQuota, and bad values refused. The objects on a real API
server are in tests/e2e/test_charts.py (the test bed has no network plugin: nothing enforces them)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import yaml

from tests.unit.generate.test_alerts import helm

CHART = Path(__file__).resolve().parents[3] / "charts" / "interconnect-member"
METADATA = "169.254.169.254/32"


def template(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([helm(), "template", "rel", str(CHART), "-n", "default", "--kube-version", "1.36.3",
                           *args], capture_output=True, text=True)


def render(*args: str) -> dict[tuple[str, str], dict[str, Any]]:
    out = template(*args)
    assert out.returncode == 0, out.stderr
    return {(d["kind"], d["metadata"]["name"]): d for d in yaml.safe_load_all(out.stdout) if d}


def policy_of(docs: dict[tuple[str, str], dict[str, Any]]) -> dict[str, Any]:
    return docs[("NetworkPolicy", "interconnect-dispatch")]


def except_of(policy: dict[str, Any]) -> list[str]:
    [internet] = [r for r in policy["spec"]["egress"] if any("ipBlock" in peer for peer in r["to"])]
    [peer] = internet["to"]
    assert peer["ipBlock"]["cidr"] == "0.0.0.0/0"
    assert "ports" not in internet, "any port on the internet"
    return peer["ipBlock"]["except"]  # type: ignore[no-any-return]


def test_the_network_policy_denies_all_ingress_and_allows_only_dns_and_the_internet() -> None:
    policy = policy_of(render("--set", "dispatchNamespace=jobs-here"))
    assert policy["metadata"]["namespace"] == "jobs-here"
    spec = policy["spec"]
    assert spec["podSelector"] == {}, "every pod in the namespace"
    assert sorted(spec["policyTypes"]) == ["Egress", "Ingress"]
    assert not spec.get("ingress"), "no ingress rule: nothing may connect to a dispatched pod"
    dns, _internet = spec["egress"]
    assert dns["to"] == [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
                          "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}}]
    assert sorted((p["protocol"], p["port"]) for p in dns["ports"]) == [("TCP", 53), ("UDP", 53)]
    # The defaults: kubeadm's pod and Service ranges, and the metadata address; helm template cannot
    # look up the API server (install and upgrade do), so only what the values name.
    assert except_of(policy) == ["10.244.0.0/16", "10.96.0.0/12", METADATA]


def test_the_egress_except_list_holds_the_values_ranges_and_the_metadata_address() -> None:
    policy = policy_of(render(
        "--set-json", 'networkPolicy.podCIDRs=["10.42.0.0/16","100.64.0.0/14"]',
        "--set-json", 'networkPolicy.serviceCIDRs=["10.43.0.0/16"]',
        "--set-json", 'networkPolicy.apiServerCIDRs=["172.18.0.2/32","10.42.0.0/16"]',
        "--set-json", 'networkPolicy.extraExcept=["192.168.0.0/16"]',
        "--set-json", 'networkPolicy.dns={"namespace":"dns-system","podLabels":{"app":"coredns"}}'))
    excepted = except_of(policy)
    assert excepted == ["10.42.0.0/16", "100.64.0.0/14", "10.43.0.0/16", "172.18.0.2/32", "192.168.0.0/16",
                        METADATA], "each range once, the metadata address last"
    assert "10.244.0.0/16" not in excepted, "the values replace the defaults"
    assert not policy["spec"].get("ingress")
    dns = policy["spec"]["egress"][0]["to"][0]
    assert dns["namespaceSelector"]["matchLabels"] == {"kubernetes.io/metadata.name": "dns-system"}
    assert dns["podSelector"]["matchLabels"] == {"app": "coredns"}


def test_the_network_policy_can_be_left_out() -> None:
    docs = render("--set", "networkPolicy.enabled=false")
    assert not any(kind == "NetworkPolicy" for kind, _ in docs)
    assert ("Namespace", "interconnect-jobs") in docs


def test_the_limit_range_has_defaults_and_a_maximum_per_container() -> None:
    docs = render("--set", "dispatchNamespace=jobs-here")
    limits = docs[("LimitRange", "interconnect-dispatch")]
    assert limits["metadata"]["namespace"] == "jobs-here"
    [item] = limits["spec"]["limits"]
    assert item["type"] == "Container"
    assert item["max"] == {"cpu": "128", "memory": "1Ti", "ephemeral-storage": "1Ti"}
    assert item["default"] == {"cpu": "1", "memory": "2Gi", "ephemeral-storage": "20Gi"}
    assert item["defaultRequest"] == {"cpu": "1", "memory": "2Gi", "ephemeral-storage": "0"}
    # A resource with a max but no default would get the max as its default limit and request.
    assert set(item["max"]) <= set(item["default"]) and set(item["max"]) <= set(item["defaultRequest"])
    custom = render("--set", "limitRange.max.cpu=16", "--set", "limitRange.max.memory=64Gi",
                    "--set", "limitRange.defaultEphemeralStorageRequest=1Gi")
    [item] = custom[("LimitRange", "interconnect-dispatch")]["spec"]["limits"]
    assert item["max"] == {"cpu": "16", "memory": "64Gi", "ephemeral-storage": "1Ti"}
    assert item["defaultRequest"]["ephemeral-storage"] == "1Gi"
    assert ("LimitRange", "interconnect-dispatch") not in render("--set", "limitRange.enabled=false")


def test_the_resource_quota_stays_optional_and_takes_gpu_and_pod_counts(tmp_path: Path) -> None:
    assert not any(kind == "ResourceQuota" for kind, _ in render())
    values = tmp_path / "values.yaml"
    values.write_text(json.dumps({"resourceQuota": {"enabled": True, "hard": {
        "requests.nvidia.com/gpu": 32, "pods": "200", "limits.memory": "4Ti", "count/jobs.batch": 500}}}))
    quota = render("-f", str(values))[("ResourceQuota", "interconnect-dispatch")]
    assert quota["metadata"]["namespace"] == "interconnect-jobs"
    assert quota["spec"]["hard"] == {"requests.nvidia.com/gpu": "32", "pods": "200", "limits.memory": "4Ti",
                                     "count/jobs.batch": "500"}
    empty = template("--set", "resourceQuota.enabled=true")
    assert empty.returncode != 0 and "resourceQuota.hard" in empty.stderr, empty.stderr


def test_bad_isolation_values_are_refused_with_the_field() -> None:
    for args, field in (
        (["--set-json", 'networkPolicy.podCIDRs=["10.244.0.0"]'], "/networkPolicy/podCIDRs/0"),
        (["--set-json", "networkPolicy.podCIDRs=[]"], "/networkPolicy/podCIDRs"),
        (["--set-json", 'networkPolicy.serviceCIDRs=["fd00::/108"]'], "/networkPolicy/serviceCIDRs/0"),
        (["--set-json", 'networkPolicy.apiServerCIDRs=["10.0.0.300/32"]'], "/networkPolicy/apiServerCIDRs/0"),
        (["--set", "networkPolicy.dns.namespace=Kube_System"], "/networkPolicy/dns/namespace"),
        (["--set-json", 'limitRange.max={"nvidia.com/gpu":"8"}'], "/limitRange/max"),
        (["--set", "limitRange.max.cpu=lots"], "/limitRange/max/cpu"),
        (["--set-json", 'resourceQuota.hard={"pods":"many"}'], "/resourceQuota/hard/pods"),
    ):
        out = template(*args)
        assert out.returncode != 0 and field in out.stderr, f"{args}: {out.stderr}"


def test_the_hubs_requests_get_their_own_flow_above_other_workload_clients() -> None:
    docs = render("--set", "hubServiceAccount=hub-sa", "--set", "hubNamespace=hub-ns")
    schema = docs[("FlowSchema", "interconnect-hub-hub-ns")]
    assert schema["spec"]["priorityLevelConfiguration"] == {"name": "workload-high"}
    assert schema["spec"]["matchingPrecedence"] < 9000, "before the built-in service-accounts schema"
    [rule] = schema["spec"]["rules"]
    assert rule["subjects"] == [{"kind": "ServiceAccount", "serviceAccount": {"name": "hub-sa", "namespace": "hub-ns"}}]
    assert not [k for k in render("--set", "flowControl.enabled=false") if k[0] == "FlowSchema"]

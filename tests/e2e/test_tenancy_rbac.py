"""Hub RBAC for people, with the chart's real roles on the test bed's real API servers: tenants see
only their own namespace's ComputeJobs, a node operator changes only the offers of their node
(ValidatingAdmissionPolicy), an SRE reads everything but Secrets; and a member namespace made by
the member chart enforces Pod Security Admission. Every user is impersonated (kubectl --as /
--as-group, or the client's Impersonate-* headers); the admin is the test bed's system:masters
user, which the offers policy exempts."""

from __future__ import annotations

import contextlib
import json
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from tests import testbed as tb
from tests.e2e import market as m

pytestmark = pytest.mark.e2e

CHARTS = m.REPO / "charts"
NODE_OPERATORS = "interconnect:node-operators:"


def helm(bed: tb.Testbed, cluster: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    c = bed.clusters[cluster]
    out = subprocess.run([bed.helm, "--kubeconfig", str(c.kubeconfig), "--kube-context", c.context, *args],
                         capture_output=True, text=True)
    assert not check or out.returncode == 0, f"helm {' '.join(args)}: {out.stderr}"
    return out


def can_i(bed: tb.Testbed, who: list[str], verb: str, resource: str, namespace: str | None = None,
          cluster: str = "hub") -> str:
    scope = ["-n", namespace] if namespace else ["--all-namespaces"]
    resource, _, sub = resource.partition("/")   # for kubectl, resource/x names an object x
    subresource = ["--subresource", sub] if sub else []
    out = subprocess.run(bed.kubectl_cmd(cluster, "auth", "can-i", verb, resource, *subresource, *who, *scope),
                         capture_output=True, text=True)
    return out.stdout.strip()


def impersonating(bed: tb.Testbed, user: str, group: str | None = None) -> client.ApiClient:
    """A hub client acting as ``user`` (the API server adds system:authenticated)."""
    api = bed.hub.api()
    api.set_default_header("Impersonate-User", user)
    if group:
        api.set_default_header("Impersonate-Group", group)
    return api


def forbidden(call: Any, *args: Any, **kwargs: Any) -> str:
    with pytest.raises(ApiException) as caught:
        call(*args, **kwargs)
    assert caught.value.status == 403, caught.value
    return str(json.loads(caught.value.body)["message"])


def offer(name: str, node: str, cards: int = 1) -> dict[str, Any]:
    """An offer nobody can buy (valid from 2099, and dearer than any job's cap), never placed."""
    return {"apiVersion": f"{m.GROUP}/{m.VERSION}", "kind": "ComputeOffer", "metadata": {"name": name},
            "spec": {"nodeRef": node, "gpuModel": m.A100, "gpuMemoryGiB": 80, "cards": cards,
                     "price": {"amount": "99999.00", "currency": "CNY", "unit": "card-hour"},
                     "validFrom": "2099-01-01T00:00:00Z"}}


@dataclass
class Hub:
    release: str
    namespace: str
    suffix: str
    sre_group: str


@pytest.fixture(scope="module")
def hub_release(testbed: tb.Testbed) -> Iterator[Hub]:
    """The hub chart under its own release and namespace, without the operator (the CRDs are the
    session's: crds.install=false), its SRE roles bound to a group of this test."""
    hub = testbed.api("hub")
    try:
        client.ApiextensionsV1Api(hub).read_custom_resource_definition("computeoffers.interconnect.dev")
    except ApiException:
        m.install_crds(testbed)
    # The chart's post-install hook creates kopf's ClusterKopfPeering: its CRD must exist too (another
    # test may not have installed it yet).
    peering = CHARTS / "interconnect-hub" / "files" / "crds" / "clusterkopfpeerings.kopf.dev.yaml"
    subprocess.run(testbed.kubectl_cmd("hub", "apply", "--server-side", "--force-conflicts", "-f", str(peering)),
                   check=True, capture_output=True)
    subprocess.run(testbed.kubectl_cmd("hub", "wait", "--for=condition=Established", "--timeout=60s",
                                       "crd/clusterkopfpeerings.kopf.dev"), check=True, capture_output=True)
    suffix = uuid.uuid4().hex[:6]
    h = Hub(release=f"rbac-{suffix}", namespace=f"ic-rbac-{suffix}", suffix=suffix, sre_group=f"sre-{suffix}")
    helm(testbed, "hub", "install", h.release, str(CHARTS / "interconnect-hub"), "-n", h.namespace,
         "--create-namespace", "--set", "crds.install=false", "--set", "deployOperator=false", "--set",
         f"rbac.sreGroup={h.sre_group}")
    try:
        yield h
    finally:
        helm(testbed, "hub", "uninstall", h.release, "-n", h.namespace, "--wait", check=False)
        with contextlib.suppress(ApiException):
            client.CoreV1Api(hub).delete_namespace(h.namespace)


def test_a_tenant_manages_jobs_in_its_namespace_only_and_reads_the_catalogue(
    testbed: tb.Testbed, hub_release: Hub
) -> None:
    hub = testbed.api("hub")
    core, rbac = client.CoreV1Api(hub), client.RbacAuthorizationV1Api(hub)
    a, b = f"tenant-a-{hub_release.suffix}", f"tenant-b-{hub_release.suffix}"
    alice, bob = impersonating(testbed, "alice"), impersonating(testbed, "bob")
    try:
        # Each tenant edits its own namespace through the built-in edit role, nothing else.
        for ns, user in ((a, "alice"), (b, "bob")):
            m.ensure_namespace(hub, ns)
            rbac.create_namespaced_role_binding(ns, client.V1RoleBinding(
                metadata=client.V1ObjectMeta(name=f"{user}-edit"),
                role_ref=client.V1RoleRef(api_group="rbac.authorization.k8s.io", kind="ClusterRole", name="edit"),
                subjects=[client.RbacV1Subject(api_group="rbac.authorization.k8s.io", kind="User", name=user)]))
        # The aggregation controller copies the chart's tenant rules into edit.
        m.wait_for(lambda: can_i(testbed, ["--as", "alice"], "create", "computejobs.interconnect.dev", a) == "yes",
                   60, "edit to aggregate the tenant role")
        as_alice = ["--as", "alice"]
        for verb, resource, ns, allowed in (
            ("create", "computejobs.interconnect.dev", a, "yes"),
            ("delete", "computejobs.interconnect.dev", a, "yes"),
            ("get", "computejobs.interconnect.dev", a, "yes"),
            ("create", "computejobs.interconnect.dev", b, "no"),
            ("list", "computejobs.interconnect.dev", b, "no"),
            ("get", "computejobs.interconnect.dev", b, "no"),
            ("list", "computejobs.interconnect.dev", None, "no"),
            ("patch", "computejobs.interconnect.dev/status", a, "no"),
            ("get", "computeoffers.interconnect.dev", None, "yes"),
            ("list", "computenodes.interconnect.dev", None, "yes"),
            ("patch", "computeoffers.interconnect.dev", None, "no"),
            ("create", "computenodes.interconnect.dev", None, "no"),
            ("list", "computequotas.interconnect.dev", None, "no"),
            ("list", "computeusages.interconnect.dev", None, "no"),
            ("get", "computeusages.interconnect.dev", None, "no"),
        ):
            assert can_i(testbed, as_alice, verb, resource, ns) == allowed, f"can alice {verb} {resource} in {ns}?"

        # Real requests. Bob's job may be placed nowhere (a node that does not exist): it waits.
        job = m.job_manifest("bobs-job", b, gpus=1, origin="CN-GZ", tier="20ms", max_price="1",
                             placement={"allowedNodes": [f"nowhere-{hub_release.suffix}"]})
        bobs = m.custom(bob)
        bobs.create_namespaced_custom_object(m.GROUP, m.VERSION, b, "computejobs", job)
        assert [j["metadata"]["name"] for j in bobs.list_namespaced_custom_object(
            m.GROUP, m.VERSION, b, "computejobs")["items"]] == ["bobs-job"]
        alices = m.custom(alice)
        message = forbidden(alices.list_namespaced_custom_object, m.GROUP, m.VERSION, b, "computejobs")
        assert 'User "alice" cannot list resource "computejobs"' in message and b in message, message
        forbidden(alices.get_namespaced_custom_object, m.GROUP, m.VERSION, b, "computejobs", "bobs-job")
        forbidden(alices.get_namespaced_custom_object_status, m.GROUP, m.VERSION, b, "computejobs", "bobs-job")
        forbidden(alices.list_cluster_custom_object, m.GROUP, m.VERSION, "computejobs")
        forbidden(alices.patch_namespaced_custom_object, m.GROUP, m.VERSION, b, "computejobs", "bobs-job",
                  {"metadata": {"labels": {"by": "alice"}}})
        forbidden(alices.delete_namespaced_custom_object, m.GROUP, m.VERSION, b, "computejobs", "bobs-job")
        forbidden(alices.create_namespaced_custom_object, m.GROUP, m.VERSION, b, "computejobs",
                  m.job_manifest("into-b", b, gpus=1, origin="CN-GZ", tier="20ms", max_price="1"), dry_run="All")
        # ... while in her own namespace she may (dry run: the job is admitted, and not kept).
        own = m.job_manifest("alices-job", a, gpus=1, origin="CN-GZ", tier="20ms", max_price="1")
        created = alices.create_namespaced_custom_object(m.GROUP, m.VERSION, a, "computejobs", own, dry_run="All")
        assert created["metadata"]["namespace"] == a
        assert alices.list_namespaced_custom_object(m.GROUP, m.VERSION, a, "computejobs")["items"] == []
        # The catalogue: offers and nodes, read-only.
        alices.list_cluster_custom_object(m.GROUP, m.VERSION, "computeoffers")
        alices.list_cluster_custom_object(m.GROUP, m.VERSION, "computenodes")
        forbidden(alices.create_cluster_custom_object, m.GROUP, m.VERSION, "computeoffers",
                  offer(f"alices-{hub_release.suffix}", "gz-regional"), dry_run="All")
        # kubectl, as a tenant would see it.
        out = subprocess.run(testbed.kubectl_cmd("hub", "get", "computejobs", "-n", b, "--as", "alice"),
                             capture_output=True, text=True)
        assert out.returncode != 0 and "Forbidden" in out.stderr and "alice" in out.stderr, out.stderr
        bobs.delete_namespaced_custom_object(m.GROUP, m.VERSION, b, "computejobs", "bobs-job")
    finally:
        alice.close()
        bob.close()
        for ns in (a, b):
            with contextlib.suppress(ApiException):
                core.delete_namespace(ns)


def test_a_node_operator_changes_only_the_offers_of_their_node(testbed: tb.Testbed, hub_release: Hub) -> None:
    hub = testbed.api("hub")
    rbac = client.RbacAuthorizationV1Api(hub)
    admin = m.custom(hub)
    sfx = hub_release.suffix
    own, foreign, created = f"rbac-{sfx}-gz", f"rbac-{sfx}-sh", f"rbac-{sfx}-gz-new"
    binding = f"rbac-{sfx}-carol"
    gz_group = NODE_OPERATORS + "gz-regional"
    carol = impersonating(testbed, "carol", gz_group)
    carol_alone = impersonating(testbed, "carol")
    mine: list[str] = []
    try:
        rbac.create_cluster_role_binding(client.V1ClusterRoleBinding(
            metadata=client.V1ObjectMeta(name=binding),
            role_ref=client.V1RoleRef(api_group="rbac.authorization.k8s.io", kind="ClusterRole",
                                      name=f"{hub_release.release}-node-operator"),
            subjects=[client.RbacV1Subject(api_group="rbac.authorization.k8s.io", kind="User", name="carol")]))
        # The admin (system:masters) is exempt from the policy: the offers are created as the market's are.
        for name, node in ((own, "gz-regional"), (foreign, "sh-finance")):
            admin.create_cluster_custom_object(m.GROUP, m.VERSION, "computeoffers", offer(name, node))
            mine.append(name)
        as_carol = ["--as", "carol", "--as-group", gz_group]
        for verb, resource, allowed in (
            ("patch", "computeoffers.interconnect.dev", "yes"),   # RBAC says yes; the policy decides per node
            ("create", "computeoffers.interconnect.dev", "yes"),
            ("delete", "computeoffers.interconnect.dev", "yes"),
            ("patch", "computeoffers.interconnect.dev/status", "no"),
            ("list", "computenodes.interconnect.dev", "yes"),
            ("patch", "computenodes.interconnect.dev", "no"),
            ("list", "computejobs.interconnect.dev", "no"),
            ("get", "secrets", "no"),
        ):
            assert can_i(testbed, as_carol, verb, resource) == allowed, f"can carol {verb} {resource}?"
        carols = m.custom(carol)
        patch = {"spec": {"cards": 2}}
        expected = (f"ComputeOffer {foreign} belongs to node sh-finance: only members of group "
                    f"{NODE_OPERATORS}sh-finance may change it")

        # The policy is loaded asynchronously: wait for it to deny (dry run: nothing changes meanwhile).
        def denied() -> bool:
            try:
                carols.patch_cluster_custom_object(m.GROUP, m.VERSION, "computeoffers", foreign, patch,
                                                   dry_run="All")
            except ApiException as exc:
                assert exc.status == 403, exc
                return True
            return False

        m.wait_for(denied, 60, "the offers-by-node policy to be in force")
        # Her node's offer: yes.
        patched = carols.patch_cluster_custom_object(m.GROUP, m.VERSION, "computeoffers", own, patch)
        assert patched["spec"]["cards"] == 2
        # Another node's offer: no, and the message names the node and the group needed.
        message = forbidden(carols.patch_cluster_custom_object, m.GROUP, m.VERSION, "computeoffers", foreign, patch)
        assert expected in message, message
        assert admin.get_cluster_custom_object(m.GROUP, m.VERSION, "computeoffers", foreign)["spec"]["cards"] == 1
        message = forbidden(carols.delete_cluster_custom_object, m.GROUP, m.VERSION, "computeoffers", foreign)
        assert expected in message, message
        # Creating an offer for another node: no; for her own: yes, and she may delete it.
        message = forbidden(carols.create_cluster_custom_object, m.GROUP, m.VERSION, "computeoffers",
                            offer(f"rbac-{sfx}-bj", "bj-regional"))
        assert (f"ComputeOffer rbac-{sfx}-bj belongs to node bj-regional: only members of group "
                f"{NODE_OPERATORS}bj-regional may change it") in message, message
        carols.create_cluster_custom_object(m.GROUP, m.VERSION, "computeoffers", offer(created, "gz-regional"))
        mine.append(created)
        carols.delete_cluster_custom_object(m.GROUP, m.VERSION, "computeoffers", created)
        # Without her node's group, not even her node's offers.
        message = forbidden(m.custom(carol_alone).patch_cluster_custom_object, m.GROUP, m.VERSION, "computeoffers",
                            own, patch)
        assert f"only members of group {NODE_OPERATORS}gz-regional may change it" in message, message
        # kubectl shows the same.
        out = subprocess.run(testbed.kubectl_cmd("hub", "patch", "computeoffer", foreign, "--type=merge", "-p",
                                                 json.dumps(patch), *as_carol), capture_output=True, text=True)
        assert out.returncode != 0 and expected in out.stderr, out.stderr
    finally:
        carol.close()
        carol_alone.close()
        for name in mine:
            with contextlib.suppress(ApiException):
                admin.delete_cluster_custom_object(m.GROUP, m.VERSION, "computeoffers", name)
        with contextlib.suppress(ApiException):
            rbac.delete_cluster_role_binding(binding)


def bind_node_operator(hub: client.ApiClient, name: str, role: str, user: str) -> None:
    client.RbacAuthorizationV1Api(hub).create_cluster_role_binding(client.V1ClusterRoleBinding(
        metadata=client.V1ObjectMeta(name=name),
        role_ref=client.V1RoleRef(api_group="rbac.authorization.k8s.io", kind="ClusterRole", name=role),
        subjects=[client.RbacV1Subject(api_group="rbac.authorization.k8s.io", kind="User", name=user)]))


def wait_until_denied(objects: client.CustomObjectsApi, group: str, plural: str, name: str) -> None:
    """The policy is loaded asynchronously: wait for it to deny a change of ``name`` (dry run)."""

    def denied() -> bool:
        try:
            objects.patch_cluster_custom_object(group, m.VERSION, plural, name, {"metadata": {"labels": {"x": "y"}}},
                                                dry_run="All")
        except ApiException as exc:
            assert exc.status == 403, exc
            return True
        return False

    m.wait_for(denied, 60, "the offers-by-node policy to be in force")


def refused(call: Any, *args: Any, **kwargs: Any) -> tuple[int, str]:
    with pytest.raises(ApiException) as caught:
        call(*args, **kwargs)
    return caught.value.status, str(json.loads(caught.value.body)["message"])


def test_a_node_operator_can_neither_move_offers_between_nodes_nor_delete_another_nodes(
    testbed: tb.Testbed, hub_release: Hub
) -> None:
    """UPDATE checks the old and the new spec.nodeRef, DELETE the old one (object is null then).
    On the real CRD a move is refused first by its own rule (nodeRef is immutable, 422, before any
    admission policy runs); the chart's policy itself is then put, unchanged, on a scratch resource
    whose nodeRef may change, to show that it holds on its own."""
    hub = testbed.api("hub")
    admin = m.custom(hub)
    sfx = hub_release.suffix
    gz_group, sh_group = NODE_OPERATORS + "gz-regional", NODE_OPERATORS + "sh-finance"
    own, foreign, doomed = f"move-{sfx}-gz", f"move-{sfx}-sh", f"move-{sfx}-gz-doomed"
    binding = f"move-{sfx}-carol"
    carol = impersonating(testbed, "carol", gz_group)
    carols = m.custom(carol)
    made: list[str] = []
    try:
        bind_node_operator(hub, binding, f"{hub_release.release}-node-operator", "carol")
        for name, node in ((own, "gz-regional"), (foreign, "sh-finance"), (doomed, "gz-regional")):
            admin.create_cluster_custom_object(m.GROUP, m.VERSION, "computeoffers", offer(name, node))
            made.append(name)
        wait_until_denied(carols, m.GROUP, "computeoffers", foreign)

        def node_of(name: str) -> str:
            return str(admin.get_cluster_custom_object(m.GROUP, m.VERSION, "computeoffers", name)["spec"]["nodeRef"])

        # UPDATE moving her node's offer to a node she does not operate: refused.
        status, message = refused(carols.patch_cluster_custom_object, m.GROUP, m.VERSION, "computeoffers", own,
                                  {"spec": {"nodeRef": "sh-finance"}})
        assert status == 422 and "nodeRef is immutable" in message, (status, message)
        # UPDATE moving another node's offer onto hers: refused.
        status, message = refused(carols.patch_cluster_custom_object, m.GROUP, m.VERSION, "computeoffers", foreign,
                                  {"spec": {"nodeRef": "gz-regional"}})
        assert status == 422 and "nodeRef is immutable" in message, (status, message)
        assert (node_of(own), node_of(foreign)) == ("gz-regional", "sh-finance")
        # DELETE of another node's offer: refused by the policy, which read the old object.
        message = forbidden(carols.delete_cluster_custom_object, m.GROUP, m.VERSION, "computeoffers", foreign)
        assert (f"ComputeOffer {foreign} belongs to node sh-finance: only members of group {sh_group} "
                "may change it") in message, message
        assert node_of(foreign) == "sh-finance", "still there"
        # DELETE of her own: allowed.
        carols.delete_cluster_custom_object(m.GROUP, m.VERSION, "computeoffers", doomed)
        with pytest.raises(ApiException) as caught:
            admin.get_cluster_custom_object(m.GROUP, m.VERSION, "computeoffers", doomed)
        assert caught.value.status == 404
        made.remove(doomed)
    finally:
        carol.close()
        for name in made:
            with contextlib.suppress(ApiException):
                admin.delete_cluster_custom_object(m.GROUP, m.VERSION, "computeoffers", name)
        with contextlib.suppress(ApiException):
            client.RbacAuthorizationV1Api(hub).delete_cluster_role_binding(binding)


def scratch_offers_crd(group: str) -> dict[str, Any]:
    """Cluster-scoped ComputeOffers of another group, whose spec.nodeRef may change."""
    schema = {"type": "object", "properties": {"spec": {"type": "object", "required": ["nodeRef"], "properties": {
        "nodeRef": {"type": "string", "minLength": 1}, "cards": {"type": "integer"}}}}}
    return {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": f"computeoffers.{group}"},
            "spec": {"group": group, "scope": "Cluster",
                     "names": {"plural": "computeoffers", "singular": "computeoffer", "kind": "ComputeOffer"},
                     "versions": [{"name": m.VERSION, "served": True, "storage": True,
                                   "schema": {"openAPIV3Schema": schema}}]}}


def test_the_offers_policy_itself_checks_both_nodes_of_a_move(testbed: tb.Testbed, hub_release: Hub) -> None:
    hub = testbed.api("hub")
    admin = m.custom(hub)
    sfx = hub_release.suffix
    group = f"moves-{sfx}.e2e.interconnect.dev"
    gz_group, sh_group = NODE_OPERATORS + "gz-regional", NODE_OPERATORS + "sh-finance"
    policy, role = f"{hub_release.release}-offers-by-node", f"move-{sfx}-scratch"
    clone = f"{policy}-scratch"

    def kubectl(*args: str, manifest: dict[str, Any] | None = None) -> str:
        out = subprocess.run(testbed.kubectl_cmd("hub", *args), input=json.dumps(manifest) if manifest else None,
                             capture_output=True, text=True)
        assert out.returncode == 0, f"kubectl {' '.join(args)}: {out.stderr}"
        return out.stdout

    carol = impersonating(testbed, "carol", gz_group)
    carols = m.custom(carol)
    try:
        kubectl("create", "-f", "-", manifest=scratch_offers_crd(group))
        kubectl("wait", "--for=condition=Established", "--timeout=60s", f"crd/computeoffers.{group}")
        # The chart's policy as installed, on the scratch resource instead of interconnect.dev's.
        installed = json.loads(kubectl("get", "validatingadmissionpolicy", policy, "-o", "json"))
        spec = installed["spec"]
        [rule] = spec["matchConstraints"]["resourceRules"]
        assert rule["apiGroups"] == [m.GROUP] and set(rule["operations"]) == {"CREATE", "UPDATE", "DELETE"}
        rule["apiGroups"] = [group]
        kubectl("create", "-f", "-", manifest={
            "apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicy",
            "metadata": {"name": clone}, "spec": spec})
        kubectl("create", "-f", "-", manifest={
            "apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicyBinding",
            "metadata": {"name": clone}, "spec": {"policyName": clone, "validationActions": ["Deny"]}})
        kubectl("create", "clusterrole", role, "--verb=get,create,update,patch,delete",
                f"--resource=computeoffers.{group}")
        kubectl("create", "clusterrolebinding", role, f"--clusterrole={role}", "--user=carol")
        for name, node in (("own", "gz-regional"), ("foreign", "sh-finance")):
            admin.create_cluster_custom_object(group, m.VERSION, "computeoffers", {
                "apiVersion": f"{group}/{m.VERSION}", "kind": "ComputeOffer", "metadata": {"name": name},
                "spec": {"nodeRef": node, "cards": 1}})
        wait_until_denied(carols, group, "computeoffers", "foreign")
        # Her node's offer, unmoved: allowed (dry run).
        carols.patch_cluster_custom_object(group, m.VERSION, "computeoffers", "own", {"spec": {"cards": 2}},
                                           dry_run="All")
        # From her node to one she does not operate: the new node's group is checked.
        message = forbidden(carols.patch_cluster_custom_object, group, m.VERSION, "computeoffers", "own",
                            {"spec": {"nodeRef": "sh-finance"}})
        assert (f"ComputeOffer own may not move to node sh-finance: only members of group {sh_group} "
                "may give an offer to that node") in message, message
        # From another node to hers: the old node's group is checked.
        message = forbidden(carols.patch_cluster_custom_object, group, m.VERSION, "computeoffers", "foreign",
                            {"spec": {"nodeRef": "gz-regional"}})
        assert (f"ComputeOffer foreign belongs to node sh-finance: only members of group {sh_group} "
                "may change it") in message, message
        # Deleting another node's offer: the old object's node (object is null on DELETE).
        message = forbidden(carols.delete_cluster_custom_object, group, m.VERSION, "computeoffers", "foreign")
        assert f"belongs to node sh-finance: only members of group {sh_group}" in message, message
        assert {o["spec"]["nodeRef"] for o in admin.list_cluster_custom_object(
            group, m.VERSION, "computeoffers")["items"]} == {"gz-regional", "sh-finance"}, "nothing moved"
        # Someone in both groups may move it (kubectl: two --as-group), so the policy refuses a move
        # for the missing group, not every move.
        moved = kubectl("patch", f"computeoffers.{group}", "own", "--type=merge", "-p",
                        json.dumps({"spec": {"nodeRef": "sh-finance"}}), "--dry-run=server", "-o", "json",
                        "--as", "carol", "--as-group", gz_group, "--as-group", sh_group)
        assert json.loads(moved)["spec"]["nodeRef"] == "sh-finance"
        carols.delete_cluster_custom_object(group, m.VERSION, "computeoffers", "own", dry_run="All")
    finally:
        carol.close()
        for kind, name in (("validatingadmissionpolicybinding", clone), ("validatingadmissionpolicy", clone),
                           ("clusterrolebinding", role), ("clusterrole", role), ("crd", f"computeoffers.{group}")):
            subprocess.run(testbed.kubectl_cmd("hub", "delete", kind, name, "--ignore-not-found", "--wait=false"),
                           capture_output=True)


def test_an_sre_reads_everything_but_secrets_and_the_operator_reads_only_its_own(
    testbed: tb.Testbed, hub_release: Hub
) -> None:
    ns = hub_release.namespace
    as_sre = ["--as", "dave", "--as-group", hub_release.sre_group]
    for verb, resource, where, allowed in (
        ("list", "computejobs.interconnect.dev", None, "yes"),
        ("watch", "computejobs.interconnect.dev", None, "yes"),
        ("list", "computeoffers.interconnect.dev", None, "yes"),
        ("list", "computenodes.interconnect.dev", None, "yes"),
        ("list", "computequotas.interconnect.dev", None, "yes"),
        ("list", "computeusages.interconnect.dev", None, "yes"),
        ("delete", "computeusages.interconnect.dev", None, "no"),
        ("get", "computejobs.interconnect.dev/status", "default", "yes"),
        ("list", "events", None, "yes"),
        ("list", "events.events.k8s.io", None, "yes"),
        ("list", "pods", ns, "yes"),
        ("get", "pods/log", ns, "yes"),
        ("get", "deployments.apps", ns, "yes"),
        ("list", "configmaps", ns, "yes"),
        ("get", "secrets", ns, "no"),
        ("list", "secrets", None, "no"),
        ("get", "pods/log", "kube-system", "no"),
        ("create", "computejobs.interconnect.dev", "default", "no"),
        ("patch", "computeoffers.interconnect.dev", None, "no"),
        ("delete", "computenodes.interconnect.dev", None, "no"),
        ("delete", "pods", ns, "no"),
        ("create", "pods/exec", ns, "no"),
    ):
        assert can_i(testbed, as_sre, verb, resource, where) == allowed, f"can an SRE {verb} {resource} in {where}?"
    sre = impersonating(testbed, "dave", hub_release.sre_group)
    try:
        for plural in ("computenodes", "computeoffers", "computejobs", "computequotas"):
            m.custom(sre).list_cluster_custom_object(m.GROUP, m.VERSION, plural)
        client.CoreV1Api(sre).list_event_for_all_namespaces(limit=5)
        client.CoreV1Api(sre).list_namespaced_pod(ns)
        forbidden(client.CoreV1Api(sre).list_namespaced_secret, ns)
        forbidden(client.CoreV1Api(sre).list_secret_for_all_namespaces)
    finally:
        sre.close()
    # The operator's own service account: Secrets in its namespace (get, not list), nowhere else.
    operator = ["--as", f"system:serviceaccount:{ns}:interconnect-hub"]
    for verb, resource, where, allowed in (
        ("get", "secrets", ns, "yes"), ("list", "secrets", ns, "no"), ("get", "secrets", "default", "no"),
        ("get", "secrets", "kube-system", "no"), ("list", "secrets", None, "no"),
        ("patch", "computejobs.interconnect.dev/status", "default", "yes"),
        ("create", "computeusages.interconnect.dev", None, "yes"),
        ("patch", "computeusages.interconnect.dev", None, "no"),
        ("delete", "computeusages.interconnect.dev", None, "no"),
    ):
        assert can_i(testbed, operator, verb, resource, where) == allowed, f"can the operator {verb} {resource}?"


PRIVILEGED = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "privileged"},
              "spec": {"containers": [{"name": "c", "image": "registry.example/train:1",
                                       "securityContext": {"privileged": True}}]}}
ROOTISH = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "rootish"},   # baseline, not restricted
           "spec": {"containers": [{"name": "c", "image": "registry.example/train:1"}]}}
RESTRICTED = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "restricted"},
              "spec": {"securityContext": {"runAsNonRoot": True, "runAsUser": 1000,
                                           "seccompProfile": {"type": "RuntimeDefault"}},
                       "containers": [{"name": "c", "image": "registry.example/train:1",
                                       "securityContext": {"allowPrivilegeEscalation": False,
                                                           "capabilities": {"drop": ["ALL"]}}}]}}


def test_a_member_namespace_made_by_the_chart_enforces_pod_security(testbed: tb.Testbed) -> None:
    member = "member-3"
    sfx = uuid.uuid4().hex[:6]
    release, ns = f"psa-{sfx}", f"ic-psa-{sfx}"
    core = client.CoreV1Api(testbed.api(member))

    def refused(pod: dict[str, Any]) -> str:
        with pytest.raises(ApiException) as caught:
            core.create_namespaced_pod(ns, pod)   # a real request, by the admin (system:masters)
        assert caught.value.status == 403, caught.value
        return str(json.loads(caught.value.body)["message"])

    helm(testbed, member, "install", release, str(CHARTS / "interconnect-member"), "-n", "default",
         "--set", f"dispatchNamespace={ns}")
    try:
        labels = core.read_namespace(ns).metadata.labels
        assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
        message = refused(PRIVILEGED)
        assert 'violates PodSecurity "restricted:latest"' in message and "privileged" in message, message
        message = refused(ROOTISH)
        assert 'violates PodSecurity "restricted:latest"' in message, message
        core.create_namespaced_pod(ns, RESTRICTED, dry_run="All")   # a compliant pod is admitted
        helm(testbed, member, "upgrade", release, str(CHARTS / "interconnect-member"), "-n", "default",
             "--set", f"dispatchNamespace={ns}", "--set", "podSecurity=baseline")
        assert core.read_namespace(ns).metadata.labels["pod-security.kubernetes.io/enforce"] == "baseline"
        message = refused(PRIVILEGED)
        assert 'violates PodSecurity "baseline:latest"' in message and "privileged" in message, message
        core.create_namespaced_pod(ns, ROOTISH, dry_run="All")   # baseline lets this one in
        assert core.list_namespaced_pod(ns).items == [], "nothing was created"
    finally:
        helm(testbed, member, "uninstall", release, "-n", "default", "--wait", check=False)

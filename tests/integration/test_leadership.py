"""The leader Lease on the hub's real API server: one leader at a time, the old one stops before
the new one starts, and the API server itself refuses an older epoch's status write."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator

import pytest
from kubernetes.client import CoreV1Api
from kubernetes_asyncio import client as aclient
from kubernetes_asyncio.client.exceptions import ApiException
from kubernetes_asyncio.config import new_client_from_config

from interconnect.adapters.hub import Hub, direct
from interconnect.adapters.member import ATTEMPT, JOB_UID, MANAGED_BY, MANAGED_BY_VALUE, MemberCluster
from interconnect.core.leadership import NotLeader
from interconnect.core.vocabulary import GROUP, VERSION
from interconnect.services.leadership import Leadership
from tests import testbed as tb
from tests.e2e import market as m
from tests.integration.bad_manifests import job

pytestmark = pytest.mark.integration

LEASE = 3


@pytest.fixture
async def hub(testbed: tb.Testbed) -> AsyncIterator[tuple[Hub, str]]:
    m.install_crds(testbed)
    api = direct(await new_client_from_config(config_file=str(testbed.hub.kubeconfig)))
    namespace = f"lead-{uuid.uuid4().hex[:6]}"
    await aclient.CoreV1Api(api).create_namespace({"metadata": {"name": namespace}})
    try:
        yield Hub(api), namespace
    finally:
        await aclient.CoreV1Api(api).delete_namespace(namespace)
        await api.close()


async def test_one_leader_at_a_time_and_the_old_one_stops_before_the_new_one_starts(hub: tuple[Hub, str]) -> None:
    api, namespace = hub
    a = Leadership(api, namespace, "replica-a", lease_seconds=LEASE)
    b = Leadership(api, namespace, "replica-b", lease_seconds=LEASE)
    assert await a.step(True)
    first = a.check()
    assert not await b.step(True), "the Lease is held and fresh"
    with pytest.raises(NotLeader):
        b.check()
    # A renews for a while: B never gets in.
    for _ in range(8):
        assert await a.step(True)
        assert not await b.step(True)
        await asyncio.sleep(0.5)
    # A stops renewing (cut off, frozen): B must wait out a whole lease after A's last renewal,
    # and A must have stopped leading by then.
    silent = a.last_renewal
    while not await b.step(True):
        await asyncio.sleep(0.1)
        assert time.monotonic() - silent < 4 * LEASE, "B never took over"
        if time.monotonic() - silent < LEASE * 2 / 3 - 0.1:
            assert a.check() == first, "A leads until its renew deadline"
    took = time.monotonic() - silent
    assert took >= LEASE, f"B took over {took:.1f}s after A's last renewal, before the lease ran out"
    with pytest.raises(NotLeader):
        a.check()
    assert b.check() == first + 1, "each takeover raises the epoch"
    assert not await a.step(True), "the old leader comes back as a standby"
    # A clean stop hands the Lease back: no waiting for the next leader.
    await b.release()
    assert await a.step(True)
    assert a.check() == first + 2


async def test_a_restarted_replica_takes_its_own_lease_back_at_once(hub: tuple[Hub, str]) -> None:
    api, namespace = hub
    before = Leadership(api, namespace, "pod-0", lease_seconds=60)
    assert await before.step(True)
    again = Leadership(api, namespace, "pod-0", lease_seconds=60)  # the same pod, a new process
    assert await again.step(True)
    assert again.check() == before.check() + 1


async def test_the_api_server_refuses_a_status_written_under_an_older_epoch(hub: tuple[Hub, str]) -> None:
    api, namespace = hub
    body = job("fenced")
    body["metadata"]["namespace"] = namespace
    await api.custom.create_namespaced_custom_object(GROUP, VERSION, namespace, "computejobs", body)
    await api.patch_status("computejobs", "fenced", {"status": {"phase": "Pending", "leaderEpoch": 5}}, namespace)
    with pytest.raises(ApiException) as refused:
        await api.patch_status("computejobs", "fenced", {"status": {"phase": "Failed", "leaderEpoch": 4}},
                               namespace)
    assert refused.value.status == 422
    assert "status.leaderEpoch" in str(refused.value.body) + str(refused.value.reason)
    await api.patch_status("computejobs", "fenced", {"status": {"phase": "Scheduled", "leaderEpoch": 6}}, namespace)
    got = await api.custom.get_namespaced_custom_object(GROUP, VERSION, namespace, "computejobs", "fenced")
    assert (got["status"]["phase"], got["status"]["leaderEpoch"]) == ("Scheduled", 6)


async def test_a_hub_that_no_longer_leads_writes_nothing(hub: tuple[Hub, str]) -> None:
    api, namespace = hub
    lead = Leadership(api, namespace, "replica-a", lease_seconds=LEASE)
    assert await lead.step(True)
    fenced = Hub(api.api, fence=lead.check)
    await fenced.create_config_map(namespace, "while-leading", {"a": "1"}, {})
    await asyncio.sleep(LEASE)  # no renewal for longer than the renew deadline
    with pytest.raises(NotLeader):
        await fenced.create_config_map(namespace, "after", {"a": "1"}, {})
    names = [n for n, _ in await api.list_config_maps(namespace, "app.kubernetes.io/managed-by=interconnect-hub")]
    assert names == ["while-leading"]


async def test_an_older_leader_never_deletes_what_a_newer_one_created_on_a_member(testbed: tb.Testbed) -> None:
    kubeconfig = testbed.clusters["member-1"].kubeconfig.read_text()
    namespace = f"fence-{uuid.uuid4().hex[:6]}"
    client_api = testbed.api("member-1")
    CoreV1Api(client_api).create_namespace({"metadata": {"name": namespace}})
    newer = await MemberCluster.connect("member-1", kubeconfig, namespace, lambda *_: None, fence=lambda: 7)
    older = await MemberCluster.connect("member-1", kubeconfig, namespace, lambda *_: None, fence=lambda: 6)
    try:
        manifest = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {
            "name": "ic-x-1", "labels": {MANAGED_BY: MANAGED_BY_VALUE, JOB_UID: "x", ATTEMPT: "1"}},
            "spec": {"template": {"metadata": {"labels": {MANAGED_BY: MANAGED_BY_VALUE, JOB_UID: "x", ATTEMPT: "1"}},
                                  "spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "x"}]}}}}
        uid, created = await newer.create_job(manifest)
        assert created
        jobs, _ = await older.list_ours()
        [job] = jobs
        assert (job.uid, job.epoch) == (uid, 7), "the Job carries its creator's epoch"
        assert not await older.delete_job(job.name, uid=job.uid, epoch=job.epoch), "an older epoch deleted it"
        assert [j.uid for j in (await older.list_ours())[0]] == [uid]
        assert not await newer.delete_job(job.name, uid="another-uid", epoch=job.epoch), "a namesake was deleted"
        assert await newer.delete_job(job.name, uid=job.uid, epoch=job.epoch)
    finally:
        await newer.close()
        await older.close()
        CoreV1Api(client_api).delete_namespace(namespace)

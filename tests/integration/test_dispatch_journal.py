"""The dispatch journal on the hub's real API server: a burst's placements in one ConfigMap,
deleted once their jobs' status holds them, found again by a restarted operator."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator

import pytest
from kubernetes_asyncio import client as aclient
from kubernetes_asyncio.config import new_client_from_config

from interconnect.adapters.hub import Hub, direct
from interconnect.services.journal import JOURNAL_LABEL, MAX_BYTES, DispatchJournal
from tests import testbed as tb

pytestmark = pytest.mark.integration


@pytest.fixture
async def hub(testbed: tb.Testbed) -> AsyncIterator[tuple[Hub, str]]:
    api = direct(await new_client_from_config(config_file=str(testbed.hub.kubeconfig)))
    namespace = f"journal-{uuid.uuid4().hex[:6]}"
    core = aclient.CoreV1Api(api)
    await core.create_namespace({"metadata": {"name": namespace}})
    hub = Hub(api)
    try:
        yield hub, namespace
    finally:
        await core.delete_namespace(namespace)
        await hub.close()


async def segments(hub: Hub, namespace: str) -> dict[str, dict[str, str]]:
    return dict(await hub.list_config_maps(namespace, f"{JOURNAL_LABEL}=true"))


def placed(attempt: int, node: str = "gz-regional") -> dict[str, object]:
    return {"phase": "Scheduled", "attempts": attempt, "placement": {"node": node, "offer": "gz-a100"},
            "memberJob": {"cluster": node, "namespace": "interconnect-work", "name": f"ic-x-{attempt}"},
            "conditions": [{"type": "Scheduled", "status": "True", "reason": "Placed", "message": "x" * 300}]}


async def no_segments_left(hub: Hub, namespace: str, what: str, timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        if not await segments(hub, namespace):
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


async def test_one_segment_per_burst_durable_before_record_returns(hub: tuple[Hub, str]) -> None:
    api, namespace = hub
    journal = DispatchJournal(api, namespace)
    uids = [f"uid-{i}" for i in range(3)]
    await asyncio.gather(*(journal.record(uid, placed(1)) for uid in uids))
    # record() returned: the placements are on the hub, all three in one ConfigMap.
    found = await segments(api, namespace)
    assert len(found) == 1, found.keys()
    (data,) = found.values()
    assert sorted(data) == uids
    assert json.loads(data["uid-0"]) == placed(1)
    assert journal.outstanding == 3

    journal.settled("uid-0")
    journal.settled("uid-1")
    await asyncio.sleep(0.5)
    assert len(await segments(api, namespace)) == 1, "deleted while an entry was still outstanding"
    journal.settled("uid-2")
    await no_segments_left(api, namespace, "the settled segment to be deleted")
    assert journal.outstanding == 0
    await journal.close()


async def test_a_large_burst_is_split_into_segments_the_api_server_accepts(hub: tuple[Hub, str]) -> None:
    api, namespace = hub
    journal = DispatchJournal(api, namespace)
    uids = [f"burst-{i:04d}" for i in range(1200)]
    await asyncio.gather(*(journal.record(uid, placed(1)) for uid in uids))
    found = await segments(api, namespace)
    assert len(found) >= 2
    assert sorted(uid for data in found.values() for uid in data) == uids
    for data in found.values():
        assert sum(len(k) + len(v) for k, v in data.items()) < MAX_BYTES
    await journal.close()


async def test_a_restarted_operator_finds_each_jobs_latest_placement(hub: tuple[Hub, str]) -> None:
    api, namespace = hub
    first = DispatchJournal(api, namespace)
    await asyncio.gather(first.record("a", placed(1, "gz-regional")), first.record("b", placed(1)))
    await first.record("a", placed(2, "sh-finance"))  # re-placed before its first placement was written
    await first.close()  # stopped before any status write: nothing was settled
    assert len(await segments(api, namespace)) == 2

    restarted = DispatchJournal(api, namespace)
    recovered = await restarted.load()
    assert {uid: (r.attempt, r.status["placement"]["node"]) for uid, r in recovered.items()} == {  # type: ignore[index]
        "a": (2, "sh-finance"), "b": (1, "gz-regional")}
    restarted.settled("a")
    restarted.settled("b")
    await no_segments_left(api, namespace, "both segments to be deleted once their entries are settled")
    await restarted.close()


async def test_record_fails_loudly_when_the_hub_refuses(hub: tuple[Hub, str]) -> None:
    api, _ = hub
    journal = DispatchJournal(api, f"missing-{uuid.uuid4().hex[:6]}")  # no such namespace
    with pytest.raises(Exception, match=r"404|not found|NotFound"):
        await journal.record("a", placed(1))
    assert journal.outstanding == 0
    await journal.close()

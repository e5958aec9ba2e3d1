"""A ComputeJob's status writes on the hub's real API server land in the order the controller
made them: a slow earlier write (the deferred Dispatched one, carrying the placement) must never
overwrite a later one (Running)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
from kubernetes_asyncio import client as aclient
from kubernetes_asyncio.config import new_client_from_config

from interconnect.adapters.hub import Hub, direct
from interconnect.adapters.metrics import Metrics
from interconnect.core.latency import LatencyTable
from interconnect.core.vocabulary import GROUP, VERSION
from interconnect.services.config import Settings
from interconnect.services.controller import Controller
from tests import testbed as tb
from tests.e2e import market as m
from tests.integration.bad_manifests import job

pytestmark = pytest.mark.integration


@pytest.fixture
async def controller(testbed: tb.Testbed) -> AsyncIterator[tuple[Controller, str]]:
    m.install_crds(testbed)
    api = direct(await new_client_from_config(config_file=str(testbed.hub.kubeconfig)))
    namespace = f"writes-{uuid.uuid4().hex[:6]}"
    await aclient.CoreV1Api(api).create_namespace({"metadata": {"name": namespace}})
    settings = Settings(namespace=namespace, latency_config_map="x", identity_config_map="y", heartbeat_interval=5,
                        not_ready_after=30, re_place_after=120, metering_interval=15, member_sync_timeout=30,
                        metrics_port=0)
    controller = Controller(Hub(api), settings, LatencyTable.default(), Metrics())
    try:
        yield controller, namespace
    finally:
        await aclient.CoreV1Api(api).delete_namespace(namespace)
        await controller.hub.close()


async def test_a_later_status_write_is_never_overtaken_by_an_earlier_one(controller: tuple[Controller, str]) -> None:
    ctl, namespace = controller
    custom = ctl.hub.custom
    body = job("ordered")
    body["metadata"]["namespace"] = namespace
    created = await custom.create_namespaced_custom_object(GROUP, VERSION, namespace, "computejobs", body)
    await ctl.job_watch.job_changed(created)
    state = ctl.jobs.get(created["metadata"]["uid"])
    assert state is not None
    for round_ in range(15):
        # The deferred write: large, made first; the Running write: small, made right after.
        state.unwritten.update(phase="Dispatched", attemptHistory=[
            {"attempt": 1, "node": "n", "memberJobName": f"ic-x-{round_}", "offer": "o" * 200,
             "price": {"amount": "1.00", "currency": "CNY", "unit": "card-hour"}}])
        await asyncio.gather(ctl.writer.write(state, {}), ctl.writer.write(state, {"phase": "Running"}))
        got = await custom.get_namespaced_custom_object(GROUP, VERSION, namespace, "computejobs", "ordered")
        assert got["status"]["phase"] == "Running", f"round {round_}: the earlier write landed last"
        assert got["status"]["attemptHistory"][0]["memberJobName"] == f"ic-x-{round_}"
        assert not state.unwritten
        await ctl.writer.write(state, {"phase": "Pending"})

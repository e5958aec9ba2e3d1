"""An invalid latency ConfigMap never stops the operator: the table in use is kept, the error is
said, and a fixed ConfigMap takes effect without a restart."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from kubernetes_asyncio import client as k8s

from interconnect.adapters.hub import Hub
from interconnect.adapters.metrics import Metrics
from interconnect.core.latency import LatencyTable
from interconnect.services.controller import Controller
from tests.unit.services.test_stores import SETTINGS


@pytest.fixture
async def controller() -> AsyncIterator[Controller]:
    ctl = Controller(Hub(k8s.ApiClient(k8s.Configuration())), SETTINGS, LatencyTable.default(), Metrics())
    yield ctl
    await ctl.hub.close()


def errors(ctl: Controller) -> float:
    return ctl.metrics.reconcile_errors.labels(loop="latency-config")._value.get()


async def test_a_bad_table_keeps_the_one_in_use_and_a_fixed_one_takes_effect(controller: Controller) -> None:
    config = controller.latency
    assert config.apply({"latency.yaml": "CN-BJ: {CN-TJ: 2.5}\n"}, "1")
    good = controller.market.latency
    assert good.rtt_ms("CN-BJ", "CN-TJ") == 2.5
    before = errors(controller)
    for bad in ("CN-XX: {CN-TJ: 1}\n", "CN-BJ: {CN-TJ: -3}\n", "[not, a, mapping]\n", "CN-BJ: {CN-TJ: [\n"):
        assert not config.apply({"latency.yaml": bad}, "2")
        assert controller.market.latency is good
        assert config.error is not None and "latency.yaml" in config.error
    assert errors(controller) == before + 4
    assert config.apply({"latency.yaml": "CN-BJ: {CN-TJ: 3}\n"}, "3")
    assert controller.market.latency.rtt_ms("CN-BJ", "CN-TJ") == 3 and config.error is None


async def test_a_missing_or_empty_configmap_means_the_built_in_table(controller: Controller) -> None:
    assert controller.latency.apply({}, None)
    assert controller.market.latency.rtt_ms("CN-BJ", "CN-TJ") == LatencyTable.default().rtt_ms("CN-BJ", "CN-TJ")

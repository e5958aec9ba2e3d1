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


async def test_grid_factor_overrides_reach_the_energy_estimate_and_a_bad_table_is_refused_whole(
        controller: Controller) -> None:
    from decimal import Decimal

    from interconnect.core.energy import GRID_FACTORS, NATIONAL, grid_factor

    config = controller.grid_factors
    assert config.apply({"gridFactors.yaml": "- {region: CN-QH, gramsPerKWh: '115.2', year: 2023, source: grid co}\n"},
                        "1")
    assert grid_factor("CN-QH", controller.energy.overrides).grams_per_kwh == Decimal("115.2")
    errors_before = controller.metrics.reconcile_errors.labels(loop="grid-factors")._value.get()
    for bad in ("- {region: CN-QH, gramsPerKWh: '1'}\n", "{CN-QH: 1}\n", "- [\n"):
        assert not config.apply({"gridFactors.yaml": bad}, "2")
        assert grid_factor("CN-QH", controller.energy.overrides).grams_per_kwh == Decimal("115.2"), "kept"
        assert config.error is not None and "gridFactors.yaml" in config.error
    assert controller.metrics.reconcile_errors.labels(loop="grid-factors")._value.get() == errors_before + 3
    assert config.apply({}, None), "no ConfigMap: the shipped table alone"
    assert grid_factor("CN-QH", controller.energy.overrides) is GRID_FACTORS[NATIONAL]

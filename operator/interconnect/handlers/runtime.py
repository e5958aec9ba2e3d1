"""Start and stop the controller with the operator; the handlers reach it through kopf's memo."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import kopf

from interconnect.adapters import hub as hub_adapter
from interconnect.adapters.metrics import Metrics
from interconnect.core.vocabulary import GROUP, VERSION
from interconnect.services.config import Settings
from interconnect.services.controller import Controller, make_latency

log = logging.getLogger(__name__)


@kopf.on.startup()
async def start_controller(memo: kopf.Memo, **_: Any) -> None:
    settings = Settings.from_env()
    if "metrics" not in memo:
        memo["metrics"] = Metrics()
        memo["metrics"].serve(settings.metrics_port)
    api = await hub_adapter.connect()
    hub = hub_adapter.Hub(api)
    try:
        controller = await _load(hub, settings, memo["metrics"])
    except Exception as exc:
        await hub.close()
        # The hub may still be starting (429, connection refused): retry soon, not in a minute.
        raise kopf.TemporaryError(f"cannot load the hub's state yet: {exc}", delay=2) from exc
    controller.start()
    controller.wake()
    memo["controller"] = controller


async def _load(hub: hub_adapter.Hub, settings: Settings, metrics: Metrics) -> Controller:
    """The whole picture before the first placement: nodes (and their members), offers, jobs."""
    data, _version = await hub.read_config_map(settings.namespace, settings.latency_config_map)
    controller = Controller(hub, settings, make_latency(data), metrics)
    nodes = await hub.custom.list_cluster_custom_object(GROUP, VERSION, "computenodes")
    results = await asyncio.gather(*(controller.node_changed(n) for n in nodes["items"]), return_exceptions=True)
    for node, result in zip(nodes["items"], results, strict=True):
        if isinstance(result, Exception):
            log.warning("ComputeNode %s: %s", node["metadata"]["name"], result)
    offers = await hub.custom.list_cluster_custom_object(GROUP, VERSION, "computeoffers")
    for offer in offers["items"]:
        await controller.offer_changed(offer)
    jobs = await hub.custom.list_cluster_custom_object(GROUP, VERSION, "computejobs")
    for job in jobs["items"]:
        if not job["metadata"].get("deletionTimestamp"):
            await controller.job_changed(job)
    return controller


@kopf.on.cleanup()
async def stop_controller(memo: kopf.Memo, **_: Any) -> None:
    controller: Controller | None = memo.get("controller")
    if controller is not None:
        await controller.stop()

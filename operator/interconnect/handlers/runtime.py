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
    api = await hub_adapter.connect()
    hub = hub_adapter.Hub(api)
    data, _version = await hub.read_config_map(settings.namespace, settings.latency_config_map)
    metrics = Metrics()
    metrics.serve(settings.metrics_port)
    controller = Controller(hub, settings, make_latency(data), metrics)
    # The whole picture before the first placement: nodes (and their members), offers, jobs.
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
    controller.start()
    controller.wake()
    memo["controller"] = controller


@kopf.on.cleanup()
async def stop_controller(memo: kopf.Memo, **_: Any) -> None:
    controller: Controller | None = memo.get("controller")
    if controller is not None:
        await controller.stop()

"""Start and stop the controller with the operator; the handlers reach it through kopf's memo."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import time
from typing import Any

import kopf

from interconnect.adapters import hub as hub_adapter
from interconnect.adapters.metrics import Metrics
from interconnect.core.latency import LatencyTable
from interconnect.core.peering import is_active, peers_from_status
from interconnect.core.vocabulary import GROUP, VERSION
from interconnect.services.config import Settings
from interconnect.services.controller import Controller

log = logging.getLogger(__name__)


@kopf.on.startup()
async def start_controller(memo: kopf.Memo, **_: Any) -> None:
    settings = Settings.from_env()
    if "metrics" not in memo:
        memo["metrics"] = Metrics()
        memo["metrics"].serve(settings.metrics_port)
    memo["controller"] = None
    if settings.peering:
        # kopf keeps a standby's handlers frozen; the controller's own loops follow the same rule.
        memo["leadership"] = asyncio.create_task(_follow_peering(settings, memo), name="leadership")
        return
    try:
        memo["controller"] = await _activate(settings, memo["metrics"])
    except Exception as exc:
        # The hub may still be starting (429, connection refused): retry soon, not in a minute.
        raise kopf.TemporaryError(f"cannot load the hub's state yet: {exc}", delay=2) from exc
    memo["metrics"].active.set(1)


async def _activate(settings: Settings, metrics: Metrics) -> Controller:
    hub = hub_adapter.Hub(await hub_adapter.connect())
    try:
        controller = await _load(hub, settings, metrics)
    except Exception:
        await hub.close()
        raise
    controller.start()
    controller.wake()
    return controller


async def _follow_peering(settings: Settings, memo: kopf.Memo) -> None:
    """Start the controller when this replica becomes the active one; stop it when it is not."""
    hub = hub_adapter.Hub(await hub_adapter.connect())
    metrics: Metrics = memo["metrics"]
    try:
        while True:
            controller: Controller | None = memo.get("controller")
            try:
                peering = await hub.read_peering(settings.peering)
                peers = peers_from_status((peering or {}).get("status"))
                active = is_active(settings.identity, settings.priority, peers, dt.datetime.now(dt.UTC))
            except Exception as exc:  # the hub does not answer: nobody can take over either
                log.warning("cannot read peering %s: %s", settings.peering, exc)
                active = controller is not None
            if active and controller is None:
                started = time.monotonic()
                try:
                    memo["controller"] = await _activate(settings, metrics)
                except Exception as exc:
                    log.warning("cannot load the hub's state yet: %s", exc)
                else:
                    metrics.active.set(1)
                    log.info("replica %s (priority %d) is now active; state loaded in %.1fs",
                             settings.identity, settings.priority, time.monotonic() - started)
            elif not active and controller is not None:
                memo["controller"] = None
                metrics.active.set(0)
                await controller.stop()
                log.info("replica %s is on standby: a peer of higher priority is active", settings.identity)
            await asyncio.sleep(1.0)
    finally:
        await hub.close()


async def _load(hub: hub_adapter.Hub, settings: Settings, metrics: Metrics) -> Controller:
    """The whole picture before the first placement: nodes (and their members), offers, quotas,
    this month's usage records, jobs."""
    controller = Controller(hub, settings, LatencyTable.default(), metrics)
    await controller.load_latency()  # an invalid table is reported and the built-in one used
    nodes = await hub.custom.list_cluster_custom_object(GROUP, VERSION, "computenodes")
    results = await asyncio.gather(*(controller.node_changed(n) for n in nodes["items"]), return_exceptions=True)
    for node, result in zip(nodes["items"], results, strict=True):
        if isinstance(result, Exception):
            log.warning("ComputeNode %s: %s", node["metadata"]["name"], result)
    offers = await hub.custom.list_cluster_custom_object(GROUP, VERSION, "computeoffers")
    for offer in offers["items"]:
        await controller.offer_changed(offer)
    quotas = await hub.custom.list_cluster_custom_object(GROUP, VERSION, "computequotas")
    for quota in quotas["items"]:
        await controller.quota_changed(quota)
    # What finished attempts were charged this month (the jobs may be gone): the monthly spend.
    await controller.load_usage()
    # Placements made durable in the journal but not yet in their jobs' status, so that the
    # jobs' first sight resumes them rather than placing them again.
    await controller.recover_journal()
    await controller.watch_jobs()
    # Every job is known now, so what superseded attempts left on the members can be told apart.
    await controller.fence_all()
    return controller


@kopf.on.cleanup()
async def stop_controller(memo: kopf.Memo, **_: Any) -> None:
    leadership: asyncio.Task[None] | None = memo.get("leadership")
    if leadership is not None:
        leadership.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await leadership
    controller: Controller | None = memo.get("controller")
    memo["controller"] = None
    if controller is not None:
        await controller.stop()

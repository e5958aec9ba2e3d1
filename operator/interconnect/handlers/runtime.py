"""Start and stop the controller with the operator; the handlers reach it through kopf's memo."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import time
from typing import Any

import kopf
from kubernetes_asyncio.client.exceptions import ApiException

from interconnect.adapters import hub as hub_adapter
from interconnect.adapters.metrics import Metrics
from interconnect.core.latency import LatencyTable
from interconnect.core.peering import is_active, peers_from_status
from interconnect.core.vocabulary import GROUP, VERSION
from interconnect.services.config import Settings
from interconnect.services.controller import Controller
from interconnect.services.leadership import Leadership

log = logging.getLogger(__name__)


class ActiveController:
    """The controller of this replica's current leadership term, or None.

    kopf gives each resource's handlers a shallow copy of the operator's memo, taken when it first
    sees that resource: a controller put into the memo later would stay invisible to them (they
    would answer "not the active one" for ever). This holder, shared by every copy, is where it goes.
    """

    controller: Controller | None = None


def active_controller(memo: kopf.Memo) -> Controller | None:
    holder: ActiveController | None = memo.get("active")
    return holder.controller if holder is not None else None


@kopf.on.startup()
async def start_controller(memo: kopf.Memo, **_: Any) -> None:
    settings = Settings.from_env()
    if "metrics" not in memo:
        memo["metrics"] = Metrics()
        memo["metrics"].serve(settings.metrics_port)
    memo["active"] = ActiveController()
    memo["leadership"] = asyncio.create_task(_lead(settings, memo), name="leadership")


async def _activate(settings: Settings, metrics: Metrics, leadership: Leadership) -> Controller:
    """A controller for one leadership term: every write it makes is fenced by the Lease."""
    hub = hub_adapter.Hub(await hub_adapter.connect(), fence=leadership.check)
    controller = Controller(hub, settings, LatencyTable.default(), metrics)
    try:
        await _load(controller)
    except BaseException:  # failed, or cancelled because the lead was lost while loading
        await _retire(controller)
        raise
    controller.start()
    controller.wake()
    return controller


async def _retire(controller: Controller) -> None:
    """Stop a term's controller and close what it opened: its members' clients, its hub watch and
    its hub client. A term that ended without this left them open, and a replica whose loads were
    cut short again and again grew by hundreds of client sessions."""
    with contextlib.suppress(Exception):
        await controller.stop()
    with contextlib.suppress(Exception):
        await controller.hub.close()


async def _wanted(hub: hub_adapter.Hub, settings: Settings) -> bool:
    """Whether this replica should lead: standalone, always; in a peering, when kopf's peering
    makes it the active one (its handlers run only then), and not when the peering cannot be
    read (a replica cut off from the hub must not go on as if nothing happened)."""
    if not settings.peering:
        return True
    try:
        peering = await hub.read_peering(settings.peering)
    except Exception as exc:
        log.warning("cannot read peering %s: %s", settings.peering, exc)
        return False
    peers = peers_from_status((peering or {}).get("status"))
    return is_active(settings.identity, settings.priority, peers, dt.datetime.now(dt.UTC))


async def _lead(settings: Settings, memo: kopf.Memo) -> None:
    """Run the controller exactly while this replica holds the leader Lease.

    The controller is loaded in a task of its own, so that loading a large hub never delays a
    renewal; it is stopped as soon as the lead is not confirmed (its writes are fenced already).
    """
    hub = hub_adapter.Hub(await hub_adapter.connect())
    metrics: Metrics = memo["metrics"]
    active: ActiveController = memo["active"]
    leadership = Leadership(hub, settings.namespace, settings.lease_identity,
                            lease_seconds=settings.lease_seconds)
    loading: asyncio.Task[Controller] | None = None
    started = 0.0
    try:
        while True:
            leading = await leadership.step(await _wanted(hub, settings))
            metrics.leader_epoch.set(leadership.epoch or 0)
            controller = active.controller
            if leading and controller is None:
                if loading is None:
                    started = time.monotonic()
                    loading = asyncio.create_task(_activate(settings, metrics, leadership), name="load")
                elif loading.done():
                    task, loading = loading, None
                    if task.exception() is not None:
                        log.warning("cannot load the hub's state yet: %s", task.exception())
                    else:
                        active.controller = task.result()
                        metrics.active.set(1)
                        log.info("replica %s is now active (epoch %s); state loaded in %.1fs",
                                 settings.lease_identity, leadership.epoch, time.monotonic() - started)
            elif not leading:
                if loading is not None:
                    loading.cancel()
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await loading
                    loading = None
                if controller is not None:
                    active.controller = None
                    metrics.active.set(0)
                    await _retire(controller)
                    log.info("replica %s is on standby", settings.lease_identity)
            await asyncio.sleep(0.2 if loading is not None else 1.0)
    finally:
        if loading is not None:
            loading.cancel()
        controller, active.controller = active.controller, None
        if controller is not None:
            await _retire(controller)
        with contextlib.suppress(Exception):
            await leadership.release()
        await hub.close()


async def _load(controller: Controller) -> None:
    """The whole picture before the first placement: nodes (and their members), offers, quotas,
    this month's usage records, jobs."""
    hub = controller.hub
    await controller.load_latency()  # an invalid table is reported and the built-in one used
    # The accelerator catalogue first: it decides what the members' nodes hold.
    try:
        models = await hub.custom.list_cluster_custom_object(GROUP, VERSION, "acceleratormodels")
    except ApiException as exc:
        if exc.status != 404:  # 404: a hub whose CRDs predate the kind: the built-in catalogue
            raise
        models = {"items": []}
    for model in models["items"]:
        controller.accelerator_changed(model)
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


@kopf.on.cleanup()
async def stop_controller(memo: kopf.Memo, **_: Any) -> None:
    """Stop the controller, then hand the Lease back (the leadership loop does both)."""
    leadership: asyncio.Task[None] | None = memo.get("leadership")
    if leadership is not None:
        leadership.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await leadership

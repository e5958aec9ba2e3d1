"""Handlers for the three kinds: each one line into the controller."""

from __future__ import annotations

from typing import Any

import kopf

from interconnect.core.vocabulary import GROUP
from interconnect.handlers.runtime import active_controller
from interconnect.services.controller import Controller


def _controller(memo: kopf.Memo) -> Controller:
    controller = active_controller(memo)
    if controller is None:  # a standby between kopf's unfreeze and its controller's start
        raise kopf.TemporaryError("this replica is not the active one yet", delay=1)
    return controller


@kopf.on.resume(GROUP, "computenodes")
@kopf.on.create(GROUP, "computenodes")
@kopf.on.update(GROUP, "computenodes", field="spec")
async def node_changed(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    await _controller(memo).node_changed(dict(body))


@kopf.on.delete(GROUP, "computenodes")
async def node_deleted(name: str, memo: kopf.Memo, **_: Any) -> None:
    blocked = await _controller(memo).drain(name)
    if blocked:
        raise kopf.TemporaryError(blocked, delay=3)
    await _controller(memo).node_deleted(name)


@kopf.on.resume(GROUP, "acceleratormodels")
@kopf.on.create(GROUP, "acceleratormodels")
@kopf.on.update(GROUP, "acceleratormodels", field="spec")
async def accelerator_changed(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    _controller(memo).accelerator_changed(dict(body))


@kopf.on.event(GROUP, "acceleratormodels")
async def accelerator_event(event: kopf.RawEvent, name: str, memo: kopf.Memo, **_: Any) -> None:
    # The catalogue's objects hold nothing to clean up: no finalizer, deletion seen as a watch event.
    if event["type"] == "DELETED":
        _controller(memo).accelerator_deleted(name)


@kopf.on.resume(GROUP, "computeoffers")
@kopf.on.create(GROUP, "computeoffers")
@kopf.on.update(GROUP, "computeoffers", field="spec")
async def offer_changed(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    await _controller(memo).offer_changed(dict(body))


@kopf.on.event(GROUP, "computeoffers")
async def offer_event(event: kopf.RawEvent, name: str, memo: kopf.Memo, **_: Any) -> None:
    # Offers carry no finalizer (nothing to clean up), so their deletion is seen as a watch event.
    if event["type"] == "DELETED":
        _controller(memo).offer_deleted(name)


# ComputeJobs are not kopf's: the controller watches them itself (see Controller.watch_jobs).


@kopf.on.resume(GROUP, "computequotas")
@kopf.on.create(GROUP, "computequotas")
@kopf.on.update(GROUP, "computequotas", field="spec")
async def quota_changed(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    await _controller(memo).quota_changed(dict(body))


@kopf.on.event(GROUP, "computequotas")
async def quota_event(event: kopf.RawEvent, name: str, memo: kopf.Memo, **_: Any) -> None:
    # Like offers, quotas hold nothing to clean up: no finalizer, deletion seen as a watch event.
    if event["type"] == "DELETED":
        _controller(memo).quota_deleted(name)

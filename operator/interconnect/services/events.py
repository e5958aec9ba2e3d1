"""Kubernetes events for ComputeJobs, posted in the background at a bounded rate.

Like client-go's event broadcaster: callers never wait for an event, a burst of thousands of
jobs does not turn into thousands of hub writes competing with the ones that matter (the
placements), and when the backlog is full, Normal events are dropped (and counted) while
Warnings are kept. What an event says is also in the job's conditions.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Mapping
from typing import Any

from interconnect.adapters.hub import Hub
from interconnect.adapters.metrics import Metrics

log = logging.getLogger(__name__)


class EventRecorder:
    def __init__(self, hub: Hub, metrics: Metrics, *, per_second: float = 25.0, burst: int = 50,
                 backlog: int = 200, concurrency: int = 4) -> None:
        self.hub = hub
        self.metrics = metrics
        self.per_second = per_second
        self.burst = burst
        self.backlog = backlog
        self._queue: asyncio.Queue[tuple[Mapping[str, Any], str, str, str]] = asyncio.Queue()
        self._slots = asyncio.Semaphore(concurrency)
        self._tokens = float(burst)
        self._refilled = time.monotonic()
        self._inflight: set[asyncio.Task[None]] = set()

    def record(self, obj: Mapping[str, Any], type_: str, reason: str, message: str) -> None:
        if type_ == "Normal" and self._queue.qsize() >= self.backlog:
            self.metrics.events_dropped.labels(reason=reason).inc()
            return
        self._queue.put_nowait((obj, type_, reason, message))

    async def _take_token(self) -> None:
        while True:
            now = time.monotonic()
            self._tokens = min(float(self.burst), self._tokens + (now - self._refilled) * self.per_second)
            self._refilled = now
            if self._tokens >= 1:
                self._tokens -= 1
                return
            await asyncio.sleep((1 - self._tokens) / self.per_second)

    async def run(self) -> None:
        try:
            while True:
                event = await self._queue.get()
                await self._take_token()
                await self._slots.acquire()
                task = asyncio.create_task(self._post(*event))
                self._inflight.add(task)
                task.add_done_callback(self._inflight.discard)
        finally:
            for task in list(self._inflight):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task

    async def _post(self, obj: Mapping[str, Any], type_: str, reason: str, message: str) -> None:
        try:
            await self.hub.event(obj, type_, reason, message)
        finally:
            self._slots.release()

"""The dispatch journal: a burst's placements made durable on the hub in one write.

A placement must be durable before its member Job is created: an operator restarted in
between has to find the Job where it was created, not place the job a second time elsewhere
(two runs, two bills). Writing each ComputeJob's status first did that at the cost of one hub
write per job, on the critical path of every dispatch; with a thousand jobs submitted at once
the hub's API server was the bottleneck. Instead, the placements of one placement pass go into
ConfigMap segments (up to ``MAX_ENTRIES`` or ``MAX_BYTES`` each), and each job's status takes
its placement with its next write (the Dispatched one, a second later). A segment is deleted
once all of its entries are in their jobs' status or moot (the job was deleted or superseded);
at start-up the segments left behind are read, and their placements applied to the jobs whose
status does not have them yet.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from interconnect.adapters.hub import Hub
from interconnect.core.leadership import EPOCH_LABEL

log = logging.getLogger(__name__)

JOURNAL_LABEL = "interconnect.dev/dispatch-journal"
MAX_ENTRIES = 500
MAX_BYTES = 600_000
"""Well under a ConfigMap's 1 MiB, so a segment is never refused for its size."""


@dataclass(frozen=True, slots=True)
class Recovered:
    """A placement found in a segment at start-up: the status fields its job was to get."""

    segment: str
    status: dict[str, Any]

    @property
    def attempt(self) -> int:
        return int(self.status.get("attempts", 0))


class DispatchJournal:
    def __init__(self, hub: Hub, namespace: str) -> None:
        self.hub = hub
        self.namespace = namespace
        self._queue: list[tuple[str, str, asyncio.Future[None]]] = []
        self._flusher: asyncio.Task[None] | None = None
        self._outstanding: dict[str, set[str]] = {}
        """Segment name -> the job uids whose placement is not in their status yet."""
        self._segment_of: dict[str, str] = {}
        self._undeleted: set[str] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._names = itertools.count()
        self.segments_written = 0

    async def record(self, uid: str, status: Mapping[str, Any]) -> None:
        """Return once ``status`` (the job's placement fields) is in a segment on the hub."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.append((uid, json.dumps(status, separators=(",", ":")), future))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush(), name="dispatch-journal")
        await future

    def settled(self, uid: str) -> None:
        """The job's status now holds its placement (or the job is gone): its entry is moot."""
        segment = self._segment_of.pop(uid, None)
        if segment is not None:
            self._forget(segment, uid)

    @property
    def outstanding(self) -> int:
        return len(self._segment_of)

    async def load(self) -> dict[str, Recovered]:
        """Every placement left in segments (by job uid, the latest attempt's); at start-up."""
        found: dict[str, Recovered] = {}
        for name, data in await self.hub.list_config_maps(self.namespace, f"{JOURNAL_LABEL}=true"):
            self._outstanding.setdefault(name, set())
            for uid, text in data.items():
                try:
                    status = json.loads(text)
                except ValueError:
                    log.warning("dispatch journal %s: entry %s is not JSON; ignored", name, uid)
                    continue
                entry = Recovered(name, status)
                if uid not in found or entry.attempt > found[uid].attempt:
                    found[uid] = entry
        for uid, entry in found.items():
            self._outstanding[entry.segment].add(uid)
            self._segment_of[uid] = entry.segment
        for name in [s for s, left in self._outstanding.items() if not left]:
            del self._outstanding[name]
            self._delete_soon(name)
        return found

    def retry_deletes(self) -> None:
        """Segments whose deletion failed (the hub did not answer): try again."""
        for name in list(self._undeleted):
            self._delete_soon(name)

    async def close(self) -> None:
        for task in [*self._tasks, *([self._flusher] if self._flusher else [])]:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        for _, _, future in self._queue:
            if not future.done():
                future.cancel()

    async def _flush(self) -> None:
        await asyncio.sleep(0)  # the other dispatches of the same placement pass queue up first
        while self._queue:
            batch: list[tuple[str, str, asyncio.Future[None]]] = []
            size = 0
            while self._queue and len(batch) < MAX_ENTRIES and size + len(self._queue[0][1]) < MAX_BYTES:
                size += len(self._queue[0][1]) + len(self._queue[0][0])
                batch.append(self._queue.pop(0))
            if not batch:  # one entry alone above MAX_BYTES cannot happen (a status is a few KiB)
                batch.append(self._queue.pop(0))
            name = f"interconnect-dispatch-{time.time_ns():x}-{next(self._names)}"
            data: dict[str, str] = {}
            for uid, text, _ in batch:
                data[uid] = text  # a job queued twice in one batch: its latest placement
            try:
                await self.hub.create_config_map(self.namespace, name, data,
                                                 {JOURNAL_LABEL: "true", EPOCH_LABEL: str(self.hub.epoch)})
            except Exception as exc:
                for _, _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            self.segments_written += 1
            self._outstanding[name] = set(data)
            for uid in data:
                old = self._segment_of.get(uid)
                self._segment_of[uid] = name
                if old is not None and old != name:
                    self._forget(old, uid)
            for _, _, future in batch:
                if not future.done():
                    future.set_result(None)

    def _forget(self, segment: str, uid: str) -> None:
        left = self._outstanding.get(segment)
        if left is not None:
            left.discard(uid)
            if not left:
                del self._outstanding[segment]
                self._delete_soon(segment)

    def _delete_soon(self, name: str) -> None:
        self._undeleted.add(name)
        task = asyncio.create_task(self._delete(name), name=f"journal-delete-{name}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _delete(self, name: str) -> None:
        try:
            await self.hub.delete_config_map(self.namespace, name)
            self._undeleted.discard(name)
        except Exception as exc:
            log.warning("dispatch journal: cannot delete %s yet: %s", name, exc)

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
MAX_IN_FLIGHT = 4
"""Segment writes at once. With one, a placement made while a write was in flight waited for
that write and then its own (1.5 writes on average; 3.7 s of a 1,000-job burst's 8.9 s median
dispatch on a saturated hub); with a few, it waits for its own."""


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
        self._filling = False
        self._writers: set[asyncio.Task[None]] = set()
        self._writing: set[str] = set()
        """Job uids in a segment write in flight: a newer placement of one waits for the next
        segment, so a job's segments are written in order."""
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
        if not self._filling:
            # Soon, not now: the other dispatches of the same placement pass queue up first.
            self._filling = True
            asyncio.get_running_loop().call_soon(self._fill)
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
        for task in [*self._tasks, *self._writers]:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        for _, _, future in self._queue:
            if not future.done():
                future.cancel()

    def _fill(self) -> None:
        """Start segment writes for what is queued, up to MAX_IN_FLIGHT at once."""
        self._filling = False
        while self._queue and len(self._writers) < MAX_IN_FLIGHT:
            batch = self._take()
            if not batch:  # all that is queued waits for a write in flight of the same jobs
                return
            task = asyncio.create_task(self._write(batch), name="dispatch-journal")
            self._writers.add(task)
            task.add_done_callback(self._written)

    def _written(self, task: asyncio.Task[None]) -> None:
        self._writers.discard(task)
        if self._queue and not self._filling:
            self._fill()

    def _take(self) -> list[tuple[str, str, asyncio.Future[None]]]:
        """The next segment's entries, oldest first (none of a job already being written)."""
        batch: list[tuple[str, str, asyncio.Future[None]]] = []
        left: list[tuple[str, str, asyncio.Future[None]]] = []
        size = 0
        in_batch: set[str] = set()
        for entry in self._queue:
            uid, text, _ = entry
            fits = len(batch) < MAX_ENTRIES and (not batch or size + len(text) + len(uid) < MAX_BYTES)
            if uid in self._writing or not fits:
                left.append(entry)
                continue
            batch.append(entry)
            in_batch.add(uid)
            size += len(text) + len(uid)
        self._queue = left
        self._writing |= in_batch
        return batch

    async def _write(self, batch: list[tuple[str, str, asyncio.Future[None]]]) -> None:
        name = f"interconnect-dispatch-{time.time_ns():x}-{next(self._names)}"
        data: dict[str, str] = {}
        for uid, text, _ in batch:
            data[uid] = text  # a job queued twice in one batch: its latest placement
        try:
            await self.hub.create_config_map(self.namespace, name, data,
                                             {JOURNAL_LABEL: "true", EPOCH_LABEL: str(self.hub.epoch)})
        except BaseException as exc:
            self._writing -= set(data)
            for _, _, future in batch:
                if not future.done():
                    if isinstance(exc, asyncio.CancelledError):
                        future.cancel()
                    else:
                        future.set_exception(exc)
            if isinstance(exc, asyncio.CancelledError):
                raise
            return
        self._writing -= set(data)
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

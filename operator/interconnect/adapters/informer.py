"""List-then-watch of one resource on one cluster, kept as small projections in memory.

One watch per resource per member, never a poll per job. Raw JSON is read from the API
server (no generated-model deserialisation on the hot path) and projected to the few fields
the operator needs, so thousands of pods cost little memory.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from kubernetes_asyncio.client.exceptions import ApiException

T = TypeVar("T")
log = logging.getLogger(__name__)

Lister = Callable[..., Awaitable[Any]]
Projector = Callable[[Mapping[str, Any]], T | None]


@dataclass(frozen=True, slots=True)
class Change(Generic[T]):
    """What changed: the key (uid), the previous and the new projection (None when gone)."""

    informer: str
    key: str
    old: T | None
    new: T | None


async def read_json(response: Any) -> Any:
    """The JSON body of an unread (``_preload_content=False``) response, released after.

    The client raises for a failed status only when it reads the body itself, so this does:
    an error answer must never pass for an empty list.
    """
    try:
        body = await response.read()
        if not 200 <= response.status <= 299:
            error = ApiException(status=response.status, reason=str(getattr(response, "reason", "") or ""))
            error.body = body[:32768].decode(errors="replace")  # the API server's Status, for its message
            raise error
        return json.loads(body)
    finally:
        response.release()


def check_status(response: Any) -> None:
    """Raise for a failed status of a streaming (watch) response before reading it."""
    if not 200 <= response.status <= 299:
        response.release()
        raise ApiException(status=response.status, reason="watch refused")


class WatchGone(Exception):
    """The resourceVersion is too old (410): list again."""


class Informer(Generic[T]):
    def __init__(
        self,
        name: str,
        lister: Lister,
        project: Projector[T],
        on_change: Callable[[Change[T]], None],
        *,
        watch_timeout: int = 290,
        on_error: Callable[[BaseException], None] | None = None,
        on_object: Callable[[Mapping[str, Any]], None] | None = None,
    ) -> None:
        """``on_object`` receives the whole object whenever its projection changes (the projection
        then only needs to say what matters, e.g. generation and deletion, and keeps little)."""
        self.name = name
        self._lister = lister
        self._project = project
        self._on_change = on_change
        self._on_error = on_error
        self._on_object = on_object
        self._watch_timeout = watch_timeout
        self.items: dict[str, T] = {}
        self.synced = asyncio.Event()
        self.resource_version: str | None = None
        self.restarts = 0
        self.unreadable = 0
        """Objects skipped because they could not be projected (e.g. a quantity that is not one), since
        this informer started: the reporter adds them to ``interconnect_unreadable_objects_total``."""
        self._resync = False
        self._response: Any = None
        """The watch's response while it streams (`resync` closes it)."""

    def _projected(self, obj: Mapping[str, Any]) -> T | None:
        """The object's projection; None (skipped and counted) when it cannot be read: one odd
        object must never wedge the watch in a relist loop."""
        try:
            return self._project(obj)
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            self.unreadable += 1
            name = (obj.get("metadata") or {}).get("name") if isinstance(obj, Mapping) else None
            log.warning("informer %s: skipped %s: %s", self.name, name or "an object", exc)
            return None

    async def _list(self) -> None:
        response = await self._lister(_preload_content=False, _request_timeout=60)
        body = await read_json(response)
        fresh: dict[str, T] = {}
        for obj in body.get("items", []):
            projected = self._projected(obj)
            if projected is not None:
                key = obj["metadata"]["uid"]
                fresh[key] = projected
                if self._on_object is not None and self.items.get(key) != projected:
                    self._on_object(obj)
        old = self.items
        self.items = fresh
        self.resource_version = body["metadata"].get("resourceVersion")
        for key in old.keys() - fresh.keys():
            self._on_change(Change(self.name, key, old[key], None))
        for key, value in fresh.items():
            if old.get(key) != value:
                self._on_change(Change(self.name, key, old.get(key), value))
        self.synced.set()

    async def _watch(self) -> None:
        response = await self._lister(
            watch=True,
            resource_version=self.resource_version,
            allow_watch_bookmarks=True,
            timeout_seconds=self._watch_timeout,
            _preload_content=False,
            _request_timeout=self._watch_timeout + 30,
        )
        check_status(response)
        self._response = response
        try:
            async for line in response.content:
                if not line.strip():
                    continue
                event = json.loads(line)
                self._apply(event)
        finally:
            self._response = None
            response.release()

    def _apply(self, event: Mapping[str, Any]) -> None:
        kind = event.get("type")
        obj = event.get("object") or {}
        if kind == "ERROR":
            if obj.get("code") == 410:
                raise WatchGone(obj.get("message", "resource version too old"))
            raise RuntimeError(f"watch error: {obj.get('message')}")
        meta = obj.get("metadata") or {}
        if meta.get("resourceVersion"):
            self.resource_version = meta["resourceVersion"]
        if kind == "BOOKMARK":
            return
        key = meta["uid"]
        old = self.items.get(key)
        new = None if kind == "DELETED" else self._projected(obj)
        if new is None:
            self.items.pop(key, None)
        else:
            self.items[key] = new
            if self._on_object is not None and old != new:
                self._on_object(obj)
        if old != new:
            self._on_change(Change(self.name, key, old, new))

    def resync(self) -> None:
        """List again now, projecting every object afresh (what projects them changed, e.g. the
        accelerator catalogue): the watch in progress is dropped and the next pass lists."""
        self._resync = True
        if self._response is not None:
            self._response.close()

    async def run(self) -> None:
        """List, then watch forever; relist on 410 and on `resync`, back off on errors."""
        backoff = 0.5
        need_list = True
        while True:
            try:
                if self._resync:
                    self._resync, need_list = False, True
                if need_list:
                    await self._list()
                    need_list = False
                await self._watch()
                backoff = 0.5
            except asyncio.CancelledError:
                raise
            except Exception:
                if self._resync:  # the watch was dropped on purpose: list at once
                    continue
                try:
                    raise
                except WatchGone:
                    self.restarts += 1
                    need_list = True
                except (TimeoutError, ApiException, OSError, RuntimeError, ValueError) as exc:
                    self.restarts += 1
                    if self._on_error is not None:
                        self._on_error(exc)
                    log.debug("informer %s: %s; retrying in %.1fs", self.name, exc, backoff)
                    if isinstance(exc, ApiException) and exc.status == 410:
                        need_list = True
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, 10.0)
                except Exception as exc:
                    self.restarts += 1
                    if self._on_error is not None:
                        self._on_error(exc)
                    log.warning("informer %s failed: %r; retrying in %.1fs", self.name, exc, backoff)
                    need_list = True
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, 10.0)

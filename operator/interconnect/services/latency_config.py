"""The latency table the market places with, from its ConfigMap, reloaded when it changes.

An invalid table never stops the operator: at start-up the built-in table is used, later the last
good one is kept; either way a Warning event on the ConfigMap and
``interconnect_reconcile_errors_total{loop="latency-config"}`` say why. A fixed ConfigMap takes
effect at the next check (every heartbeat interval), without a restart.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping

import yaml

from interconnect.adapters.hub import Hub
from interconnect.adapters.metrics import Metrics
from interconnect.core.latency import LATENCY_KEY, LatencyTable, latency_from_config
from interconnect.services.events import EventRecorder

log = logging.getLogger(__name__)

INVALID = "InvalidLatencyTable"


class LatencyConfig:
    """Loads the latency ConfigMap into the market (see the module docstring)."""

    def __init__(self, hub: Hub, namespace: str, name: str, events: EventRecorder, metrics: Metrics,
                 use: Callable[[LatencyTable], None], interval: float) -> None:
        self._hub = hub
        self._namespace = namespace
        self._name = name
        self._events = events
        self._metrics = metrics
        self._use = use
        self._interval = interval
        self.version: str | None = None
        self.error: str | None = None
        """Why the ConfigMap's table is not the one in use, if it is not."""

    def apply(self, data: Mapping[str, str], version: str | None) -> bool:
        """Use the table in ``data``; False (and the one in use kept) when it is not valid."""
        self.version = version
        try:
            table = latency_from_config(data)
        except (ValueError, yaml.YAMLError) as exc:  # LatencyTableError is a ValueError
            self.error = f"ConfigMap {self._namespace}/{self._name} key {LATENCY_KEY}: {exc}"[:1024]
            self._metrics.reconcile_errors.labels(loop="latency-config").inc()
            log.warning("latency table not loaded, the one in use is kept: %s", self.error)
            ref = {"apiVersion": "v1", "kind": "ConfigMap",
                   "metadata": {"name": self._name, "namespace": self._namespace}}
            self._events.record(ref, "Warning", INVALID, f"{self.error}; the table in use is kept")
            return False
        self.error = None
        self._use(table)
        return True

    async def load(self) -> None:
        data, version = await self._hub.read_config_map(self._namespace, self._name)
        self.apply(data, version)

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            try:
                data, version = await self._hub.read_config_map(self._namespace, self._name)
            except Exception as exc:
                log.debug("latency ConfigMap not read: %s", exc)
                continue
            if version != self.version:
                self.apply(data, version)

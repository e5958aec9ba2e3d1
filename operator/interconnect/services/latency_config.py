"""Tables the market works with, from ConfigMaps the hub admin edits, reloaded when they change:
the latency table, and the grid emission factors that override the shipped ones.

An invalid table never stops the operator: at start-up the built-in table is used, later the last
good one is kept; either way a Warning event on the ConfigMap and
``interconnect_reconcile_errors_total{loop=...}`` say why. A fixed ConfigMap takes effect at the
next check (every heartbeat interval), without a restart. A missing ConfigMap is an empty one.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from typing import Generic, TypeVar

import yaml

from interconnect.adapters.hub import Hub
from interconnect.adapters.metrics import Metrics
from interconnect.core.energy import GridFactor, factors_of
from interconnect.core.latency import LATENCY_KEY, LatencyTable, latency_from_config
from interconnect.services.events import EventRecorder

log = logging.getLogger(__name__)

INVALID = "InvalidLatencyTable"
INVALID_GRID_FACTORS = "InvalidGridFactors"
GRID_FACTORS_KEY = "gridFactors.yaml"
"""The grid-factors ConfigMap's key: a YAML list of {region, gramsPerKWh, year, source}."""

T = TypeVar("T")


class WatchedConfigMap(Generic[T]):
    """Loads one ConfigMap's table into whoever uses it (see the module docstring)."""

    def __init__(self, hub: Hub, namespace: str, name: str, events: EventRecorder, metrics: Metrics, *,
                 key: str, loop: str, reason: str, parse: Callable[[Mapping[str, str]], T],
                 use: Callable[[T], None], interval: float) -> None:
        self._hub = hub
        self._namespace = namespace
        self._name = name
        self._events = events
        self._metrics = metrics
        self._key = key
        self._loop = loop
        self._reason = reason
        self._parse = parse
        self._use = use
        self._interval = interval
        self.version: str | None = None
        self.error: str | None = None
        """Why the ConfigMap's table is not the one in use, if it is not."""

    def apply(self, data: Mapping[str, str], version: str | None) -> bool:
        """Use the table in ``data``; False (and the one in use kept) when it is not valid."""
        self.version = version
        try:
            table = self._parse(data)
        except (ValueError, TypeError, yaml.YAMLError) as exc:  # LatencyTableError is a ValueError
            self.error = f"ConfigMap {self._namespace}/{self._name} key {self._key}: {exc}"[:1024]
            self._metrics.reconcile_errors.labels(loop=self._loop).inc()
            log.warning("table not loaded, the one in use is kept: %s", self.error)
            ref = {"apiVersion": "v1", "kind": "ConfigMap",
                   "metadata": {"name": self._name, "namespace": self._namespace}}
            self._events.record(ref, "Warning", self._reason, f"{self.error}; the table in use is kept")
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
                log.debug("ConfigMap %s not read: %s", self._name, exc)
                continue
            if version != self.version:
                self.apply(data, version)


class LatencyConfig(WatchedConfigMap[LatencyTable]):
    """The latency table the market places with."""

    def __init__(self, hub: Hub, namespace: str, name: str, events: EventRecorder, metrics: Metrics,
                 use: Callable[[LatencyTable], None], interval: float) -> None:
        super().__init__(hub, namespace, name, events, metrics, key=LATENCY_KEY, loop="latency-config",
                         reason=INVALID, parse=latency_from_config, use=use, interval=interval)


def grid_factors_from_config(data: Mapping[str, str]) -> dict[str, GridFactor]:
    """The hub admin's grid factors in a ConfigMap's data (none when the key is empty or missing)."""
    text = data.get(GRID_FACTORS_KEY)
    loaded = yaml.safe_load(text) if text else None
    if not loaded:
        return {}
    if not isinstance(loaded, list) or not all(isinstance(row, dict) for row in loaded):
        raise ValueError("a list of {region, gramsPerKWh, year, source} is expected")
    return factors_of(loaded)


class GridFactorConfig(WatchedConfigMap[dict[str, GridFactor]]):
    """The hub admin's grid emission factors, over the shipped table (core.energy.GRID_FACTORS)."""

    def __init__(self, hub: Hub, namespace: str, name: str, events: EventRecorder, metrics: Metrics,
                 use: Callable[[dict[str, GridFactor]], None], interval: float) -> None:
        super().__init__(hub, namespace, name, events, metrics, key=GRID_FACTORS_KEY, loop="grid-factors",
                         reason=INVALID_GRID_FACTORS, parse=grid_factors_from_config, use=use,
                         interval=interval)


__all__ = ["GRID_FACTORS_KEY", "GridFactorConfig", "LatencyConfig", "WatchedConfigMap",
           "grid_factors_from_config"]

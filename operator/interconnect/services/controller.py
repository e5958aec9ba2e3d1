"""The hub's controller: the one place that builds the stores and workers and wires them.

Stores, each the only owner of its state (others ask it):

- `JobStore` + `StatusWriter` (services/jobs.py): the jobs; the only writer of ComputeJob status.
- `Members` (services/members.py): member connections, readiness and loss, credentials, node status.
- `Market` (services/market.py): offers, quotas and the reservation ledger (`reserve`/`release`).
- `UsageLedger` (services/usage_records.py): the ComputeUsage records (the bill), written once per
  finished attempt before its end is; this month's kept for the quotas.

Workers, each with its own loop:

- `JobWatch`: ComputeJobs in (journal recovery at start-up), deletions out.
- `Scheduler`: placement passes (quotas, fair share, `core.placement`), woken by a `Wake`.
- `Dispatcher`: journal, then create or adopt the member Job; refusals end the job.
- `MemberSync`: the members' watch events, routed to a work queue of job UIDs; the decision
  itself is `core.sync.member_outcome`.
- `Meter`: usage into status, then counters.
- `Failover`: re-placement of lost members' jobs, fencing, garbage collection.
- `Reporter`: offer and quota status, gauges.
- `LatencyConfig`: the latency table from its ConfigMap, reloaded when it changes.

Who changes a job's phase: the workers, always through the `StatusWriter` and only once the
write has landed. Who changes the reservation ledger: `Market.reserve` and `Market.release`.
See docs/architecture.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from collections.abc import Callable, Coroutine
from functools import partial
from typing import Any

from interconnect.adapters.hub import Hub
from interconnect.adapters.metrics import Metrics
from interconnect.api.v1alpha1 import ComputeOffer
from interconnect.api.v1alpha1.quota import ComputeQuota
from interconnect.core.energy import GridFactor
from interconnect.core.latency import LatencyTable
from interconnect.services.catalogue import AcceleratorCatalogue
from interconnect.services.config import Settings
from interconnect.services.dispatcher import Dispatcher
from interconnect.services.energy import EnergyEstimator
from interconnect.services.events import EventRecorder
from interconnect.services.failover import Failover
from interconnect.services.job_watch import JobWatch
from interconnect.services.jobs import JobStore, StatusWriter
from interconnect.services.journal import DispatchJournal
from interconnect.services.latency_config import GridFactorConfig, LatencyConfig
from interconnect.services.market import Market
from interconnect.services.member_sync import MemberSync
from interconnect.services.members import Deletions, Members
from interconnect.services.meter import Meter
from interconnect.services.reporter import Reporter
from interconnect.services.scheduler import Scheduler
from interconnect.services.tasks import Tasks, Wake
from interconnect.services.usage_records import UsageLedger

BUDGET_EXCEEDED = "BudgetExceeded"


class Controller:
    """Builds, starts and stops the stores and workers; the kopf handlers call it."""

    def __init__(self, hub: Hub, settings: Settings, latency: LatencyTable, metrics: Metrics | None = None) -> None:
        self.hub = hub
        self.metrics = metrics or Metrics()
        self.settings = settings
        self.started = asyncio.Event()
        self.wake = Wake()
        self.tasks = Tasks()
        self.events = EventRecorder(hub, self.metrics)
        self.journal = DispatchJournal(hub, settings.namespace)
        deletions = Deletions()
        self.jobs = JobStore()
        self.writer = StatusWriter(hub, self.journal)
        self.members = Members(hub, settings, self.metrics, self.jobs, deletions, wake=self.wake,
                               started=self.started)
        self.energy = EnergyEstimator(self.members)
        self.usage_records = UsageLedger(hub, self.energy)
        self.market = Market(self.members, self.jobs, latency, self.usage_records)
        self.meter = Meter(self.jobs, self.members, self.market, self.writer, self.metrics,
                           settings.metering_interval, self.events, self.usage_records, self.energy)
        self.failover = Failover(self.jobs, self.members, self.market, self.writer, self.meter, self.journal,
                                 deletions, self.events, self.metrics, settings, self.tasks, self.usage_records,
                                 wake=self.wake)
        self.sync = MemberSync(self.jobs, self.members, self.market, self.writer, self.meter, self.failover,
                               deletions, self.events, self.metrics, self.tasks, self.usage_records, wake=self.wake,
                               started=self.started)
        self.dispatcher = Dispatcher(self.jobs, self.members, self.market, self.writer, self.journal, self.events,
                                     self.metrics, self.tasks, self.usage_records, mark_dirty=self.sync.mark_dirty,
                                     wake=self.wake, max_grace=settings.max_termination_grace)
        self.scheduler = Scheduler(self.jobs, self.members, self.market, self.writer, self.dispatcher, self.meter,
                                   self.events, self.metrics, self.wake)
        self.job_watch = JobWatch(hub, self.jobs, self.members, self.market, self.writer, self.journal,
                                  self.dispatcher, deletions, self.metrics, self.usage_records, self.meter,
                                  mark_dirty=self.sync.mark_dirty, wake=self.wake)
        self.latency = LatencyConfig(hub, settings.namespace, settings.latency_config_map, self.events,
                                     self.metrics, self._use_latency, settings.heartbeat_interval)
        self.grid_factors = GridFactorConfig(hub, settings.namespace, settings.grid_factors_config_map, self.events,
                                             self.metrics, self._use_grid_factors, settings.heartbeat_interval)
        self.reporter = Reporter(hub, self.jobs, self.members, self.market, self.journal, self.metrics,
                                 settings.heartbeat_interval)
        self.catalogue = AcceleratorCatalogue(self.members, self.wake)
        self.members.fence = self.failover.fence
        self.members.on_change = self.sync.member_changed
        self.sync.dispatcher = self.dispatcher
        self.meter.on_budget_spent = partial(self.sync.end_attempt, reason=BUDGET_EXCEEDED)
        self._loops: list[asyncio.Task[None]] = []

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Start every worker's loop (after `load`: nodes, offers, quotas, journal and jobs known)."""
        loops: dict[str, Callable[[], Coroutine[Any, Any, None]]] = {
            "job-events": self.job_watch.run, "events": self.events.run, "placement": self.scheduler.run,
            "sync": self.sync.run, "heartbeat": self.members.run, "failover": self.failover.run,
            "reporter": self.reporter.run, "metering": self.meter.run, "latency-config": self.latency.run,
            "grid-factors": self.grid_factors.run,
            "start-deadlines": lambda: self.sync.run_deadlines(self.settings.heartbeat_interval,
                                                               self.settings.start_deadline),
        }
        self._loops += [asyncio.create_task(loop(), name=name) for name, loop in loops.items()]
        self.started.set()

    async def stop(self) -> None:
        for task in self._loops:
            task.cancel()
        for task in self._loops:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self.job_watch.stop()
        await self.tasks.cancel()
        await self.journal.close()
        await self.members.close()

    def _use_latency(self, table: LatencyTable) -> None:
        self.market.latency = table
        self.wake()  # jobs waiting for a tier may fit now

    def _use_grid_factors(self, factors: dict[str, GridFactor]) -> None:
        self.energy.overrides = factors

    # ------------------------------------------------------------------ what the handlers call

    async def load_latency(self) -> None:
        """The latency table and the grid factors from their ConfigMaps (the built-in ones while
        missing or invalid)."""
        await self.latency.load()
        await self.grid_factors.load()

    async def node_changed(self, body: dict[str, Any]) -> None:
        await self.members.node_changed(body)

    def accelerator_changed(self, body: dict[str, Any]) -> None:
        self.catalogue.changed(body)

    def accelerator_deleted(self, name: str) -> None:
        self.catalogue.deleted(name)

    async def node_deleted(self, name: str) -> None:
        await self.members.node_deleted(name)

    async def drain(self, name: str) -> str | None:
        return await self.members.drain(name)

    async def offer_changed(self, body: dict[str, Any]) -> None:
        offer = ComputeOffer.model_validate(body)
        self.market.offers[offer.metadata.name] = offer
        if offer.status.observed_generation != offer.metadata.generation:
            await self.hub.patch_status("computeoffers", offer.metadata.name,
                                        {"status": {"observedGeneration": offer.metadata.generation}})
        self.wake()

    def offer_deleted(self, name: str) -> None:
        self.market.offers.pop(name, None)
        self.reporter.forget_offer(name)
        self.wake()

    async def quota_changed(self, body: dict[str, Any]) -> None:
        quota = ComputeQuota.model_validate(body)
        self.market.quota_changed(quota)
        self.reporter.forget_quota(quota.metadata.name)
        self.wake()

    def quota_deleted(self, name: str) -> None:
        quota = self.market.quota_deleted(name)
        self.reporter.forget_quota(name)
        if quota is not None:
            self.metrics.forget_quota(quota.spec.namespace)
        self.wake()

    async def load_usage(self) -> None:
        """This month's ComputeUsage records, before the first placement pass counts spend."""
        await self.usage_records.load(dt.datetime.now(dt.UTC))

    async def recover_journal(self) -> None:
        await self.job_watch.recover_journal()

    async def watch_jobs(self, timeout: float = 60.0) -> None:
        await self.job_watch.watch(timeout)
        if self.job_watch.informer is not None:
            self.reporter.hub_informers = [self.job_watch.informer]

    async def fence_all(self) -> None:
        await self.failover.fence_all()


Factory = Callable[[], Coroutine[Any, Any, Controller]]

"""The Prometheus exporter: metered usage, capacity, placements, member health and tenant quotas.

Counters are incremented by deltas of the durable usage record, after that record is written
to the ComputeJob's status, so a restart never counts the same card-hour twice. Labels are
bounded (node, offer, model, tenant, region, industry, currency): never a job UID.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Mapping
from decimal import Decimal

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics, start_http_server

from interconnect.core.energy import Energy
from interconnect.core.quota import QuotaLimit, TenantQuota, TenantUsage, catalogue_vendor

# No `<name>_created` series beside each counter and histogram: Prometheus does not use them, they
# double the exported series, and `promtool check metrics` takes the text format's `_created` samples
# for metrics of their own. Process-wide (prometheus_client reads it when a metric is created).
disable_created_metrics()  # type: ignore[no-untyped-call]

USAGE_LABELS = ("node", "offer", "gpu_model", "tenant", "region", "industry", "currency")
LOOPS = ("placement", "sync", "start-deadline", "metering", "failover", "heartbeat", "credentials", "job-events",
         "usage-records", "quota-status", "offer-status", "latency-config", "grid-factors")
"""The loops whose errors ``interconnect_reconcile_errors_total`` counts: each series exists at 0 from
the start, so that a loop's first error shows in ``increase()`` and a quiet loop still has a series."""
DISPATCH_STAGES = ("watch", "queue", "journal", "member-create")
STAGE_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.card_hours = Counter("interconnect_card_hours", "Card-hours metered (GPUs x running time).",
                                  USAGE_LABELS, registry=r)
        self.cost = Counter("interconnect_cost", "Cost metered, in the offer's currency.", USAGE_LABELS, registry=r)
        self.pflops_hours = Counter("interconnect_compute_pflops_hours", "Normalised compute metered: card-hours x "
                                    "the model's dense TFLOPS at the precision / 1000 (the accelerator catalogue), "
                                    "for models whose catalogue entry has that figure.",
                                    (*USAGE_LABELS, "vendor", "precision"), registry=r)
        self.energy_kwh = Counter("interconnect_energy_kwh", "Estimated energy of the metered card-hours: "
                                  "card-hours x the model's board power x the node's PUE, in kWh, by kind: green "
                                  "(the node's declared green share) or grid.",
                                  (*USAGE_LABELS, "vendor", "kind"), registry=r)
        self.co2_kg = Counter("interconnect_co2_kg", "Estimated CO2 of the grid part of that energy, in kg (the "
                              "province's grid emission factor).", (*USAGE_LABELS, "vendor"), registry=r)
        self.offered_card_seconds = Counter("interconnect_offered_card_seconds", "Cards offered (the offers' "
                                            "cards on a Ready node, valid now) x seconds: the denominator of "
                                            "utilisation.", ("node", "region", "industry", "gpu_model", "vendor"),
                                            registry=r)
        self.node_ready_seconds = Counter("interconnect_node_ready_seconds", "Seconds the node was Ready, as the "
                                          "operator observed it.", ("node", "region", "industry"), registry=r)
        self.node_observed_seconds = Counter("interconnect_node_observed_seconds", "Seconds the operator watched "
                                             "the node (availability = ready / observed).",
                                             ("node", "region", "industry"), registry=r)
        self.node_pue = Gauge("interconnect_node_pue", "The node's declared PUE (1 when it declares none).",
                              ("node",), registry=r)
        self.node_green_share = Gauge("interconnect_node_green_share", "The node's declared green-power share for "
                                      "the current month (0 to 1).", ("node",), registry=r)
        self.offer_cards = Gauge("interconnect_offer_cards", "Cards of an offer by state (total, free, reserved, "
                                 "in_use).", ("offer", "node", "gpu_model", "state"), registry=r)
        self.jobs = Gauge("interconnect_jobs", "ComputeJobs by phase.", ("phase",), registry=r)
        self.member_ready = Gauge("interconnect_member_ready", "1 when the member is Ready.",
                                  ("node", "identity_code", "region", "type", "industry"), registry=r)
        self.heartbeat_age = Gauge("interconnect_member_heartbeat_age_seconds",
                                   "Seconds since the member last answered.", ("node",), registry=r)
        self.member_api_errors = Counter("interconnect_member_api_errors", "Failed calls to a member's API.",
                                         ("node",), registry=r)
        self.placement_seconds = Histogram("interconnect_placement_duration_seconds",
                                           "Time to decide one job's placement.", registry=r,
                                           buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5))
        self.placements = Counter("interconnect_placements", "Placement decisions by result (placed, "
                                  "unschedulable).", ("result",), registry=r)
        self.unschedulable = Gauge("interconnect_unschedulable_jobs", "Pending jobs that fit nowhere, by the "
                                   "most common reason.", ("reason",), registry=r)
        self.dispatch_latency = Histogram("interconnect_dispatch_latency_seconds",
                                          "From ComputeJob creation to the member Job (stage=created) and to "
                                          "its first running pod (stage=running).", ("stage",),
                                          buckets=LATENCY_BUCKETS, registry=r)
        self.dispatch_stage = Histogram("interconnect_dispatch_stage_seconds",
                                        "Where dispatch time goes, per stage: watch (hub creation to the "
                                        "operator's watch; the creation timestamp has whole seconds), queue "
                                        "(seen to placed), journal (placed to durable), member-create (durable "
                                        "to the member Job created).", ("stage",),
                                        buckets=STAGE_BUCKETS, registry=r)
        for stage in DISPATCH_STAGES:
            self.dispatch_stage.labels(stage=stage)
        self.reconcile_errors = Counter("interconnect_reconcile_errors", "Errors in the operator's loops (one "
                                        "job's or object's failure each: the loop goes on with the others).",
                                        ("loop",), registry=r)
        for loop in LOOPS:
            self.reconcile_errors.labels(loop=loop)
        self.unreadable_objects = Counter("interconnect_unreadable_objects", "Objects a watch skipped because "
                                          "they could not be read (e.g. a quantity that is not one), by cluster "
                                          "(a member's ComputeNode name, or hub) and kind.", ("cluster", "kind"),
                                          registry=r)
        self.watch_restarts = Gauge("interconnect_watch_restarts", "Restarts of the watches on a member.",
                                    ("node",), registry=r)
        self.queue_depth = Gauge("interconnect_pending_queue_depth", "Jobs waiting for placement.", registry=r)
        self.journal_placements = Gauge("interconnect_dispatch_journal_placements", "Placements durable in the "
                                        "dispatch journal whose ComputeJob status does not show them yet.",
                                        registry=r)
        self.lost_card_hours = Counter("interconnect_lost_card_hours", "Card-hours that superseded attempts ran "
                                       "after their node was declared lost: recorded, not charged.",
                                       USAGE_LABELS, registry=r)
        self.failovers = Counter("interconnect_failovers", "Active jobs taken off a lost node, by outcome "
                                 "(replaced: a new attempt elsewhere; failed: failurePolicy Never).",
                                 ("node", "outcome"), registry=r)
        self.events_dropped = Counter("interconnect_events_dropped", "Normal events about ComputeJobs not posted "
                                      "because the backlog was full (a burst); their conditions say the same.",
                                      ("reason",), registry=r)
        self.active = Gauge("interconnect_operator_active", "1 in the replica that places and dispatches (it "
                            "holds the leader Lease), 0 in a standby.", registry=r)
        self.leader_epoch = Gauge("interconnect_leader_epoch", "The leader Lease's epoch while this replica "
                                  "leads (what its writes are fenced with), 0 while it does not.", registry=r)
        self.fenced_jobs = Counter("interconnect_fenced_member_jobs", "Member Jobs of superseded attempts deleted "
                                   "when their node answered again.", ("node",), registry=r)
        self.token_renewals = Counter("interconnect_member_token_renewals", "The hub's bound token for a member "
                                      "renewed before it expired (failures: interconnect_reconcile_errors_total "
                                      "{loop=\"credentials\"}).", ("node",), registry=r)
        self.token_expiry = Gauge("interconnect_member_token_expiry_timestamp_seconds", "When the hub's token for "
                                  "a member expires (Unix time); no series for other credentials.", ("node",),
                                  registry=r)
        # Tenancy (ComputeQuota): usage next to its limit; a limit the quota leaves out has no series.
        self.quota_cards_in_use = Gauge("interconnect_quota_cards_in_use", "Cards held by the tenant's active "
                                        "ComputeJobs (Scheduled, Dispatched, Running).", ("tenant",), registry=r)
        self.quota_cards_limit = Gauge("interconnect_quota_cards_limit", "The tenant's ComputeQuota "
                                       "spec.limits.cards.", ("tenant",), registry=r)
        self.quota_model_cards_in_use = Gauge("interconnect_quota_model_cards_in_use", "Cards of one GPU model held "
                                              "by the tenant's active ComputeJobs.", ("tenant", "gpu_model"),
                                              registry=r)
        self.quota_model_cards_limit = Gauge("interconnect_quota_model_cards_limit", "The tenant's ComputeQuota "
                                             "spec.limits.cardsPerModel for one GPU model.", ("tenant", "gpu_model"),
                                             registry=r)
        self.quota_vendor_cards_in_use = Gauge("interconnect_quota_vendor_cards_in_use", "Cards of one accelerator "
                                               "vendor held by the tenant's active ComputeJobs.", ("tenant", "vendor"),
                                               registry=r)
        self.quota_vendor_cards_limit = Gauge("interconnect_quota_vendor_cards_limit", "The tenant's ComputeQuota "
                                              "spec.limits.cardsPerVendor for one vendor.", ("tenant", "vendor"),
                                              registry=r)
        self.quota_pending_jobs = Gauge("interconnect_quota_pending_jobs", "The tenant's Pending ComputeJobs, held "
                                        "ones included.", ("tenant",), registry=r)
        self.quota_pending_jobs_limit = Gauge("interconnect_quota_pending_jobs_limit", "The tenant's ComputeQuota "
                                              "spec.limits.pendingJobs.", ("tenant",), registry=r)
        self.quota_spend_month = Gauge("interconnect_quota_spend_month", "The tenant's metered spend in the current "
                                       "calendar month (UTC), by currency.", ("tenant", "currency"), registry=r)
        self.quota_spend_month_limit = Gauge("interconnect_quota_spend_month_limit", "The tenant's ComputeQuota "
                                             "spec.limits.monthlySpend.", ("tenant", "currency"), registry=r)
        self.quota_held_jobs = Gauge("interconnect_quota_held_jobs", "The tenant's Pending ComputeJobs held by a "
                                     "quota limit (reason QuotaExceeded) in the last placement pass, by limit.",
                                     ("tenant", "limit"), registry=r)
        self.quota_weight = Gauge("interconnect_quota_weight", "The tenant's fair-share weight (1 without a "
                                  "ComputeQuota).", ("tenant",), registry=r)
        self.fair_share = Gauge("interconnect_fair_share", "The tenant's dominant share: cards in use divided by its "
                                "weight (among equal priorities, the lowest is placed first).", ("tenant",),
                                registry=r)
        self._quota_series: dict[str, set[tuple[Gauge, tuple[str, ...]]]] = {}
        self._owned: dict[tuple[str, str], set[tuple[Gauge | Counter, tuple[str, ...]]]] = {}
        """Series by what they are about (("offer", name), ("node", name)): see `own`."""

    def register_usage(self, labels: dict[str, str]) -> None:
        self.card_hours.labels(**labels)
        self.cost.labels(**labels)

    def add_usage(self, labels: dict[str, str], card_hours: Decimal, cost: Decimal) -> None:
        if card_hours > 0:
            self.card_hours.labels(**labels).inc(float(card_hours))
        if cost > 0:
            self.cost.labels(**labels).inc(float(cost))

    def register_compute(self, labels: dict[str, str], vendor: str, precision: str) -> None:
        self.pflops_hours.labels(**labels, vendor=vendor, precision=precision)

    def add_compute(self, labels: dict[str, str], vendor: str, precision: str, pflops_hours: Decimal) -> None:
        if pflops_hours > 0:
            self.pflops_hours.labels(**labels, vendor=vendor, precision=precision).inc(float(pflops_hours))

    def register_energy(self, labels: dict[str, str], vendor: str) -> None:
        for kind in ("green", "grid"):
            self.energy_kwh.labels(**labels, vendor=vendor, kind=kind)
        self.co2_kg.labels(**labels, vendor=vendor)

    def add_energy(self, labels: dict[str, str], vendor: str, energy: Energy) -> None:
        if energy.green_kwh > 0:
            self.energy_kwh.labels(**labels, vendor=vendor, kind="green").inc(float(energy.green_kwh))
        if energy.grid_kwh > 0:
            self.energy_kwh.labels(**labels, vendor=vendor, kind="grid").inc(float(energy.grid_kwh))
        if energy.co2_kg > 0:
            self.co2_kg.labels(**labels, vendor=vendor).inc(float(energy.co2_kg))

    def add_lost(self, labels: dict[str, str], card_hours: Decimal) -> None:
        if card_hours > 0:
            self.lost_card_hours.labels(**labels).inc(float(card_hours))

    def set_quota(
        self,
        tenant: str,
        quota: TenantQuota | None,
        usage: TenantUsage,
        *,
        share: float,
        held: Mapping[QuotaLimit, int] | None = None,
    ) -> None:
        """Export one tenant's usage, limits, weight and share; series of limits it no longer has go."""
        series: set[tuple[Gauge, tuple[str, ...]]] = set()

        def put(gauge: Gauge, value: float, *labels: str) -> None:
            gauge.labels(*labels).set(value)
            series.add((gauge, labels))

        put(self.quota_cards_in_use, usage.cards, tenant)
        put(self.quota_pending_jobs, usage.pending, tenant)
        put(self.quota_weight, 1 if quota is None else quota.weight, tenant)
        put(self.fair_share, share, tenant)
        for model, cards in usage.cards_by_model.items():
            put(self.quota_model_cards_in_use, cards, tenant, model)
        for currency, spent in usage.spent.items():
            put(self.quota_spend_month, float(spent.amount), tenant, currency)
        if quota is not None:
            if quota.cards is not None:
                put(self.quota_cards_limit, quota.cards, tenant)
            if quota.pending_jobs is not None:
                put(self.quota_pending_jobs_limit, quota.pending_jobs, tenant)
            for model, cards in quota.cards_per_model.items():
                put(self.quota_model_cards_limit, cards, tenant, model)
                if model not in usage.cards_by_model:
                    put(self.quota_model_cards_in_use, 0, tenant, model)
            for vendor, cards in quota.cards_per_vendor.items():
                put(self.quota_vendor_cards_limit, cards, tenant, vendor)
                put(self.quota_vendor_cards_in_use, usage.cards_of_vendor(vendor, catalogue_vendor), tenant, vendor)
            budget = quota.monthly_spend
            if budget is not None:
                put(self.quota_spend_month_limit, float(budget.amount), tenant, budget.currency)
                if budget.currency not in usage.spent:
                    put(self.quota_spend_month, 0, tenant, budget.currency)
        for limit in QuotaLimit:
            put(self.quota_held_jobs, (held or {}).get(limit, 0), tenant, limit.value)
        self._drop(self._quota_series.get(tenant, set()) - series)
        self._quota_series[tenant] = series

    def forget_quota(self, tenant: str) -> None:
        """Remove every tenancy series of `tenant` (its last job and its ComputeQuota are gone)."""
        self._drop(self._quota_series.pop(tenant, set()))

    def own(self, owner: tuple[str, str], series: set[tuple[Gauge | Counter, tuple[str, ...]]]) -> None:
        """The series exported now about ``owner`` (e.g. ("offer", name)); those it had before and
        not now are removed (a label changed, e.g. the node's identity code)."""
        self._drop(self._owned.get(owner, set()) - series)
        self._owned[owner] = series

    def disown(self, owner: tuple[str, str]) -> None:
        """Remove every series about ``owner`` (the offer or node is gone): a deleted object has
        no series left behind, and none stays in memory."""
        self._drop(self._owned.pop(owner, set()))

    def owners(self, kind: str) -> set[str]:
        """The names of the owners of ``kind`` that have series."""
        return {name for k, name in self._owned if k == kind}

    @staticmethod
    def _drop(series: Iterable[tuple[Gauge | Counter, tuple[str, ...]]]) -> None:
        for gauge, labels in series:
            with contextlib.suppress(KeyError):
                gauge.remove(*labels)

    def serve(self, port: int, address: str = "0.0.0.0") -> None:
        start_http_server(port, addr=address, registry=self.registry)

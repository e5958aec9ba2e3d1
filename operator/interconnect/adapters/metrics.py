"""The Prometheus exporter: metered usage, capacity, placements and member health.

Counters are incremented by deltas of the durable usage record, after that record is written
to the ComputeJob's status, so a restart never counts the same card-hour twice. Labels are
bounded (node, offer, model, tenant, region, industry, currency): never a job UID.
"""

from __future__ import annotations

from decimal import Decimal

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

USAGE_LABELS = ("node", "offer", "gpu_model", "tenant", "region", "industry", "currency")
LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.card_hours = Counter("interconnect_card_hours", "Card-hours metered (GPUs x running time).",
                                  USAGE_LABELS, registry=r)
        self.cost = Counter("interconnect_cost", "Cost metered, in the offer's currency.", USAGE_LABELS, registry=r)
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
        self.reconcile_errors = Counter("interconnect_reconcile_errors", "Errors in the operator's loops.",
                                        ("loop",), registry=r)
        self.watch_restarts = Gauge("interconnect_watch_restarts", "Restarts of the watches on a member.",
                                    ("node",), registry=r)
        self.queue_depth = Gauge("interconnect_pending_queue_depth", "Jobs waiting for placement.", registry=r)
        self.lost_card_hours = Counter("interconnect_lost_card_hours", "Card-hours that superseded attempts ran "
                                       "after their node was declared lost: recorded, not charged.",
                                       USAGE_LABELS, registry=r)
        self.failovers = Counter("interconnect_failovers", "Active jobs taken off a lost node, by outcome "
                                 "(replaced: a new attempt elsewhere; failed: failurePolicy Never).",
                                 ("node", "outcome"), registry=r)
        self.active = Gauge("interconnect_operator_active", "1 in the replica that places and dispatches (kopf "
                            "peering), 0 in a standby.", registry=r)
        self.fenced_jobs = Counter("interconnect_fenced_member_jobs", "Member Jobs of superseded attempts deleted "
                                   "when their node answered again.", ("node",), registry=r)

    def register_usage(self, labels: dict[str, str]) -> None:
        self.card_hours.labels(**labels)
        self.cost.labels(**labels)

    def add_usage(self, labels: dict[str, str], card_hours: Decimal, cost: Decimal) -> None:
        if card_hours > 0:
            self.card_hours.labels(**labels).inc(float(card_hours))
        if cost > 0:
            self.cost.labels(**labels).inc(float(cost))

    def add_lost(self, labels: dict[str, str], card_hours: Decimal) -> None:
        if card_hours > 0:
            self.lost_card_hours.labels(**labels).inc(float(card_hours))

    def serve(self, port: int, address: str = "0.0.0.0") -> None:
        start_http_server(port, addr=address, registry=self.registry)

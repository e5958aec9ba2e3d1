"""The tenancy gauges: usage next to limits, and series that go when a limit or a tenant goes."""

from __future__ import annotations

from decimal import Decimal

from prometheus_client import CollectorRegistry

from interconnect.adapters.metrics import Metrics
from interconnect.core.money import Money
from interconnect.core.quota import QuotaLimit, TenantQuota, TenantUsage


def series(registry: CollectorRegistry, prefix: str = "interconnect_quota") -> dict[tuple[str, tuple[str, ...]], float]:
    out: dict[tuple[str, tuple[str, ...]], float] = {}
    for family in registry.collect():
        for sample in family.samples:
            if sample.name.startswith((prefix, "interconnect_fair_share")):
                out[(sample.name, tuple(f"{k}={v}" for k, v in sorted(sample.labels.items())))] = sample.value
    return out


def test_usage_limits_weight_share_and_held_jobs_are_exported() -> None:
    metrics = Metrics()
    quota = TenantQuota(name="team-a", tenant="team-a", weight=2, cards=32, cards_per_model={"H800": 16},
                        pending_jobs=50, monthly_spend=Money(Decimal(1000), "CNY"))
    usage = TenantUsage(cards=12, cards_by_model={"A100": 12}, pending=60, spent={"CNY": Money(Decimal("12.5"), "CNY")})
    metrics.set_quota("team-a", quota, usage, share=6.0, held={QuotaLimit.PENDING_JOBS: 10})
    got = series(metrics.registry)
    assert got[("interconnect_quota_cards_in_use", ("tenant=team-a",))] == 12
    assert got[("interconnect_quota_cards_limit", ("tenant=team-a",))] == 32
    assert got[("interconnect_quota_model_cards_in_use", ("gpu_model=A100", "tenant=team-a"))] == 12
    assert got[("interconnect_quota_model_cards_in_use", ("gpu_model=H800", "tenant=team-a"))] == 0
    assert got[("interconnect_quota_model_cards_limit", ("gpu_model=H800", "tenant=team-a"))] == 16
    assert got[("interconnect_quota_pending_jobs", ("tenant=team-a",))] == 60
    assert got[("interconnect_quota_pending_jobs_limit", ("tenant=team-a",))] == 50
    assert got[("interconnect_quota_spend_month", ("currency=CNY", "tenant=team-a"))] == 12.5
    assert got[("interconnect_quota_spend_month_limit", ("currency=CNY", "tenant=team-a"))] == 1000
    assert got[("interconnect_quota_held_jobs", ("limit=pendingJobs", "tenant=team-a"))] == 10
    assert got[("interconnect_quota_held_jobs", ("limit=cards", "tenant=team-a"))] == 0
    assert got[("interconnect_quota_weight", ("tenant=team-a",))] == 2
    assert got[("interconnect_fair_share", ("tenant=team-a",))] == 6.0


def test_limits_removed_from_the_quota_and_forgotten_tenants_lose_their_series() -> None:
    metrics = Metrics()
    quota = TenantQuota(name="team-a", tenant="team-a", cards=32, monthly_spend=Money(Decimal(1000), "CNY"))
    metrics.set_quota("team-a", quota, TenantUsage(cards=4), share=4.0)
    metrics.set_quota("team-b", None, TenantUsage(cards=1), share=1.0)
    metrics.set_quota("team-a", TenantQuota(name="team-a", tenant="team-a"), TenantUsage(cards=4), share=4.0)
    names = {name for name, labels in series(metrics.registry) if "tenant=team-a" in labels}
    assert "interconnect_quota_cards_limit" not in names and "interconnect_quota_spend_month_limit" not in names
    assert "interconnect_quota_spend_month" not in names and "interconnect_quota_cards_in_use" in names
    metrics.forget_quota("team-a")
    assert all("tenant=team-a" not in labels for _, labels in series(metrics.registry))
    assert series(metrics.registry)[("interconnect_quota_weight", ("tenant=team-b",))] == 1

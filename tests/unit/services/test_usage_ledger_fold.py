"""The usage ledger's memory follows the jobs that exist (issue 21, "in-memory sets that only grow
are pruned"): the month's records of deleted jobs are folded into a total per tenant and currency,
and folding never changes a tenant's spend."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal

import pytest

from interconnect.adapters.metrics import Metrics
from interconnect.core.latency import LatencyTable
from interconnect.core.money import Money
from interconnect.services.controller import Controller
from interconnect.services.usage_records import UsageLedger
from tests.unit.services.test_stores import SETTINGS
from tests.unit.services.test_usage_records import HOUR, FakeHub, budgeted, pod, state_of, t


@pytest.fixture
async def hub() -> AsyncIterator[FakeHub]:
    fake = FakeHub()
    yield fake
    await fake.close()


@pytest.fixture
async def controller(hub: FakeHub) -> Controller:
    return Controller(hub, SETTINGS, LatencyTable.default(), Metrics())


def spend(controller: Controller, at: str, tenant: str = "team-a") -> Money:
    return controller.market.tenant_usage(t(at))[tenant].spent_in("CNY")


async def test_records_of_deleted_jobs_are_folded_without_changing_the_spend(controller: Controller) -> None:
    """300 deleted jobs' records (2 cards x 1 h x 8.00 = 16.00 each), one that ran across the month's
    start (half of it in November), and a job that still exists: the spend is the same once folded,
    and the ledger keeps only the records it may still be asked about."""
    controller.market.quota_changed(budgeted())
    ledger = controller.usage_records
    for i in range(300):
        await ledger.record(state_of([pod(1, "p1", "2026-11-10T08:00:00Z", HOUR)], uid=f"gone-{i}"), 1,
                            "Succeeded", None)
    await ledger.record(state_of([pod(1, "p1", "2026-10-31T23:30:00Z", HOUR)], uid="across"), 1, "Succeeded", None)
    alive = state_of([pod(1, "p1", "2026-11-11T08:00:00Z", HOUR)], uid="alive")
    await ledger.record(alive, 1, "Succeeded", None)
    controller.jobs.add(alive)
    # 300 x 16.00 + 8.00 (November's half of "across") + 16.00 ("alive", from its record only)
    expected = Money(Decimal("4824.00"), "CNY")
    assert len(ledger) == 302
    ledger._fold_at = 10**9  # below its threshold a pass folds nothing
    assert spend(controller, "2026-11-20T12:00:00Z") == expected and len(ledger) == 302
    ledger._fold_at = UsageLedger.FOLD_AFTER
    assert spend(controller, "2026-11-20T12:00:00Z") == expected
    assert {r.job_uid for r in ledger} == {"across", "alive"}, "the rest is one total"
    assert ("alive", 1) in ledger and ("gone-7", 1) not in ledger
    # Folding again (nothing left to fold) changes nothing either.
    ledger._fold_at = 0
    assert ledger.fold(t("2026-11-20T12:00:00Z"), controller.jobs) == 0
    assert spend(controller, "2026-11-20T12:00:00Z") == expected


async def test_the_folded_total_is_per_tenant_and_goes_at_the_month_turn(controller: Controller) -> None:
    controller.market.quota_changed(budgeted())
    controller.market.quota_changed(budgeted("team-b"))
    ledger = controller.usage_records
    for i in range(UsageLedger.FOLD_AFTER):
        tenant = "team-a" if i % 4 else "team-b"
        await ledger.record(state_of([pod(1, "p1", "2026-11-10T08:00:00Z", HOUR)], uid=f"j{i}", namespace=tenant),
                            1, "Succeeded", None)
    assert ledger.fold(t("2026-11-20T12:00:00Z"), controller.jobs) == UsageLedger.FOLD_AFTER
    assert len(ledger) == 0
    team_b = UsageLedger.FOLD_AFTER // 4
    assert spend(controller, "2026-11-20T12:00:00Z") == Money(Decimal(16 * (UsageLedger.FOLD_AFTER - team_b)), "CNY")
    assert spend(controller, "2026-11-20T12:00:00Z", "team-b") == Money(Decimal(16 * team_b), "CNY")
    # December: every folded record finished in November.
    assert "team-a" not in controller.market.tenant_usage(t("2026-12-01T00:10:00Z"))

"""ComputeQuota and ComputeJob objects in the core's terms, and the ComputeQuota status they give.

For the controller's placement pass (see core/quota.py and core/fair_share.py):

    quotas = {q.spec.namespace: tenant_quota(q) for q in computequotas}
    usage = market.tenant_usage(now)        # services/market.py: ComputeUsage records + unrecorded charges (quota_job)
    kept, held = within_pending_limit(requests, quotas)          # held: uid -> QuotaExceeded verdict
    queue = FairShareQueue(kept, usage, {t: q.weight for t, q in quotas.items()})
    for request in queue:
        verdict = check(quotas.get(request.namespace), queue.usage(request.namespace), request,
                        known_models=models_on_offer)
        if not verdict.allowed: hold it (reason QuotaExceeded, verdict.message); queue.skipped(request)
        decision = place(verdict.request, snapshot)
        if decision.chosen and check_estimate(quota, queue.usage(ns), decision.chosen).allowed:
            queue.placed(request, model=decision.chosen.gpu_model)
        else: queue.skipped(request)

and `quota_status(...)` for each ComputeQuota's status afterwards.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from interconnect.api.v1alpha1 import set_condition, to_api
from interconnect.api.v1alpha1.quota import WITHIN_LIMITS, ComputeQuota
from interconnect.core.money import Money
from interconnect.core.quota import TenantQuota, TenantUsage, catalogue_vendor, limits_reached

SHARE_PLACES = Decimal("0.000001")


def tenant_quota(quota: ComputeQuota) -> TenantQuota:
    limits = quota.spec.limits
    budget = limits.monthly_spend
    return TenantQuota(
        name=quota.metadata.name,
        tenant=quota.spec.namespace,
        weight=quota.spec.weight,
        cards=limits.cards,
        cards_per_model={m.model: m.cards for m in limits.cards_per_model},
        cards_per_vendor={v.vendor: v.cards for v in limits.cards_per_vendor},
        pending_jobs=limits.pending_jobs,
        monthly_spend=None if budget is None else Money.of(budget.amount, budget.currency),
        max_priority=quota.spec.max_priority,
    )


def _per_vendor(usage: TenantUsage) -> list[dict[str, Any]]:
    vendors = sorted({v for m in usage.cards_by_model if (v := catalogue_vendor(m)) is not None})
    return [{"vendor": v, "cards": usage.cards_of_vendor(v, catalogue_vendor)} for v in vendors]


def quota_status(quota: ComputeQuota, usage: TenantUsage, *, share: float, now: dt.datetime) -> dict[str, Any]:
    """The ComputeQuota's status for `usage` (a merge patch body's "status")."""
    core = tenant_quota(quota)
    status: dict[str, Any] = {
        "cardsInUse": usage.cards,
        "cardsInUsePerModel": [{"model": m, "cards": c} for m, c in sorted(usage.cards_by_model.items())],
        "cardsInUsePerVendor": _per_vendor(usage),
        "pendingJobs": usage.pending,
        "share": str(Decimal(share).quantize(SHARE_PLACES).normalize()) if share else "0",
        "observedGeneration": quota.metadata.generation,
    }
    currency = core.monthly_spend.currency if core.monthly_spend is not None else next(iter(usage.spent), None)
    if currency is not None and usage.month is not None:
        status["spentThisMonth"] = {"amount": usage.spent_in(currency).amount_text, "currency": currency,
                                    "month": str(usage.month)}
    reached = limits_reached(core, usage)
    if reached:
        first = reached[0][0]
        reason = f"{first.value[0].upper()}{first.value[1:]}LimitReached"
        message = "; ".join(text for _, text in reached)
        conditions = set_condition(quota.status.conditions, WITHIN_LIMITS, False, reason, message,
                                   quota.metadata.generation, now)
    else:
        conditions = set_condition(quota.status.conditions, WITHIN_LIMITS, True, "WithinLimits",
                                   "below every limit", quota.metadata.generation, now)
    status["conditions"] = [to_api(c) for c in conditions]
    return {k: v for k, v in status.items() if v is not None}


__all__ = ["quota_status", "tenant_quota"]

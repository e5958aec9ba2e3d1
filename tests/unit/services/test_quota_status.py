"""ComputeQuota and ComputeJob objects in the core's terms, and the status they give."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml

from interconnect.api.v1alpha1 import ComputeJob, ComputeQuota
from interconnect.core.money import Money
from interconnect.core.quota import Month, TenantUsage, tenant_usage
from interconnect.core.vocabulary import JobPhase
from interconnect.services.jobs import job_state
from interconnect.services.market import quota_job
from interconnect.services.quota import quota_status, tenant_quota

ROOT = Path(__file__).resolve().parents[3]
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def example(kind: str, name: str) -> dict[str, Any]:
    for path in sorted((ROOT / "deploy" / "examples").glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            if doc and doc["kind"] == kind and doc["metadata"]["name"] == name:
                return dict(doc)
    raise LookupError(name)


def test_the_example_quota_in_core_terms() -> None:
    q = tenant_quota(ComputeQuota.model_validate(example("ComputeQuota", "tenant-a")))
    assert (q.name, q.tenant, q.weight, q.cards, q.pending_jobs) == ("tenant-a", "tenant-a", 2, 32, 50)
    assert dict(q.cards_per_model) == {"NVIDIA-H100-80GB-HBM3": 16, "NVIDIA-H800": 16}
    assert q.monthly_spend == Money(Decimal(200000), "CNY")
    bare = tenant_quota(ComputeQuota.model_validate(example("ComputeQuota", "tenant-bank")))
    assert (bare.weight, bare.cards, bare.monthly_spend, dict(bare.cards_per_model)) == (1, 8, None, {})


def test_a_running_job_holds_its_cards_and_charges_its_attempts() -> None:
    obj = example("ComputeJob", "llm-finetune")  # 2 replicas x 8 cards
    price = {"amount": "20", "currency": "CNY", "unit": "card-hour"}
    obj["metadata"]["namespace"] = "tenant-a"
    obj["status"] = {
        "phase": "Running",
        "placement": {"node": "sh-regional", "identityCode": "CIRSH000001A", "offer": "o", "price": price,
                      "tier": "5ms", "region": "CN-SH", "gpuModel": "NVIDIA-H800", "placedAt": "2026-11-23T09:00:00Z"},
        "attempts": 2,
        "attemptHistory": [
            {"attempt": 1, "node": "gz", "memberJobName": "a1", "price": price, "outcome": "NodeLost",
             "startedAt": "2026-10-31T23:00:00Z", "finishedAt": "2026-11-01T01:00:00Z"},
            {"attempt": 2, "node": "sh-regional", "memberJobName": "a2", "price": price,
             "startedAt": "2026-11-23T10:00:00Z"},
        ],
        "usage": {"accruedUntil": "2026-11-23T11:00:00Z", "pods": [
            # Attempt 1: 16 cards for 2 h (half of it in October); attempt 2: 16 cards for 1 h.
            {"attempt": 1, "pod": "p1", "gpus": 16, "microseconds": 7_200_000_000, "finished": True},
            {"attempt": 2, "pod": "p2", "gpus": 16, "microseconds": 3_600_000_000},
        ]},
    }
    job = quota_job(job_state(ComputeJob.model_validate(obj)), NOW)
    assert (job.namespace, job.phase, job.cards, job.gpu_model) == ("tenant-a", JobPhase.RUNNING, 16, "NVIDIA-H800")
    assert [c.cost for c in job.charges] == [Money(Decimal(640), "CNY"), Money(Decimal(320), "CNY")]
    usage = tenant_usage([job], NOW)["tenant-a"]
    assert usage.cards == 16 and usage.spent_in("CNY") == Money(Decimal(640), "CNY")  # 320 + 320


def test_status_shows_usage_and_the_limits_reached() -> None:
    quota = ComputeQuota.model_validate(example("ComputeQuota", "tenant-a") | {"metadata": {"name": "tenant-a",
                                                                                            "generation": 3}})
    usage = TenantUsage(cards=32, cards_by_model={"NVIDIA-H800": 16, "NVIDIA-A100-SXM4-80GB": 16}, pending=7,
                        spent={"CNY": Money(Decimal("1234.5"), "CNY")}, month=Month(2026, 11))
    status = quota_status(quota, usage, share=16.0, now=NOW)
    assert status["cardsInUse"] == 32 and status["pendingJobs"] == 7 and status["share"] == "16"
    assert status["cardsInUsePerModel"] == [{"model": "NVIDIA-A100-SXM4-80GB", "cards": 16},
                                            {"model": "NVIDIA-H800", "cards": 16}]
    assert status["spentThisMonth"] == {"amount": "1234.50", "currency": "CNY", "month": "2026-11"}
    [condition] = status["conditions"]
    assert (condition["type"], condition["status"], condition["reason"]) == ("WithinLimits", "False",
                                                                              "CardsLimitReached")
    assert condition["message"] == "32 of 32 cards in use; 16 of 16 NVIDIA-H800 cards in use"
    assert status["observedGeneration"] == 3
    # The status is valid for the model (and so for the CRD).
    ComputeQuota.model_validate({**example("ComputeQuota", "tenant-a"), "status": status})
    calm = quota_status(quota, TenantUsage(month=Month(2026, 11)), share=0.0, now=NOW)
    assert calm["conditions"][0]["status"] == "True" and calm["spentThisMonth"]["amount"] == "0.00"

"""The fair-share queue alone: time per placement pass over 1,000 to 10,000 pending jobs.

    .venv/bin/python bench/fair_share.py [--pending 1000,10000] [--tenants 100] [--passes 20] [--json out.json]

One pass hands out every pending job in fair-share order (priority, then the tenant's share of
cards in use over its weight, then age) and reports each as placed (2 in 3) or skipped, as the
controller does; `quota` also runs each tenant's ComputeQuota check before every job and the
pending-jobs limit over the queue first. The baseline, measured in the same run, is the plain
sort the controller used before (`pending_order`: priority, age, name), which ignores tenants.
Placement itself (`place`) is not included: see bench/placement.py.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "operator"))

from interconnect.core.fair_share import FairShareQueue
from interconnect.core.placement import JobRequest, pending_order
from interconnect.core.quota import TenantQuota, TenantUsage, check, within_pending_limit
from interconnect.core.vocabulary import LatencyTier

MODELS = ("NVIDIA-A100-SXM4-80GB", "NVIDIA-H800", "NVIDIA-H20", "NVIDIA-L40S")


def pending(count: int, tenants: int, rng: random.Random, now: datetime) -> list[JobRequest]:
    # A skewed workload: a few tenants submit most of the jobs.
    weights = [1 / (t + 1) for t in range(tenants)]
    names = [f"tenant-{t:03d}" for t in range(tenants)]
    return [JobRequest(namespace=rng.choices(names, weights)[0], name=f"j{i:06d}", uid=f"u{i}",
                       gpus_per_replica=rng.choice((1, 1, 2, 4, 8)), origin="CN-SH", tier=LatencyTier.MS20,
                       priority=rng.choice((0, 0, 0, 0, 10, -5)),
                       created=now - timedelta(seconds=rng.randrange(86400))) for i in range(count)]


def one_pass(requests: list[JobRequest], usage: dict[str, TenantUsage], weights: dict[str, int],
             quotas: dict[str, TenantQuota] | None) -> int:
    placed = 0
    if quotas is not None:
        requests, _held = within_pending_limit(requests, quotas)
    queue = FairShareQueue(requests, usage, weights)
    for i, request in enumerate(queue):
        if quotas is not None:
            verdict = check(quotas.get(request.namespace), queue.usage(request.namespace), request,
                            known_models=MODELS)
            if not verdict.allowed:
                queue.skipped(request)
                continue
        if i % 3:
            queue.placed(request, model=MODELS[i % len(MODELS)])
            placed += 1
        else:
            queue.skipped(request)
    return placed


def timed(passes: int, run: Callable[[], object]) -> list[float]:
    times = []
    for _ in range(passes):
        t0 = time.perf_counter()
        run()
        times.append((time.perf_counter() - t0) * 1000)
    return times


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pending", default="1000,10000")
    parser.add_argument("--tenants", type=int, default=100)
    parser.add_argument("--passes", type=int, default=20)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    rng = random.Random(42)
    now = datetime.now(UTC)
    names = [f"tenant-{t:03d}" for t in range(args.tenants)]
    usage = {t: TenantUsage(cards=rng.randrange(64)) for t in names}
    weights = {t: rng.choice((1, 1, 2, 4)) for t in names}
    quotas = {t: TenantQuota(name=t, tenant=t, weight=weights[t], cards=rng.choice((None, 64, 256)),
                             cards_per_model={MODELS[1]: 32}, pending_jobs=rng.choice((None, 500)))
              for t in names}
    rows = []
    print(f"{'pending':>8} {'tenants':>8} {'baseline sort ms':>17} {'fair share ms':>14} {'p99':>7} "
          f"{'with quota ms':>14} {'p99':>7} {'per job us':>11}")
    for count in (int(x) for x in args.pending.split(",")):
        requests = pending(count, args.tenants, rng, now)
        baseline = timed(args.passes, partial(pending_order, requests))
        fair = timed(args.passes, partial(one_pass, requests, usage, weights, None))
        quota = timed(args.passes, partial(one_pass, requests, usage, weights, quotas))
        row = {
            "pending": count,
            "tenants": args.tenants,
            "baseline_sort_ms": statistics.median(baseline),
            "fair_share_median_ms": statistics.median(fair),
            "fair_share_p99_ms": percentile(fair, 0.99),
            "with_quota_median_ms": statistics.median(quota),
            "with_quota_p99_ms": percentile(quota, 0.99),
        }
        rows.append(row)
        print(f"{count:>8} {args.tenants:>8} {row['baseline_sort_ms']:>17.2f} {row['fair_share_median_ms']:>14.2f} "
              f"{row['fair_share_p99_ms']:>7.2f} {row['with_quota_median_ms']:>14.2f} {row['with_quota_p99_ms']:>7.2f} "
              f"{row['with_quota_median_ms'] * 1000 / count:>11.2f}")
    if args.json:
        args.json.write_text(json.dumps({"machine": platform.platform(), "python": platform.python_version(),
                                         "rows": rows}, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

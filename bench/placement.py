"""Placement alone, at scale: time per decision over 100 to 100,000 offers.

    .venv/bin/python bench/placement.py [--offers 100,1000,10000,100000] [--jobs 1,100,1000] [--json out.json]
                                        [--mixed]

``--mixed``: offers of every model of the accelerator catalogue (NVIDIA, Ascend, Cambricon, Hygon),
and a third of the jobs asking by capability (vendors, minimum BF16 TFLOPS) and another third placed
by price per PFLOPS-hour.

Prints the median and p99 time per decision for each number of offers, how it grows, and, as a
baseline measured in the same run, the cost of the simplest possible pass over the same offers
(one attribute read and one comparison per offer): the ratio says how close placement, with all
its filters and its score, comes to a bare scan.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import statistics
import sys
import time
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "operator"))

import itertools

from interconnect.core.accelerators import CATALOGUE
from interconnect.core.latency import LatencyTable
from interconnect.core.money import Money, Price
from interconnect.core.placement import JobRequest, NodeView, OfferView, PlacementSnapshot, place
from interconnect.core.regions import REGION_CODES
from interconnect.core.vocabulary import BillingUnit, LatencyTier, NodeType

MODELS = ("NVIDIA-A100-SXM4-80GB", "NVIDIA-H800", "NVIDIA-H20", "NVIDIA-L40S")


MIXED = tuple(sorted(CATALOGUE))


def market(offers: int, rng: random.Random, now: datetime, models: tuple[str, ...] = MODELS) -> PlacementSnapshot:
    nodes = [NodeView(name=f"n{i}", identity_code=None, type=NodeType.REGIONAL, region=rng.choice(REGION_CODES),
                      ready=rng.random() > 0.05, registered=True) for i in range(max(10, offers // 10))]
    views = []
    for i in range(offers):
        machine = rng.random() < 0.3
        price = Price(Money(Decimal(rng.randint(100, 4000)).scaleb(-2), "CNY"),
                      BillingUnit.MACHINE_HOUR if machine else BillingUnit.CARD_HOUR, 8 if machine else None)
        views.append(OfferView(name=f"o{i:06d}", node=rng.choice(nodes).name, gpu_model=rng.choice(models),
                               gpu_memory_gib=rng.choice((48, 80, 96)), cards_total=64,
                               cards_free=rng.randint(0, 64), price=price))
    return PlacementSnapshot.of(nodes, views, LatencyTable.default(), now)


def jobs(count: int, rng: random.Random, now: datetime, mixed: bool = False) -> list[JobRequest]:
    out = []
    for i in range(count):
        capability: dict[str, object] = {}
        if mixed and i % 3 == 1:
            capability = {"vendors": frozenset(rng.sample(("nvidia", "huawei", "cambricon", "hygon"), 2)),
                          "min_tflops": {"bf16": Decimal(rng.choice((100, 250, 400)))}}
        elif mixed and i % 3 == 2:
            capability = {"price_basis": "pflops-hour"}
        out.append(JobRequest(namespace="bench", name=f"j{i}", uid=f"u{i}", gpus_per_replica=rng.choice((1, 2, 4, 8)),
                              replicas=rng.choice((1, 1, 2)), origin=rng.choice(REGION_CODES),
                              tier=rng.choice(tuple(LatencyTier)), max_price=Money(Decimal(rng.randint(5, 40)), "CNY"),
                              created=now, **capability))  # type: ignore[arg-type]
    return out


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--offers", default="100,1000,10000,100000")
    parser.add_argument("--jobs", type=int, default=200, help="pending jobs placed against each market")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--mixed", action="store_true", help="every vendor's models, jobs asking by capability")
    args = parser.parse_args()
    rng = random.Random(42)
    now = datetime.now(UTC)
    rows = []
    print(f"{'offers':>8} {'median ms':>10} {'p99 ms':>8} {'scan ms':>8} {'ratio':>7} {'placed':>7}")
    for offers in (int(x) for x in args.offers.split(",")):
        snapshot = market(offers, rng, now, MIXED if args.mixed else MODELS)
        pending = jobs(args.jobs if offers <= 10000 else max(20, args.jobs // 10), rng, now, args.mixed)
        times, placed = [], 0
        for job in pending:
            t0 = time.perf_counter()
            decision = place(job, snapshot)
            times.append((time.perf_counter() - t0) * 1000)
            placed += decision.chosen is not None
        scans = []
        for _ in range(5):
            t0 = time.perf_counter()
            best = min((o.price.amount.amount for o in snapshot.offers if o.cards_free >= 8), default=None)
            scans.append((time.perf_counter() - t0) * 1000)
        assert best is not None
        median, p99, scan = statistics.median(times), percentile(times, 0.99), statistics.median(scans)
        rows.append({"offers": offers, "jobs": len(pending), "median_ms": median, "p99_ms": p99,
                     "bare_scan_ms": scan, "ratio_to_scan": median / scan, "placed": placed})
        print(f"{offers:>8} {median:>10.3f} {p99:>8.3f} {scan:>8.3f} {median / scan:>7.1f} {placed:>7}")
    for a, b in itertools.pairwise(rows):
        print(f"x{b['offers'] / a['offers']:.0f} offers -> x{b['median_ms'] / a['median_ms']:.1f} time")
    result = {"date": now.isoformat(), "machine": f"{platform.node()} {platform.processor()} "
              f"{platform.python_version()}", "rows": rows}
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

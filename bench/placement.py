"""Placement alone, at scale: the full scan against placement through the offer index.

    .venv/bin/python bench/placement.py [--offers 1000,10000,100000] [--jobs 200] [--mixed-offers 10000]
                                        [--pass-jobs 10000] [--pass-offers 10000] [--pass-scan-jobs 10000]
                                        [--json out.json]

Prints, in one run and on the same markets and jobs:

- per decision, median and p99 ms of `place_by_scan` (every offer through every filter: the
  reference) and of `place` (through `core.offer_index`), the ratio, and the index's build time,
  for each number of offers (100,000 offers: the scan over the first 30 jobs only, it takes
  ~0.4 s a decision); each decision of both is checked to choose the same offer;
- the same on the ``--mixed`` market: offers of every model of the accelerator catalogue
  (NVIDIA, Ascend, Cambricon, Hygon), a third of the jobs asking by capability (vendors,
  minimum BF16 TFLOPS) and another third placed by price per PFLOPS-hour (issue 18);
- one pass over N pending jobs and M offers as the scheduler runs it: place each job in turn
  and take its cards from the chosen offer and from every offer of its node and model through
  `PlacementSnapshot.with_offer` (snapshot and index building included), with the scan and with
  the index; and a "full market" pass, where few cards are free and most jobs do not fit, in
  which the explanation of each unplaced job is read as the scheduler does (its summary is
  written to the job's status): the index's "nothing fits" is fast, the explanation is a scan.
"""

from __future__ import annotations

import argparse
import itertools
import json
import platform
import random
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "operator"))

from interconnect.core.accelerators import CATALOGUE
from interconnect.core.latency import LatencyTable
from interconnect.core.money import Money, Price
from interconnect.core.placement import (
    Decision,
    JobRequest,
    NodeView,
    OfferView,
    PlacementSnapshot,
    place,
    place_by_scan,
)
from interconnect.core.regions import REGION_CODES
from interconnect.core.vocabulary import BillingUnit, LatencyTier, NodeType

MODELS = ("NVIDIA-A100-SXM4-80GB", "NVIDIA-H800", "NVIDIA-H20", "NVIDIA-L40S")
MIXED = tuple(sorted(CATALOGUE))


def market(offers: int, rng: random.Random, now: datetime, models: tuple[str, ...] = MODELS,
           most_free: int = 64) -> PlacementSnapshot:
    nodes = [NodeView(name=f"n{i}", identity_code=None, type=NodeType.REGIONAL, region=rng.choice(REGION_CODES),
                      ready=rng.random() > 0.05, registered=True) for i in range(max(10, offers // 10))]
    views = []
    for i in range(offers):
        machine = rng.random() < 0.3
        price = Price(Money(Decimal(rng.randint(100, 4000)).scaleb(-2), "CNY"),
                      BillingUnit.MACHINE_HOUR if machine else BillingUnit.CARD_HOUR, 8 if machine else None)
        views.append(OfferView(name=f"o{i:06d}", node=rng.choice(nodes).name, gpu_model=rng.choice(models),
                               gpu_memory_gib=rng.choice((48, 80, 96)), cards_total=64,
                               cards_free=rng.randint(0, most_free), price=price))
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


def timed(how: Callable[[JobRequest, PlacementSnapshot], Decision], pending: list[JobRequest],
          snapshot: PlacementSnapshot) -> tuple[list[float], list[str | None]]:
    times, chosen = [], []
    for job in pending:
        t0 = time.perf_counter()
        decision = how(job, snapshot)
        times.append((time.perf_counter() - t0) * 1000)
        chosen.append(None if decision.chosen is None else decision.chosen.offer)
    return times, chosen


def per_decision(label: str, offers: int, snapshot: PlacementSnapshot, pending: list[JobRequest],
                 scan_jobs: int) -> dict[str, Any]:
    t0 = time.perf_counter()
    snapshot._offer_index()  # built by the first `place`; timed apart here
    build_ms = (time.perf_counter() - t0) * 1000
    indexed, chosen = timed(place, pending, snapshot)
    scan, scan_chosen = timed(place_by_scan, pending[:scan_jobs], snapshot)
    if scan_chosen != chosen[:scan_jobs]:
        raise SystemExit(f"{label} {offers}: the index chose differently from the scan")
    row = {"market": label, "offers": offers, "jobs": len(pending), "scan_jobs": len(scan),
           "scan_median_ms": statistics.median(scan), "scan_p99_ms": percentile(scan, 0.99),
           "median_ms": statistics.median(indexed), "p99_ms": percentile(indexed, 0.99),
           "index_build_ms": build_ms, "placed": sum(c is not None for c in chosen)}
    row["median_ratio"] = row["scan_median_ms"] / row["median_ms"]
    row["p99_ratio"] = row["scan_p99_ms"] / row["p99_ms"]
    print(f"{label:>7} {offers:>8} {row['scan_median_ms']:>9.3f} {row['scan_p99_ms']:>9.3f} {row['median_ms']:>9.3f} "
          f"{row['p99_ms']:>8.3f} {row['median_ratio']:>7.0f}x {row['p99_ratio']:>6.0f}x {build_ms:>9.1f} "
          f"{row['placed']:>4}/{len(pending)}", flush=True)
    return row


def one_pass(how: Callable[[JobRequest, PlacementSnapshot], Decision], pending: list[JobRequest],
             snapshot: PlacementSnapshot, explain_unplaced: bool) -> tuple[float, float, list[str | None]]:
    """The scheduler's pass (services/scheduler.py), less its I/O: (seconds, of which explaining, choices)."""
    started = time.perf_counter()
    snapshot = PlacementSnapshot.of(snapshot.nodes.values(), snapshot.offers, snapshot.latency, snapshot.now)
    by_machine: dict[tuple[str, str], list[str]] = {}
    for offer in snapshot.offers:
        by_machine.setdefault((offer.node, offer.gpu_model), []).append(offer.name)
    sharing = {offer.name: by_machine[offer.node, offer.gpu_model] for offer in snapshot.offers}  # as the market's
    explaining, chosen = 0.0, []
    for job in pending:
        decision = how(job, snapshot)
        if decision.chosen is None:
            chosen.append(None)
            if explain_unplaced:
                t0 = time.perf_counter()
                _ = decision.summary, decision.top_reason, decision.reason_counts, decision.first_rejected(100)
                explaining += time.perf_counter() - t0
            continue
        chosen.append(decision.chosen.offer)
        _ = snapshot.cards_free(decision.chosen.offer)  # what the scheduler reserves against
        snapshot = snapshot.with_cards_taken(sharing[decision.chosen.offer], job.cards)
    return time.perf_counter() - started, explaining, chosen


def passes(label: str, snapshot: PlacementSnapshot, pending: list[JobRequest], scan_jobs: int,
           explain_unplaced: bool) -> dict[str, Any]:
    # Three times, as the scheduler runs pass after pass in one process: the median, and the first
    # (cold: the interpreter's caches and the allocator's arenas not yet warm) apart.
    runs = [one_pass(place, pending, snapshot, explain_unplaced) for _ in range(3)]
    first_s = runs[0][0]
    indexed_s, indexed_explaining, chosen = sorted(runs, key=lambda run: run[0])[1]
    scan_s, _, scan_chosen = one_pass(place_by_scan, pending[:scan_jobs], snapshot, explain_unplaced)
    if scan_chosen != chosen[:scan_jobs]:
        raise SystemExit(f"{label}: the index chose differently from the scan")
    if scan_jobs < len(pending):  # per job, as measured
        scan_s = scan_s * len(pending) / scan_jobs
    placed = sum(c is not None for c in chosen)
    row = {"pass": label, "jobs": len(pending), "offers": len(snapshot.offers), "scan_s": scan_s,
           "scan_jobs_measured": scan_jobs, "indexed_s": indexed_s, "explaining_s": indexed_explaining,
           "ratio": scan_s / indexed_s, "placed": placed, "indexed_first_s": first_s,
           "indexed_runs_s": [run[0] for run in runs]}
    print(f"{label:>28} {len(pending):>6} x {len(snapshot.offers):<7} scan {scan_s:>7.2f} s  indexed "
          f"{indexed_s:>6.2f} s (median of 3; first {first_s:.2f} s; explaining unplaced {indexed_explaining:.2f} s)"
          f"  {row['ratio']:>5.1f}x  "
          f"placed {placed}/{len(pending)}" + (f"  (scan: {scan_jobs} jobs measured, scaled)"
                                               if scan_jobs < len(pending) else ""), flush=True)
    return row


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--offers", default="1000,10000,100000")
    parser.add_argument("--jobs", type=int, default=200, help="pending jobs placed against each market")
    parser.add_argument("--mixed-offers", default="10000", help="sizes of the mixed-vendor market ('' for none)")
    parser.add_argument("--pass-jobs", type=int, default=10000)
    parser.add_argument("--pass-offers", type=int, default=10000)
    parser.add_argument("--pass-scan-jobs", type=int, default=10000,
                        help="jobs of each pass run with the scan (fewer: the scan's pass time is scaled up)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    rng = random.Random(42)
    now = datetime.now(UTC)
    rows = []
    print(f"{'market':>7} {'offers':>8} {'scan p50':>9} {'scan p99':>9} {'index p50':>9} {'idx p99':>8} "
          f"{'p50 gain':>8} {'p99 gain':>7} {'build ms':>9} {'placed':>8}   (ms per decision)")
    for offers in (int(x) for x in args.offers.split(",") if x):
        snapshot = market(offers, rng, now)
        pending = jobs(args.jobs, rng, now)
        rows.append(per_decision("plain", offers, snapshot, pending, 30 if offers > 10000 else len(pending)))
    for offers in (int(x) for x in args.mixed_offers.split(",") if x):
        snapshot = market(offers, rng, now, MIXED)
        pending = jobs(args.jobs, rng, now, mixed=True)
        rows.append(per_decision("mixed", offers, snapshot, pending, 30 if offers > 10000 else len(pending)))
    for a, b in itertools.pairwise([r for r in rows if r["market"] == "plain"]):
        print(f"x{b['offers'] / a['offers']:.0f} offers -> scan x{b['scan_median_ms'] / a['scan_median_ms']:.1f}, "
              f"index x{b['median_ms'] / a['median_ms']:.1f} (median)")
    pass_rows = []
    if args.pass_jobs:
        snapshot = market(args.pass_offers, rng, now)
        pending = jobs(args.pass_jobs, rng, now)
        pass_rows.append(passes("pass", snapshot, pending, args.pass_scan_jobs, explain_unplaced=True))
        full = market(args.pass_offers, rng, now, most_free=4)  # few cards free: most jobs fit nowhere
        pass_rows.append(passes("pass, full market, explained", full, pending, args.pass_scan_jobs,
                                explain_unplaced=True))
        pass_rows.append(passes("pass, full market, unread", full, pending, args.pass_scan_jobs,
                                explain_unplaced=False))
    result = {"date": now.isoformat(), "machine": f"{platform.node()} {platform.processor()} "
              f"{platform.python_version()}", "rows": rows, "passes": pass_rows}
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The usage report for billing: card-hours and cost of completed jobs, grouped.

It reads the durable record (the ComputeJobs' status.usage), so its totals equal the increase
of the Prometheus counters over the same jobs. Pure: it takes the job objects as read.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

GROUPS = ("node", "tenant", "region", "industry", "offer", "gpu-model")


@dataclass(frozen=True, slots=True)
class Row:
    group: str
    currency: str
    jobs: int
    card_hours: Decimal
    cost: Decimal


def _time(text: str | None) -> dt.datetime | None:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")) if text else None


def _key(job: Mapping[str, Any], group_by: str) -> str:
    status = job.get("status") or {}
    placement = status.get("placement") or {}
    match group_by:
        case "node":
            return str(placement.get("identityCode") or placement.get("node") or "-")
        case "tenant":
            return str(job["metadata"].get("namespace", "-"))
        case "region":
            return str(placement.get("region") or "-")
        case "industry":
            return str(placement.get("industry") or "none")
        case "offer":
            return str(placement.get("offer") or "-")
        case "gpu-model":
            return str(placement.get("gpuModel") or "-")
    raise ValueError(f"--group-by must be one of {', '.join(GROUPS)}, not {group_by!r}")


def usage_rows(jobs: Iterable[Mapping[str, Any]], *, since: dt.datetime, until: dt.datetime,
               group_by: str) -> list[Row]:
    """Completed jobs (completionTime in [since, until)) summed per group and currency."""
    totals: dict[tuple[str, str], list[Any]] = {}
    for job in jobs:
        status = job.get("status") or {}
        done = _time(status.get("completionTime"))
        usage = status.get("usage") or {}
        if done is None or not since <= done < until or not usage:
            continue
        key = (_key(job, group_by), usage.get("currency") or "-")
        entry = totals.setdefault(key, [0, Decimal(0), Decimal(0)])
        entry[0] += 1
        entry[1] += Decimal(usage.get("cardHours", "0"))
        entry[2] += Decimal(usage.get("cost", "0"))
    return [Row(g, c, n, h, cost) for (g, c), (n, h, cost) in sorted(totals.items())]


def render(rows: list[Row], fmt: str, group_by: str) -> str:
    records = [{group_by: r.group, "currency": r.currency, "jobs": r.jobs, "cardHours": str(r.card_hours),
                "cost": str(r.cost)} for r in rows]
    if fmt == "json":
        return json.dumps(records, indent=2)
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=[group_by, "currency", "jobs", "cardHours", "cost"])
        writer.writeheader()
        writer.writerows(records)
        return out.getvalue()
    header = (group_by.upper(), "CURRENCY", "JOBS", "CARD-HOURS", "COST")
    lines = [header] + [(r.group, r.currency, str(r.jobs), f"{r.card_hours:.6f}", f"{r.cost:.2f}") for r in rows]
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    return "\n".join("   ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip()
                     for line in lines)

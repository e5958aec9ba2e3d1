"""The usage report for billing: card-hours and cost of finished attempts, grouped.

It reads the bill itself, the ComputeUsage records (one per finished attempt, written once by
the operator before the attempt's end is in its job's status), never the ComputeJobs: deleting a
job does not change it. An attempt counts in the period its record's finishedAt falls in. Pure:
it takes the records as read.
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

import yaml

GROUPS = ("node", "tenant", "region", "industry", "offer", "gpu-model")
MONTH_LABEL = "interconnect.dev/month"
MAX_SELECTED_MONTHS = 24
"""A period of more months than this lists every record instead of selecting them by month."""


@dataclass(frozen=True, slots=True)
class Row:
    group: str
    currency: str
    jobs: int
    """Distinct ComputeJobs with an attempt in the group."""
    card_hours: Decimal
    cost: Decimal
    attempts: int = 0
    """Attempts (ComputeUsage records) in the group."""


def _time(text: str | None) -> dt.datetime | None:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")) if text else None


def _key(spec: Mapping[str, Any], group_by: str) -> str:
    match group_by:
        case "node":
            return str(spec.get("identityCode") or spec.get("node") or "-")
        case "tenant":
            return str(spec.get("tenant") or "-")
        case "region":
            return str(spec.get("region") or "-")
        case "industry":
            return str(spec.get("industry") or "none")
        case "offer":
            return str(spec.get("offer") or "-")
        case "gpu-model":
            return str(spec.get("gpuModel") or "-")
    raise ValueError(f"--group-by must be one of {', '.join(GROUPS)}, not {group_by!r}")


def month_selector(since: dt.datetime, until: dt.datetime) -> str | None:
    """The label selector of the records that can fall in [since, until): their month label (the
    month of finishedAt) is one of the months the period overlaps. None when that is more than
    `MAX_SELECTED_MONTHS` months: list every record."""
    first = since.astimezone(dt.UTC)
    year, month = first.year, first.month
    months = [f"{year:04d}-{month:02d}"]
    while True:
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
        if dt.datetime(year, month, 1, tzinfo=dt.UTC) >= until:
            break
        months.append(f"{year:04d}-{month:02d}")
        if len(months) > MAX_SELECTED_MONTHS:
            return None
    return f"{MONTH_LABEL} in ({','.join(months)})"


def usage_rows(records: Iterable[Mapping[str, Any]], *, since: dt.datetime, until: dt.datetime,
               group_by: str) -> list[Row]:
    """ComputeUsage records whose attempt finished in [since, until), summed per group and currency."""
    totals: dict[tuple[str, str], tuple[set[str], list[Decimal]]] = {}
    attempts: dict[tuple[str, str], int] = {}
    for record in records:
        spec = record.get("spec") or {}
        done = _time(spec.get("finishedAt"))
        if done is None or not since <= done < until:
            continue
        key = (_key(spec, group_by), spec.get("currency") or "-")
        jobs, sums = totals.setdefault(key, (set(), [Decimal(0), Decimal(0)]))
        attempts[key] = attempts.get(key, 0) + 1
        jobs.add(str(spec.get("jobUID") or record.get("metadata", {}).get("name")))
        sums[0] += Decimal(spec.get("cardHours", "0"))
        sums[1] += Decimal(spec.get("cost", "0"))
    return [Row(g, c, len(jobs), hours, cost, attempts[(g, c)])
            for (g, c), (jobs, (hours, cost)) in sorted(totals.items())]


FORMATS = ("table", "wide", "json", "yaml", "csv")


def render(rows: list[Row], fmt: str, group_by: str) -> str:
    """The rows as a table (``wide``: with the number of attempts), JSON, YAML or CSV."""
    records = [{group_by: r.group, "currency": r.currency, "jobs": r.jobs, "cardHours": str(r.card_hours),
                "cost": str(r.cost)} for r in rows]
    if fmt == "json":
        return json.dumps(records, indent=2)
    if fmt == "yaml":
        return yaml.safe_dump(records, sort_keys=False).rstrip("\n") if records else "[]"
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=[group_by, "currency", "jobs", "cardHours", "cost"])
        writer.writeheader()
        writer.writerows(records)
        return out.getvalue()
    if fmt not in ("table", "wide"):
        raise ValueError(f"output must be one of {', '.join(FORMATS)}, not {fmt!r}")
    wide = fmt == "wide"
    header = (group_by.upper(), "CURRENCY", "JOBS", *(("ATTEMPTS",) if wide else ()), "CARD-HOURS", "COST")
    lines = [header] + [(r.group, r.currency, str(r.jobs), *((str(r.attempts),) if wide else ()),
                         f"{r.card_hours:.6f}", f"{r.cost:.2f}") for r in rows]
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    return "\n".join("   ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip()
                     for line in lines)

import datetime as dt
import json
from decimal import Decimal

from interconnect.cli.report import render, usage_rows

T0 = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)


def job(ns: str, node: str, hours: str, cost: str, done: str | None, industry: str | None = None) -> dict:
    placement = {"node": node, "identityCode": f"CI-{node}", "region": "CN-GZ", "offer": "o", "gpuModel": "A100"}
    if industry:
        placement["industry"] = industry
    status = {"placement": placement, "usage": {"cardHours": hours, "cost": cost, "currency": "CNY"}}
    if done:
        status["completionTime"] = done
    return {"metadata": {"namespace": ns, "name": "j"}, "status": status}


JOBS = [
    job("a", "gz", "1.5", "12.00", "2026-11-02T00:00:00Z"),
    job("a", "gz", "0.25", "2.00", "2026-11-03T00:00:00Z", industry="finance"),
    job("b", "sh", "2", "56.00", "2026-11-03T00:00:00Z"),
    job("b", "sh", "9", "99.00", None),  # still running: not billed yet
    job("c", "sh", "9", "99.00", "2026-12-02T00:00:00Z"),  # outside the period
]


def test_groups_completed_jobs_in_the_period() -> None:
    rows = usage_rows(JOBS, since=T0, until=T0 + dt.timedelta(days=30), group_by="tenant")
    assert [(r.group, r.jobs, r.card_hours, r.cost) for r in rows] == [
        ("a", 2, Decimal("1.75"), Decimal("14.00")), ("b", 1, Decimal("2"), Decimal("56.00"))]


def test_group_by_industry_and_formats() -> None:
    rows = usage_rows(JOBS, since=T0, until=T0 + dt.timedelta(days=30), group_by="industry")
    assert {r.group: r.card_hours for r in rows} == {"finance": Decimal("0.25"), "none": Decimal("3.5")}
    data = json.loads(render(rows, "json", "industry"))
    assert data[0]["industry"] == "finance" and data[0]["cardHours"] == "0.25"
    assert render(rows, "csv", "industry").splitlines()[0] == "industry,currency,jobs,cardHours,cost"
    assert "CARD-HOURS" in render(rows, "table", "industry")

"""The usage report reads the bill, the ComputeUsage records: per attempt, by when it finished, grouped."""

import datetime as dt
import json
from decimal import Decimal
from typing import Any

import pytest

from interconnect.cli.report import GROUPS, month_selector, render, usage_rows

T0 = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)


def record(ns: str, uid: str, attempt: int, node: str, hours: str, cost: str, finished: str,
           industry: str | None = None, **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "tenant": ns, "jobName": f"job-{uid}", "jobUID": uid, "attempt": attempt, "node": node,
        "identityCode": f"CI-{node}", "region": "CN-GZ" if node == "gz" else "CN-SH", "offer": f"{node}-a100",
        "gpuModel": "A100", "price": {"amount": "8", "currency": "CNY", "unit": "card-hour"},
        "cardHours": hours, "cost": cost, "currency": "CNY", "finishedAt": finished, "month": finished[:7],
        "outcome": "Succeeded", **spec}
    if industry:
        body["industry"] = industry
    return {"metadata": {"name": f"{uid}-{attempt}"}, "spec": body}


RECORDS = [
    record("a", "u1", 1, "gz", "1.5", "12.00", "2026-11-02T00:00:00Z"),
    record("a", "u2", 1, "gz", "0.25", "2.00", "2026-11-03T00:00:00Z", industry="finance"),
    # One job, two attempts (the first lost with its node, the second elsewhere): one job, both charged.
    record("b", "u3", 1, "gz", "0.5", "4.00", "2026-11-03T00:00:00Z", outcome="NodeLost"),
    record("b", "u3", 2, "sh", "2", "56.00", "2026-11-04T00:00:00Z"),
    record("c", "u4", 1, "sh", "9", "99.00", "2026-12-02T00:00:00Z"),  # finished outside the period
    record("c", "u5", 1, "sh", "1", "28.00", "2026-10-31T23:59:59Z"),  # just before it
]


def test_groups_the_records_of_attempts_finished_in_the_period() -> None:
    rows = usage_rows(RECORDS, since=T0, until=T0 + dt.timedelta(days=30), group_by="tenant")
    assert [(r.group, r.jobs, r.card_hours, r.cost) for r in rows] == [
        ("a", 2, Decimal("1.75"), Decimal("14.00")), ("b", 1, Decimal("2.5"), Decimal("60.00"))]


def test_the_period_is_half_open_on_finishedAt() -> None:
    until = dt.datetime(2026, 11, 3, tzinfo=dt.UTC)
    rows = usage_rows(RECORDS, since=dt.datetime(2026, 10, 31, 23, 59, 59, tzinfo=dt.UTC), until=until,
                      group_by="tenant")
    assert {r.group: r.cost for r in rows} == {"a": Decimal("12.00"), "c": Decimal("28.00")}


@pytest.mark.parametrize(("group_by", "expected"), [
    ("node", {"CI-gz": Decimal("18.00"), "CI-sh": Decimal("56.00")}),
    ("region", {"CN-GZ": Decimal("18.00"), "CN-SH": Decimal("56.00")}),
    ("industry", {"finance": Decimal("2.00"), "none": Decimal("72.00")}),
    ("offer", {"gz-a100": Decimal("18.00"), "sh-a100": Decimal("56.00")}),
    ("gpu-model", {"A100": Decimal("74.00")}),
])
def test_every_grouping(group_by: str, expected: dict[str, Decimal]) -> None:
    assert group_by in GROUPS
    rows = usage_rows(RECORDS, since=T0, until=T0 + dt.timedelta(days=30), group_by=group_by)
    assert {r.group: r.cost for r in rows} == expected


def test_a_record_without_identity_code_groups_by_its_node_name() -> None:
    bare = record("a", "u9", 1, "gz", "1", "8.00", "2026-11-05T00:00:00Z")
    del bare["spec"]["identityCode"], bare["spec"]["region"]
    rows = usage_rows([bare], since=T0, until=T0 + dt.timedelta(days=30), group_by="node")
    assert [r.group for r in rows] == ["gz"]
    assert [r.group for r in usage_rows([bare], since=T0, until=T0 + dt.timedelta(days=30),
                                        group_by="region")] == ["-"]


def test_formats() -> None:
    rows = usage_rows(RECORDS, since=T0, until=T0 + dt.timedelta(days=30), group_by="industry")
    data = json.loads(render(rows, "json", "industry"))
    assert data[0] == {"industry": "finance", "currency": "CNY", "jobs": 1, "cardHours": "0.25", "cost": "2.00"}
    assert render(rows, "csv", "industry").splitlines()[0] == "industry,currency,jobs,cardHours,cost"
    assert "CARD-HOURS" in render(rows, "table", "industry")


def test_only_the_months_the_period_overlaps_are_listed() -> None:
    label = "interconnect.dev/month"
    assert month_selector(T0, T0 + dt.timedelta(days=30)) == f"{label} in (2026-11)"
    assert month_selector(dt.datetime(2026, 10, 15, tzinfo=dt.UTC), T0 + dt.timedelta(days=15)) == (
        f"{label} in (2026-10,2026-11)")
    assert month_selector(dt.datetime(2026, 12, 15, tzinfo=dt.UTC), dt.datetime(2027, 1, 1, 0, 0, 1, tzinfo=dt.UTC)) \
        == f"{label} in (2026-12,2027-01)"
    # A period given in another time zone counts in UTC months, as the records are labelled.
    cst = dt.timezone(dt.timedelta(hours=8))
    assert month_selector(dt.datetime(2026, 11, 1, 2, tzinfo=cst), T0 + dt.timedelta(days=1)) == (
        f"{label} in (2026-10,2026-11)")
    assert month_selector(dt.datetime(2020, 1, 1, tzinfo=dt.UTC), T0) is None  # years: list them all


def test_the_command_reads_the_records_page_by_page_by_month(monkeypatch: pytest.MonkeyPatch,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    """`python -m interconnect usage` lists ComputeUsage (never ComputeJobs), selected by month label."""
    import kubernetes

    from interconnect.cli.main import main

    calls: list[tuple[str, dict[str, Any]]] = []
    pages = {None: {"items": RECORDS[:3], "metadata": {"continue": "next"}},
             "next": {"items": RECORDS[3:], "metadata": {}}}

    class Api:
        def list_cluster_custom_object(self, group: str, version: str, plural: str, **options: Any) -> Any:
            calls.append((plural, options))
            return pages[options.get("_continue")]

    monkeypatch.setattr(kubernetes.config, "load_kube_config", lambda *a, **k: None)
    monkeypatch.setattr(kubernetes.client, "CustomObjectsApi", Api)
    assert main(["usage", "--since", "2026-11-01T00:00:00Z", "--until", "2026-12-01T00:00:00Z", "-o", "json"]) == 0
    assert [plural for plural, _ in calls] == ["computeusages", "computeusages"]
    assert calls[0][1]["label_selector"] == "interconnect.dev/month in (2026-11)"
    rows = {r["tenant"]: r for r in json.loads(capsys.readouterr().out)}
    assert (rows["b"]["jobs"], rows["b"]["cost"]) == (1, "60.00")

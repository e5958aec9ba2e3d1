"""The network report's arithmetic: utilisation is card-seconds in use (the ledger, pro rata over the
month) over card-seconds offered (Prometheus), checked on a month where both are known by
construction; sales by the month of the bill; energy-weighted PUE and green share; availability;
several currencies; records without energy; and the CSV and JSON schemas."""

from __future__ import annotations

import csv
import datetime as dt
import http.server
import io
import json
import threading
from collections.abc import Iterator
from decimal import Decimal
from fractions import Fraction
from typing import Any

import pytest

from interconnect.cli import network_report as nr
from interconnect.cli import promql
from interconnect.cli.kube import Exit, PluginError
from interconnect.cli.plugin import build_parser, complete_words, completion_script
from interconnect.core.quota import Month

NOV = Month(2026, 11)
AFTER = dt.datetime(2026, 12, 2, 5, 0, tzinfo=dt.UTC)
DAY = 86_400
GZ, SH = "gz-regional", "sh-finance"


def record(uid: str, node: str, cards: int, start: str | None, end: str, *, cost: str = "0", currency: str = "CNY",
           outcome: str = "Succeeded", energy: dict[str, str] | None = None, pflops: str | None = None,
           attempt: int = 1) -> dict[str, Any]:
    started = dt.datetime.fromisoformat(start) if start else None
    finished = dt.datetime.fromisoformat(end)
    hours = Fraction((finished - started) // dt.timedelta(seconds=1), 3600) if started else Fraction(1)
    card_hours = Decimal(cards * hours.numerator) / Decimal(hours.denominator)
    spec: dict[str, Any] = {
        "tenant": "t", "jobName": uid, "jobUID": uid, "attempt": attempt, "node": node,
        "identityCode": {GZ: "CIRGZ000001E", SH: "CIISH000003M"}[node],
        "region": {GZ: "CN-GZ", SH: "CN-SH"}[node], "offer": f"{node}-offer", "gpuModel": "NVIDIA-A100-SXM4-80GB",
        "price": {"amount": "8", "currency": currency, "unit": "card-hour"}, "cardHours": str(card_hours),
        "cost": cost, "currency": currency, "finishedAt": end, "month": end[:7], "outcome": outcome}
    if node == SH:
        spec["industry"] = "finance"
    if start:
        spec["startedAt"] = start
    if energy:
        spec["energy"] = energy
    if pflops:
        spec["pflopsHours"] = pflops
    return {"metadata": {"name": f"{uid}-{attempt}"}, "spec": spec}


def energy(kwh: str, pue: str, green: str, co2: str) -> dict[str, str]:
    k, g = Decimal(kwh), Decimal(green)
    return {"kWh": kwh, "greenKWh": str(k * g), "gridKWh": str(k - k * g), "co2Kg": co2, "pue": pue,
            "greenShare": green, "gridFactor": "500", "boardPowerWatts": "400", "basis": "board-power"}


RECORDS = [
    # gz: 2 cards x 10 h inside November: 20 card-hours in use and sold.
    record("r1", GZ, 2, "2026-11-02T00:00:00+00:00", "2026-11-02T10:00:00+00:00", cost="160.00",
           energy=energy("10", "1.25", "0.3", "3.5"), pflops="6.4"),
    # gz: 4 cards from 23:00 on 31 October to 01:00 on 1 November: billed in November (8 card-hours
    # sold), half of it in use in November (4 card-hours).
    record("r2", GZ, 4, "2026-10-31T23:00:00+00:00", "2026-11-01T01:00:00+00:00", cost="64.00",
           energy=energy("4.8", "1.5", "0", "2.4")),
    # gz: 2 cards from 23:00 on 30 November to 01:00 on 1 December: December's bill, but 2 card-hours
    # in use in November.
    record("r3", GZ, 2, "2026-11-30T23:00:00+00:00", "2026-12-01T01:00:00+00:00", cost="32.00"),
    # sh: 8 cards x 5 h, priced in USD, failed, no energy figure.
    record("r4", SH, 8, "2026-11-10T00:00:00+00:00", "2026-11-10T05:00:00+00:00", cost="100.00", currency="USD",
           outcome="Failed"),
    # sh: one card for an hour, lost with its node; then its second attempt on gz... of the same job.
    record("r5", SH, 1, "2026-11-11T00:00:00+00:00", "2026-11-11T01:00:00+00:00", cost="28.00", outcome="NodeLost"),
    record("r5", GZ, 1, "2026-11-11T01:00:00+00:00", "2026-11-11T02:00:00+00:00", cost="8.00", attempt=2),
    # October's and January's records count nowhere in November.
    record("r6", GZ, 8, "2026-10-01T00:00:00+00:00", "2026-10-01T05:00:00+00:00", cost="320.00"),
]

OFFERED = {GZ: Decimal(24 * 30 * DAY), SH: Decimal(8 * 15 * DAY)}  # sh Ready half the month
FIGURES = nr.PrometheusFigures(
    offered_card_seconds=OFFERED,
    ready_seconds={GZ: Decimal(30 * DAY), SH: Decimal(15 * DAY)},
    observed_seconds={GZ: Decimal(30 * DAY), SH: Decimal(30 * DAY)},
    declared_pue={GZ: Decimal("1.2"), SH: Decimal("1.1")},
    declared_green_share={GZ: Decimal("0.3"), SH: Decimal("0.5")},
    nodes=[nr.NodeInfo(GZ, "CIRGZ000001E", "CN-GZ", "none"), nr.NodeInfo(SH, "CIISH000003M", "CN-SH", "finance"),
           # A node that offered cards and sold nothing (and has no record at all).
           nr.NodeInfo("bj-regional", "CIRBJ000002V", "CN-BJ", "none")],
)
IN_USE_HOURS = {GZ: 20 + 4 + 2 + 1, SH: 40 + 1}


def report(level: str = "node", figures: nr.PrometheusFigures | None = FIGURES, node: str | None = None,
           records: list[dict[str, Any]] = RECORDS) -> nr.Report:
    return nr.build(NOV, records, figures, now=AFTER, level=level, node=node)


def rows(rep: nr.Report) -> dict[str, dict[str, Any]]:
    return {r.key: nr.row_data(r) for r in [*rep.rows, rep.total]}


def test_utilisation_is_card_seconds_in_use_over_card_seconds_offered() -> None:
    rep = report()
    by = {r.key: r for r in rep.rows}
    for node, hours in IN_USE_HOURS.items():
        assert by[node].tally.in_use_card_seconds == hours * 3600
        assert by[node].utilisation == Fraction(hours * 3600) / Fraction(OFFERED[node])
    # Nothing offered: no utilisation (not 0%, not a division by zero).
    assert by["bj-regional"].utilisation is None and by["bj-regional"].tally.offered_card_seconds == 0
    total = sum(IN_USE_HOURS.values()) * 3600
    assert rep.total.utilisation == Fraction(total) / Fraction(sum(OFFERED.values()))
    data = rows(rep)
    assert data[GZ]["utilisation"] == f"{Decimal(27 * 3600) / Decimal(24 * 30 * DAY):.6f}"
    assert data[GZ]["inUseCardHours"] == "27.000000000"
    # Time-weighted cards: 24 cards all month; 8 cards half of it are 4 on average.
    assert (data[GZ]["cardsOffered"], data[SH]["cardsOffered"]) == ("24.000", "4.000")
    assert data[GZ]["cardsInUse"] == f"{Decimal(27) / Decimal(30 * 24):.3f}"


def test_sales_count_in_the_month_of_the_bill_in_use_pro_rata_of_wall_time() -> None:
    data = rows(report())
    assert data[GZ]["soldCardHours"] == "29"  # r1 20 + r2 8 + r5/2 1; r3 is December's
    assert data[GZ]["attempts"] == 3 and data[GZ]["jobs"] == 3
    assert data[SH]["soldCardHours"] == "41"
    assert data["network"]["jobs"] == 4, "r5 ran on both nodes: one job"
    assert data["network"]["attempts"] == 5
    assert data[GZ]["soldPflopsHours"] == "6.4"
    assert data[SH]["outcomes"] == {"Failed": 1, "NodeLost": 1}
    assert data["network"]["outcomes"] == {"Failed": 1, "NodeLost": 1, "Succeeded": 3}


def test_month_boundaries_at_the_first_and_last_microsecond() -> None:
    period = nr.period_of(NOV, AFTER)
    t = dt.datetime
    utc = dt.UTC
    assert nr.share_in(t(2026, 10, 31, 23, tzinfo=utc), t(2026, 11, 1, 1, tzinfo=utc), period) == Fraction(1, 2)
    assert nr.share_in(t(2026, 11, 30, 23, tzinfo=utc), t(2026, 12, 1, 1, tzinfo=utc), period) == Fraction(1, 2)
    assert nr.share_in(t(2026, 10, 1, tzinfo=utc), t(2026, 11, 1, tzinfo=utc), period) == 0
    assert nr.share_in(t(2026, 12, 1, tzinfo=utc), t(2026, 12, 2, tzinfo=utc), period) == 0
    assert nr.share_in(None, t(2026, 11, 30, 23, 59, 59, 999999, tzinfo=utc), period) == 1
    assert nr.share_in(None, t(2026, 12, 1, tzinfo=utc), period) == 0
    # An attempt longer than the month: the month's part of it.
    assert nr.share_in(t(2026, 10, 16, tzinfo=utc), t(2026, 12, 16, tzinfo=utc), period) == Fraction(30, 61)
    # While the month runs, the period ends now.
    running = nr.period_of(NOV, t(2026, 11, 16, tzinfo=utc))
    assert not running.complete and running.seconds == 15 * DAY
    assert nr.share_in(t(2026, 11, 15, tzinfo=utc), t(2026, 11, 17, tzinfo=utc), running) == Fraction(1, 2)
    with pytest.raises(ValueError, match="has not begun"):
        nr.period_of(Month(2027, 1), AFTER)


def test_revenue_per_currency_never_added_across_currencies() -> None:
    data = rows(report())
    assert data[GZ]["revenue"] == {"CNY": "232.00"}
    assert data[SH]["revenue"] == {"CNY": "28.00", "USD": "100.00"}
    assert data["network"]["revenue"] == {"CNY": "260.00", "USD": "100.00"}
    assert "260.00 CNY 100.00 USD" in nr.to_table(report(level="network"))


def test_energy_weighted_pue_and_green_share_the_declaration_only_as_a_fallback() -> None:
    data = rows(report())
    gz = data[GZ]
    assert (gz["energyKWh"], gz["greenKWh"], gz["gridKWh"], gz["co2Kg"]) == ("14.8", "3.0", "11.8", "5.9")
    # Facility energy over IT energy: (10 + 4.8) / (10/1.25 + 4.8/1.5) = 14.8 / 11.2.
    assert gz["pue"] == f"{Decimal('14.8') / Decimal('11.2'):.3f}" and gz["pueSource"] == "records"
    assert gz["greenShare"] == f"{Decimal(3) / Decimal('14.8'):.4f}" and gz["greenShareSource"] == "records"
    assert gz["attemptsWithoutEnergy"] == 1
    # sh's records have no energy: its current declaration, labelled so (and starred in the table).
    assert (data[SH]["pue"], data[SH]["pueSource"]) == ("1.100", "declared")
    assert (data[SH]["greenShare"], data[SH]["greenShareSource"]) == ("0.5000", "declared")
    assert data[SH]["energyKWh"] == "0" and data[SH]["attemptsWithoutEnergy"] == 2
    table = nr.to_table(report())
    assert "50.0%*" in table and "1.10*" in table and "current declaration" in table
    # Roll-ups take the records only: the network's figures are gz's energy.
    assert (data["network"]["pue"], data["network"]["pueSource"]) == (gz["pue"], "records")


def test_availability_is_ready_over_observed_time() -> None:
    data = rows(report())
    assert (data[GZ]["availability"], data[SH]["availability"]) == ("1.000000", "0.500000")
    assert data["network"]["availability"] == "0.750000"
    assert data[SH]["readyHours"] == f"{15 * 24:.6f}"


def test_without_prometheus_its_figures_are_missing_and_said_so() -> None:
    rep = report(figures=None)
    data = rows(rep)
    for key in ("cardsOffered", "offeredCardHours", "utilisation", "availability"):
        assert data[GZ][key] is None
    assert data[GZ]["inUseCardHours"] == "27.000000000" and data[GZ]["pueSource"] == "records"
    assert data[SH]["pue"] is None, "no declaration without Prometheus"
    assert "bj-regional" not in data, "a node without records is known from Prometheus only"
    october = report(figures=None, records=[RECORDS[-1]])
    assert october.rows == [], "a record of another month says nothing of this one"
    out = json.loads(nr.to_json(rep, generated_at=AFTER, prometheus=None))
    assert out["missing"] == list(nr.PROMETHEUS_FIGURES)
    assert any("--prometheus" in note for note in out["notes"])
    table = nr.to_table(rep)
    assert "--prometheus URL" in table and " - " in table


def test_node_names_or_identity_codes_in_the_series_are_the_same_node() -> None:
    by_code = nr.PrometheusFigures(offered_card_seconds={"CIRGZ000001E": OFFERED[GZ]},
                                   declared_pue={"CIISH000003M": Decimal("1.3")})
    data = rows(report(figures=by_code))
    assert set(data) == {GZ, SH, "network"}
    assert data[GZ]["offeredCardHours"] == f"{24 * 30 * 24:.6f}"
    assert data[SH]["pue"] == "1.300"


def test_one_node_by_name_or_code_and_the_roll_ups() -> None:
    for node in (SH, "CIISH000003M"):
        rep = report(node=node)
        assert [r.key for r in rep.rows] == [SH]
        assert rep.total.tally.in_use_card_seconds == IN_USE_HOURS[SH] * 3600
    regions = rows(report(level="region"))
    assert set(regions) == {"CN-BJ", "CN-GZ", "CN-SH", "network"}
    assert regions["CN-SH"]["utilisation"] == rows(report())[SH]["utilisation"]
    industries = rows(report(level="industry"))
    assert set(industries) == {"finance", "none", "network"}
    assert industries["none"]["nodes"] == 2
    assert industries["none"]["offeredCardHours"] == f"{24 * 30 * 24:.6f}"
    assert report(level="network").rows == []
    with pytest.raises(ValueError, match="group-by"):
        report(level="tenant")


def test_pro_rated_in_use_is_exact_and_rounded_once_for_display() -> None:
    # One card for 3 hours, one of them in November: a third of 3 card-hours.
    third = [record("x", GZ, 1, "2026-11-30T23:00:00+00:00", "2026-12-01T02:00:00+00:00")]
    rep = report(records=third, figures=None)
    assert rep.total.tally.in_use_card_seconds == 3600
    # 36 card-seconds (0.01 card-hours), 24 of them in November: 0.00666... card-hours, shown to 9 places.
    odd = [record("y", GZ, 1, "2026-11-30T23:59:36+00:00", "2026-12-01T00:00:12+00:00")]
    assert odd[0]["spec"]["cardHours"] == "0.01"
    assert report(records=odd, figures=None).total.tally.in_use_card_seconds == 24
    assert nr.row_data(report(records=odd, figures=None).total)["inUseCardHours"] == "0.006666667"


# ------------------------------------------------------------------ schemas


def test_csv_has_the_documented_columns_one_line_per_row_and_the_total() -> None:
    text = nr.to_csv(report())
    lines = list(csv.DictReader(io.StringIO(text)))
    assert list(lines[0]) == list(nr.COLUMNS)
    assert [(r["level"], r["key"]) for r in lines] == [("node", "bj-regional"), ("node", GZ), ("node", SH),
                                                       ("network", "network")]
    sh = lines[2]
    assert sh["revenue"] == "CNY=28.00;USD=100.00" and sh["outcomes"] == "Failed=1;NodeLost=1"
    assert sh["identityCode"] == "CIISH000003M" and sh["industry"] == "finance"
    assert nr.to_csv(report(figures=None)).splitlines()[1].split(",")[6] == "", "unknown: empty"


def test_json_has_a_schema_version_and_the_documented_keys() -> None:
    out = json.loads(nr.render(report(), "json", generated_at=AFTER, prometheus="http://p:9090"))
    assert out["schemaVersion"] == nr.SCHEMA_VERSION == 1
    assert out["month"] == "2026-11" and out["period"] == {"start": "2026-11-01T00:00:00Z",
                                                            "end": "2026-12-01T00:00:00Z", "complete": True}
    assert out["groupBy"] == "node" and out["prometheus"] == "http://p:9090" and out["missing"] == []
    for row in [*out["rows"], out["total"]]:
        assert list(row) == list(nr.COLUMNS)
    assert out["total"]["level"] == "network"


def test_docs_list_every_column() -> None:
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[3] / "docs" / "report.md").read_text()
    for column in nr.COLUMNS:
        assert f"`{column}`" in doc, column
    assert "schemaVersion" in doc


# ------------------------------------------------------------------ Prometheus


SAMPLES = {
    "interconnect_offered_card_seconds_total": [{"metric": {"node": GZ}, "value": [0, "2592000"]}],
    "interconnect_node_ready_seconds_total": [{"metric": {"node": GZ}, "value": [0, "100"]}],
    "interconnect_node_observed_seconds_total[": [{"metric": {"node": GZ}, "value": [0, "200"]}],
    "interconnect_node_pue": [{"metric": {"node": GZ}, "value": [0, "1.25"]}],
    "interconnect_node_green_share": [{"metric": {"node": GZ}, "value": [0, "NaN"]}],
    "interconnect_member_ready": [{"metric": {"node": GZ, "identity_code": "CIRGZ000001E", "region": "CN-GZ",
                                              "industry": "none"}, "value": [0, "1"]}],
}


def test_figures_are_increase_over_the_month_at_its_end() -> None:
    asked: list[tuple[str, dt.datetime]] = []

    def query(expr: str, at: dt.datetime) -> list[dict[str, Any]]:
        asked.append((expr, at))
        if "last_over_time(interconnect_node_observed_seconds_total" in expr:
            return [{"metric": {"node": "old-node", "region": "CN-ZJ", "industry": "none"}, "value": [0, "5"]}]
        return next((v for k, v in SAMPLES.items() if k in expr), [])

    got = promql.figures(query, nr.period_of(NOV, AFTER))
    assert all(at == dt.datetime(2026, 12, 1, tzinfo=dt.UTC) for _, at in asked)
    assert "sum by (node) (increase(interconnect_offered_card_seconds_total[2592000s]))" in [e for e, _ in asked]
    assert got.offered_card_seconds == {GZ: Decimal(2592000)}
    assert got.ready_seconds == {GZ: Decimal(100)} and got.observed_seconds == {GZ: Decimal(200)}
    assert got.declared_pue == {GZ: Decimal("1.25")} and got.declared_green_share == {}, "NaN is no figure"
    assert [n.name for n in got.nodes] == [GZ, "old-node"]
    assert got.nodes[0].identity_code == "CIRGZ000001E" and got.nodes[1].region == "CN-ZJ"
    # While the month runs: up to now, evaluated now.
    now = dt.datetime(2026, 11, 2, tzinfo=dt.UTC)
    asked.clear()
    promql.figures(query, nr.period_of(NOV, now))
    assert all(at == now and "[86400s]" in e for e, at in asked)


@pytest.fixture
def fake_prometheus() -> Iterator[tuple[str, list[tuple[int, bytes]]]]:
    answers: list[tuple[int, bytes]] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            status, body = answers.pop(0)
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", answers
    finally:
        server.shutdown()


def test_prometheus_errors_are_one_line_naming_the_url(fake_prometheus: tuple[str, list[tuple[int, bytes]]]) -> None:
    url, answers = fake_prometheus
    query = promql.http_query(url)
    answers.append((200, json.dumps({"status": "success", "data": {"resultType": "vector", "result": [
        {"metric": {"node": "a"}, "value": [1, "2"]}]}}).encode()))
    assert query("up", AFTER) == [{"metric": {"node": "a"}, "value": [1, "2"]}]
    answers.append((400, json.dumps({"status": "error", "error": "parse error at char 3"}).encode()))
    with pytest.raises(PluginError) as bad:
        query("up{", AFTER)
    assert str(bad.value) == f"cannot query Prometheus at {url}: HTTP 400: parse error at char 3"
    assert bad.value.code == Exit.INVALID
    answers.append((503, b"Service Unavailable"))
    with pytest.raises(PluginError) as down:
        query("up", AFTER)
    assert down.value.code == Exit.SERVER and "HTTP 503" in str(down.value)
    answers.append((200, b"<html>not prometheus</html>"))
    with pytest.raises(PluginError, match="not Prometheus' JSON"):
        query("up", AFTER)


def test_an_unreachable_prometheus_is_exit_4() -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    with pytest.raises(PluginError) as exc:
        promql.http_query(url, timeout=2)("up", AFTER)
    assert exc.value.code == Exit.UNREACHABLE and str(exc.value).startswith(f"cannot query Prometheus at {url}: ")
    assert "\n" not in str(exc.value)


def test_prometheus_url_from_the_flag_else_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(promql.ENV, raising=False)
    assert promql.prometheus_url(None) is None
    monkeypatch.setenv(promql.ENV, "http://env:9090/")
    assert promql.prometheus_url(None) == "http://env:9090"
    assert promql.prometheus_url("http://flag:9090") == "http://flag:9090"


# ------------------------------------------------------------------ command line


def test_report_command_flags_and_completion() -> None:
    args = build_parser().parse_args(["report", "--month", "2026-11", "--node", GZ, "--group-by", "region",
                                      "-o", "csv", "--prometheus", "http://p:9090", "--context", "hub"])
    assert (args.month, args.node, args.group_by, args.output, args.prometheus) == (
        NOV, GZ, "region", "csv", "http://p:9090")
    assert build_parser().parse_args(["report"]).month is None
    with pytest.raises(SystemExit):
        build_parser().parse_args(["report", "--month", "2026-13"])
    assert complete_words(["report", "--group-by"], "")[0] == list(nr.LEVELS)
    assert complete_words(["report", "-o"], "")[0] == list(nr.FORMATS)
    assert "report" in complete_words([], "re")[0]
    assert "--prometheus" in completion_script("bash")


def test_python_m_interconnect_report_has_the_same_flags() -> None:
    from interconnect.cli.main import build_parser as main_parser

    args = main_parser().parse_args(["report", "--month", "2026-11", "-o", "json", "--group-by", "industry"])
    assert (args.month, args.output, args.group_by) == (NOV, "json", "industry")


def test_report_text_refuses_a_month_to_come_and_an_unknown_node() -> None:
    from interconnect.cli.plugin import report_text

    with pytest.raises(PluginError, match="has not begun") as future:
        report_text(RECORDS, month=Month(2027, 1), now=AFTER, level="node", output="table", node=None,
                    prometheus=None)
    assert future.value.code == Exit.INVALID
    with pytest.raises(PluginError, match="no usage record") as unknown:
        report_text(RECORDS, month=NOV, now=AFTER, level="node", output="table", node="nope", prometheus=None)
    assert unknown.value.code == Exit.NOT_FOUND
    text = report_text(RECORDS, month=NOV, now=AFTER, level="node", output="table", node=None, prometheus=None)
    assert text.splitlines()[0] == "network report 2026-11: 2026-11-01T00:00:00Z to 2026-12-01T00:00:00Z"


def test_the_records_are_every_tenants_and_a_403_says_who_may_read_them() -> None:
    from interconnect.cli.plugin import report_records

    class FakeHub:
        def __init__(self, error: PluginError | None = None) -> None:
            self.error = error
            self.asked: list[tuple[str, str | None, str | None]] = []

        def _list(self, plural: str, namespace: str | None, selector: str | None) -> list[dict[str, Any]]:
            self.asked.append((plural, namespace, selector))
            if self.error:
                raise self.error
            return RECORDS

    hub = FakeHub()
    assert report_records(hub, NOV, AFTER) == RECORDS  # type: ignore[arg-type]
    assert hub.asked == [("computeusages", None, "interconnect.dev/month in (2026-11,2026-12)")]
    forbidden = FakeHub(PluginError("cannot list computeusages.interconnect.dev: Forbidden (403): no", Exit.FORBIDDEN,
                                    403))
    with pytest.raises(PluginError, match="hub admins and SREs") as exc:
        report_records(forbidden, NOV, AFTER)  # type: ignore[arg-type]
    assert exc.value.code == Exit.FORBIDDEN

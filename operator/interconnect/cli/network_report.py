"""The network report for node operators and the regulator: one calendar month (UTC), per node,
region, industry and for the whole network.

Pure: it takes the month, the ComputeUsage records as read from the API and the figures read
from Prometheus (`PrometheusFigures`, see cli/promql.py), and computes the rows. Figures come
from durable records only, never from objects that may be deleted (ComputeNodes, offers, jobs):

- from the usage ledger (the ComputeUsage records): card-hours in use, card-hours and
  PFLOPS-hours sold, revenue per currency, attempts by outcome, energy, green share and PUE;
- from Prometheus (`increase()` over the month of the operator's counters): card-hours offered
  and availability (the time a node was Ready over the time the operator watched it).

Two ledger figures differ on purpose:

- **sold** (card-hours, PFLOPS-hours, revenue, outcomes, energy) counts each attempt in the
  month of its bill: the month its record's finishedAt falls in, as ``kubectl compute usage``
  and the invoices do;
- **in use** counts each attempt's card-hours pro rata of its wall time startedAt..finishedAt
  over the month (as core/quota.py's ``Charge.share_in`` does for cost), so that an attempt
  running across midnight of the 1st is in use in both months, and utilisation (card-seconds
  in use / card-seconds offered) compares the same span of time on both sides.

Attempts still running when the report is made have no record yet: they are not in use in it
(the current month is provisional, and says so). Decimal arithmetic throughout (Fractions where
a figure is pro-rated); rounding happens only when a figure is written out.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import io
import json
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal
from fractions import Fraction
from typing import Any

from interconnect.core.quota import Month

SCHEMA_VERSION = 1
LEVELS = ("node", "region", "industry", "network")
FORMATS = ("table", "csv", "json")
NO_INDUSTRY = "none"
"""The industry of a regional node (as the metrics label it)."""
NETWORK = "network"

PROMETHEUS_FIGURES = ("cardsOffered", "offeredCardHours", "utilisation", "availability")
"""The figures that need Prometheus (--prometheus): without it they are null (``-`` in a table)."""

_MICRO = dt.timedelta(microseconds=1)


# ---------------------------------------------------------------------------------------------
# Inputs
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Period:
    """The part of the month the report covers: the whole month once it is over, else up to now."""

    month: Month
    start: dt.datetime
    end: dt.datetime

    @property
    def complete(self) -> bool:
        return self.end >= self.month.end

    @property
    def seconds(self) -> Fraction:
        return Fraction((self.end - self.start) // _MICRO, 1_000_000)


def period_of(month: Month, now: dt.datetime) -> Period:
    """The month up to its end, or up to ``now`` while it runs; a month yet to come has no report."""
    if now <= month.start:
        raise ValueError(f"{month} has not begun (it is {now.astimezone(dt.UTC):%Y-%m-%d %H:%M} UTC)")
    return Period(month, month.start, min(month.end, now))


@dataclass(frozen=True, slots=True)
class NodeInfo:
    """A node as Prometheus last saw it in the month (``interconnect_member_ready``'s labels)."""

    name: str
    identity_code: str | None = None
    region: str | None = None
    industry: str | None = None

    def updated(self, identity_code: str | None, region: str | None, industry: str | None) -> NodeInfo:
        """This node with what another source says of it, its own figures kept where that is silent."""
        return NodeInfo(self.name, identity_code or self.identity_code, region or self.region,
                        industry or self.industry or NO_INDUSTRY)


@dataclass(frozen=True)
class PrometheusFigures:
    """What the report reads from Prometheus, each keyed by the ``node`` label of its series (a
    ComputeNode's name or its identity code: both are resolved), over the report's period."""

    offered_card_seconds: Mapping[str, Decimal] = field(default_factory=dict)
    """``increase(interconnect_offered_card_seconds_total[period])`` per node."""
    ready_seconds: Mapping[str, Decimal] = field(default_factory=dict)
    observed_seconds: Mapping[str, Decimal] = field(default_factory=dict)
    declared_pue: Mapping[str, Decimal] = field(default_factory=dict)
    """The node's current declaration (``interconnect_node_pue``): a fallback for nodes whose
    records carry no energy."""
    declared_green_share: Mapping[str, Decimal] = field(default_factory=dict)
    nodes: Sequence[NodeInfo] = ()
    """Every node seen in the period, with its identity code, region and industry."""


# ---------------------------------------------------------------------------------------------
# Arithmetic
# ---------------------------------------------------------------------------------------------


def _time(text: Any) -> dt.datetime | None:
    if not text:
        return None
    value = dt.datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def _decimal(text: Any) -> Decimal | None:
    if text is None or text == "":
        return None
    return Decimal(str(text))


def share_in(started: dt.datetime | None, finished: dt.datetime | None, period: Period) -> Fraction:
    """The part of an attempt's wall time (startedAt..finishedAt) inside the period: 1 when it lies
    wholly inside, 0 when wholly outside; without a usable span, all of it where it finished."""
    if started is None or finished is None or finished <= started:
        when = finished or started
        return Fraction(1) if when is not None and period.start <= when < period.end else Fraction(0)
    overlap = min(finished, period.end) - max(started, period.start)
    if overlap <= dt.timedelta(0):
        return Fraction(0)
    if started >= period.start and finished <= period.end:
        return Fraction(1)
    return Fraction(overlap // _MICRO, (finished - started) // _MICRO)


@dataclass
class Tally:
    """Additive figures of a node or of a group of nodes."""

    nodes: set[str] = field(default_factory=set)
    in_use_card_seconds: Fraction = Fraction(0)
    offered_card_seconds: Decimal | None = None
    sold_card_hours: Decimal = Decimal(0)
    sold_pflops_hours: Decimal = Decimal(0)
    revenue: dict[str, Decimal] = field(default_factory=dict)
    outcomes: Counter[str] = field(default_factory=Counter)
    jobs: set[str] = field(default_factory=set)
    attempts: int = 0
    attempts_without_energy: int = 0
    kwh: Decimal = Decimal(0)
    green_kwh: Decimal = Decimal(0)
    grid_kwh: Decimal = Decimal(0)
    co2_kg: Decimal = Decimal(0)
    it_kwh: Fraction = Fraction(0)
    """The accelerators' own energy (kWh / PUE of each record): facility over IT energy is the PUE."""
    ready_seconds: Decimal | None = None
    observed_seconds: Decimal | None = None

    def add(self, other: Tally) -> None:
        self.nodes |= other.nodes
        self.in_use_card_seconds += other.in_use_card_seconds
        self.offered_card_seconds = _plus(self.offered_card_seconds, other.offered_card_seconds)
        self.sold_card_hours += other.sold_card_hours
        self.sold_pflops_hours += other.sold_pflops_hours
        for currency, amount in other.revenue.items():
            self.revenue[currency] = self.revenue.get(currency, Decimal(0)) + amount
        self.outcomes.update(other.outcomes)
        self.jobs |= other.jobs
        self.attempts += other.attempts
        self.attempts_without_energy += other.attempts_without_energy
        self.kwh += other.kwh
        self.green_kwh += other.green_kwh
        self.grid_kwh += other.grid_kwh
        self.co2_kg += other.co2_kg
        self.it_kwh += other.it_kwh
        self.ready_seconds = _plus(self.ready_seconds, other.ready_seconds)
        self.observed_seconds = _plus(self.observed_seconds, other.observed_seconds)


def _plus(a: Decimal | None, b: Decimal | None) -> Decimal | None:
    return b if a is None else a if b is None else a + b


@dataclass(frozen=True)
class Row:
    """One line of the report: a node, a region, an industry or the network."""

    level: str
    key: str
    identity_code: str | None
    region: str | None
    industry: str | None
    tally: Tally
    period: Period
    declared_pue: Decimal | None = None
    declared_green_share: Decimal | None = None

    @property
    def utilisation(self) -> Fraction | None:
        """Card-seconds in use / card-seconds offered; None without Prometheus or nothing offered."""
        offered = self.tally.offered_card_seconds
        if offered is None or offered <= 0:
            return None
        return self.tally.in_use_card_seconds / Fraction(offered)

    @property
    def cards_offered(self) -> Fraction | None:
        """Cards offered on average over the period (time-weighted)."""
        offered = self.tally.offered_card_seconds
        return None if offered is None else Fraction(offered) / self.period.seconds

    @property
    def cards_in_use(self) -> Fraction:
        return self.tally.in_use_card_seconds / self.period.seconds

    @property
    def availability(self) -> Fraction | None:
        observed = self.tally.observed_seconds
        if observed is None or observed <= 0 or self.tally.ready_seconds is None:
            return None
        return Fraction(self.tally.ready_seconds) / Fraction(observed)

    @property
    def green_share(self) -> tuple[Fraction | Decimal | None, str | None]:
        """Green kWh / kWh of the records (energy-weighted), else the node's current declaration."""
        if self.tally.kwh > 0:
            return Fraction(self.tally.green_kwh) / Fraction(self.tally.kwh), "records"
        if self.declared_green_share is not None:
            return self.declared_green_share, "declared"
        return None, None

    @property
    def pue(self) -> tuple[Fraction | Decimal | None, str | None]:
        """Facility energy / IT energy of the records (the energy-weighted PUE), else the node's
        current declaration."""
        if self.tally.it_kwh > 0:
            return Fraction(self.tally.kwh) / self.tally.it_kwh, "records"
        if self.declared_pue is not None:
            return self.declared_pue, "declared"
        return None, None


@dataclass(frozen=True)
class Report:
    period: Period
    level: str
    rows: list[Row]
    total: Row
    with_prometheus: bool
    node: str | None = None


def _aliases(figures: PrometheusFigures | None, records: Iterable[Mapping[str, Any]]) -> dict[str, NodeInfo]:
    """Every name a node goes by (its name, its identity code) -> what is known of it; records win
    over Prometheus (they hold what the node was when its attempts ran)."""
    known: dict[str, NodeInfo] = {}
    for info in (figures.nodes if figures else ()):
        known[info.name] = info
    for record in records:
        spec = record.get("spec") or {}
        name = str(spec.get("node") or "")
        if not name:
            continue
        known[name] = known.get(name, NodeInfo(name)).updated(spec.get("identityCode"), spec.get("region"),
                                                             spec.get("industry"))
    aliases = dict(known)
    for info in known.values():
        if info.identity_code and info.identity_code not in aliases:
            aliases[info.identity_code] = info
    return aliases


def _node_tallies(records: Sequence[Mapping[str, Any]], figures: PrometheusFigures | None,
                  period: Period) -> tuple[dict[str, Tally], dict[str, NodeInfo]]:
    aliases = _aliases(figures, records)
    tallies: dict[str, Tally] = {}
    infos: dict[str, NodeInfo] = {}

    def tally_of(label: str, region: str | None = None, industry: str | None = None) -> Tally:
        info = aliases.get(label) or NodeInfo(label, None, region, industry or NO_INDUSTRY)
        aliases.setdefault(label, info)
        infos.setdefault(info.name, info)
        return tallies.setdefault(info.name, Tally(nodes={info.name}))

    month = str(period.month)
    for record in records:
        spec = record.get("spec") or {}
        if not spec.get("node"):
            continue
        finished = _time(spec.get("finishedAt"))
        share = share_in(_time(spec.get("startedAt")), finished, period)
        billed = (spec.get("month") or (f"{finished.astimezone(dt.UTC):%Y-%m}" if finished else None)) == month
        billed = billed and (finished is None or finished < period.end)
        if not share and not billed:
            continue  # another month's record: it says nothing of this one
        tally = tally_of(str(spec["node"]))
        tally.in_use_card_seconds += Fraction(str(spec.get("cardHours") or "0")) * 3600 * share
        if not billed:
            continue
        tally.attempts += 1
        tally.jobs.add(str(spec.get("jobUID") or (record.get("metadata") or {}).get("name")))
        tally.outcomes[str(spec.get("outcome") or "Unknown")] += 1
        tally.sold_card_hours += Decimal(str(spec.get("cardHours") or "0"))
        tally.sold_pflops_hours += Decimal(str(spec.get("pflopsHours") or "0"))
        currency = str(spec.get("currency") or "-")
        tally.revenue[currency] = tally.revenue.get(currency, Decimal(0)) + Decimal(str(spec.get("cost") or "0"))
        energy = spec.get("energy") or {}
        kwh = _decimal(energy.get("kWh"))
        if kwh is None:
            tally.attempts_without_energy += 1
            continue
        tally.kwh += kwh
        tally.green_kwh += _decimal(energy.get("greenKWh")) or Decimal(0)
        tally.grid_kwh += _decimal(energy.get("gridKWh")) or Decimal(0)
        tally.co2_kg += _decimal(energy.get("co2Kg")) or Decimal(0)
        pue = _decimal(energy.get("pue")) or Decimal(1)
        tally.it_kwh += Fraction(kwh) / Fraction(pue)
    if figures is not None:
        labels = {**figures.offered_card_seconds, **figures.ready_seconds, **figures.observed_seconds}
        for info in figures.nodes:
            tally_of(info.name)
        for label in labels:
            tally_of(label)
        for tally in tallies.values():
            tally.offered_card_seconds = Decimal(0)
        for source, attr in ((figures.offered_card_seconds, "offered_card_seconds"),
                             (figures.ready_seconds, "ready_seconds"),
                             (figures.observed_seconds, "observed_seconds")):
            for label, value in source.items():
                tally = tally_of(label)
                setattr(tally, attr, _plus(getattr(tally, attr), value))
    return tallies, infos


def build(month: Month, records: Iterable[Mapping[str, Any]], figures: PrometheusFigures | None, *,
          now: dt.datetime, level: str = "node", node: str | None = None) -> Report:
    """The report of ``month`` (up to ``now`` while it runs): rows at ``level`` and the network's
    total; ``node`` (a name or an identity code) narrows everything to that node."""
    if level not in LEVELS:
        raise ValueError(f"--group-by must be one of {', '.join(LEVELS)}, not {level!r}")
    period = period_of(month, now)
    tallies, infos = _node_tallies(list(records), figures, period)
    if node is not None:
        chosen = [n for n, info in infos.items() if node in (n, info.identity_code)]
        tallies = {n: tallies[n] for n in chosen}
    declared_pue = _resolve(figures.declared_pue if figures else {}, infos)
    declared_green = _resolve(figures.declared_green_share if figures else {}, infos)

    def node_row(name: str) -> Row:
        info = infos[name]
        return Row("node", name, info.identity_code, info.region, info.industry or NO_INDUSTRY, tallies[name],
                   period, declared_pue.get(name), declared_green.get(name))

    def group_rows(key_of: Any, level_: str) -> list[Row]:
        groups: dict[str, Tally] = {}
        for name, tally in tallies.items():
            groups.setdefault(key_of(infos[name]), Tally()).add(tally)
        return [Row(level_, key, None, key if level_ == "region" else None,
                    key if level_ == "industry" else None, groups[key], period) for key in sorted(groups)]

    total_tally = Tally()
    for tally in tallies.values():
        total_tally.add(tally)
    total = Row("network", NETWORK, None, None, None, total_tally, period)
    if level == "node":
        rows = [node_row(n) for n in sorted(tallies)]
    elif level == "region":
        rows = group_rows(lambda i: i.region or "-", "region")
    elif level == "industry":
        rows = group_rows(lambda i: i.industry or NO_INDUSTRY, "industry")
    else:
        rows = []
    return Report(period, level, rows, total, figures is not None, node)


def _resolve(values: Mapping[str, Decimal], infos: Mapping[str, NodeInfo]) -> dict[str, Decimal]:
    by_code = {info.identity_code: name for name, info in infos.items() if info.identity_code}
    out: dict[str, Decimal] = {}
    for label, value in values.items():
        name = label if label in infos else by_code.get(label)
        if name is not None:
            out[name] = value
    return out


# ---------------------------------------------------------------------------------------------
# Output
# ---------------------------------------------------------------------------------------------

COLUMNS = (
    "level", "key", "identityCode", "region", "industry", "nodes",
    "cardsOffered", "cardsInUse", "offeredCardHours", "inUseCardHours", "utilisation",
    "soldCardHours", "soldPflopsHours", "revenue", "jobs", "attempts", "outcomes",
    "energyKWh", "greenKWh", "gridKWh", "co2Kg", "attemptsWithoutEnergy",
    "greenShare", "greenShareSource", "pue", "pueSource",
    "readyHours", "observedHours", "availability",
)
"""The CSV's columns, in order (docs/report.md: units and meaning); the JSON rows have the same keys."""


def _places(value: Fraction | Decimal | None, places: int) -> str | None:
    """``value`` rounded half-even to ``places`` decimals (the one rounding, for display)."""
    if value is None:
        return None
    if isinstance(value, Decimal):
        return str(value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_EVEN))
    # A Fraction: scaled first, so that no 28-digit decimal context rounds before the last place.
    scaled = value * 10**places
    units = scaled.numerator // scaled.denominator
    rest = scaled - units
    if rest > Fraction(1, 2) or (rest == Fraction(1, 2) and units % 2):
        units += 1
    return str(Decimal(units).scaleb(-places))


def _exact(value: Decimal) -> str:
    """A sum of the records' own decimals, as it is (no rounding), without an exponent."""
    return f"{value:f}"


def row_data(row: Row) -> dict[str, Any]:
    """The row as JSON data: decimal strings (units in docs/report.md), null where unknown."""
    t = row.tally
    green, green_source = row.green_share
    pue, pue_source = row.pue
    return {
        "level": row.level,
        "key": row.key,
        "identityCode": row.identity_code,
        "region": row.region,
        "industry": row.industry,
        "nodes": len(t.nodes),
        "cardsOffered": _places(row.cards_offered, 3),
        "cardsInUse": _places(row.cards_in_use, 3),
        "offeredCardHours": _places(None if t.offered_card_seconds is None
                                    else Fraction(t.offered_card_seconds) / 3600, 6),
        "inUseCardHours": _places(t.in_use_card_seconds / 3600, 9),
        "utilisation": _places(row.utilisation, 6),
        "soldCardHours": _exact(t.sold_card_hours),
        "soldPflopsHours": _exact(t.sold_pflops_hours),
        "revenue": {currency: _exact(amount) for currency, amount in sorted(t.revenue.items())},
        "jobs": len(t.jobs),
        "attempts": t.attempts,
        "outcomes": dict(sorted(t.outcomes.items())),
        "energyKWh": _exact(t.kwh),
        "greenKWh": _exact(t.green_kwh),
        "gridKWh": _exact(t.grid_kwh),
        "co2Kg": _exact(t.co2_kg),
        "attemptsWithoutEnergy": t.attempts_without_energy,
        "greenShare": _places(green, 4),
        "greenShareSource": green_source,
        "pue": _places(pue, 3),
        "pueSource": pue_source,
        "readyHours": _places(None if t.ready_seconds is None else Fraction(t.ready_seconds) / 3600, 6),
        "observedHours": _places(None if t.observed_seconds is None else Fraction(t.observed_seconds) / 3600, 6),
        "availability": _places(row.availability, 6),
    }


def _iso(when: dt.datetime) -> str:
    return when.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def notes(report: Report) -> list[str]:
    out = []
    if not report.period.complete:
        out.append(f"{report.period.month} is not over: figures up to {_iso(report.period.end)}; attempts still "
                   "running have no record yet and are not counted")
    if not report.with_prometheus:
        out.append("cards offered, utilisation and availability need Prometheus: --prometheus URL (or "
                   "INTERCONNECT_PROMETHEUS_URL)")
    rows = [*report.rows, report.total]
    if any(r.green_share[1] == "declared" or r.pue[1] == "declared" for r in rows):
        out.append("* green share or PUE: the node's current declaration (its records carry no energy)")
    return out


def to_json(report: Report, *, generated_at: dt.datetime, prometheus: str | None) -> str:
    data = {
        "schemaVersion": SCHEMA_VERSION,
        "month": str(report.period.month),
        "period": {"start": _iso(report.period.start), "end": _iso(report.period.end),
                   "complete": report.period.complete},
        "generatedAt": _iso(generated_at),
        "groupBy": report.level,
        "node": report.node,
        "prometheus": prometheus,
        "missing": [] if report.with_prometheus else list(PROMETHEUS_FIGURES),
        "notes": notes(report),
        "rows": [row_data(r) for r in report.rows],
        "total": row_data(report.total),
    }
    return json.dumps(data, indent=2)


def _joined(mapping: Mapping[str, Any], sep: str = ";") -> str:
    return sep.join(f"{k}={v}" for k, v in mapping.items())


def to_csv(report: Report) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(COLUMNS), lineterminator="\n")
    writer.writeheader()
    for row in [*report.rows, report.total]:
        data = row_data(row)
        data["revenue"] = _joined(data["revenue"])
        data["outcomes"] = _joined(data["outcomes"])
        writer.writerow({k: "" if v is None else v for k, v in data.items()})
    return out.getvalue()


def _short(value: str | None, places: int) -> str:
    return "-" if value is None else str(Decimal(value).quantize(Decimal(1).scaleb(-places)))


def _percent(value: str | None) -> str:
    return "-" if value is None else f"{Decimal(value) * 100:.1f}%"


def to_table(report: Report) -> str:
    header = (report.level.upper() if report.level != "network" else "", "CODE", "REGION", "CARDS", "IN USE",
              "UTIL", "CARD-H SOLD", "PFLOPS-H", "REVENUE", "JOBS", "OUTCOMES", "KWH", "GREEN", "PUE", "CO2-KG",
              "AVAIL")
    lines: list[tuple[str, ...]] = [header]
    for row in [*report.rows, report.total]:
        d = row_data(row)
        mark = {"declared": "*", "records": ""}
        lines.append((
            "TOTAL" if row.level == "network" else d["key"],
            d["identityCode"] or "-", d["region"] or "-",
            _short(d["cardsOffered"], 2), _short(d["cardsInUse"], 2), _percent(d["utilisation"]),
            _short(d["soldCardHours"], 2), _short(d["soldPflopsHours"], 2),
            " ".join(f"{_short(v, 2)} {c}" for c, v in d["revenue"].items()) or "-",
            str(d["jobs"]), ",".join(f"{k}:{v}" for k, v in d["outcomes"].items()) or "-",
            _short(d["energyKWh"], 1),
            _percent(d["greenShare"]) + mark.get(d["greenShareSource"] or "", ""),
            _short(d["pue"], 2) + mark.get(d["pueSource"] or "", ""),
            _short(d["co2Kg"], 1), _percent(d["availability"]),
        ))
    if report.level == "network":
        lines[0] = ("", *lines[0][1:])
    keep = [i for i in range(len(header)) if not (i in (1, 2) and report.level != "node")]
    lines = [tuple(line[i] for i in keep) for line in lines]
    widths = [max(len(line[i]) for line in lines) for i in range(len(keep))]
    body = "\n".join("  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip()
                     for line in lines)
    period = report.period
    title = (f"network report {period.month}: {_iso(period.start)} to {_iso(period.end)}"
             + ("" if period.complete else " (month not over)") + (f", node {report.node}" if report.node else ""))
    return "\n".join([title, "", body, "", *notes(report)]).rstrip()


def render(report: Report, fmt: str, *, generated_at: dt.datetime, prometheus: str | None) -> str:
    if fmt == "json":
        return to_json(report, generated_at=generated_at, prometheus=prometheus)
    if fmt == "csv":
        return to_csv(report)
    if fmt == "table":
        return to_table(report)
    raise ValueError(f"output must be one of {', '.join(FORMATS)}, not {fmt!r}")


def record_selector(month: Month, now: dt.datetime) -> str | None:
    """The records that can count in ``month``: billed in it, or in a later month (up to now) while
    they ran partly in it (in use pro rata). None: list every record (too many months)."""
    from interconnect.cli.report import month_selector

    return month_selector(month.start, max(now, month.start + dt.timedelta(seconds=1)))


def parse_month(text: str) -> Month:
    try:
        return Month.parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_arguments(report: argparse.ArgumentParser) -> None:
    """`report`'s flags: the same on `kubectl compute report` and `python -m interconnect report`."""
    report.add_argument("--month", type=parse_month, help="the calendar month (UTC), YYYY-MM (default: this "
                        "month, up to now)")
    report.add_argument("--node", help="one node only: its ComputeNode name or identity code")
    report.add_argument("--group-by", default="node", choices=LEVELS,
                        help="rows per node (default), region or industry, or the network's total only")
    report.add_argument("--prometheus", metavar="URL", help="the Prometheus that scrapes the operator, for cards "
                        "offered, utilisation and availability (default: $INTERCONNECT_PROMETHEUS_URL; without "
                        "it those figures are -)")
    report.add_argument("-o", "--output", choices=FORMATS, default="table",
                        help=f"output format: {', '.join(FORMATS)} (default: table; docs/report.md has the CSV and "
                        "JSON schemas)")

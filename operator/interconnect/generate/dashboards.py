"""Grafana dashboards as code, written with grafana-foundation-sdk.

python -m interconnect dashboards            # write deploy/dashboards/*.json and the hub chart's copy
python -m interconnect dashboards --check    # exit 1, with a diff, when either copy is not up to date

Four dashboards: Overview (the 1+M+N topology, capacity, jobs and placements), Metering
(card-hours and revenue by node, tenant, region, industry and GPU model; price per card-hour by
offer; tenant quotas and fair share), Operator health (placement time, dispatch latency,
errors, watches, queue) and Network report (the figures of `kubectl compute report` over time:
utilisation, availability, sales, energy, green share, PUE, CO2). The chart ships the JSON as
ConfigMaps for the Grafana sidecar (templates/dashboards.yaml).

grafana-foundation-sdk is needed only to generate the JSON: it is in the `test` and `dev`
extras, not in the operator's runtime dependencies. ``all_queries()`` lists every PromQL
expression with the template variables filled in, so that a test can evaluate each against a
real Prometheus; hack/render-dashboards draws the panels from a Prometheus into PNGs.
"""

from __future__ import annotations

import argparse
import json
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from grafana_foundation_sdk.builders import bargauge, common, dashboard, prometheus, stat, statetimeline, table
from grafana_foundation_sdk.builders import timeseries as ts
from grafana_foundation_sdk.cog.builder import Builder
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.cog.variants import Dataquery
from grafana_foundation_sdk.models import common as cm
from grafana_foundation_sdk.models import dashboard as dm
from grafana_foundation_sdk.models import prometheus as pm

from interconnect.generate import files as generated
from interconnect.generate.alerts import OPERATOR_JOB

DATASOURCE = dm.DataSourceRef(type_val="prometheus", uid="${datasource}")
TAGS = ["interconnect"]
CARD_HOURS = "suffix:card-h"
CNY = "currencyCNY"
COUNT = "short"
CARDS = "suffix:cards"
SECONDS = "s"
PER_MINUTE = "cpm"  # counts per minute
PERCENT = "percentunit"
READY_MAPPING = dm.ValueMap({
    "1": dm.ValueMappingResult(text="Ready", color="green", index=0),
    "0": dm.ValueMappingResult(text="Not ready", color="red", index=1),
})
# Gauges are exported by every replica of the operator (kopf peering keeps one active): they are
# combined with `max by (...)`, never summed across instances. Counters are summed.
NODE = 'node=~"$node"'
USAGE = 'node=~"$node", tenant=~"$tenant", region=~"$region", industry=~"$industry"'
# The hub's own watches and those of the chosen members (`cluster` is a ComputeNode's name, or hub).
UNREADABLE = 'cluster=~"hub|$node"'
# Revenue is shown in CNY, the programme's billing currency; other currencies have their own table.
USAGE_CNY = USAGE + ', currency="CNY"'
# What all_queries() puts in place of Grafana's variables: every value, and fixed durations.
MATCH_ALL = ".*"
BUILTINS = {"__range": "1h", "__rate_interval": "1m", "__interval": "15s"}


@dataclass(frozen=True)
class Query:
    expr: str
    legend: str = ""


@dataclass
class Spec:
    """What every panel has: a title, a description, a unit, queries, a size on the 24-column grid."""

    title: str
    description: str
    unit: str
    queries: list[Query]
    width: int = 12
    height: int = 8
    instant: bool = False
    overrides: list[tuple[str, list[dm.DynamicConfigValue]]] = field(default_factory=list)


def _targets(spec: Spec, table_format: bool = False) -> list[Builder[Dataquery]]:
    out: list[Builder[Dataquery]] = []
    for i, q in enumerate(spec.queries):
        target = prometheus.Dataquery().expr(q.expr).ref_id(chr(ord("A") + i)).datasource(DATASOURCE)
        if q.legend:
            target = target.legend_format(q.legend)
        target = target.instant() if spec.instant else target.range()
        if table_format:
            target = target.format(pm.PromQueryFormat.TABLE)
        out.append(target)
    return out


PanelBuilder = ts.Panel | stat.Panel | bargauge.Panel | table.Panel | statetimeline.Panel


P = TypeVar("P", ts.Panel, stat.Panel, bargauge.Panel, table.Panel, statetimeline.Panel)


def _common(panel: P, spec: Spec, table_format: bool = False) -> P:
    panel = (panel.title(spec.title).description(spec.description).unit(spec.unit).datasource(DATASOURCE)
             .span(spec.width).height(spec.height).targets(_targets(spec, table_format)))
    for name, properties in spec.overrides:
        panel = panel.override_by_name(name, properties)
    return panel


def _legend() -> common.VizLegendOptions:
    return (common.VizLegendOptions().display_mode(cm.LegendDisplayMode.TABLE).placement(cm.LegendPlacement.RIGHT)
            .show_legend(True).calcs(["lastNotNull", "max"]))


def timeseries(spec: Spec, stacked: bool = False, thresholds: list[tuple[float, str]] | None = None) -> ts.Panel:
    panel = _common(ts.Panel(), spec).legend(_legend()).fill_opacity(10).line_width(1)
    if stacked:
        panel = panel.stacking(common.StackingConfig().mode(cm.StackingMode.NORMAL))
    if thresholds:
        steps = [dm.Threshold(value=None, color="green"), *(dm.Threshold(value=v, color=c) for v, c in thresholds)]
        panel = (panel.thresholds(dashboard.ThresholdsConfig().mode(dm.ThresholdsMode.ABSOLUTE).steps(steps))
                 .thresholds_style(common.GraphThresholdsStyleConfig().mode(cm.GraphThresholdsStyleMode.DASHED)))
    return panel


def single_stat(spec: Spec, no_value: str | None = None) -> stat.Panel:
    panel = (_common(stat.Panel(), spec)
             .reduce_options(common.ReduceDataOptions().calcs(["lastNotNull"]).values(False))
             .graph_mode(cm.BigValueGraphMode.AREA).color_mode(cm.BigValueColorMode.VALUE)
             .text_mode(cm.BigValueTextMode.VALUE_AND_NAME))
    if no_value is not None:
        panel = panel.no_value(no_value)
    return panel


def bars(spec: Spec) -> bargauge.Panel:
    return (_common(bargauge.Panel(), spec).orientation(cm.VizOrientation.HORIZONTAL)
            .display_mode(cm.BarGaugeDisplayMode.GRADIENT).min(0)
            .reduce_options(common.ReduceDataOptions().calcs(["lastNotNull"]).values(False)))


def grid(spec: Spec, rename: dict[str, str], order: list[str] | None = None,
         hide: tuple[str, ...] = ("Time",)) -> table.Panel:
    """A table of instant queries merged on their labels, the value columns renamed."""
    organize: dict[str, Any] = {"excludeByName": dict.fromkeys(hide, True), "renameByName": rename}
    if order:
        organize["indexByName"] = {name: i for i, name in enumerate(order)}
    return (_common(table.Panel(), spec, table_format=True)
            .with_transformation(dm.DataTransformerConfig(id_val="merge", options={}))
            .with_transformation(dm.DataTransformerConfig(id_val="organize", options=organize)))


def readiness_timeline(spec: Spec) -> statetimeline.Panel:
    return (_common(statetimeline.Panel(), spec).mappings([READY_MAPPING])
            .show_value(cm.VisibilityMode.NEVER).merge_values(True))


def _unit(unit: str) -> list[dm.DynamicConfigValue]:
    return [dm.DynamicConfigValue(id_val="unit", value=unit)]


# ------------------------------------------------------------------------------------------ variables

def datasource_variable() -> dashboard.DatasourceVariable:
    return dashboard.DatasourceVariable("datasource").label("Data source").type("prometheus")


def query_variable(name: str, label: str, query: str, all_value: str | None = MATCH_ALL,
                   description: str = "") -> dashboard.QueryVariable:
    """A multi-value label filter with All; without all_value, All lists the values (for chaining)."""
    variable = (dashboard.QueryVariable(name).label(label).datasource(DATASOURCE)
                .query(query)
                .refresh(dm.VariableRefresh.ON_TIME_RANGE_CHANGED).sort(dm.VariableSort.ALPHABETICAL_ASC)
                .multi(True).include_all(True)
                .current(dm.VariableOption(text="All", value="$__all", selected=True)))
    if all_value is not None:
        variable = variable.all_value(all_value)
    if description:
        variable = variable.description(description)
    return variable


def member_variables() -> list[Builder[dm.VariableModel]]:
    """Region, industry and ComputeNode (by name), from the members' readiness gauge."""
    return [
        datasource_variable(),
        query_variable("region", "Region", "label_values(interconnect_member_ready, region)"),
        query_variable("industry", "Industry", 'label_values(interconnect_member_ready{region=~"$region"}, industry)',
                       description="Industry of industry nodes; regional nodes have `none`."),
        # No all_value: All expands to the nodes of the chosen regions and industries, which filters
        # the metrics that carry only `node` (offers, heartbeats, watches).
        query_variable("node", "Node", 'label_values(interconnect_member_ready{region=~"$region", '
                       'industry=~"$industry"}, node)', all_value=None,
                       description="ComputeNode name."),
    ]


def usage_variables() -> list[Builder[dm.VariableModel]]:
    """Metering is labelled by the node's identity code, the unified identity used for billing."""
    return [
        datasource_variable(),
        query_variable("region", "Region", "label_values(interconnect_card_hours_total, region)"),
        query_variable("industry", "Industry",
                       'label_values(interconnect_card_hours_total{region=~"$region"}, industry)',
                       description="Industry of industry nodes; regional nodes have `none`."),
        query_variable("node", "Node (identity code)",
                       'label_values(interconnect_card_hours_total{region=~"$region", industry=~"$industry"}, node)',
                       description="The identity code the hub issued to the ComputeNode (see the table of codes)."),
        query_variable("tenant", "Tenant", "label_values(interconnect_card_hours_total, tenant)",
                       description="The ComputeJob's namespace."),
    ]


# ------------------------------------------------------------------------------------------ dashboards

Item = PanelBuilder | str  # a panel, or the title of a new row


def _links() -> list[Builder[dm.DashboardLink]]:
    return [dashboard.DashboardLink("Compute Interconnect").type(dm.DashboardLinkType.DASHBOARDS).tags(TAGS)
            .as_dropdown(False).keep_time(True).include_vars(False).target_blank(False)]


@dataclass(frozen=True)
class Board:
    file: str
    uid: str
    title: str
    description: str
    time_from: str
    variables: Callable[[], list[Builder[dm.VariableModel]]]
    items: Callable[[], list[Item]]


def overview_items() -> list[Item]:
    member = f"max by (node, identity_code, type, region, industry) (interconnect_member_ready{{{NODE}}})"

    def cards(state: str, by: str) -> str:
        return (f"sum by ({by}) (max by (offer, node, gpu_model) "
                f'(interconnect_offer_cards{{{NODE}, state="{state}"}}))')

    return [
        "Topology: 1 national node (the hub), M regional nodes, N industry nodes",
        single_stat(Spec("Member nodes", "ComputeNodes known to the hub, Ready or not.", COUNT, [
            Query(f"count(max by (node) (interconnect_member_ready{{{NODE}}}))", "members"),
            Query(f"sum(max by (node) (interconnect_member_ready{{{NODE}}}))", "Ready"),
            Query(f"count(max by (node) (interconnect_member_ready{{{NODE}}}) == 0) or vector(0)", "not Ready"),
        ], width=6, height=6)),
        bars(Spec("Nodes by type", "Regional nodes (one per province) and industry nodes.", COUNT, [
            Query(f"count by (type) (max by (node, type) (interconnect_member_ready{{{NODE}}}))", "{{type}}"),
        ], width=6, height=6, instant=True)),
        bars(Spec("Nodes by region", "Members per region (ISO 3166-2:CN).", COUNT, [
            Query(f"count by (region) (max by (node, region) (interconnect_member_ready{{{NODE}}}))", "{{region}}"),
        ], width=6, height=6, instant=True)),
        bars(Spec("Industry nodes by industry", "Industry nodes per industry served.", COUNT, [
            Query(f'count by (industry) (max by (node, industry) (interconnect_member_ready{{{NODE}, '
                  f'type="industry"}}))', "{{industry}}"),
        ], width=6, height=6, instant=True)),
        grid(Spec("Members", "Each ComputeNode: its identity code, type, region, industry, whether it is Ready, "
                  "and seconds since the hub last reached its API server.", COUNT, [
                      Query(member), Query(f"max by (node) (interconnect_member_heartbeat_age_seconds{{{NODE}}})"),
                  ], instant=True,
                  overrides=[("Ready", [dm.DynamicConfigValue(id_val="mappings", value=[READY_MAPPING]),
                                        dm.DynamicConfigValue(id_val="custom.cellOptions",
                                                              value={"type": "color-text"})]),
                             ("Heartbeat age", _unit(SECONDS))]),
             rename={"node": "Node", "identity_code": "Identity code", "type": "Type", "region": "Region",
                     "industry": "Industry", "Value #A": "Ready", "Value #B": "Heartbeat age"},
             order=["node", "identity_code", "type", "region", "industry", "Value #A", "Value #B"]),
        readiness_timeline(Spec("Ready over time", "Whether each member was Ready.", "bool_yes_no", [
            Query(f"max by (node) (interconnect_member_ready{{{NODE}}})", "{{node}}"),
        ])),
        timeseries(Spec("Heartbeat age", "Seconds since the hub last reached each member's API server. "
                        "A member is not Ready after notReadyAfterSeconds (30s by default).", SECONDS, [
                            Query(f"max by (node) (interconnect_member_heartbeat_age_seconds{{{NODE}}})", "{{node}}"),
                        ], width=24, height=7), thresholds=[(30, "orange"), (60, "red")]),
        "Capacity: cards offered, free, reserved and in use",
        timeseries(Spec("Cards by state", "Cards of all offers by state: total offered, free to sell, reserved "
                        "by placed jobs, in use by running pods.", CARDS, [
                            Query(f"sum by (state) (max by (offer, node, gpu_model, state) "
                                  f"(interconnect_offer_cards{{{NODE}}}))", "{{state}}"),
                        ])),
        bars(Spec("Cards in use by GPU model", "Share of each model's offered cards in use by running pods.",
                  PERCENT, [
                      Query(f"{cards('in_use', 'gpu_model')} / ({cards('total', 'gpu_model')} > 0)", "{{gpu_model}}"),
                  ], instant=True)),
        grid(Spec("Cards per node and GPU model", "Total, free, reserved and in-use cards of each member's offers, "
                  "by GPU model.", CARDS, [
                      Query(cards(state, "node, gpu_model")) for state in ("total", "free", "reserved", "in_use")
                  ], width=24, instant=True),
             rename={"node": "Node", "gpu_model": "GPU model", "Value #A": "Total", "Value #B": "Free",
                     "Value #C": "Reserved", "Value #D": "In use"},
             order=["node", "gpu_model", "Value #A", "Value #B", "Value #C", "Value #D"]),
        "Jobs and placements",
        timeseries(Spec("Jobs by phase", "ComputeJobs on the hub by phase (all tenants and nodes).", COUNT, [
            Query("max by (phase) (interconnect_jobs)", "{{phase}}"),
        ]), stacked=True),
        timeseries(Spec("Placements per minute", "Placement decisions by result: placed, or unschedulable "
                        "(nothing fits yet).", PER_MINUTE, [
                            Query("sum by (result) (rate(interconnect_placements_total[$__rate_interval])) * 60",
                                  "{{result}}"),
                        ])),
        timeseries(Spec("Unschedulable jobs", "Pending ComputeJobs that fit no offer, and all jobs waiting for "
                        "placement.", COUNT, [
                            Query("sum(max by (reason) (interconnect_unschedulable_jobs))", "unschedulable"),
                            Query("max(interconnect_pending_queue_depth)", "pending"),
                        ])),
        bars(Spec("Top unschedulable reasons", "Why pending jobs fit nowhere: the most common reason of each "
                  "job's status.unschedulable.summary.", COUNT, [
                      Query("topk(10, max by (reason) (interconnect_unschedulable_jobs))", "{{reason}}"),
                  ], instant=True)),
    ]


def _by(dimension: str, label: str) -> tuple[Spec, Spec]:
    hours = Spec(f"Card-hours by {label}", f"Card-hours metered over the selected range, by {label}.", CARD_HOURS,
                 [Query(f"sort_desc(sum by ({dimension}) "
                        f"(increase(interconnect_card_hours_total{{{USAGE}}}[$__range])))", f"{{{{{dimension}}}}}")],
                 width=8, instant=True)
    cost = Spec(f"Revenue by {label}", f"Cost metered (CNY) over the selected range, by {label}.", CNY,
                [Query(f"sort_desc(sum by ({dimension}) "
                       f"(increase(interconnect_cost_total{{{USAGE_CNY}}}[$__range])))", f"{{{{{dimension}}}}}")],
                width=8, instant=True)
    return hours, cost


DIMENSIONS = (("node", "node (identity code)"), ("tenant", "tenant"), ("region", "region"),
              ("industry", "industry"), ("gpu_model", "GPU model"))


def metering_items() -> list[Item]:
    hours_total = f"sum(increase(interconnect_card_hours_total{{{USAGE}}}[$__range]))"
    cost_total = f"sum(increase(interconnect_cost_total{{{USAGE_CNY}}}[$__range]))"
    per_offer = "offer, node, gpu_model"
    by = [_by(d, label) for d, label in DIMENSIONS]
    return [
        "Over the selected range",
        single_stat(Spec("Card-hours", "Card-hours metered (GPUs x running time of each pod).", CARD_HOURS,
                         [Query(hours_total, "card-hours")], width=6, height=5, instant=True), no_value="0"),
        single_stat(Spec("Revenue", "Cost metered in CNY.", CNY, [Query(cost_total, "revenue")],
                         width=6, height=5, instant=True), no_value="0"),
        single_stat(Spec("Average price per card-hour", "Revenue divided by the card-hours of CNY-priced work.",
                         CNY, [Query(f"{cost_total} / ({hours_total.replace(USAGE, USAGE_CNY)} > 0)", "CNY/card-h")],
                         width=6, height=5, instant=True)),
        single_stat(Spec("Revenue rate (CNY per hour)", "What the running work earns per hour now.", CNY, [
            Query(f"sum(rate(interconnect_cost_total{{{USAGE_CNY}}}[$__rate_interval])) * 3600", "CNY/h"),
        ], width=6, height=5), no_value="0"),
        "Card-hours",
        *(bars(hours) for hours, _ in by),
        timeseries(Spec("Card-hours per hour by tenant", "How fast each tenant accrues card-hours: the number of "
                        "cards its running pods hold.", "suffix:card-h/h", [
                            Query(f"sum by (tenant) (rate(interconnect_card_hours_total{{{USAGE}}}"
                                  f"[$__rate_interval])) * 3600", "{{tenant}}"),
                        ], width=8)),
        "Normalised compute",
        bars(Spec("PFLOPS-hours by vendor", "One unit across vendors: card-hours x the model's dense TFLOPS "
                  "(BF16, else FP16) / 1000, from the accelerator catalogue, over the selected range. Models "
                  "without a sourced figure count in card-hours only (Card-hours by GPU model).", "suffix:PFLOPS-h", [
                      Query(f"sum by (vendor) (increase(interconnect_compute_pflops_hours_total{{{USAGE}}}"
                            f"[$__range]))", "{{vendor}}"),
                  ], width=8, instant=True)),
        "Revenue (CNY)",
        *(bars(cost) for _, cost in by),
        timeseries(Spec("Revenue rate by region (CNY per hour)", "Revenue per hour by the member's region.", CNY, [
            Query(f"sum by (region) (rate(interconnect_cost_total{{{USAGE_CNY}}}[$__rate_interval])) * 3600",
                  "{{region}}"),
        ], width=8), stacked=True),
        "Prices",
        grid(Spec("Price per card-hour by offer", "Over the selected range: revenue / card-hours of each offer "
                  "(the locked price of the attempts it ran; machine-hour offers bill whole machines).", CNY, [
                      Query(f"sum by ({per_offer}) (increase(interconnect_cost_total{{{USAGE_CNY}}}[$__range])) / "
                            f"(sum by ({per_offer}) (increase(interconnect_card_hours_total{{{USAGE_CNY}}}"
                            f"[$__range])) > 0)"),
                      Query(f"sum by ({per_offer}) (increase(interconnect_card_hours_total{{{USAGE_CNY}}}"
                            f"[$__range]))"),
                      Query(f"sum by ({per_offer}) (increase(interconnect_cost_total{{{USAGE_CNY}}}[$__range]))"),
                  ], width=14, instant=True, overrides=[("Card-hours", _unit(CARD_HOURS))]),
             rename={"offer": "Offer", "node": "Node", "gpu_model": "GPU model", "Value #A": "Price per card-hour",
                     "Value #B": "Card-hours", "Value #C": "Revenue"},
             order=["offer", "node", "gpu_model", "Value #A", "Value #B", "Value #C"]),
        timeseries(Spec("Price per card-hour by offer over time", "Revenue rate / card-hour rate of each offer.",
                        CNY, [
                            Query(f"sum by (offer) (rate(interconnect_cost_total{{{USAGE_CNY}}}[$__rate_interval])) "
                                  f"/ (sum by (offer) (rate(interconnect_card_hours_total{{{USAGE_CNY}}}"
                                  f"[$__rate_interval])) > 0)", "{{offer}}"),
                        ], width=10)),
        grid(Spec("Cost in every currency", "Over the selected range, by currency: offers priced in other "
                  "currencies than CNY appear only here.", COUNT, [
                      Query(f"sum by (currency) (increase(interconnect_cost_total{{{USAGE}}}[$__range]))"),
                  ], instant=True),
             rename={"currency": "Currency", "Value": "Cost"}, order=["currency", "Value"]),
        grid(Spec("Identity codes", "The identity code the hub issued to each ComputeNode, with its name.", COUNT, [
            Query('max by (identity_code, node, type, region, industry) (interconnect_member_ready{'
                  'identity_code=~"$node", region=~"$region", industry=~"$industry"})'),
        ], instant=True, overrides=[("Ready", [dm.DynamicConfigValue(id_val="mappings", value=[READY_MAPPING])])]),
             rename={"identity_code": "Identity code", "node": "ComputeNode", "type": "Type", "region": "Region",
                     "industry": "Industry", "Value": "Ready"},
             order=["identity_code", "node", "type", "region", "industry", "Value"]),
    ]


TENANT = 'tenant=~"$tenant"'


def tenancy_items() -> list[Item]:
    """ComputeQuota usage against its limits, fair share, and jobs held over quota (issue 10)."""

    def per_tenant(metric: str, by: str = "tenant") -> str:
        return f"max by ({by}) ({metric}{{{TENANT}}})"

    return [
        "Tenants: quotas and fair share",
        grid(Spec("Quota by tenant", "Now: cards held by active jobs and pending jobs, next to the ComputeQuota's "
                  "limits (empty: no limit); fair-share weight and dominant share (cards in use / weight; among "
                  "equal priorities the lowest share is placed first).", COUNT, [
                      Query(per_tenant("interconnect_quota_cards_in_use")),
                      Query(per_tenant("interconnect_quota_cards_limit")),
                      Query(per_tenant("interconnect_quota_pending_jobs")),
                      Query(per_tenant("interconnect_quota_pending_jobs_limit")),
                      Query(per_tenant("interconnect_quota_weight")),
                      Query(per_tenant("interconnect_fair_share")),
                  ], width=14, instant=True),
             rename={"tenant": "Tenant", "Value #A": "Cards in use", "Value #B": "Card limit",
                     "Value #C": "Pending", "Value #D": "Pending limit", "Value #E": "Weight",
                     "Value #F": "Share"},
             order=["tenant", "Value #A", "Value #B", "Value #C", "Value #D", "Value #E", "Value #F"]),
        grid(Spec("Spend this month by tenant", "Metered spend in the current calendar month (UTC) and the "
                  "ComputeQuota's monthly budget: once reached, the tenant's new jobs are held.", COUNT, [
                      Query(per_tenant("interconnect_quota_spend_month", "tenant, currency")),
                      Query(per_tenant("interconnect_quota_spend_month_limit", "tenant, currency")),
                  ], width=10, instant=True),
             rename={"tenant": "Tenant", "currency": "Currency", "Value #A": "Spent", "Value #B": "Budget"},
             order=["tenant", "currency", "Value #A", "Value #B"]),
        timeseries(Spec("Cards in use by tenant", "Cards held by each tenant's active jobs (solid) and its "
                        "ComputeQuota's card limit.", CARDS, [
                            Query(per_tenant("interconnect_quota_cards_in_use"), "{{tenant}}"),
                            Query(per_tenant("interconnect_quota_cards_limit"), "{{tenant}} limit"),
                        ], width=8)),
        timeseries(Spec("Fair share by tenant", "Dominant share: cards in use divided by the tenant's weight. A "
                        "tenant whose share stays far above the others' while they wait is not being throttled: "
                        "running jobs are never preempted.", COUNT, [
                            Query(per_tenant("interconnect_fair_share"), "{{tenant}}"),
                        ], width=8)),
        bars(Spec("Jobs held over quota, by limit", "Pending jobs held with reason QuotaExceeded in the last "
                  "placement pass, by the limit that holds them (summed over the selected tenants).", COUNT, [
                      Query("sum by (limit) (max by (tenant, limit) "
                            f"(interconnect_quota_held_jobs{{{TENANT}}}))", "{{limit}}"),
                  ], width=8, instant=True)),
        grid(Spec("Cards per GPU model by tenant", "Cards of each GPU model held by the tenant's active jobs, and "
                  "the ComputeQuota's per-model limit.", COUNT, [
                      Query(per_tenant("interconnect_quota_model_cards_in_use", "tenant, gpu_model")),
                      Query(per_tenant("interconnect_quota_model_cards_limit", "tenant, gpu_model")),
                  ], width=24, height=6, instant=True),
             rename={"tenant": "Tenant", "gpu_model": "GPU model", "Value #A": "Cards in use",
                     "Value #B": "Limit"},
             order=["tenant", "gpu_model", "Value #A", "Value #B"]),
        grid(Spec("Cards per vendor by tenant", "Cards of each accelerator vendor (all its models) held by the "
                  "tenant's active jobs, next to the ComputeQuota's per-vendor limit (tenants with such a limit).",
                  COUNT, [
                      Query(per_tenant("interconnect_quota_vendor_cards_in_use", "tenant, vendor")),
                      Query(per_tenant("interconnect_quota_vendor_cards_limit", "tenant, vendor")),
                  ], width=24, height=6, instant=True),
             rename={"tenant": "Tenant", "vendor": "Vendor", "Value #A": "Cards in use", "Value #B": "Limit"},
             order=["tenant", "vendor", "Value #A", "Value #B"]),
    ]


def _quantiles(metric: str, selector: str = "") -> list[Query]:
    return [Query(f"histogram_quantile({q}, sum by (le) (rate({metric}_bucket{selector}[$__rate_interval])))",
                  f"p{round(q * 100)}") for q in (0.5, 0.95, 0.99)]


def health_items() -> list[Item]:
    return [
        "Operator",
        single_stat(Spec("Operator replicas up", "Replicas scraped successfully; one is active, the others stand "
                         "by (kopf peering).", COUNT, [Query(f"sum(up{{{OPERATOR_JOB}}})", "up")],
                         width=6, height=5), no_value="0"),
        single_stat(Spec("Pending queue depth", "ComputeJobs waiting for placement.", COUNT,
                         [Query("max(interconnect_pending_queue_depth)", "pending")], width=6, height=5)),
        single_stat(Spec("Reconcile errors", "Errors in the operator's loops over the selected range.", COUNT,
                         [Query("sum(increase(interconnect_reconcile_errors_total[$__range]))", "errors")],
                         width=6, height=5, instant=True), no_value="0"),
        single_stat(Spec("Member API errors", "Failed calls to the members' API servers over the selected range.",
                         COUNT, [Query(f"sum(increase(interconnect_member_api_errors_total{{{NODE}}}[$__range]))",
                                       "errors")], width=6, height=5, instant=True), no_value="0"),
        "Latency",
        timeseries(Spec("Placement time", "Time to decide one job's placement (filter and score every offer).",
                        SECONDS, _quantiles("interconnect_placement_duration_seconds"), width=8)),
        timeseries(Spec("Dispatch latency: member Job created", "From ComputeJob creation to its member Job "
                        "(includes time spent waiting for a fitting offer).", SECONDS,
                        _quantiles("interconnect_dispatch_latency_seconds", '{stage="created"}'), width=8),
                   thresholds=[(30, "red")]),
        timeseries(Spec("Dispatch latency: first pod running", "From ComputeJob creation to its first running pod "
                        "in the member.", SECONDS,
                        _quantiles("interconnect_dispatch_latency_seconds", '{stage="running"}'), width=8),
                   thresholds=[(60, "red")]),
        timeseries(Spec("Dispatch time by stage (p99)", "Where the time from the hub's accepting a ComputeJob to "
                        "its member Job goes: watch (creation to the operator's watch; whole seconds), queue "
                        "(seen to placed: includes waiting for a fitting offer), journal (placed to durable in the "
                        "dispatch journal), member-create (durable to the member Job created).", SECONDS, [
            Query("histogram_quantile(0.99, sum by (le, stage) "
                  "(rate(interconnect_dispatch_stage_seconds_bucket[$__rate_interval])))", "{{stage}}"),
        ], width=24)),
        "Errors, watches and queue",
        timeseries(Spec("Reconcile errors by loop", "Errors per minute in each of the operator's loops. An error "
                        "is one job's or one object's: the loop goes on with the others, and tries that one again "
                        "on its next pass. Every loop has a series, at 0 while it has no error.", PER_MINUTE, [
            Query("sum by (loop) (rate(interconnect_reconcile_errors_total[$__rate_interval])) * 60", "{{loop}}"),
        ], width=8)),
        timeseries(Spec("Member API errors by node", "Failed calls per minute to each member's API server.",
                        PER_MINUTE, [
                            Query(f"sum by (node) (rate(interconnect_member_api_errors_total{{{NODE}}}"
                                  f"[$__rate_interval])) * 60", "{{node}}"),
                        ], width=8)),
        timeseries(Spec("Watch restarts by node", "Restarts of the hub's watches on each member since the operator "
                        "started.", COUNT, [
                            Query(f"max by (node) (interconnect_watch_restarts{{{NODE}}})", "{{node}}"),
                        ], width=8)),
        timeseries(Spec("Pending queue depth over time", "ComputeJobs waiting for placement, those of them "
                        "that fit nowhere, and placements durable in the dispatch journal whose job status does not "
                        "show them yet (a burst; it drains within seconds).", COUNT, [
                            Query("max(interconnect_pending_queue_depth)", "pending"),
                            Query("sum(max by (reason) (interconnect_unschedulable_jobs))", "unschedulable"),
                            Query("max(interconnect_dispatch_journal_placements)", "placed, status not yet written"),
                        ])),
        timeseries(Spec("Heartbeat age", "Seconds since the hub last reached each member's API server.", SECONDS, [
            Query(f"max by (node) (interconnect_member_heartbeat_age_seconds{{{NODE}}})", "{{node}}"),
        ]), thresholds=[(30, "orange"), (60, "red")]),
        "Errors by loop and unreadable objects",
        bars(Spec("Reconcile errors by loop over the range", "Errors of each loop over the selected range, most "
                  "first (0: none). Which job or object failed, and why, is in the operator's log.", COUNT, [
                      Query("sort_desc(sum by (loop) (increase(interconnect_reconcile_errors_total[$__range])))",
                            "{{loop}}"),
                  ], width=8, instant=True)),
        timeseries(Spec("Unreadable objects skipped", "Objects the hub's and the members' watches skipped per "
                        "selected range step because they could not be read (e.g. a GPU request that is not a "
                        "quantity), by cluster and kind. A skipped object is left out (a pod's cards are not "
                        "counted), never retried in a loop: the watch goes on. The log names each one.", COUNT, [
                            Query(f"sum by (cluster, kind) (increase(interconnect_unreadable_objects_total"
                                  f"{{{UNREADABLE}}}[$__rate_interval]))", "{{cluster}} {{kind}}"),
                        ], width=10)),
        single_stat(Spec("Unreadable objects", "Objects the active replica's watches have skipped as unreadable "
                         "since they started, all clusters and kinds: the count itself, not its increase, since "
                         "an object skipped at the first list of a watch is counted before any scrape could see "
                         "its series at 0 (increase() misses it).", COUNT, [
                             Query(f"sum(max by (cluster, kind) (interconnect_unreadable_objects_total"
                                   f"{{{UNREADABLE}}}))", "skipped"),
                         ], width=6, instant=True), no_value="0"),
        "Member credentials",
        timeseries(Spec("Member token: time left", "Seconds until the hub's bound token for each member expires "
                        "(members joined with `join`; client certificates have none). It is renewed once "
                        "settings.tokenRenewFraction of its lifetime has passed; near 0, the member turns "
                        "Ready=False (CredentialsExpired) and must be joined again.", SECONDS, [
                            Query(f"max by (node) (interconnect_member_token_expiry_timestamp_seconds{{{NODE}}})"
                                  " - time()", "{{node}}"),
                        ])),
        timeseries(Spec("Member token renewals", "Tokens renewed per selected range step, and failed renewals "
                        "(reconcile errors of the credentials loop, retried while the current token lasts).",
                        COUNT, [
                            Query(f"sum by (node) (increase(interconnect_member_token_renewals_total{{{NODE}}}"
                                  f"[$__rate_interval]))", "{{node}} renewed"),
                            Query('sum(increase(interconnect_reconcile_errors_total{loop="credentials"}'
                                  '[$__rate_interval]))', "failed"),
                        ])),
        "Failover",
        single_stat(Spec("Active replicas", "Replicas that place and dispatch: exactly 1 (0 during a takeover, "
                         "more than 1 is a fault), and the leader Lease's epoch (it rises by one per takeover; "
                         "the writes of an older epoch are refused).", COUNT,
                         [Query("sum(interconnect_operator_active)", "active"),
                          Query("max(interconnect_leader_epoch)", "epoch")],
                         width=6, height=5), no_value="0"),
        timeseries(Spec("Jobs taken off lost nodes", "Active jobs of a lost node, re-placed elsewhere or failed "
                        "(failurePolicy Never), per selected range step.", COUNT, [
                            Query(f"sum by (node, outcome) (increase(interconnect_failovers_total{{{NODE}}}"
                                  f"[$__rate_interval]))", "{{node}} {{outcome}}"),
                        ], width=6, height=5)),
        timeseries(Spec("Member Jobs fenced", "Jobs of superseded attempts deleted when their node answered "
                        "again.", COUNT, [
                            Query(f"sum by (node) (increase(interconnect_fenced_member_jobs_total{{{NODE}}}"
                                  f"[$__rate_interval]))", "{{node}}"),
                        ], width=6, height=5)),
        timeseries(Spec("Events dropped", "Normal ComputeJob events not posted during bursts (the backlog was "
                        "full); the jobs' conditions carry the same information.", COUNT, [
                            Query("sum by (reason) (increase(interconnect_events_dropped_total[$__rate_interval]))",
                                  "{{reason}}"),
                        ], width=6, height=5)),
        single_stat(Spec("Lost card-hours (not charged)", "Card-hours superseded attempts ran after their node was "
                         "declared lost, over the selected range.", CARD_HOURS, [
                             Query("sum(increase(interconnect_lost_card_hours_total[$__range]))", "lost"),
                         ], width=6, height=5, instant=True), no_value="0"),
    ]


# ------------------------------------------------------------------------------------------ network report

# The operator's node-level series (offered card-seconds, Ready and observed seconds, declarations)
# carry the ComputeNode's name in `node`; the metering counters carry its identity code there. The
# usage figures are turned to names through interconnect_member_ready's (node, identity_code).
NODE_TIME = 'node=~"$node", region=~"$region", industry=~"$industry"'
WHERE = 'region=~"$region", industry=~"$industry"'
KWATT = "kwatt"
KWH = "kwatth"
KG = "masskg"


def by_name(expr: str) -> str:
    """``expr``, a vector by ``node`` = identity code (the metering counters), as a vector by ``node`` =
    the ComputeNode's name, for the nodes of $node."""
    return ('sum by (node) (sum by (identity_code) (label_replace(' + expr + ', "identity_code", "$1", "node", '
            '"(.*)")) * on (identity_code) group_left (node) group by (identity_code, node) '
            '(interconnect_member_ready{node=~"$node"}))')


CHOSEN = ('label_replace(group by (identity_code) (interconnect_member_ready{node=~"$node"}), "node", "$1", '
          '"identity_code", "(.*)")')
"""The identity codes of the nodes of $node, in `node` (the metering counters' label)."""


def chosen(expr: str) -> str:
    """``expr``, a vector by ``node`` = identity code and maybe more, only for the nodes of $node."""
    return f"({expr} and on (node) {CHOSEN})"


def network_items() -> list[Item]:
    def offered(window: str, by: str = "") -> str:
        """Card-seconds offered per second (cards) over ``window``."""
        grouping = f"sum by ({by}) " if by else "sum "
        return f"{grouping}({window}(interconnect_offered_card_seconds_total{{{NODE_TIME}}}[$__W]))"

    def in_use(window: str) -> str:
        """Card-hours in use by node name (the metering counters)."""
        return by_name(f"sum by (node) ({window}(interconnect_card_hours_total{{{WHERE}}}[$__W]))")

    def rng(expr: str) -> str:
        return expr.replace("$__W", "$__range")

    def per_hour(by: str, metric: str) -> str:
        """``metric``'s rate per hour by ``by``, for the chosen nodes."""
        return f"sum by ({by}) ({chosen(f'sum by (node, {by}) (rate({metric}[$__rate_interval]))')}) * 3600"

    def rate_(expr: str) -> str:
        return expr.replace("$__W", "$__rate_interval")

    offered_h_node = rng(f"({offered('increase', 'node')} / 3600)")
    offered_h = rng(f"({offered('increase')} / 3600)")
    in_use_h_node = rng(in_use("increase"))
    in_use_h = f"sum({in_use_h_node})"
    ready = f"interconnect_node_ready_seconds_total{{{NODE_TIME}}}"
    observed = f"interconnect_node_observed_seconds_total{{{NODE_TIME}}}"
    energy = f"interconnect_energy_kwh_total{{{WHERE}}}"
    green = f'interconnect_energy_kwh_total{{{WHERE}, kind="green"}}'
    co2 = f"interconnect_co2_kg_total{{{WHERE}}}"
    sold = f"interconnect_card_hours_total{{{WHERE}}}"
    pflops = f"interconnect_compute_pflops_hours_total{{{WHERE}}}"
    revenue = f'interconnect_cost_total{{{WHERE}, currency="CNY"}}'
    per_node_range = [
        Query(offered_h_node), Query(in_use_h_node), Query(f"{in_use_h_node} / ({offered_h_node} > 0)"),
        Query(f"sum by (node) (increase({ready}[$__range])) / (sum by (node) (increase({observed}[$__range])) > 0)"),
        Query(by_name(f"sum by (node) (increase({pflops}[$__range]))")),
        Query(by_name(f"sum by (node) (increase({revenue}[$__range]))")),
        Query(by_name(f"sum by (node) (increase({energy}[$__range]))")),
        Query(f"{by_name(f'sum by (node) (increase({green}[$__range]))')} / "
              f"({by_name(f'sum by (node) (increase({energy}[$__range]))')} > 0)"),
        Query('max by (node) (interconnect_node_pue{node=~"$node"})'),
        Query(by_name(f"sum by (node) (increase({co2}[$__range]))")),
    ]
    return [
        "Over the selected range: the month's report, live",
        single_stat(Spec("Utilisation", "Card-hours in use (the metering counters: running attempts included) "
                         "over card-hours offered (the cards of valid offers on Ready nodes x time), over the "
                         "selected range. `kubectl compute report` computes the month's from the usage records.",
                         PERCENT, [Query(f"{in_use_h} / ({offered_h} > 0)", "utilisation")],
                         width=4, height=5, instant=True)),
        single_stat(Spec("Card-hours offered", "Cards offered x hours, over the selected range.", CARD_HOURS,
                         [Query(offered_h, "offered")], width=4, height=5, instant=True), no_value="0"),
        single_stat(Spec("Card-hours sold", "Card-hours metered (in use), over the selected range.", CARD_HOURS,
                         [Query(in_use_h, "sold")], width=4, height=5, instant=True), no_value="0"),
        single_stat(Spec("Availability", "Time the nodes were Ready over the time the operator watched them, "
                         "summed over the nodes, over the selected range.", PERCENT, [
                             Query(f"sum(increase({ready}[$__range])) / (sum(increase({observed}[$__range])) > 0)",
                                   "availability")], width=4, height=5, instant=True)),
        single_stat(Spec("Green share of the energy", "Estimated energy from renewable power (each node's "
                         "declared green share) over all estimated energy, over the selected range.", PERCENT, [
                             Query(f"sum({chosen(f'sum by (node) (increase({green}[$__range]))')}) / "
                                   f"(sum({chosen(f'sum by (node) (increase({energy}[$__range]))')}) > 0)",
                                   "green")], width=4, height=5, instant=True)),
        single_stat(Spec("CO2", "Estimated CO2 of the grid part of the energy, over the selected range.", KG, [
            Query(f"sum({chosen(f'sum by (node) (increase({co2}[$__range]))')})", "CO2")],
            width=4, height=5, instant=True), no_value="0"),
        grid(Spec("Per node over the range", "What `kubectl compute report --group-by node` shows for the month, "
                  "over the selected range from the counters: card-hours offered and in use, utilisation, "
                  "availability, PFLOPS-hours, revenue (CNY), estimated energy, its green share, the declared "
                  "PUE now and CO2.", CARD_HOURS, per_node_range, width=24, height=7, instant=True,
                  overrides=[("Utilisation", _unit(PERCENT)), ("Availability", _unit(PERCENT)),
                             ("PFLOPS-hours", _unit("suffix:PFLOPS-h")), ("Revenue", _unit(CNY)),
                             ("Energy", _unit(KWH)), ("Green share", _unit(PERCENT)), ("PUE (declared)", _unit(COUNT)),
                             ("CO2", _unit(KG))]),
             rename={"node": "Node", "Value #A": "Offered", "Value #B": "In use", "Value #C": "Utilisation",
                     "Value #D": "Availability", "Value #E": "PFLOPS-hours", "Value #F": "Revenue",
                     "Value #G": "Energy", "Value #H": "Green share", "Value #I": "PUE (declared)", "Value #J": "CO2"},
             order=["node", *(f"Value #{c}" for c in "ABCDEFGHIJ")]),
        "Capacity and utilisation over time",
        timeseries(Spec("Cards offered and in use", "Cards offered (valid offers of Ready nodes) and cards in use "
                        "(metered), all selected nodes.", CARDS, [
                            Query(rate_(offered("rate")), "offered"),
                            Query(f"sum({rate_(in_use('rate'))}) * 3600", "in use"),
                        ])),
        timeseries(Spec("Utilisation by node", "Cards in use over cards offered, per node.", PERCENT, [
            Query(f"{rate_(in_use('rate'))} * 3600 / ({rate_(offered('rate', 'node'))} > 0)", "{{node}}"),
        ])),
        timeseries(Spec("Utilisation by region", "Cards in use over cards offered, per region.", PERCENT, [
            Query(f"sum by (region) ({chosen(f'sum by (node, region) (rate({sold}[$__rate_interval]))')}) * 3600 / "
                  f"({rate_(offered('rate', 'region'))} > 0)", "{{region}}"),
        ])),
        timeseries(Spec("Availability by node", "The share of the time each node was Ready, as the operator "
                        "watched it.", PERCENT, [
                            Query(f"sum by (node) (rate({ready}[$__rate_interval])) / "
                                  f"(sum by (node) (rate({observed}[$__rate_interval])) > 0)", "{{node}}"),
                        ])),
        "Sales",
        timeseries(Spec("Card-hours sold per hour by region", "Card-hours metered per hour (the cards in use), "
                        "by the node's region.", "suffix:card-h/h", [
                            Query(per_hour("region", sold), "{{region}}"),
                        ], width=8), stacked=True),
        timeseries(Spec("PFLOPS-hours sold per hour by vendor", "Normalised compute metered per hour (card-hours x "
                        "the model's dense TFLOPS / 1000).", "suffix:PFLOPS-h/h", [
                            Query(per_hour("vendor", pflops), "{{vendor}}"),
                        ], width=8), stacked=True),
        timeseries(Spec("Revenue per hour by industry (CNY)", "Revenue metered per hour by the node's industry "
                        "(`none`: regional nodes).", CNY, [
                            Query(per_hour("industry", revenue),
                                  "{{industry}}"),
                        ], width=8), stacked=True),
        "Energy",
        timeseries(Spec("Power drawn: green and grid", "Estimated power of the cards in use (board power x PUE), "
                        "split by the nodes' declared green share.", KWATT, [
                            Query(per_hour("kind", energy), "{{kind}}"),
                        ], width=8), stacked=True),
        timeseries(Spec("Declared green share and PUE by node", "What each node declares now: its green share "
                        "of the month (0 to 1) and its PUE.", COUNT, [
                            Query('max by (node) (interconnect_node_green_share{node=~"$node"})', "{{node}} green"),
                            Query('max by (node) (interconnect_node_pue{node=~"$node"})', "{{node}} PUE"),
                        ], width=8)),
        timeseries(Spec("CO2 per hour by region", "Estimated CO2 of the grid energy per hour, by region.",
                        "suffix:kg/h", [
                            Query(per_hour("region", co2), "{{region}}"),
                        ], width=8), stacked=True),
    ]


BOARDS = (
    Board("interconnect-overview.json", "interconnect-overview", "Compute Interconnect / Overview",
          "The 1+M+N topology, capacity by node and GPU model, jobs and placements.", "now-6h",
          member_variables, overview_items),
    Board("interconnect-metering.json", "interconnect-metering", "Compute Interconnect / Metering",
          "Card-hours and revenue by node, tenant, region, industry and GPU model; price per card-hour by offer; "
          "tenant quotas and fair share.",
          "now-24h", usage_variables, lambda: [*metering_items(), *tenancy_items()]),
    Board("interconnect-operator-health.json", "interconnect-operator-health",
          "Compute Interconnect / Operator health",
          "Placement time, dispatch latency, errors by loop, unreadable objects, watch restarts and the pending "
          "queue.", "now-6h",
          member_variables, health_items),
    Board("interconnect-network-report.json", "interconnect-network-report", "Compute Interconnect / Network report",
          "The network report's figures over time: cards offered and in use, utilisation and availability per node "
          "and region, card-hours and PFLOPS-hours sold, revenue, estimated energy (green and grid), green share, "
          "PUE and CO2.", "now-7d", member_variables, network_items),
)


def build(board: Board) -> dm.Dashboard:
    builder = (dashboard.Dashboard(board.title).uid(board.uid).description(board.description).tags(TAGS)
               .editable().refresh("30s").time(board.time_from, "now").timezone("browser")
               .tooltip(dm.DashboardCursorSync.CROSSHAIR).variables(list(board.variables()))
               .links(_links()))
    for item in board.items():
        builder = builder.with_row(dashboard.Row(item)) if isinstance(item, str) else builder.with_panel(item)
    built = builder.build()
    for i, panel in enumerate(built.panels or [], start=1):
        panel.id_val = i
    return built


def dashboard_objects() -> dict[str, dict[str, Any]]:
    """File name -> the dashboard as plain JSON data."""
    return {b.file: json.loads(json.dumps(build(b), cls=JSONEncoder)) for b in BOARDS}


def render_dashboards() -> dict[str, str]:
    """File name -> JSON text (sorted keys, stable), exactly as committed."""
    return {name: json.dumps(obj, sort_keys=True, indent=2, ensure_ascii=False) + "\n"
            for name, obj in sorted(dashboard_objects().items())}


# ------------------------------------------------------------------------------------------ queries

# A Grafana variable's name starts with a letter or _: `$1` is label_replace's first group.
_VARIABLE = re.compile(r"\$(?:\{([A-Za-z_]\w*)(?::\w+)?\}|([A-Za-z_]\w*))")


def substitute(expr: str, values: Mapping[str, str] | None = None, builtins: Mapping[str, str] | None = None) -> str:
    """The expression with Grafana's variables replaced: $__range and the like by durations, every
    other variable by ``values`` or else by the regex that matches everything."""
    fixed = {**BUILTINS, **(builtins or {})}

    def replace(m: re.Match[str]) -> str:
        name = m.group(1) or m.group(2)
        if name in fixed:
            return fixed[name]
        return (values or {}).get(name, MATCH_ALL)

    return _VARIABLE.sub(replace, expr)


def panels(obj: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    """The panels of a dashboard object, rows excluded (also the panels inside collapsed rows)."""
    for panel in obj.get("panels") or []:
        if panel.get("type") == "row":
            yield from panel.get("panels") or []
        else:
            yield panel


_LABEL_VALUES = re.compile(r"^label_values\((.*),\s*\w+\)$", re.S)


def all_queries(values: Mapping[str, str] | None = None,
                builtins: Mapping[str, str] | None = None) -> list[tuple[str, str]]:
    """(``<dashboard> / <panel title>``, PromQL) for every panel target and every variable's selector,
    with the variables substituted (``.*`` and the durations of BUILTINS unless given)."""
    out: list[tuple[str, str]] = []
    for _, obj in sorted(dashboard_objects().items()):
        short = obj["title"].split(" / ")[-1]
        for variable in obj["templating"]["list"]:
            query = variable.get("query")
            if variable["type"] == "query" and isinstance(query, str):
                m = _LABEL_VALUES.match(query)
                if m:
                    out.append((f"{short} / variable {variable['name']}", substitute(m.group(1), values, builtins)))
        for panel in panels(obj):
            for target in panel.get("targets") or []:
                out.append((f"{short} / {panel['title']}", substitute(target["expr"], values, builtins)))
    return out


# ------------------------------------------------------------------------------------------ command

def _root() -> Path:
    root = Path(__file__).resolve().parents[3]
    return root if (root / "pyproject.toml").is_file() else Path.cwd()


def default_output_dirs() -> list[Path]:
    """deploy/dashboards/ and charts/interconnect-hub/dashboards/ of this checkout."""
    root = _root()
    return [root / "deploy" / "dashboards", root / "charts" / "interconnect-hub" / "dashboards"]


STALE_PATTERN = "interconnect-*.json"


def check(output_dirs: list[Path], rendered: Mapping[str, str]) -> list[str]:
    """Unified diffs between the committed files and the rendered ones (empty: up to date)."""
    return generated.check(output_dirs, rendered, STALE_PATTERN)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="interconnect dashboards", description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 with a diff when the files differ")
    parser.add_argument("--output-dir", type=Path, action="append", default=None,
                        help="default: the checkout's deploy/dashboards/ and charts/interconnect-hub/dashboards/")
    args = parser.parse_args(argv)
    return generated.run("dashboards", "python -m interconnect dashboards", args.output_dir or default_output_dirs(),
                         render_dashboards(), check_only=args.check, pattern=STALE_PATTERN)


if __name__ == "__main__":
    raise SystemExit(main())

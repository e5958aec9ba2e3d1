"""Prometheus alert rules as code: one source for deploy/alerts/ and the hub chart's PrometheusRule.

python -m interconnect alerts            # write deploy/alerts/interconnect.rules.yaml and the chart's copy
python -m interconnect alerts --check    # exit 1, with a diff, when either file is not up to date

The rules live here as data. ``render_alerts()`` gives the text of the plain Prometheus rules
file; the same text is written to ``deploy/alerts/`` (for a Prometheus configured by hand) and to
``charts/interconnect-hub/alerts/``, which ``templates/prometheusrule.yaml`` wraps in a
PrometheusRule with ``.Files.Get`` (Helm reads files only from inside the chart). The unit tests
for every alert are hand-written in ``deploy/alerts/interconnect.tests.yaml`` (``promtool test
rules``); each alert's runbook is a section of ``docs/runbook.md``.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from interconnect.generate import files as generated

RULES_FILE = "interconnect.rules.yaml"
RUNBOOK = "docs/runbook.md"
# The operator's scrape job: `interconnect-hub-metrics` through the chart's ServiceMonitor (the
# Service's name), `interconnect` in a static scrape configuration such as the e2e tests'.
OPERATOR_JOB = 'job=~"interconnect.*"'
HEADER = (
    "# Generated from operator/interconnect/alerts.py by `python -m interconnect alerts`.\n"
    "# Do not edit: change the rules there and regenerate (a unit test fails when the two drift).\n"
    "# Unit tests: deploy/alerts/interconnect.tests.yaml (promtool test rules). Runbook: docs/runbook.md.\n"
)


@dataclass(frozen=True)
class Alert:
    name: str
    expr: str
    duration: str
    severity: str
    summary: str
    description: str

    @property
    def anchor(self) -> str:
        """The GitHub anchor of the runbook section, whose heading is the alert's name."""
        return self.name.lower()

    def rule(self) -> dict[str, Any]:
        return {
            "alert": self.name,
            "expr": self.expr,
            "for": self.duration,
            "labels": {"severity": self.severity},
            "annotations": {
                "summary": self.summary,
                "description": self.description,
                "runbook_url": f"{RUNBOOK}#{self.anchor}",
            },
        }


# Gauges are exported by every replica (kopf peering keeps one active): the rules take `max` over
# replicas, never `sum`, so two replicas never double a count.
ALERTS: tuple[Alert, ...] = (
    Alert(
        name="InterconnectMemberNotReady",
        expr="max by (node, identity_code, region, type, industry) (interconnect_member_ready) == 0",
        duration="5m",
        severity="warning",
        summary="Member {{ $labels.node }} ({{ $labels.identity_code }}) is not Ready",
        description=(
            "ComputeNode {{ $labels.node }} ({{ $labels.type }}, {{ $labels.region }}) has not been Ready "
            "for 5 minutes: no new job is placed on it, and its jobs are placed again elsewhere after the "
            "grace period."
        ),
    ),
    Alert(
        name="InterconnectHeartbeatStale",
        expr="max by (node) (interconnect_member_heartbeat_age_seconds) > 60",
        duration="2m",
        severity="warning",
        summary="No heartbeat from member {{ $labels.node }} for {{ $value | humanizeDuration }}",
        description=(
            "The hub last reached the API server of member {{ $labels.node }} {{ $value | humanizeDuration }} "
            "ago (more than 60s for 2 minutes). Its running pods are metered only up to that moment."
        ),
    ),
    Alert(
        name="InterconnectJobsUnschedulable",
        expr="sum(max by (reason) (interconnect_unschedulable_jobs)) > 0",
        duration="30m",
        severity="warning",
        summary="{{ $value }} ComputeJobs have fit no offer for 30 minutes",
        description=(
            "{{ $value }} pending ComputeJobs fit no offer (model, free cards, latency tier, price, budget "
            "or policy) and have kept waiting for 30 minutes. Their status.unschedulable.summary says why."
        ),
    ),
    Alert(
        name="InterconnectDispatchLatencyHigh",
        expr=(
            'histogram_quantile(0.95, sum by (le, stage) (rate(interconnect_dispatch_latency_seconds_bucket'
            '{stage="created"}[10m]))) > 30\n'
            'or\n'
            'histogram_quantile(0.95, sum by (le, stage) (rate(interconnect_dispatch_latency_seconds_bucket'
            '{stage="running"}[10m]))) > 60'
        ),
        duration="15m",
        severity="warning",
        summary="Dispatch latency p95 ({{ $labels.stage }}) is {{ $value | humanizeDuration }}",
        description=(
            "For 15 minutes, 95% of ComputeJobs took up to {{ $value | humanizeDuration }} from creation to "
            "their member Job (stage {{ $labels.stage }}; thresholds: created 30s, running 60s)."
        ),
    ),
    Alert(
        name="InterconnectOfferSoldOut",
        expr=(
            'max by (offer, node, gpu_model) (interconnect_offer_cards{state="free"}) == 0\n'
            'and on (offer, node, gpu_model)\n'
            'max by (offer, node, gpu_model) (interconnect_offer_cards{state="total"}) > 0\n'
            'unless on (node)\n'
            'max by (node) (interconnect_member_ready) == 0'
        ),
        duration="30m",
        severity="info",
        summary="Offer {{ $labels.offer }} ({{ $labels.gpu_model }} on {{ $labels.node }}) is sold out",
        description=(
            "Offer {{ $labels.offer }} of member {{ $labels.node }} has had no free {{ $labels.gpu_model }} "
            "card for 30 minutes while its member is Ready: every card is reserved or in use."
        ),
    ),
    Alert(
        name="InterconnectMeteringStalled",
        expr=(
            'max(interconnect_jobs{phase="Running"}) > 0\n'
            "and on ()\n"
            "(sum(increase(interconnect_card_hours_total[10m])) or vector(0)) == 0"
        ),
        duration="10m",
        severity="critical",
        summary="{{ $value }} ComputeJobs are Running but no card-hour was metered",
        description=(
            "{{ $value }} ComputeJobs have been Running while interconnect_card_hours_total did not increase "
            "for 20 minutes: usage is not being billed."
        ),
    ),
    Alert(
        name="InterconnectOperatorDown",
        expr=f"absent(up{{{OPERATOR_JOB}}} == 1)",
        duration="5m",
        severity="critical",
        summary="The Compute Interconnect operator is down",
        description=(
            "No replica of the operator has been scraped successfully for 5 minutes "
            '(up{job=~"interconnect.*"}): jobs are neither placed nor metered, and members are not watched.'
        ),
    ),
)


def rule_groups() -> dict[str, Any]:
    """The rules file as an object: the same shape as a PrometheusRule's spec."""
    return {"groups": [{"name": "interconnect", "rules": [a.rule() for a in ALERTS]}]}


class _Dumper(yaml.SafeDumper):
    pass


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def render_alerts() -> dict[str, str]:
    """File name -> text of the rules file, exactly as committed (deploy/alerts/ and the chart)."""
    body = yaml.dump(rule_groups(), Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=120)
    return {RULES_FILE: HEADER + body}


def _root() -> Path:
    root = Path(__file__).resolve().parents[3]
    return root if (root / "pyproject.toml").is_file() else Path.cwd()


def default_output_dirs() -> list[Path]:
    """deploy/alerts/ and charts/interconnect-hub/alerts/ of the checkout this module lives in."""
    root = _root()
    return [root / "deploy" / "alerts", root / "charts" / "interconnect-hub" / "alerts"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="interconnect alerts", description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 with a diff when the files differ")
    parser.add_argument("--output-dir", type=Path, action="append", default=None,
                        help="default: the checkout's deploy/alerts/ and charts/interconnect-hub/alerts/")
    args = parser.parse_args(argv)
    return generated.run("alert rules", "python -m interconnect alerts", args.output_dir or default_output_dirs(),
                         render_alerts(), check_only=args.check)


if __name__ == "__main__":
    raise SystemExit(main())

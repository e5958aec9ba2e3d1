"""The network report's reads from Prometheus: instant queries (``/api/v1/query`` with ``time=``)
of the operator's counters, ``increase()`` over the report's period, evaluated at its end.

Standard library only (urllib): the command line needs no HTTP client beyond the Kubernetes one.
Errors are one line naming the URL and the cause, with the plugin's exit statuses (4: Prometheus
does not answer; 2, 7, 8, 9: it answers with an error).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from interconnect.cli.kube import Exit, PluginError, exit_for_status
from interconnect.cli.network_report import NodeInfo, Period, PrometheusFigures

ENV = "INTERCONNECT_PROMETHEUS_URL"

Query = Callable[[str, dt.datetime], list[dict[str, Any]]]


def prometheus_url(flag: str | None) -> str | None:
    """--prometheus, else $INTERCONNECT_PROMETHEUS_URL, else None (the report goes without)."""
    url = flag or os.environ.get(ENV) or None
    return url.rstrip("/") if url else None


def http_query(url: str, timeout: float = 30) -> Query:
    """A function that evaluates one PromQL expression at one instant on the Prometheus at ``url``."""

    def query(expr: str, at: dt.datetime) -> list[dict[str, Any]]:
        params = urllib.parse.urlencode({"query": expr, "time": f"{at.timestamp():.3f}"})
        request = urllib.request.Request(f"{url}/api/v1/query?{params}", headers={"Accept": "application/json"})
        doing = f"cannot query Prometheus at {url}"
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                body = json.loads(response.read())
        except urllib.error.HTTPError as exc:
            message = _error_of(exc.read()) or exc.reason
            raise PluginError(f"{doing}: HTTP {exc.code}: {message}", exit_for_status(exc.code), exc.code) from exc
        except (urllib.error.URLError, OSError) as exc:
            cause = exc.reason if isinstance(exc, urllib.error.URLError) else exc
            raise PluginError(f"{doing}: {cause}", Exit.UNREACHABLE) from exc
        except ValueError as exc:  # not JSON: not a Prometheus API
            raise PluginError(f"{doing}: the answer is not Prometheus' JSON ({exc})", Exit.SERVER) from exc
        if not isinstance(body, dict) or body.get("status") != "success":
            raise PluginError(f"{doing}: {body.get('error') if isinstance(body, dict) else body}", Exit.SERVER)
        data = body.get("data") or {}
        if data.get("resultType") != "vector":
            raise PluginError(f"{doing}: expected a vector for {expr}, got {data.get('resultType')}", Exit.SERVER)
        return list(data.get("result") or [])

    return query


def _error_of(body: bytes) -> str | None:
    try:
        parsed = json.loads(body)
    except ValueError:
        return body.decode(errors="replace").strip()[:200] or None
    return str(parsed.get("error")) if isinstance(parsed, dict) and parsed.get("error") else None


def duration(period: Period) -> str:
    """The period as a PromQL range, whole seconds (at least 1)."""
    return f"{max(1, int(period.seconds))}s"


def expressions(period: Period) -> dict[str, str]:
    """The queries, by what they are for. Counters are summed across the operator's replicas (only
    the active one counts), gauges combined with max; ``last_over_time`` keeps a node deleted during
    the month."""
    r = duration(period)
    return {
        "offered": f"sum by (node) (increase(interconnect_offered_card_seconds_total[{r}]))",
        "ready": f"sum by (node) (increase(interconnect_node_ready_seconds_total[{r}]))",
        "observed": f"sum by (node) (increase(interconnect_node_observed_seconds_total[{r}]))",
        "pue": f"max by (node) (last_over_time(interconnect_node_pue[{r}]))",
        "green": f"max by (node) (last_over_time(interconnect_node_green_share[{r}]))",
        "members": f"max by (node, identity_code, region, industry) (last_over_time(interconnect_member_ready[{r}]))",
        "places": f"max by (node, region, industry) (last_over_time(interconnect_node_observed_seconds_total[{r}]))",
    }


def _value(sample: dict[str, Any]) -> Decimal:
    return Decimal(str(sample["value"][1]))


def _by_node(samples: list[dict[str, Any]]) -> dict[str, Decimal]:
    out: dict[str, Decimal] = {}
    for sample in samples:
        node = (sample.get("metric") or {}).get("node")
        value = _value(sample)
        if node and value.is_finite():
            out[node] = value
    return out


def figures(query: Query, period: Period) -> PrometheusFigures:
    """Everything the report needs from Prometheus, as of the period's end."""
    exprs = expressions(period)
    at = period.end
    results = {name: query(expr, at) for name, expr in exprs.items()}
    nodes: dict[str, NodeInfo] = {}
    for sample in [*results["places"], *results["members"]]:
        labels = sample.get("metric") or {}
        name = labels.get("node")
        if not name:
            continue
        nodes[name] = nodes.get(name, NodeInfo(name)).updated(labels.get("identity_code"), labels.get("region"),
                                                              labels.get("industry"))
    return PrometheusFigures(
        offered_card_seconds=_by_node(results["offered"]),
        ready_seconds=_by_node(results["ready"]),
        observed_seconds=_by_node(results["observed"]),
        declared_pue=_by_node(results["pue"]),
        declared_green_share=_by_node(results["green"]),
        nodes=sorted(nodes.values(), key=lambda n: n.name),
    )

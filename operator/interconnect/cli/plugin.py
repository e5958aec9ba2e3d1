"""``kubectl compute``: quote before you submit, explain after, read your jobs' logs, see the
topology and the bill.

Talks to the hub only, and decides with the operator's own core (the same placement function,
the same money arithmetic): a quote is what the operator will do with the market as it is now.
It reads only what the chart's tenant roles grant: the catalogue (ComputeNodes, ComputeOffers),
the latency table (one ConfigMap), the ComputeJobs of the namespace, and, through the
operator's tenant API (``tenant.interconnect.dev``), the namespace's logs and bill. Rendering is
pure (``render_*``) so that its output is tested against golden files. docs/plugin.md has the
commands, outputs and exit statuses.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, cast

import pydantic
import yaml

from interconnect.api.v1alpha1 import ComputeJob, ComputeNode, ComputeOffer, validation_message
from interconnect.api.v1alpha1.usage import TENANT_LABEL
from interconnect.cli import network_report
from interconnect.cli.kube import EXIT_HELP, Connection, Exit, PluginError, call, connect, raw_get, read_json, stream
from interconnect.cli.main import add_join_arguments, add_token_arguments
from interconnect.cli.report import GROUPS, month_selector, render, usage_rows
from interconnect.core.accelerators import by_name as accelerator_model
from interconnect.core.accelerators import compute_rate
from interconnect.core.latency import LATENCY_CONFIG_MAP, LatencyTable, latency_from_config
from interconnect.core.money import Money, effective_price_money, round_to_minor_unit
from interconnect.core.placement import Decision, JobRequest, PlacementSnapshot, place, what_would_fit
from interconnect.core.quota import Month
from interconnect.core.vocabulary import GROUP, VERSION
from interconnect.services.translate import job_request, node_view, offer_view, price_of

__all__ = ["Exit", "PluginError"]

WIDTH = 100
OUTPUTS = ("table", "wide", "name", "json", "yaml")
DEFAULT_OPERATOR_NAMESPACE = "interconnect-system"
TENANT_API = "/apis/tenant.interconnect.dev/v1alpha1"


def warn(message: str) -> None:
    print(f"warning: {' '.join(message.split())}", file=sys.stderr)


# ---------------------------------------------------------------------------------------------
# Reading the hub
# ---------------------------------------------------------------------------------------------


@dataclass
class Market:
    nodes: list[ComputeNode]
    offers: list[ComputeOffer]
    jobs: list[dict[str, Any]]
    latency: LatencyTable


def _condition(obj: ComputeNode, type_: str) -> bool:
    return any(c.type == type_ and c.status == "True" for c in obj.status.conditions)


def snapshot(market: Market, at: datetime) -> PlacementSnapshot:
    nodes = [node_view(n, registered=_condition(n, "Registered"), ready=_condition(n, "Ready"),
                       month=at.strftime("%Y-%m")) for n in market.nodes]
    offers = [offer_view(o, cards_total=o.status.cards_total or 0, cards_free=o.status.cards_free or 0)
              for o in market.offers]
    return PlacementSnapshot.of(nodes, offers, market.latency, at)


def scope_text(namespace: str | None) -> str:
    return f"in namespace {namespace}" if namespace else "in all namespaces"


class Hub:
    """The hub's API through the synchronous client (a command-line tool blocks anyway).

    Every read is one a tenant may do with the chart's roles: the catalogue and the latency table
    (granted to ``rbac.tenantsGroup``), and the ComputeJobs of one namespace; never every
    namespace's jobs unless asked (``-A``).
    """

    def __init__(self, kubeconfig: str | None, context: str | None,
                 operator_namespace: str = DEFAULT_OPERATOR_NAMESPACE, user: str | None = None,
                 group: str | None = None) -> None:
        from kubernetes import client

        self.connection: Connection = connect(kubeconfig, context)
        self.api = self.connection.api
        if user:  # kubectl's --as: the API server checks that the credential may impersonate
            self.api.set_default_header("Impersonate-User", user)
        if group:
            self.api.set_default_header("Impersonate-Group", group)
        self.custom = client.CustomObjectsApi(self.api)
        self.core = client.CoreV1Api(self.api)
        self.operator_namespace = operator_namespace

    def namespace(self, args: argparse.Namespace) -> str | None:
        """The namespace a command is about: -n, else the context's; None for -A."""
        if getattr(args, "all_namespaces", False):
            return None
        return str(args.namespace or self.connection.namespace)

    def _list(self, plural: str, namespace: str | None = None, selector: str | None = None,
              cluster_scoped: bool = True) -> list[dict[str, Any]]:
        where = "" if cluster_scoped and namespace is None else f" {scope_text(namespace)}"
        doing = f"cannot list {plural}.{GROUP}{where}"
        items: list[dict[str, Any]] = []
        token: str | None = None
        while True:
            options: dict[str, Any] = {"limit": 500, "_request_timeout": 30}
            if selector:
                options["label_selector"] = selector
            if token:
                options["_continue"] = token
            try:
                if namespace is None:
                    found = call(doing, self.custom.list_cluster_custom_object, GROUP, VERSION, plural, **options)
                else:
                    found = call(doing, self.custom.list_namespaced_custom_object, GROUP, VERSION, namespace, plural,
                                 **options)
            except PluginError as exc:
                if exc.code == Exit.NOT_FOUND:
                    raise PluginError(f"the hub has no {plural}.{GROUP}: are the CRDs installed? (helm install "
                                      "interconnect-hub charts/interconnect-hub)", Exit.NOT_FOUND) from exc
                raise
            page = cast(dict[str, Any], found)
            items += page.get("items") or []
            token = (page.get("metadata") or {}).get("continue")
            if not token:
                return items

    def latency(self) -> LatencyTable:
        """The operator's latency table (its ConfigMap; the chart lets everyone in
        rbac.tenantsGroup read it), else the built-in one, with a warning."""
        try:
            cm = call(f"cannot read the latency table {self.operator_namespace}/{LATENCY_CONFIG_MAP}",
                      self.core.read_namespaced_config_map, LATENCY_CONFIG_MAP, self.operator_namespace,
                      _request_timeout=15)
        except PluginError as exc:
            if exc.code not in (Exit.FORBIDDEN, Exit.NOT_FOUND):
                raise
            warn(f"{exc}; using the built-in table (--operator-namespace names the operator's namespace)")
            return LatencyTable.default()
        try:
            return latency_from_config(cm.data or {})
        except ValueError as exc:
            warn(f"the latency table {self.operator_namespace}/{LATENCY_CONFIG_MAP} is invalid ({exc}); "
                 "the operator uses the built-in one, so does this quote")
            return LatencyTable.default()

    def market(self, jobs: str | bool | None = False) -> Market:
        """Nodes, offers and the latency table; and the ComputeJobs of a namespace (``jobs`` names
        it), or of every namespace (``jobs=None``), or none (``jobs=False``)."""
        nodes = [ComputeNode.model_validate(o) for o in self._list("computenodes")]
        offers = [ComputeOffer.model_validate(o) for o in self._list("computeoffers")]
        listed: list[dict[str, Any]] = []
        if jobs is not False:
            listed = self.jobs(jobs if isinstance(jobs, str) else None)
        return Market(nodes, offers, listed, self.latency())

    def jobs(self, namespace: str | None) -> list[dict[str, Any]]:
        found = self._list("computejobs", namespace, cluster_scoped=False)
        return sorted(found, key=lambda j: (j["metadata"].get("namespace", ""), j["metadata"]["name"]))

    def job(self, namespace: str, name: str) -> dict[str, Any]:
        found = call(f"cannot read computejob {namespace}/{name}", self.custom.get_namespaced_custom_object,
                     GROUP, VERSION, namespace, "computejobs", name, _request_timeout=15)
        return cast(dict[str, Any], found)

    def dry_run(self, manifest: dict[str, Any], namespace: str) -> None:
        """Let the API server validate the job: its own message, naming the field, on failure."""
        try:
            call("the hub rejects this job", self.custom.create_namespaced_custom_object, GROUP, VERSION, namespace,
                 "computejobs", manifest, dry_run="All", _request_timeout=15)
        except PluginError as exc:
            if exc.status != 409:  # 409: a job of that name exists; the spec itself is valid
                raise

    def usage_records(self, namespace: str | None, selector: str | None) -> list[dict[str, Any]]:
        """ComputeUsage records: every tenant's (``namespace`` None: the hub admin's view), or one
        namespace's, read directly where the user may (admins, SREs), else through the operator's
        tenant API, which serves a namespace's records to whoever may list its ComputeJobs."""
        if namespace is None:
            try:
                return self._list("computeusages", None, selector)
            except PluginError as exc:
                if exc.code == Exit.FORBIDDEN:
                    raise PluginError(f"{exc} (every tenant's bill is for hub admins; your namespace's: "
                                      "without -A)", exc.code) from exc
                raise
        own = f"{TENANT_LABEL}={namespace}" + (f",{selector}" if selector else "")
        try:
            return self._list("computeusages", None, own)
        except PluginError as exc:
            if exc.code != Exit.FORBIDDEN:
                raise
        query = [("labelSelector", selector)] if selector else []
        body = read_json(self.api, f"{TENANT_API}/namespaces/{namespace}/usages", query,
                         f"cannot read the bill of namespace {namespace} (tenant API)")
        return list(body.get("items") or [])

    def open_log(self, namespace: str, name: str, query: list[tuple[str, str]], follow: bool) -> Any:
        return raw_get(self.api, f"{TENANT_API}/namespaces/{namespace}/computejobs/{name}/log", query,
                       f"cannot read the logs of computejob {namespace}/{name}", accept="text/plain",
                       timeout=(10, None) if follow else (10, 300))


# ---------------------------------------------------------------------------------------------
# Pure rendering
# ---------------------------------------------------------------------------------------------


def table(header: Sequence[str], rows: Sequence[Sequence[str]], width: int = WIDTH) -> str:
    """Columns sized to their content; the last column is cut to keep lines within `width`."""
    cells = [list(header)] + [list(r) for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    fixed = sum(widths[:-1]) + 2 * (len(widths) - 1)
    widths[-1] = max(len(header[-1]), min(widths[-1], width - fixed))
    lines = []
    for row in cells:
        last = row[-1] if len(row[-1]) <= widths[-1] else row[-1][: max(1, widths[-1] - 1)] + "…"
        lines.append("  ".join([c.ljust(w) for c, w in zip(row[:-1], widths[:-1], strict=True)] + [last]).rstrip())
    return "\n".join(lines)


#: One word per outcome for the RESULT column; the full reason follows the table.
SHORT = {
    "Chosen": "CHOSEN", "Fits": "fits", "NodeMissing": "no-node", "NodeNotRegistered": "unregistered",
    "NodeNotReady": "not-ready", "NodeCordoned": "cordoned", "NodeFenced": "fenced", "RegionDenied": "region",
    "RegionNotAllowed": "region", "IndustryDenied": "industry", "IndustryNotAllowed": "industry",
    "NodeDenied": "node", "NodeNotAllowed": "node", "LatencyTierNotMet": "latency", "OfferNotYetValid": "not-yet",
    "OfferExpired": "expired", "ImageRegistryNotAllowed": "registry", "GPUModelNotAccepted": "model",
    "VendorNotAccepted": "vendor", "ComputeTooLow": "compute",
    "GPUMemoryTooSmall": "memory",
    "ReplicaLargerThanMachine": "machine", "InsufficientFreeCards": "cards", "CurrencyMismatch": "currency",
    "PriceAboveMax": "price", "BudgetExceeded": "budget",
}


@dataclass(frozen=True)
class QuoteLine:
    chosen: bool
    offer: str
    node: str
    identity: str
    region: str
    kind: str
    tier: str
    model: str
    free: int
    price: str
    estimate: str
    currency: str
    reason: str
    detail: str
    vendor: str = "-"
    per_pflops: str = "-"
    """Effective price per PFLOPS-hour (the catalogue's dense BF16, else FP16); "-" without a figure."""


def quote_lines(request: JobRequest, market: Market, decision: Decision, hours: Decimal | None) -> list[QuoteLine]:
    nodes = {n.metadata.name: n for n in market.nodes}
    reasons = {r.offer: (r.reason.value, r.message) for r in decision.rejected}
    lines = []
    for offer in sorted(market.offers, key=lambda o: o.metadata.name):
        node = nodes.get(offer.spec.node_ref)
        region = node.spec.region if node else "-"
        tier = market.latency.tier_between(request.origin, region) if node else None
        price = price_of(offer.spec.price)
        effective = effective_price_money(price, request.cards)
        estimate = "-"
        if hours is not None:
            estimate = Money(round_to_minor_unit(price.hourly_cost(request.cards) * hours, price.currency),
                             price.currency).amount_text
        kind = "-"
        if node:
            kind = node.spec.industry.value if node.spec.industry else node.spec.type.value
        chosen = decision.chosen is not None and decision.chosen.offer == offer.metadata.name
        reason, detail = ("Chosen", "") if chosen else reasons.get(offer.metadata.name, ("Fits", "fits, not the best"))
        model = accelerator_model(offer.spec.gpu_model)
        rate = compute_rate(offer.spec.gpu_model)
        per_pflops = "-" if rate is None else Money(round_to_minor_unit(
            effective.amount / rate.pflops_per_card_hour, price.currency), price.currency).amount_text
        lines.append(QuoteLine(
            chosen=chosen, offer=offer.metadata.name, node=offer.spec.node_ref,
            identity=(node.status.identity_code if node else None) or "-", region=region, kind=kind,
            tier=tier.value if tier else ">20ms", model=offer.spec.gpu_model, free=offer.status.cards_free or 0,
            price=effective.amount_text, estimate=estimate, currency=price.currency, reason=reason, detail=detail,
            vendor=model.vendor.value if model is not None else "-", per_pflops=per_pflops))
    return lines


def render_quote(lines: list[QuoteLine], decision: Decision, wide: bool = False) -> str:
    """One row per offer (the chosen one starred), then why each other one does not take the job.

    CARD-H is the effective price per card-hour for this job (machine-hour offers bill whole
    machines), PFLOPS-H the same per PFLOPS-hour of what the model computes (the accelerator
    catalogue's dense BF16, else FP16; "-" for a model without a published figure), so cards of
    different vendors compare; ESTIMATE is price x cards x hours for the declared or given
    duration. ``wide`` adds the node's name, region and type and the full reason of each row, uncut.
    """
    if wide:
        header: tuple[str, ...] = ("OFFER", "NODE", "IDENTITY", "REGION", "TYPE", "TIER", "VENDOR", "MODEL", "FREE",
                                   "PER-CARD-H", "PER-PFLOPS-H", "ESTIMATE", "RESULT", "REASON")
        rows: list[tuple[str, ...]] = [
            (q.offer, q.node, q.identity, q.region, q.kind, q.tier, q.vendor, q.model, str(q.free),
             f"{q.price} {q.currency}", f"{q.per_pflops} {q.currency}" if q.per_pflops != "-" else "-", q.estimate,
             SHORT.get(q.reason, q.reason), q.detail or "-") for q in lines]
    else:
        # One currency (the usual market): named once under the table, so that both prices fit.
        currencies = {q.currency for q in lines}
        single = len(currencies) == 1

        def money(amount: str, currency: str) -> str:
            return amount if single or amount == "-" else f"{amount} {currency}"

        header = ("OFFER", "NODE", "TIER", "VENDOR", "MODEL", "FREE", "CARD-H", "PFLOPS-H", "ESTIMATE", "RESULT")
        rows = [(q.offer, q.identity, q.tier, q.vendor, q.model.removeprefix("NVIDIA-"), str(q.free),
                 money(q.price, q.currency), money(q.per_pflops, q.currency), q.estimate,
                 SHORT.get(q.reason, q.reason)) for q in lines]
    notes = [f"  {q.offer}: {q.detail}" for q in lines if q.detail]
    verdict = (f"fits: offer {decision.chosen.offer} on {decision.chosen.node} ({decision.chosen.identity_code})"
               if decision.chosen else "does not fit now")
    why = "\n".join(["why not the others:", *notes]) if notes and not wide else ""
    body = table(header, rows, width=10_000 if wide else WIDTH)
    priced_in = sorted({q.currency for q in lines})
    if not wide and len(priced_in) == 1:
        body += (f"\nprices in {priced_in[0]} per card-hour and per PFLOPS-hour (dense BF16, else FP16: "
                 "docs/accelerators.md)")
    return "\n".join(part for part in (body, "", decision.summary, why, verdict) if part is not None)


def _cut(line: str, width: int) -> str:
    """`line` within `width` characters, an ellipsis saying where it was cut (-o wide shows it whole)."""
    return line if len(line) <= width else line[: width - 1] + "…"


def render_explain(job: dict[str, Any], hint_text: str | None, wide: bool = False) -> str:
    """What happened to a job and why; ``wide``: lines uncut, every candidate of a pending one."""
    width = 10_000 if wide else WIDTH
    meta, status = job["metadata"], job.get("status") or {}
    out = [f"ComputeJob {meta['namespace']}/{meta['name']}: {status.get('phase', 'Pending')}"]
    placement = status.get("placement")
    if placement:
        price = placement["price"]
        out.append(f"  placed on {placement['node']} ({placement.get('identityCode', '-')}, {placement['region']}) "
                   f"offer {placement['offer']}, {placement['gpuModel']}")
        out.append(f"  tier {placement['tier']} from {job['spec']['origin']}, price {price['amount']} "
                   f"{price['currency']}/{price['unit']}, at {placement['placedAt']}, attempt {status.get('attempts')}")
        member = status.get("memberJob") or {}
        if member:
            out.append(f"  member Job {member.get('cluster')}:{member.get('namespace')}/{member.get('name')}")
        usage = status.get("usage") or {}
        if usage:
            compute = f", {usage['pflopsHours']} PFLOPS-hours" if usage.get("pflopsHours") else ""
            out.append(f"  used {usage.get('cardHours', '0')} card-hours{compute}, cost {usage.get('cost', '0')} "
                       f"{usage.get('currency', '')}".rstrip())
    for cond in status.get("conditions") or []:
        line = f"  {cond['type']}={cond['status']} {cond.get('reason', '')}: {cond.get('message', '')}"
        out.append(_cut(line, width))
    unschedulable = status.get("unschedulable")
    if unschedulable:
        out.append(f"  why pending: {unschedulable['summary']}")
        candidates = unschedulable.get("candidates", [])
        for candidate in candidates if wide else candidates[:20]:
            out.append(_cut(f"    {candidate['offer']} on {candidate['node']}: {candidate['reason']}", width))
    if hint_text:
        out.append(hint_text)
    return "\n".join(out)


def fit_hint_text(request: JobRequest, snap: PlacementSnapshot) -> str:
    hint = what_would_fit(request, snap)
    if hint.fits_now:
        return "  it fits now: it will be placed on the next pass"
    lines = ["  what would place it now:"]
    if hint.max_price is not None:
        lines.append(f"    maxPrice {hint.max_price.amount_text} {hint.max_price.currency} per card-hour "
                     f"(at tier {request.tier.value})")
    if hint.tier is not None:
        lines.append(f"    latencyTier {hint.tier.value} (at the same maxPrice)")
    if hint.max_price_at_loosest_tier is not None and hint.tier is None:
        lines.append(f"    latencyTier 20ms with maxPrice {hint.max_price_at_loosest_tier.amount_text} "
                     f"{hint.max_price_at_loosest_tier.currency}")
    if len(lines) == 1:
        lines.append("    nothing short of more capacity: no offer can hold it at any price or tier")
    return "\n".join(lines)


def render_topology(market: Market, scope: str | None = None, wide: bool = False) -> str:
    """The 1+M+N tree. ``scope`` says whose jobs the counts are (they are the jobs the market
    holds); ``wide`` adds one line per offer with its price."""
    active = {"Scheduled", "Dispatched", "Running"}
    running: dict[str, int] = {}
    for job in market.jobs:
        status = job.get("status") or {}
        if status.get("phase") in active and status.get("placement"):
            running[status["placement"]["node"]] = running.get(status["placement"]["node"], 0) + 1
    cards: dict[str, list[str]] = {}
    by_vendor: dict[str, list[int]] = {}
    for offer in sorted(market.offers, key=lambda o: o.metadata.name):
        model = offer.spec.gpu_model.removeprefix("NVIDIA-")
        cards.setdefault(offer.spec.node_ref, []).append(
            f"{model} {offer.status.cards_free or 0}/{offer.status.cards_total or 0}")
        catalogued = accelerator_model(offer.spec.gpu_model)
        totals = by_vendor.setdefault(catalogued.vendor.value if catalogued else "other", [0, 0])
        totals[0] += offer.status.cards_free or 0
        totals[1] += offer.status.cards_total or 0

    def lines(node: ComputeNode, first: str, rest: str) -> list[str]:
        ready = "Ready" if _condition(node, "Ready") else "NotReady"
        name = node.metadata.name + (f" ({node.spec.industry.value})" if node.spec.industry else "")
        head = (f"{first}{name}  {node.status.identity_code or 'no code'}  {node.spec.region}  {ready}  "
                f"jobs: {running.get(node.metadata.name, 0)}")
        what = ", ".join(cards.get(node.metadata.name, [])) or "no offers"
        block = [head, f"{rest}cards free/total: {what}"]
        if wide:
            block += [f"{rest}  offer {o.metadata.name}: {o.spec.gpu_model} {o.status.cards_free or 0}/"
                    f"{o.status.cards_total or 0} at {o.spec.price.amount} {o.spec.price.currency}/"
                    f"{getattr(o.spec.price.unit, 'value', o.spec.price.unit)}"
                    for o in sorted(market.offers, key=lambda o: o.metadata.name)
                    if o.spec.node_ref == node.metadata.name]
        return block

    regional = sorted((n for n in market.nodes if n.spec.type.value == "regional"),
                      key=lambda n: (n.spec.region, n.metadata.name))
    industry = [n for n in market.nodes if n.spec.type.value == "industry"]
    out = ["hub (national node)" + (f"; jobs counted {scope}" if scope else "")]
    for i, node in enumerate(regional):
        last = i == len(regional) - 1
        out += lines(node, "└─ " if last else "├─ ", "   " if last else "│  ")
        bar = "   " if last else "│  "
        children = sorted((n for n in industry if n.spec.parent_node == node.metadata.name),
                          key=lambda n: n.metadata.name)
        for j, child in enumerate(children):
            end = j == len(children) - 1
            out += lines(child, bar + ("└─ " if end else "├─ "), bar + ("   " if end else "│  "))
    known = {r.metadata.name for r in regional}
    for node in sorted((n for n in industry if n.spec.parent_node not in known), key=lambda n: n.metadata.name):
        first = len(out)
        out += lines(node, "?─ ", "   ")
        out[first] += f"  (parent {node.spec.parent_node} missing)"
    if by_vendor:
        out.append("cards free/total by vendor: " + ", ".join(
            f"{vendor} {free}/{total}" for vendor, (free, total) in sorted(by_vendor.items())))
    return "\n".join(out)


# ---------------------------------------------------------------------------------------------
# Commands
# ---------------------------------------------------------------------------------------------


def dump(data: Any, output: str) -> str:
    return json.dumps(data, indent=2) if output == "json" else yaml.safe_dump(data, sort_keys=False).rstrip("\n")


def object_name(plural: str, name: str) -> str:
    """``-o name``, as kubectl prints it: ``<resource>.<group>/<name>``."""
    return f"{plural.removesuffix('s')}.{GROUP}/{name}"


def _load_job(path: str) -> tuple[dict[str, Any], ComputeJob]:
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text()
    except OSError as exc:
        raise PluginError(f"cannot read {path}: {exc}") from exc
    try:
        docs = [d for d in yaml.safe_load_all(text) if d]
    except yaml.YAMLError as exc:
        raise PluginError(f"{path} is not YAML: {exc}") from exc
    jobs = [d for d in docs if isinstance(d, dict) and d.get("kind") == "ComputeJob"]
    if len(jobs) != 1:
        raise PluginError(f"{path}: expected one ComputeJob, found {len(jobs)}")
    manifest = jobs[0]
    manifest.setdefault("metadata", {})
    probe = json.loads(json.dumps(manifest))
    probe["metadata"].update(uid="quote", creationTimestamp=datetime.now(UTC).isoformat())
    probe["metadata"].setdefault("namespace", "default")
    try:
        return manifest, ComputeJob.model_validate(probe)
    except pydantic.ValidationError as exc:
        raise PluginError(f"{path} is not a valid ComputeJob: {validation_message(exc)}") from exc


def _hub(args: argparse.Namespace) -> Hub:
    if args.as_group and not args.as_user:
        raise PluginError("--as-group needs --as")
    return Hub(args.kubeconfig, args.context, args.operator_namespace, args.as_user, args.as_group)


def cmd_quote(args: argparse.Namespace) -> int:
    manifest, job = _load_job(args.filename)  # a broken manifest is reported before any connection
    hub = _hub(args)
    namespace = args.namespace or manifest["metadata"].get("namespace") or hub.connection.namespace
    manifest["metadata"]["namespace"] = namespace
    hub.dry_run(manifest, namespace)
    market = hub.market()
    request = job_request(job)
    decision = place(request, snapshot(market, datetime.now(UTC)))
    hours = Decimal(args.hours) if args.hours else request.expected_hours
    lines = quote_lines(request, market, decision, hours)
    if args.output in ("table", "wide"):
        print(render_quote(lines, decision, wide=args.output == "wide"))
    elif args.output == "name":
        if decision.chosen:
            print(object_name("computeoffers", decision.chosen.offer))
    else:
        print(dump({"fits": decision.chosen is not None, "summary": decision.summary,
                    "candidates": [asdict(q) for q in lines]}, args.output))
    return Exit.OK if decision.chosen else Exit.NO


def cmd_explain(args: argparse.Namespace) -> int:
    if args.name and args.all_namespaces:
        raise PluginError("a resource cannot be retrieved by name across all namespaces (-A): drop -A, or the name")
    hub = _hub(args)
    namespace = hub.namespace(args)
    if args.name:
        assert namespace is not None
        jobs = [hub.job(namespace, args.name)]
    else:
        jobs = hub.jobs(namespace)
        if not jobs:
            print(f"No computejobs found {scope_text(namespace)}.", file=sys.stderr)
            return Exit.OK
    if args.output == "name":
        print("\n".join(object_name("computejobs", j["metadata"]["name"]) for j in jobs))
        return Exit.OK
    market: Market | None = None
    explained = []
    for raw in jobs:
        hint = None
        if (raw.get("status") or {}).get("phase", "Pending") == "Pending":
            market = market or hub.market()
            request = job_request(ComputeJob.model_validate(json.loads(json.dumps(raw))))
            hint = fit_hint_text(request, snapshot(market, datetime.now(UTC)))
        explained.append((raw, hint))
    if args.output in ("table", "wide"):
        print("\n\n".join(render_explain(raw, hint, wide=args.output == "wide") for raw, hint in explained))
        return Exit.OK
    data = [{"name": raw["metadata"]["name"], "namespace": raw["metadata"].get("namespace"),
             "status": raw.get("status") or {}, "hint": hint} for raw, hint in explained]
    print(dump(data[0] if args.name else data, args.output))
    return Exit.OK


def cmd_topology(args: argparse.Namespace) -> int:
    hub = _hub(args)
    namespace = hub.namespace(args)
    market = hub.market(jobs=namespace)
    if args.output in ("table", "wide"):
        print(render_topology(market, scope_text(namespace), wide=args.output == "wide"))
    elif args.output == "name":
        print("\n".join(object_name("computenodes", n.metadata.name)
                        for n in sorted(market.nodes, key=lambda n: n.metadata.name)))
    else:
        data = [{"name": n.metadata.name, "identityCode": n.status.identity_code, "type": n.spec.type.value,
                 "region": n.spec.region, "parent": n.spec.parent_node, "ready": _condition(n, "Ready"),
                 "offers": [{"name": o.metadata.name, "gpuModel": o.spec.gpu_model,
                             "cardsFree": o.status.cards_free or 0, "cardsTotal": o.status.cards_total or 0}
                            for o in market.offers if o.spec.node_ref == n.metadata.name]}
                for n in sorted(market.nodes, key=lambda n: n.metadata.name)]
        print(dump(data, args.output))
    return Exit.OK


def parse_time(text: str) -> datetime:
    """RFC 3339, or a date (midnight UTC)."""
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an RFC 3339 time (2026-11-01T00:00:00Z) or a date") from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def cmd_usage(args: argparse.Namespace) -> int:
    hub = _hub(args)
    namespace = hub.namespace(args)
    until = args.until or datetime.now(UTC)
    since = args.since or until - timedelta(days=31)
    if since >= until:
        raise PluginError(f"--since {since.isoformat()} is not before --until {until.isoformat()}")
    # The bill is the ComputeUsage records (they outlive the jobs), selected by their month label.
    records = hub.usage_records(namespace, month_selector(since, until))
    rows = usage_rows(records, since=since, until=until, group_by=args.group_by)
    if args.output == "name":
        # The rows' rule for the period: the attempt's finishedAt in [since, until).
        names = sorted(r["metadata"]["name"] for r in records
                       if since <= parse_time(str((r.get("spec") or {}).get("finishedAt"))) < until)
        print("\n".join(object_name("computeusages", n) for n in names))
        return Exit.OK
    print(render(rows, args.output, args.group_by))
    return Exit.OK


def report_text(records: list[dict[str, Any]], *, month: Month, now: datetime, level: str, output: str,
                node: str | None, prometheus: str | None) -> str:
    """The network report of ``month`` from the records read and, with a URL, Prometheus."""
    from interconnect.cli import promql

    try:
        period = network_report.period_of(month, now)
    except ValueError as exc:
        raise PluginError(f"--month {month}: {exc}") from exc
    figures = promql.figures(promql.http_query(prometheus), period) if prometheus else None
    report = network_report.build(month, records, figures, now=now, level=level, node=node)
    if node is not None and not report.total.tally.nodes:
        raise PluginError(f"node {node} has no usage record and no Prometheus series in {month}", Exit.NOT_FOUND)
    return network_report.render(report, output, generated_at=now, prometheus=prometheus)


def report_records(hub: Hub, month: Month, now: datetime) -> list[dict[str, Any]]:
    """Every tenant's records (the hub admin's and the regulator's view) that can count in ``month``:
    those billed in it and those of later months that ran partly in it (in use pro rata)."""
    try:
        return hub._list("computeusages", None, network_report.record_selector(month, now))
    except PluginError as exc:
        if exc.code == Exit.FORBIDDEN:
            raise PluginError(f"{exc} (the network report reads every tenant's ComputeUsage records: hub admins "
                              "and SREs)", exc.code, exc.status) from exc
        raise


def cmd_report(args: argparse.Namespace) -> int:
    from interconnect.cli import promql

    now = datetime.now(UTC)
    month = args.month or Month.of(now)
    url = promql.prometheus_url(args.prometheus)
    records = report_records(_hub(args), month, now)
    print(report_text(records, month=month, now=now, level=args.group_by, output=args.output, node=args.node,
                      prometheus=url))
    return Exit.OK


def cmd_logs(args: argparse.Namespace) -> int:
    hub = _hub(args)
    namespace = hub.namespace(args)
    assert namespace is not None
    query = [("follow", "true" if args.follow else "false")]
    for key, value in (("attempt", args.attempt), ("container", args.container), ("pod", args.pod),
                       ("tailLines", args.tail), ("limitBytes", args.limit_bytes)):
        if value is not None:
            query.append((key, str(value)))
    if args.timestamps:
        query.append(("timestamps", "true"))
    from urllib3.exceptions import HTTPError

    response = hub.open_log(namespace, args.name, query, args.follow)
    out = sys.stdout.buffer
    try:
        for chunk in stream(response):
            out.write(chunk)
            out.flush()
    except (OSError, HTTPError) as exc:  # the connection broke mid-stream
        if isinstance(exc, BrokenPipeError):
            raise
        raise PluginError(f"the log stream of computejob {namespace}/{args.name} broke: {exc}",
                          Exit.UNREACHABLE) from exc
    return Exit.OK


def _forward(argv: list[str]) -> int:
    from interconnect.cli.main import main as interconnect_main

    return interconnect_main(argv)


def cmd_join(args: argparse.Namespace) -> int:
    """`python -m interconnect join`, with the hub's context defaulting to --context."""
    from interconnect.cli.main import join_command

    if not args.hub_kubeconfig:
        args.hub_context = args.hub_context or args.context
    return join_command(args)


def cmd_token(args: argparse.Namespace) -> int:
    """`python -m interconnect token`, with the hub's context defaulting to --context."""
    from interconnect.cli.main import token_command

    args.hub_context = args.hub_context or args.context
    return token_command(args)


def cmd_leave(args: argparse.Namespace) -> int:
    forward = ["leave", args.node, "--hub-context", args.hub_context or args.context, "--timeout", str(args.timeout)]
    if args.kubeconfig:
        forward += ["--kubeconfig", args.kubeconfig]
    return _forward(forward)


SHELLS = ("bash", "zsh", "fish")


def completion_script(shell: str) -> str:
    """A completion script for ``kubectl-compute``, generated from the parser (shtab)."""
    import shtab

    return shtab.complete(build_parser(prog="kubectl-compute"), shell)


def cmd_completion(args: argparse.Namespace) -> int:
    print(completion_script(args.shell))
    return Exit.OK


COMMANDS = ("quote", "explain", "logs", "topology", "usage", "report", "join", "token", "leave", "completion")


def _connection_options(parser: argparse.ArgumentParser, *, top: bool) -> None:
    """kubectl's connection flags. They are accepted before the command (``kubectl compute
    --context hub topology``) and after it; after it, an unset flag leaves the value before it."""
    default: Any = None if top else argparse.SUPPRESS
    parser.add_argument("--kubeconfig", default=default,
                        help="path to the kubeconfig (default: $KUBECONFIG, else ~/.kube/config)")
    parser.add_argument("--context", default=default, help="the hub's context (default: the current one)")
    parser.add_argument("--operator-namespace", default=DEFAULT_OPERATOR_NAMESPACE if top else argparse.SUPPRESS,
                        help=f"the operator's namespace, for its latency table (default: {DEFAULT_OPERATOR_NAMESPACE})")
    parser.add_argument("--as", dest="as_user", metavar="USER", default=default,
                        help="act as this user (kubectl's --as; the credential must be allowed to impersonate)")
    parser.add_argument("--as-group", dest="as_group", metavar="GROUP", default=default,
                        help="with --as, act as a member of this group (one group)")


def _namespace_options(parser: argparse.ArgumentParser, *, all_namespaces: bool) -> None:
    parser.add_argument("-n", "--namespace", help="the namespace (default: the context's, else default)")
    if all_namespaces:
        parser.add_argument("-A", "--all-namespaces", action="store_true",
                            help="every namespace (needs the rights to list them all)")


def _output(parser: argparse.ArgumentParser, choices: Sequence[str] = OUTPUTS) -> None:
    parser.add_argument("-o", "--output", choices=choices, default="table",
                        help=f"output format: {', '.join(choices)} (default: table)")


def build_parser(prog: str = "kubectl compute") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog, formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EXIT_HELP,
        description="Quote before you submit, explain after, read your jobs' logs, see the topology and the bill: "
                    "the Compute Interconnect hub from kubectl.")
    _connection_options(parser, top=True)
    from interconnect import __version__

    parser.add_argument("--version", action="version", version=f"compute-interconnect {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="{" + ",".join(COMMANDS) + "}")

    def command(name: str, help_text: str, func: Callable[[argparse.Namespace], int],
                connection: bool = True) -> argparse.ArgumentParser:
        cmd = sub.add_parser(name, help=help_text, description=help_text, epilog=EXIT_HELP,
                             formatter_class=argparse.RawDescriptionHelpFormatter)
        if connection:
            _connection_options(cmd, top=False)
        cmd.set_defaults(func=func)
        return cmd

    quote = command("quote", "where a job would go and what it would cost (creates nothing); exit 0 if it fits, "
                    "1 if not", cmd_quote)
    quote.add_argument("-f", "--filename", required=True, help="the ComputeJob manifest (- for stdin)")
    quote.add_argument("--hours", help="duration for the estimate (default: spec.expectedHours)")
    _namespace_options(quote, all_namespaces=False)
    _output(quote)

    explain = command("explain", "why a job is where it is, or why it waits (every job of the namespace without "
                      "a name)", cmd_explain)
    explain.add_argument("kind", choices=("cjob", "computejob", "computejobs"))
    explain.add_argument("name", nargs="?")
    _namespace_options(explain, all_namespaces=True)
    _output(explain)

    logs = command("logs", "print the logs of a job's pods, read on the member by the operator (the tenant API)",
                   cmd_logs)
    logs.add_argument("kind", choices=("cjob", "computejob", "computejobs"))
    logs.add_argument("name")
    logs.add_argument("-f", "--follow", action="store_true", help="stream the logs as they are written")
    logs.add_argument("--attempt", type=int, help="the attempt (default: the latest)")
    logs.add_argument("-c", "--container", help="one container (default: every container, lines prefixed)")
    logs.add_argument("--pod", help="one pod of the attempt (default: every pod that started)")
    logs.add_argument("--tail", type=int, help="the last N lines of each container")
    logs.add_argument("--limit-bytes", type=int, help="at most this many bytes of each container's log")
    logs.add_argument("--timestamps", action="store_true", help="each line with the member's timestamp")
    _namespace_options(logs, all_namespaces=False)

    topology = command("topology", "the 1+M+N tree with readiness and cards; jobs counted in the namespace "
                       "(-A: all)", cmd_topology)
    _namespace_options(topology, all_namespaces=True)
    _output(topology)

    usage = command("usage", "card-hours and cost of finished attempts (the ComputeUsage records): the "
                    "namespace's bill (-A: every tenant's, for hub admins)", cmd_usage)
    usage.add_argument("--since", type=parse_time, help="RFC 3339 start of the attempts' finish (default: 31 "
                       "days before --until)")
    usage.add_argument("--until", type=parse_time, help="RFC 3339 end, exclusive (default: now)")
    usage.add_argument("--group-by", default="tenant", choices=GROUPS)
    _namespace_options(usage, all_namespaces=True)
    _output(usage, (*OUTPUTS, "csv"))

    report = command("report", "the network report of a month for node operators and the regulator: per node, "
                     "region or industry, cards offered and in use, utilisation, card-hours and PFLOPS-hours sold, "
                     "revenue, outcomes, energy, green share, PUE, availability (hub admins: every tenant's records; "
                     "docs/report.md)", cmd_report)
    network_report.add_arguments(report)

    join = command("join", "register a member cluster with the hub (as a hub admin, or with a registration "
                   "credential: --hub-kubeconfig)", cmd_join, connection=False)
    add_join_arguments(join, connection=False)
    join.set_defaults(func=cmd_join)

    token = command("token", "registration credentials: `token create --node NAME --ttl 24h` lets a node operator "
                    "join that one node; `token revoke --node NAME` voids them (hub admin)", cmd_token,
                    connection=False)
    add_token_arguments(token, connection=False)
    token.set_defaults(func=cmd_token)

    leave = command("leave", "drain a member and remove it", cmd_leave)
    leave.add_argument("node")
    leave.add_argument("--hub-context", default=None, help="the hub's context (default: --context)")
    leave.add_argument("--timeout", type=float, default=3600)

    completion = command("completion", "print a shell completion script: source <(kubectl compute completion "
                         "bash)", cmd_completion, connection=False)
    completion.add_argument("shell", choices=SHELLS)
    return parser


# kubectl (1.26+) completes a plugin's arguments by running ``kubectl_complete-<plugin>`` with
# them and the word being completed, and reads cobra's answer: one candidate a line, then
# ``:<directive>`` (0: the shell may also complete file names; 4: it may not).
FILE_COMPLETION, NO_FILE_COMPLETION = 0, 4


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def complete_words(words: Sequence[str], current: str) -> tuple[list[str], int]:
    """The candidates for ``current`` after ``words`` (the arguments before it), from the parser."""
    parser = build_parser()
    commands = _subparsers(parser)
    command = next((w for w in words if w in commands), None)
    target = commands[command] if command else parser
    options = {o: a for a in target._actions for o in a.option_strings}
    previous = words[-1] if words else ""
    if previous in options and options[previous].nargs != 0:
        choices = options[previous].choices
        if choices:
            return [str(c) for c in choices if str(c).startswith(current)], NO_FILE_COMPLETION
        return [], FILE_COMPLETION if previous in ("-f", "--filename", "--kubeconfig", "--values") else \
            NO_FILE_COMPLETION
    if current.startswith("-"):
        return sorted(o for o in options if o.startswith(current) and o not in ("-h",)), NO_FILE_COMPLETION
    if command is None:
        return [c for c in commands if c.startswith(current)], NO_FILE_COMPLETION
    # The next positional argument with choices (explain's and logs' kind, completion's shell).
    given = [w for i, w in enumerate(words) if not w.startswith("-") and w != command
             and not (i and words[i - 1] in options and options[words[i - 1]].nargs != 0)]
    positionals = [a for a in target._actions if not a.option_strings and a.dest != "help"]
    if len(given) < len(positionals) and positionals[len(given)].choices:
        return [str(c) for c in positionals[len(given)].choices or () if str(c).startswith(current)], \
            NO_FILE_COMPLETION
    return [], NO_FILE_COMPLETION


def complete_main(argv: Sequence[str] | None = None) -> int:
    """``kubectl_complete-compute``: what kubectl runs to complete ``kubectl compute ...``."""
    args = list(sys.argv[1:] if argv is None else argv)
    words, current = args[:-1], (args[-1] if args else "")
    candidates, directive = complete_words(words, current)
    print("\n".join([*candidates, f":{directive}"]))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except PluginError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return int(exc.code)
    except KeyboardInterrupt:
        return int(Exit.INTERRUPTED)
    except BrokenPipeError:  # `kubectl compute logs ... | head`
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return int(Exit.OK)


if __name__ == "__main__":
    sys.exit(main())

"""``kubectl compute``: quote before you submit, explain after, see the topology and the bill.

Talks to the hub only, and decides with the operator's own core (the same placement function,
the same money arithmetic): a quote is what the operator will do with the market as it is now.
Rendering is pure (``render_*``) so that its output is tested against golden files.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pydantic
import yaml

from interconnect.api.v1alpha1 import ComputeJob, ComputeNode, ComputeOffer, validation_message
from interconnect.cli.report import GROUPS
from interconnect.core.latency import LATENCY_CONFIG_MAP, LatencyTable, latency_from_config
from interconnect.core.money import Money, effective_price_money, round_to_minor_unit
from interconnect.core.placement import Decision, JobRequest, PlacementSnapshot, place, what_would_fit
from interconnect.core.vocabulary import GROUP, VERSION
from interconnect.services.translate import job_request, node_view, offer_view, price_of

WIDTH = 100


class PluginError(Exception):
    """A user-facing error: printed as one clear line, exit status 2."""


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
    nodes = [node_view(n, registered=_condition(n, "Registered"), ready=_condition(n, "Ready"))
             for n in market.nodes]
    offers = [offer_view(o, cards_total=o.status.cards_total or 0, cards_free=o.status.cards_free or 0)
              for o in market.offers]
    return PlacementSnapshot.of(nodes, offers, market.latency, at)


class Hub:
    """The hub's API through the synchronous client (a command-line tool blocks anyway)."""

    def __init__(self, kubeconfig: str | None, context: str | None) -> None:
        from kubernetes import client, config
        from kubernetes.config.config_exception import ConfigException

        try:
            self.api = config.new_client_from_config(config_file=kubeconfig, context=context)
        except (ConfigException, FileNotFoundError) as exc:
            raise PluginError(f"cannot use the kubeconfig{f' context {context!r}' if context else ''}: {exc}") from exc
        self.custom = client.CustomObjectsApi(self.api)
        self.core = client.CoreV1Api(self.api)

    def _list(self, plural: str) -> list[dict[str, Any]]:
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError

        try:
            return list(self.custom.list_cluster_custom_object(GROUP, VERSION, plural, _request_timeout=15)["items"])
        except ApiException as exc:
            if exc.status == 404:
                raise PluginError(f"the hub has no {plural}.{GROUP}: are the CRDs installed? "
                                  "(helm install interconnect-hub charts/interconnect-hub)") from exc
            raise PluginError(f"the hub refused to list {plural}: {exc.status} {exc.reason}") from exc
        except (HTTPError, OSError) as exc:
            raise PluginError(f"cannot reach the hub: {exc}") from exc

    def market(self, namespace: str = "interconnect-system") -> Market:
        from kubernetes.client.exceptions import ApiException

        nodes = [ComputeNode.model_validate(o) for o in self._list("computenodes")]
        offers = [ComputeOffer.model_validate(o) for o in self._list("computeoffers")]
        jobs = self._list("computejobs")
        latency = LatencyTable.default()
        try:
            cm = self.core.read_namespaced_config_map(LATENCY_CONFIG_MAP, namespace, _request_timeout=15)
            latency = latency_from_config(cm.data or {})
        except ApiException:
            pass
        return Market(nodes, offers, jobs, latency)

    def job(self, namespace: str, name: str) -> dict[str, Any]:
        from kubernetes.client.exceptions import ApiException

        try:
            found: dict[str, Any] = self.custom.get_namespaced_custom_object(  # type: ignore[assignment]
                GROUP, VERSION, namespace, "computejobs", name)
            return found
        except ApiException as exc:
            if exc.status == 404:
                raise PluginError(f"computejob {namespace}/{name} not found") from exc
            raise PluginError(f"cannot read computejob {namespace}/{name}: {exc.status} {exc.reason}") from exc

    def dry_run(self, manifest: dict[str, Any], namespace: str) -> None:
        """Let the API server validate the job: its own message, naming the field, on failure."""
        from kubernetes.client.exceptions import ApiException

        try:
            self.custom.create_namespaced_custom_object(GROUP, VERSION, namespace, "computejobs", manifest,
                                                        dry_run="All", _request_timeout=15)
        except ApiException as exc:
            if exc.status in (400, 422):
                try:
                    message = json.loads(exc.body or "{}").get("message", exc.reason)
                except ValueError:
                    message = exc.reason
                raise PluginError(f"the hub rejects this job: {message}") from exc
            if exc.status != 409:  # 409: a job of that name exists; the spec itself is valid
                raise PluginError(f"the hub refused the dry run: {exc.status} {exc.reason}") from exc


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
        lines.append(QuoteLine(
            chosen=chosen, offer=offer.metadata.name, node=offer.spec.node_ref,
            identity=(node.status.identity_code if node else None) or "-", region=region, kind=kind,
            tier=tier.value if tier else ">20ms", model=offer.spec.gpu_model, free=offer.status.cards_free or 0,
            price=effective.amount_text, estimate=estimate, currency=price.currency, reason=reason, detail=detail))
    return lines


def render_quote(lines: list[QuoteLine], decision: Decision) -> str:
    """One row per offer (the chosen one starred), then why each other one does not take the job.

    PER-CARD-H is the effective price per card-hour for this job (machine-hour offers bill whole
    machines); ESTIMATE is price x cards x hours for the declared or given duration.
    """
    header = ("OFFER", "NODE", "TYPE", "TIER", "MODEL", "FREE", "PER-CARD-H", "ESTIMATE", "RESULT")
    rows = [(q.offer, q.identity, q.kind, q.tier, q.model.removeprefix("NVIDIA-"), str(q.free),
             f"{q.price} {q.currency}", q.estimate, SHORT.get(q.reason, q.reason)) for q in lines]
    notes = [f"  {q.offer}: {q.detail}" for q in lines if q.detail]
    verdict = (f"fits: offer {decision.chosen.offer} on {decision.chosen.node} ({decision.chosen.identity_code})"
               if decision.chosen else "does not fit now")
    why = "\n".join(["why not the others:", *notes]) if notes else ""
    return "\n".join(part for part in (table(header, rows), "", decision.summary, why, verdict) if part is not None)


def render_explain(job: dict[str, Any], hint_text: str | None) -> str:
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
            out.append(f"  used {usage.get('cardHours', '0')} card-hours, cost {usage.get('cost', '0')} "
                       f"{usage.get('currency', '')}".rstrip())
    for cond in status.get("conditions") or []:
        out.append(f"  {cond['type']}={cond['status']} {cond.get('reason', '')}: {cond.get('message', '')}"[:WIDTH])
    unschedulable = status.get("unschedulable")
    if unschedulable:
        out.append(f"  why pending: {unschedulable['summary']}")
        for candidate in unschedulable.get("candidates", [])[:20]:
            out.append(f"    {candidate['offer']} on {candidate['node']}: {candidate['reason']}"[:WIDTH])
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


def render_topology(market: Market) -> str:
    active = {"Scheduled", "Dispatched", "Running"}
    running: dict[str, int] = {}
    for job in market.jobs:
        status = job.get("status") or {}
        if status.get("phase") in active and status.get("placement"):
            running[status["placement"]["node"]] = running.get(status["placement"]["node"], 0) + 1
    cards: dict[str, list[str]] = {}
    for offer in sorted(market.offers, key=lambda o: o.metadata.name):
        model = offer.spec.gpu_model.removeprefix("NVIDIA-")
        cards.setdefault(offer.spec.node_ref, []).append(
            f"{model} {offer.status.cards_free or 0}/{offer.status.cards_total or 0}")

    def lines(node: ComputeNode, first: str, rest: str) -> list[str]:
        ready = "Ready" if _condition(node, "Ready") else "NotReady"
        name = node.metadata.name + (f" ({node.spec.industry.value})" if node.spec.industry else "")
        head = (f"{first}{name}  {node.status.identity_code or 'no code'}  {node.spec.region}  {ready}  "
                f"jobs: {running.get(node.metadata.name, 0)}")
        what = ", ".join(cards.get(node.metadata.name, [])) or "no offers"
        return [head, f"{rest}cards free/total: {what}"]

    regional = sorted((n for n in market.nodes if n.spec.type.value == "regional"),
                      key=lambda n: (n.spec.region, n.metadata.name))
    industry = [n for n in market.nodes if n.spec.type.value == "industry"]
    out = ["hub (national node)"]
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
        out += lines(node, "?─ ", "   ")
        out[-2] += f"  (parent {node.spec.parent_node} missing)"
    return "\n".join(out)


# ---------------------------------------------------------------------------------------------
# Commands
# ---------------------------------------------------------------------------------------------


def _load_job(path: str, namespace: str | None) -> tuple[dict[str, Any], ComputeJob]:
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text()
    except OSError as exc:
        raise PluginError(f"cannot read {path}: {exc}") from exc
    docs = [d for d in yaml.safe_load_all(text) if d]
    jobs = [d for d in docs if isinstance(d, dict) and d.get("kind") == "ComputeJob"]
    if len(jobs) != 1:
        raise PluginError(f"{path}: expected one ComputeJob, found {len(jobs)}")
    manifest = jobs[0]
    manifest.setdefault("metadata", {})
    if namespace:
        manifest["metadata"]["namespace"] = namespace
    manifest["metadata"].setdefault("namespace", "default")
    probe = json.loads(json.dumps(manifest))
    probe["metadata"].update(uid="quote", creationTimestamp=datetime.now(UTC).isoformat())
    try:
        return manifest, ComputeJob.model_validate(probe)
    except pydantic.ValidationError as exc:
        raise PluginError(f"{path} is not a valid ComputeJob: {validation_message(exc)}") from exc


def cmd_quote(args: argparse.Namespace) -> int:
    manifest, job = _load_job(args.filename, args.namespace)
    hub = Hub(args.kubeconfig, args.context)
    hub.dry_run(manifest, manifest["metadata"]["namespace"])
    market = hub.market()
    request = job_request(job)
    decision = place(request, snapshot(market, datetime.now(UTC)))
    hours = Decimal(args.hours) if args.hours else request.expected_hours
    lines = quote_lines(request, market, decision, hours)
    if args.output == "table":
        print(render_quote(lines, decision))
    else:
        data = {"fits": decision.chosen is not None, "summary": decision.summary,
                "candidates": [q.__dict__ for q in lines]}
        print(json.dumps(data, indent=2) if args.output == "json" else yaml.safe_dump(data, sort_keys=False))
    return 0 if decision.chosen else 1


def cmd_explain(args: argparse.Namespace) -> int:
    hub = Hub(args.kubeconfig, args.context)
    raw = hub.job(args.namespace or "default", args.name)
    hint = None
    if (raw.get("status") or {}).get("phase", "Pending") == "Pending":
        market = hub.market()
        probe = json.loads(json.dumps(raw))
        request = job_request(ComputeJob.model_validate(probe))
        hint = fit_hint_text(request, snapshot(market, datetime.now(UTC)))
    if args.output == "table":
        print(render_explain(raw, hint))
    else:
        data = {"status": raw.get("status") or {}, "hint": hint}
        print(json.dumps(data, indent=2) if args.output == "json" else yaml.safe_dump(data, sort_keys=False))
    return 0


def cmd_topology(args: argparse.Namespace) -> int:
    market = Hub(args.kubeconfig, args.context).market()
    if args.output == "table":
        print(render_topology(market))
    else:
        data = [{"name": n.metadata.name, "identityCode": n.status.identity_code, "type": n.spec.type.value,
                 "region": n.spec.region, "parent": n.spec.parent_node, "ready": _condition(n, "Ready")}
                for n in market.nodes]
        print(json.dumps(data, indent=2) if args.output == "json" else yaml.safe_dump(data, sort_keys=False))
    return 0


def cmd_usage(args: argparse.Namespace) -> int:
    from interconnect.cli.main import main as interconnect_main

    forward = ["usage", "--group-by", args.group_by, "-o", "table" if args.output == "yaml" else args.output]
    for flag, value in (("--since", args.since), ("--until", args.until), ("--kubeconfig", args.kubeconfig),
                        ("--context", args.context)):
        if value:
            forward += [flag, value]
    return interconnect_main(forward)


def cmd_join(args: argparse.Namespace) -> int:
    from interconnect.cli.main import main as interconnect_main

    forward = ["join", "--member-context", args.member_context, "--hub-context", args.context or args.hub_context,
               "--values", args.values]
    if args.token_lifetime:
        forward += ["--token-lifetime", args.token_lifetime]
    if args.kubeconfig:
        forward += ["--kubeconfig", args.kubeconfig]
    return interconnect_main(forward)


def cmd_leave(args: argparse.Namespace) -> int:
    from interconnect.cli.main import main as interconnect_main

    forward = ["leave", args.node, "--hub-context", args.context or args.hub_context, "--timeout", str(args.timeout)]
    if args.kubeconfig:
        forward += ["--kubeconfig", args.kubeconfig]
    return interconnect_main(forward)


COMMANDS = ("quote", "explain", "topology", "usage", "join", "leave", "completion")


def cmd_completion(args: argparse.Namespace) -> int:
    """A bash completion script (`source <(kubectl compute completion bash)`)."""
    words = " ".join(COMMANDS)
    print(f"""_kubectl_compute() {{
  local cur="${{COMP_WORDS[COMP_CWORD]}}"
  if [ "$COMP_CWORD" -eq 1 ]; then COMPREPLY=($(compgen -W "{words}" -- "$cur")); return; fi
  case "${{COMP_WORDS[1]}}" in
    quote) COMPREPLY=($(compgen -W "-f --filename --hours -o -n --context --kubeconfig" -- "$cur"));;
    explain) COMPREPLY=($(compgen -W "cjob -o -n --context --kubeconfig" -- "$cur"));;
    usage) COMPREPLY=($(compgen -W "--since --until --group-by -o --context --kubeconfig" -- "$cur"));;
    *) COMPREPLY=($(compgen -W "-o --context --kubeconfig --help" -- "$cur"));;
  esac
}}
complete -F _kubectl_compute kubectl-compute""")
    return 0


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--kubeconfig", help="path to the kubeconfig (default: the usual lookup)")
    common.add_argument("--context", help="the hub's context")
    common.add_argument("-n", "--namespace", help="the tenant namespace")
    common.add_argument("-o", "--output", choices=("table", "json", "yaml"), default="table")
    parser = argparse.ArgumentParser(prog="kubectl compute",
                                     description="Quote before you submit, explain after, see the topology and the "
                                     "bill: the Compute Interconnect hub from kubectl.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="{" + ",".join(COMMANDS) + "}")
    quote = sub.add_parser("quote", parents=[common], help="where a job would go and what it would cost (creates "
                           "nothing); exit 0 if it fits, 1 if not")
    quote.add_argument("-f", "--filename", required=True, help="the ComputeJob manifest (- for stdin)")
    quote.add_argument("--hours", help="duration for the estimate (default: spec.expectedHours)")
    quote.set_defaults(func=cmd_quote)
    explain = sub.add_parser("explain", parents=[common], help="why a job is where it is, or why it waits")
    explain.add_argument("kind", choices=("cjob", "computejob", "computejobs"))
    explain.add_argument("name")
    explain.set_defaults(func=cmd_explain)
    topology = sub.add_parser("topology", parents=[common], help="the 1+M+N tree with readiness and cards")
    topology.set_defaults(func=cmd_topology)
    usage = sub.add_parser("usage", parents=[common],
                           help="card-hours and cost of finished attempts (the ComputeUsage records)")
    usage.add_argument("--since")
    usage.add_argument("--until")
    usage.add_argument("--group-by", default="tenant",
                       choices=GROUPS)
    usage.set_defaults(func=cmd_usage)
    join = sub.add_parser("join", parents=[common], help="register a member cluster with the hub")
    join.add_argument("--member-context", required=True)
    join.add_argument("--hub-context", default=None)
    join.add_argument("--values", required=True)
    join.add_argument("--token-lifetime", help="how long the hub's token for the member is valid, 10m to 24h "
                      "(default: 12h); the operator renews it before it expires")
    join.set_defaults(func=cmd_join)
    leave = sub.add_parser("leave", parents=[common], help="drain a member and remove it")
    leave.add_argument("node")
    leave.add_argument("--hub-context", default=None)
    leave.add_argument("--timeout", type=float, default=3600)
    leave.set_defaults(func=cmd_leave)
    completion = sub.add_parser("completion", help="print a shell completion script")
    completion.add_argument("shell", choices=("bash",))
    completion.set_defaults(func=cmd_completion)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except PluginError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

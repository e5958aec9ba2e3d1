"""Command line: ``python -m interconnect [run|crds|...]``.

``run`` (the default) starts the operator against the hub of the current kubeconfig.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any, cast


def _select_hub(kubeconfig: str | None, context: str | None) -> None:
    """Point every client at the hub before any of them is imported.

    The Kubernetes client libraries read ``KUBECONFIG`` when they are imported and kopf logs in
    with the current context, so ``--context`` becomes a private copy of the kubeconfig whose
    current context is the hub.
    """
    import os
    import tempfile

    if kubeconfig:
        os.environ["KUBECONFIG"] = os.path.abspath(kubeconfig)
    if context:
        import yaml

        path = os.environ.get("KUBECONFIG", os.path.expanduser("~/.kube/config")).split(os.pathsep)[0]
        with open(path, encoding="utf-8") as fh:
            config = yaml.safe_load(fh)
        if context not in {c["name"] for c in config.get("contexts") or []}:
            raise SystemExit(f"--context {context}: no such context in {path}")
        config["current-context"] = context
        fd, copy = tempfile.mkstemp(prefix="interconnect-hub-", suffix=".kubeconfig")
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            yaml.safe_dump(config, fh)
        os.environ["KUBECONFIG"] = copy


def _run(args: argparse.Namespace) -> int:
    _select_hub(args.kubeconfig, args.context)
    from interconnect.operator_main import run_operator

    return run_operator(
        standalone=args.standalone,
        priority=args.priority,
        liveness=args.liveness,
        verbose=args.verbose,
    )


def _crds(args: argparse.Namespace) -> int:
    """crds/ and the hub chart's copy of it (helm installs CRDs from the chart's own crds/)."""
    from interconnect.generate import crds as crdgen

    return crdgen.main(["--check"] if args.check else [])


def _dashboards(args: argparse.Namespace) -> int:
    """deploy/dashboards/ and the hub chart's copy (needs the `dev` or `test` extra)."""
    try:
        from interconnect.generate import dashboards
    except ImportError as exc:
        print(f"{exc}: install the dev extra (pip install -e '.[dev]')", file=sys.stderr)
        return 2
    return dashboards.main(["--check"] if args.check else [])


def _alerts(args: argparse.Namespace) -> int:
    """deploy/alerts/ and the hub chart's copy."""
    from interconnect.generate import alerts

    return alerts.main(["--check"] if args.check else [])


def _usage(args: argparse.Namespace) -> int:
    import datetime as dt

    _select_hub(args.kubeconfig, args.context)
    from kubernetes import client, config

    from interconnect.cli.report import month_selector, render, usage_rows
    from interconnect.core.vocabulary import GROUP, VERSION

    def when(text: str) -> dt.datetime:
        value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
        return value if value.tzinfo else value.replace(tzinfo=dt.UTC)

    config.load_kube_config()  # type: ignore[no-untyped-call]
    api = client.CustomObjectsApi()
    until = when(args.until) if args.until else dt.datetime.now(dt.UTC)
    since = when(args.since) if args.since else until - dt.timedelta(days=31)
    # The bill is the ComputeUsage records (they outlive the jobs), selected by their month label.
    selector = month_selector(since, until)
    records: list[dict[str, Any]] = []
    token: str | None = None
    while True:
        options: dict[str, Any] = {"limit": 500}
        if selector:
            options["label_selector"] = selector
        if token:
            options["_continue"] = token
        page = cast(dict[str, Any], api.list_cluster_custom_object(GROUP, VERSION, "computeusages", **options))
        records += page.get("items") or []
        token = (page.get("metadata") or {}).get("continue")
        if not token:
            break
    print(render(usage_rows(records, since=since, until=until, group_by=args.group_by), args.output, args.group_by))
    return 0


def _join(args: argparse.Namespace) -> int:
    from pathlib import Path

    from interconnect.cli.registration import join

    name = join(kubeconfig=args.kubeconfig, member_context=args.member_context, hub_context=args.hub_context,
                values_file=Path(args.values), namespace=args.namespace, service_account=args.service_account,
                operator_namespace=args.operator_namespace, hub_namespace=args.hub_namespace,
                token_lifetime=args.token_lifetime)
    print(f"joined: ComputeNode {name} (kubectl --context {args.hub_context} get cnode {name})")
    return 0


def _leave(args: argparse.Namespace) -> int:
    from interconnect.cli.registration import leave

    leave(kubeconfig=args.kubeconfig, hub_context=args.hub_context, node=args.node,
          operator_namespace=args.operator_namespace, timeout=args.timeout)
    print(f"left: ComputeNode {args.node} drained and removed")
    return 0


def token_lifetime(text: str) -> int:
    """``--token-lifetime``: 12h, 90m, 600s or seconds, from 10m to 24h."""
    from interconnect.core.credentials import parse_lifetime

    try:
        return parse_lifetime(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def build_parser() -> argparse.ArgumentParser:
    from interconnect import __version__

    parser = argparse.ArgumentParser(prog="python -m interconnect", description=__doc__)
    parser.add_argument("--version", action="version", version=f"compute-interconnect {__version__}")
    sub = parser.add_subparsers(dest="command")

    run = sub.add_parser("run", help="start the operator against the hub")
    run.add_argument("--kubeconfig", help="kubeconfig of the hub (default: the usual lookup)")
    run.add_argument("--context", help="context of the hub in the kubeconfig")
    run.add_argument("--standalone", action="store_true",
                     help="no peering: only for a single replica in development")
    run.add_argument("--priority", type=int, default=None,
                     help="peering priority; every replica needs its own (default: derived from the pod)")
    run.add_argument("--liveness", default="http://0.0.0.0:8080/healthz",
                     help="liveness endpoint URL for kubelet probes")
    run.add_argument("-v", "--verbose", action="store_true")
    run.set_defaults(func=_run)

    usage = sub.add_parser("usage", help="card-hours and cost of finished attempts (ComputeUsage records), for "
                           "billing; deleted jobs included")
    usage.add_argument("--since", help="RFC 3339 start of the attempts' finish (default: 31 days before --until)")
    usage.add_argument("--until", help="RFC 3339 end, exclusive (default: now)")
    usage.add_argument("--group-by", default="tenant",
                       choices=("node", "tenant", "region", "industry", "offer", "gpu-model"))
    usage.add_argument("-o", "--output", default="table", choices=("table", "json", "csv"))
    usage.add_argument("--kubeconfig")
    usage.add_argument("--context")
    usage.set_defaults(func=_usage)

    join = sub.add_parser("join", help="register a member cluster (member chart installed) with the hub")
    join.add_argument("--member-context", required=True)
    join.add_argument("--hub-context", required=True)
    join.add_argument("--values", required=True, help="the member chart's values file (node and offers)")
    join.add_argument("--namespace", help="dispatch namespace on the member (default: from the values)")
    join.add_argument("--service-account", help="the hub's service account on the member (default: from values)")
    join.add_argument("--hub-namespace", help="the member's namespace of that service account and its token "
                      "binding (default: hubNamespace from the values, else interconnect-hub)")
    join.add_argument("--token-lifetime", type=token_lifetime, default="12h",
                      help="how long the hub's token is valid, 10m to 24h (default: 12h); the operator renews it "
                      "when half of it has passed (INTERCONNECT_TOKEN_RENEW_FRACTION)")
    join.add_argument("--operator-namespace", default="interconnect-system")
    join.add_argument("--kubeconfig")
    join.set_defaults(func=_join)

    leave = sub.add_parser("leave", help="drain a member and remove it from the hub")
    leave.add_argument("node", help="the ComputeNode")
    leave.add_argument("--hub-context", required=True)
    leave.add_argument("--operator-namespace", default="interconnect-system")
    leave.add_argument("--timeout", type=float, default=3600, help="seconds to wait for its jobs to finish")
    leave.add_argument("--kubeconfig")
    leave.set_defaults(func=_leave)

    crds = sub.add_parser("crds", help="write crds/*.yaml from the API models")
    crds.add_argument("--check", action="store_true", help="exit 1 when the committed YAML differs")
    crds.set_defaults(func=_crds)

    dashboards = sub.add_parser("dashboards", help="write the Grafana dashboards (deploy/dashboards, chart)")
    dashboards.add_argument("--check", action="store_true", help="exit 1 when the committed JSON differs")
    dashboards.set_defaults(func=_dashboards)

    alerts = sub.add_parser("alerts", help="write the Prometheus alert rules (deploy/alerts, chart)")
    alerts.add_argument("--check", action="store_true", help="exit 1 when the committed rules differ")
    alerts.set_defaults(func=_alerts)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(list(argv) if argv is not None else None)
    if args.command is None:
        args = parser.parse_args(["run", *(argv or sys.argv[1:])])
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())

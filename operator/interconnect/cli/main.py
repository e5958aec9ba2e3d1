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

    The Kubernetes client libraries read ``KUBECONFIG`` when they are imported, and kopf logs in
    with the current context. ``--context`` becomes a kubeconfig of that one context (its cluster
    and user, file paths made absolute) whose current context it is, held in an anonymous
    in-memory file (``memfd``) that ``KUBECONFIG`` names as ``/proc/<pid>/fd/<n>``: no copy of a
    credential is ever written to disk, and it is gone when the process ends, however it ends.
    """
    import os

    if kubeconfig:
        os.environ["KUBECONFIG"] = os.path.abspath(kubeconfig)
    if context:
        import yaml

        paths = [p for p in os.environ.get("KUBECONFIG", "").split(os.pathsep) if p]
        text = yaml.safe_dump(single_context(paths or [os.path.expanduser("~/.kube/config")], context))
        os.environ["KUBECONFIG"] = in_memory_file(text, "interconnect-hub.kubeconfig")


PATH_KEYS = {"cluster": ("certificate-authority",), "user": ("client-certificate", "client-key", "tokenFile")}


def single_context(paths: list[str], context: str) -> dict[str, Any]:
    """A kubeconfig of ``context`` alone, from kubeconfig files merged as kubectl merges them (the
    first definition of a name wins); relative file paths resolved against the file that named them."""
    import os

    import yaml

    found: dict[str, tuple[str, dict[str, Any]]] = {}
    for path in paths:
        if not os.path.exists(path):
            continue
        with open(path, encoding="utf-8") as fh:
            config = yaml.safe_load(fh) or {}
        base = os.path.dirname(os.path.abspath(path))
        for kind in ("context", "cluster", "user"):
            for entry in config.get(f"{kind}s") or []:
                found.setdefault(f"{kind}/{entry.get('name')}", (base, entry))
    if f"context/{context}" not in found:
        raise SystemExit(f"--context {context}: no such context in {os.pathsep.join(paths)}")
    _, ctx = found[f"context/{context}"]
    entries: dict[str, dict[str, Any]] = {"context": ctx}
    for kind in ("cluster", "user"):
        name = (ctx.get("context") or {}).get(kind)
        if f"{kind}/{name}" not in found:
            raise SystemExit(f"--context {context}: its {kind} {name!r} is not in {os.pathsep.join(paths)}")
        base, entry = found[f"{kind}/{name}"]
        body = dict(entry.get(kind) or {})
        for key in PATH_KEYS[kind]:
            if body.get(key) and not os.path.isabs(body[key]):
                body[key] = os.path.join(base, body[key])
        command = (body.get("exec") or {}).get("command")
        if command and os.sep in command and not os.path.isabs(command):
            body["exec"] = {**body["exec"], "command": os.path.join(base, command)}
        entries[kind] = {"name": name, kind: body}
    return {"apiVersion": "v1", "kind": "Config", "current-context": context, "contexts": [entries["context"]],
            "clusters": [entries["cluster"]], "users": [entries["user"]], "preferences": {}}


def in_memory_file(text: str, name: str) -> str:
    """A path to an anonymous file holding ``text`` (Linux memfd), readable by this process for as
    long as it lives; nothing is written to any file system."""
    import os

    fd = os.memfd_create(name, os.MFD_CLOEXEC)
    os.write(fd, text.encode())
    return f"/proc/{os.getpid()}/fd/{fd}"


def _run(args: argparse.Namespace) -> int:
    _select_hub(args.kubeconfig, args.context)
    # The tenant API's start-up handler (kopf registers handlers on import; handlers/__init__.py
    # imports the others).
    import interconnect.handlers.tenant_api  # noqa: F401
    from interconnect.operator_main import run_operator

    return run_operator(
        standalone=args.standalone,
        priority=args.priority,
        liveness=args.liveness,
        verbose=args.verbose,
        log_format=args.log_format,
    )


def _crds(args: argparse.Namespace) -> int:
    """crds/ and the hub chart's copy of it (files/crds/, which its templates render)."""
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


def _stamp_version(args: argparse.Namespace) -> int:
    """Both charts' Chart.yaml and image/Dockerfile from interconnect.__version__."""
    from interconnect.generate import version

    return version.main([*(["--check"] if args.check else []), *(["--set", args.set] if args.set else [])])


def _usage(args: argparse.Namespace) -> int:
    import datetime as dt

    from kubernetes import client, config

    from interconnect.cli.report import month_selector, render, usage_rows
    from interconnect.core.vocabulary import GROUP, VERSION

    def when(text: str) -> dt.datetime:
        value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
        return value if value.tzinfo else value.replace(tzinfo=dt.UTC)

    # The kubeconfig and context through the client library: no copy of them is made.
    config.load_kube_config(config_file=args.kubeconfig, context=args.context)  # type: ignore[no-untyped-call]
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


def _report(args: argparse.Namespace) -> int:
    """The network report (as `kubectl compute report`): every tenant's records, Prometheus if given."""
    import datetime as dt

    from interconnect.cli import promql
    from interconnect.cli.kube import PluginError
    from interconnect.cli.plugin import Hub, report_records, report_text
    from interconnect.core.quota import Month

    now = dt.datetime.now(dt.UTC)
    month = args.month or Month.of(now)
    try:
        records = report_records(Hub(args.kubeconfig, args.context), month, now)
        print(report_text(records, month=month, now=now, level=args.group_by, output=args.output, node=args.node,
                          prometheus=promql.prometheus_url(args.prometheus)))
    except PluginError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return int(exc.code)
    return 0


def join_command(args: argparse.Namespace) -> int:
    from pathlib import Path

    from interconnect.cli.registration import join

    if not args.hub_context and not args.hub_kubeconfig:
        raise SystemExit("join: give --hub-context (hub admin) or --hub-kubeconfig (a registration credential "
                         "from `kubectl compute token create`)")
    name = join(kubeconfig=args.kubeconfig, member_context=args.member_context, hub_context=args.hub_context,
                values_file=Path(args.values), namespace=args.namespace, service_account=args.service_account,
                operator_namespace=args.operator_namespace, hub_namespace=args.hub_namespace,
                token_lifetime=args.token_lifetime, hub_kubeconfig=args.hub_kubeconfig,
                member_server=args.member_server)
    print(f"joined: ComputeNode {name} (kubectl get cnode {name})")
    return 0


def add_join_arguments(join: argparse.ArgumentParser, *, connection: bool = True) -> None:
    """`join`'s flags: the same on `python -m interconnect join` and `kubectl compute join` (whose
    own --kubeconfig and --operator-namespace come before the command: ``connection=False``)."""
    join.add_argument("--member-context", required=True, help="the member cluster's context (its installer's "
                      "credentials: used here to issue the hub's token, never stored)")
    join.add_argument("--hub-context", help="the hub's context, for a hub admin")
    join.add_argument("--hub-kubeconfig", help="the registration credential from `kubectl compute token create`: "
                      "with it, join creates this node's ComputeNode, Secret and offers and nothing else")
    join.add_argument("--member-server", help="the member API server's address as the hub must reach it, e.g. "
                      "https://member.example:6443 (default: the server of --member-context, which is often "
                      "127.0.0.1 or a tunnel)")
    join.add_argument("--values", required=True, help="the member chart's values file (node and offers)")
    join.add_argument("--namespace", help="dispatch namespace on the member (default: from the values)")
    join.add_argument("--service-account", help="the hub's service account on the member (default: from values)")
    join.add_argument("--hub-namespace", help="the member's namespace of that service account and its token "
                      "binding (default: hubNamespace from the values, else interconnect-hub)")
    join.add_argument("--token-lifetime", type=token_lifetime, default="12h",
                      help="how long the hub's token is valid, 10m to 24h (default: 12h); the operator renews it "
                      "when half of it has passed (INTERCONNECT_TOKEN_RENEW_FRACTION)")
    if connection:
        join.add_argument("--operator-namespace", default="interconnect-system")
        join.add_argument("--kubeconfig", help="kubeconfig holding --member-context (and --hub-context)")
    join.set_defaults(func=join_command)


def token_command(args: argparse.Namespace) -> int:
    from interconnect.cli import tokens
    from interconnect.cli.registration import cluster_of

    if args.action == "create":
        text = tokens.create(kubeconfig=args.kubeconfig, hub_context=args.hub_context, node=args.node, ttl=args.ttl,
                             operator_namespace=args.operator_namespace,
                             cluster=cluster_of(args.kubeconfig, args.hub_context,
                                                server=args.hub_server, what="token"))
        if args.output_file:
            from pathlib import Path

            path = Path(args.output_file)
            path.touch(mode=0o600)
            path.chmod(0o600)
            path.write_text(text)
            print(f"registration credential for node {args.node} written to {path} (valid {args.ttl}s); give it to "
                  f"the node operator: kubectl compute join --hub-kubeconfig {path.name} --member-context <member> "
                  "--values <member values>", file=sys.stderr)
        else:
            sys.stdout.write(text)
        return 0
    if tokens.revoke(kubeconfig=args.kubeconfig, hub_context=args.hub_context, node=args.node,
                     operator_namespace=args.operator_namespace):
        print(f"revoked: every registration credential of node {args.node}")
    else:
        print(f"node {args.node} had no registration credential")
    return 0


def registration_ttl(text: str) -> int:
    """``--ttl``: 24h, 90m, 600s or seconds, from 10m to 24h."""
    return token_lifetime(text)


def add_token_arguments(token: argparse.ArgumentParser, *, connection: bool = True) -> None:
    """`token`'s flags: the same on `python -m interconnect token` and `kubectl compute token`."""
    token.add_argument("action", choices=("create", "revoke"))
    token.add_argument("--node", required=True, help="the ComputeNode the credential may register")
    token.add_argument("--ttl", type=registration_ttl, default="24h", help="how long it is valid, 10m to 24h")
    token.add_argument("--hub-context", help="the hub's context (hub admin; default: the current context)")
    token.add_argument("--hub-server", help="the hub API server's address as node operators reach it (default: "
                       "the server of --hub-context)")
    token.add_argument("--output-file", "-f", help="write the kubeconfig there (mode 0600) instead of stdout")
    if connection:
        token.add_argument("--operator-namespace", default="interconnect-system")
        token.add_argument("--kubeconfig")
    token.set_defaults(func=token_command)


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
    run.add_argument("--log-format", choices=("text", "json"), default="text",
                     help="text lines, or one JSON object per line with the object a message is about under "
                     "`object` (the hub chart's logging.format)")
    run.set_defaults(func=_run)

    usage = sub.add_parser("usage", help="card-hours and cost of finished attempts (ComputeUsage records), for "
                           "billing; deleted jobs included")
    usage.add_argument("--since", help="RFC 3339 start of the attempts' finish (default: 31 days before --until)")
    usage.add_argument("--until", help="RFC 3339 end, exclusive (default: now)")
    usage.add_argument("--group-by", default="tenant",
                       choices=("node", "tenant", "region", "industry", "offer", "gpu-model"))
    usage.add_argument("-o", "--output", default="table", choices=("table", "wide", "json", "yaml", "csv"))
    usage.add_argument("--kubeconfig")
    usage.add_argument("--context")
    usage.set_defaults(func=_usage)

    report = sub.add_parser("report", help="the network report of a month: per node, region or industry, "
                            "utilisation, sales, outcomes, energy, availability (docs/report.md)")
    from interconnect.cli.network_report import add_arguments as add_report_arguments

    add_report_arguments(report)
    report.add_argument("--kubeconfig")
    report.add_argument("--context")
    report.set_defaults(func=_report)

    join = sub.add_parser("join", help="register a member cluster (member chart installed) with the hub")
    add_join_arguments(join)
    join.set_defaults(func=join_command)

    token = sub.add_parser("token", help="registration credentials: let a node operator join one node "
                           "(hub admin)")
    add_token_arguments(token)

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

    stamp = sub.add_parser("stamp-version", help="write the package version into both charts' Chart.yaml and "
                           "image/Dockerfile")
    stamp.add_argument("--check", action="store_true", help="exit 1 when a stamped file differs")
    stamp.add_argument("--set", metavar="X.Y.Z", help="change the version first (interconnect/__init__.py)")
    stamp.set_defaults(func=_stamp_version)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(list(argv) if argv is not None else None)
    if args.command is None:
        args = parser.parse_args(["run", *(argv or sys.argv[1:])])
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())

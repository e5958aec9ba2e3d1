"""Dispatch throughput and latency on the test bed, against the API servers' own limit.

    .venv/bin/python bench/dispatch.py [--jobs 100,1000,5000] [--json bench/results/dispatch.json]

For each N: (1) the baseline, a plain asynchronous client creating N batch/v1 Jobs directly in
the members (round robin, 64 in flight): the API servers' own limit for this work; then the
baseline's Jobs are deleted and the members left to go quiet, so that their pods do not share
the cores with the next step; (2) the same N ComputeJobs submitted to the hub as fast as it
accepts them (64 in flight), the operator (a real process) placing and dispatching them. The
members' Jobs and pods are followed with watches (repeated lists would load the members more
than the work measured). Per job: submit -> member Job created (dispatch latency, also from the
hub's answer to the create, when the object exists), and -> pod Running; overall jobs
dispatched per second, the ratio to the baseline, the operator's peak memory and CPU seconds,
and the CPU seconds of every control-plane process over the run (where the two cores went).
The members get enough extra fake GPU nodes to hold every job at once.

With ``--with-multikueue`` (see bench/multikueue.py), after our step: (3) Kueue's MultiKueue,
built from its Go module, one manager per cluster (hub as manager, members as workers), the
same N batch/v1 Jobs created on the hub, as shipped and with its worker clients' rate limit
lifted (bench/multikueue-qps.patch); a table of all three against the same run's baseline.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Collection
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "operator")]

from bench import multikueue as mk  # noqa: E402
from kubernetes_asyncio import client as aclient  # noqa: E402
from kubernetes_asyncio import watch as kwatch  # noqa: E402
from kubernetes_asyncio.config import new_client_from_config  # noqa: E402
from tests import testbed as tb  # noqa: E402
from tests.e2e import market as m  # noqa: E402

BENCH_LABEL = "interconnect.dev/bench"
GPU_MODEL = "NVIDIA-B200-BENCH"


def add_bench_nodes(bed: tb.Testbed, member: str, nodes: int) -> None:
    items = []
    for i in range(nodes):
        capacity = {"cpu": "256", "memory": "2Ti", "pods": "500", "nvidia.com/gpu": "8"}
        items.append({"apiVersion": "v1", "kind": "Node", "metadata": {
            "name": f"{member}-bench-{i}", "annotations": {"kwok.x-k8s.io/node": "fake"},
            "labels": {"type": "kwok", "nvidia.com/gpu.product": GPU_MODEL, "topology.kubernetes.io/region": "CN-GZ",
                       BENCH_LABEL: "true"}},
            "status": {"capacity": capacity, "allocatable": capacity}})
    subprocess.run(bed.kubectl_cmd(member, "apply", "-f", "-"), input=json.dumps({"apiVersion": "v1",
                   "kind": "List", "items": items}), text=True, check=True, capture_output=True)


def quiesce(bed: tb.Testbed, members: list[str], namespace: str, selector: str, *, delete: bool = True,
            timeout: float = 900) -> None:
    """Delete the Jobs (unless someone else does) and wait until none of their pods is left."""
    started = time.monotonic()
    if delete:
        for member in members:
            subprocess.run(bed.kubectl_cmd(member, "delete", "jobs", "-n", namespace, "-l", selector,
                                           "--wait=false", "--cascade=background"), capture_output=True)
    while time.monotonic() - started < timeout:
        left = 0
        for member in members:
            out = subprocess.run(bed.kubectl_cmd(member, "get", "pods,jobs", "-n", namespace, "-l", selector,
                                                 "-o", "name"), capture_output=True, text=True).stdout
            left += len(out.split())
        if not left:
            print(f"  ({namespace}: members quiet after {time.monotonic() - started:.0f}s)", flush=True)
            return
        time.sleep(3)
    print(f"  ({namespace}: {left} pods and Jobs still there after {timeout:.0f}s; going on)", flush=True)


class RawWatch(kwatch.Watch):  # type: ignore[misc]
    """Events as dicts: turning each into generated models cost this script more CPU than the
    operator spent dispatching, on the cores the measured processes share."""

    def get_return_type(self, func: object) -> None:
        return None


def percentiles(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)

    def at(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")

    return {"p50": at(0.5), "p95": at(0.95), "p99": at(0.99), "max": ordered[-1] if ordered else float("nan")}


def job_body(name: str) -> dict[str, Any]:
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name, "labels": {BENCH_LABEL: "baseline"}},
            "spec": {"backoffLimit": 0, "template": {
                "metadata": {"annotations": {"testbed.interconnect.dev/run-for": "5s"}},
                "spec": {"restartPolicy": "Never", "nodeSelector": {BENCH_LABEL: "true"},
                         "containers": [{"name": "c", "image": "x",
                                         "resources": {"limits": {"nvidia.com/gpu": "1"}}}]}}}}


async def baseline(bed: tb.Testbed, members: list[str], n: int) -> dict[str, Any]:
    apis = {mm: await new_client_from_config(config_file=str(bed.clusters[mm].kubeconfig)) for mm in members}
    sem = asyncio.Semaphore(64)
    latencies: list[float] = []
    run = uuid.uuid4().hex[:6]

    async def one(i: int) -> None:
        member = members[i % len(members)]
        async with sem:
            t0 = time.perf_counter()
            await aclient.BatchV1Api(apis[member]).create_namespaced_job("bench", job_body(f"base-{run}-{i}"))
            latencies.append(time.perf_counter() - t0)

    cpu_before = _cpu_by_component(bed)
    t0 = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(n)))
    elapsed = time.perf_counter() - t0
    cpu_used = _cpu_delta(cpu_before, _cpu_by_component(bed))
    for api in apis.values():
        await api.close()
    return {"jobs": n, "seconds": elapsed, "throughput": n / elapsed, "create": percentiles(latencies),
            "cpu_seconds": cpu_used}


async def ours(bed: tb.Testbed, members: list[str], n: int, operator_pid: int) -> dict[str, Any]:
    hub = await new_client_from_config(config_file=str(bed.hub.kubeconfig))
    member_apis = {mm: await new_client_from_config(config_file=str(bed.clusters[mm].kubeconfig))
                   for mm in members}
    ns = f"bench-{uuid.uuid4().hex[:6]}"
    await aclient.CoreV1Api(hub).create_namespace({"metadata": {"name": ns}})
    submitted: dict[str, float] = {}
    """Per job, when its create was sent; ``accepted``: when the hub answered (the object exists)."""
    accepted: dict[str, float] = {}
    uid_of: dict[str, str] = {}
    created: dict[str, float] = {}
    running: dict[str, float] = {}
    sem = asyncio.Semaphore(64)
    custom = aclient.CustomObjectsApi(hub)
    cpu0 = _cpu_seconds(operator_pid)

    async def submit(i: int) -> None:
        body = m.job_manifest(f"j{i}", ns, origin="CN-HB", tier="20ms", gpus=1, max_price="10", run_for="5s",
                              models=[GPU_MODEL])
        async with sem:
            t = time.perf_counter()
            obj = await custom.create_namespaced_custom_object(m.GROUP, m.VERSION, ns, "computejobs", body)
            submitted[obj["metadata"]["uid"]] = t
            accepted[obj["metadata"]["uid"]] = time.perf_counter()
            uid_of[f"j{i}"] = obj["metadata"]["uid"]

    async def watch(member: str, kind: str) -> None:
        """Stamp each Job's creation and each pod's Running as the member announces it (a watch, not
        repeated lists: listing thousands of objects every few hundred ms would load the members
        far more than the work being measured)."""
        selector = "interconnect.dev/managed-by=interconnect-hub"
        api: Any = aclient.BatchV1Api(member_apis[member]) if kind == "jobs" else aclient.CoreV1Api(member_apis[member])
        lister = api.list_namespaced_job if kind == "jobs" else api.list_namespaced_pod
        while True:
            try:
                async with RawWatch().stream(lister, m.WORK_NS, label_selector=selector,
                                             timeout_seconds=300) as stream:
                    async for event in stream:
                        obj = event["object"]
                        uid = obj["metadata"]["labels"]["interconnect.dev/job-uid"]
                        if kind == "jobs":
                            created.setdefault(uid, time.perf_counter())
                        elif (obj.get("status") or {}).get("phase") in ("Running", "Succeeded"):
                            running.setdefault(uid, time.perf_counter())
            except asyncio.CancelledError:
                raise
            except Exception:  # a watch expired or broke: start again (setdefault keeps first stamps)
                await asyncio.sleep(0.2)

    watchers = [asyncio.create_task(watch(mm, kind)) for mm in members for kind in ("jobs", "pods")]
    await asyncio.sleep(1.0)  # the watches are open before the first submit
    writes_before = _api_writes(bed, "hub")
    cpu_before = _cpu_by_component(bed, operator=operator_pid)
    t0 = time.perf_counter()
    await asyncio.gather(*(submit(i) for i in range(n)))
    submit_done = time.perf_counter() - t0
    deadline = time.monotonic() + max(120, n * 0.5)
    while len(created.keys() & submitted.keys()) < n and time.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.2)
    cpu_used = _cpu_delta(cpu_before, _cpu_by_component(bed, operator=operator_pid))
    ours_created = {u: t for u, t in created.items() if u in submitted}  # earlier runs' Jobs are still there
    dispatched_at = max(ours_created.values()) - t0 if ours_created else float("nan")
    while len(running.keys() & submitted.keys()) < n and time.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.2)
    await asyncio.sleep(2 * 5)  # two heartbeats: the Running status writes of the last jobs land
    hub_writes = _writes_delta(writes_before, _api_writes(bed, "hub"))
    for w in watchers:
        w.cancel()
    dispatch = [created[u] - submitted[u] for u in created if u in submitted]
    from_accepted = [created[u] - accepted[u] for u in created if u in accepted]
    to_running = [running[u] - submitted[u] for u in running if u in submitted]
    result = {
        "jobs": n, "dispatched": len(ours_created), "running": len(running.keys() & submitted.keys()),
        "submit_seconds": submit_done, "dispatch_seconds": dispatched_at,
        "throughput": len(ours_created) / dispatched_at,
        "dispatch_latency": percentiles(dispatch), "to_running": percentiles(to_running),
        "dispatch_latency_from_accepted": percentiles(from_accepted),
        "operator_peak_rss_mib": _peak_rss_mib(operator_pid),
        "operator_cpu_seconds": _cpu_seconds(operator_pid) - cpu0,
        "cpu_seconds_until_dispatched": cpu_used,
        # The benchmark's own creates are the n POSTs to computejobs; the rest is the operator's
        # (and, a few a second, the hub's own controllers' leases).
        "hub_writes": hub_writes,
        "hub_writes_per_job": (sum(v for k, v in hub_writes.items() if k != "leases") - n) / n,
    }
    # The ComputeJobs go with their namespace, and the running operator deletes their member Jobs.
    await aclient.CoreV1Api(hub).delete_namespace(ns)
    await hub.close()
    for api in member_apis.values():
        await api.close()
    return result


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


Buckets = dict[str, tuple[list[tuple[float, float]], float, float]]
"""stage -> (cumulative (le, count) pairs, sum, count) of interconnect_dispatch_stage_seconds."""


def _stage_buckets(port: int) -> Buckets:
    """The operator's per-stage dispatch histogram, scraped from its metrics endpoint."""
    import urllib.request

    from prometheus_client.parser import text_string_to_metric_families

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        text = response.read().decode()
    out: dict[str, tuple[list[tuple[float, float]], float, float]] = {}
    for family in text_string_to_metric_families(text):
        if family.name != "interconnect_dispatch_stage_seconds":
            continue
        for sample in family.samples:
            stage = sample.labels.get("stage", "")
            buckets, total, count = out.get(stage, ([], 0.0, 0.0))
            if sample.name.endswith("_bucket"):
                buckets.append((float(sample.labels["le"]), sample.value))
            elif sample.name.endswith("_sum"):
                total = sample.value
            elif sample.name.endswith("_count"):
                count = sample.value
            out[stage] = (buckets, total, count)
    return out


WRITE_VERBS = ("POST", "PUT", "PATCH", "DELETE", "APPLY")


def _api_writes(bed: tb.Testbed, cluster: str) -> dict[str, float]:
    """Writes the cluster's API server has answered so far, per resource (``apiserver_request_total``
    of the write verbs, subresources apart: ``computejobs/status``): the hub's writes per job are
    read from two of these, before the submits and once every job runs."""
    from prometheus_client.parser import text_string_to_metric_families

    text = subprocess.run(bed.kubectl_cmd(cluster, "get", "--raw", "/metrics"), capture_output=True, text=True,
                          check=True).stdout
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        if family.name != "apiserver_request":  # the parser drops the counter's _total
            continue
        for sample in family.samples:
            labels = sample.labels
            if not sample.name.endswith("_total") or labels.get("verb") not in WRITE_VERBS:
                continue
            key = labels.get("resource", "") + (f"/{labels['subresource']}" if labels.get("subresource") else "")
            out[key] = out.get(key, 0.0) + sample.value
    return out


def _writes_delta(before: dict[str, float], after: dict[str, float]) -> dict[str, int]:
    delta = {k: int(v - before.get(k, 0.0)) for k, v in after.items()}
    return dict(sorted(((k, v) for k, v in delta.items() if v), key=lambda kv: -kv[1]))


def _stage_quantiles(before: Buckets, after: Buckets) -> dict[str, dict[str, float]]:
    """Per stage, the p50 and p99 (interpolated within buckets, as histogram_quantile does) and the
    mean of what was observed between the two scrapes."""
    out = {}
    for stage, (buckets, total, count) in after.items():
        old_buckets, old_total, old_count = before.get(stage, ([], 0.0, 0.0))
        old = dict(old_buckets)
        diff = sorted((le, c - old.get(le, 0.0)) for le, c in buckets)
        n = count - old_count
        quantiles = {}
        for q in (0.5, 0.99):
            rank, lower, below = q * n, 0.0, 0.0
            value = float("nan")
            for le, cumulative in diff:
                if cumulative >= rank and n > 0:
                    inside = cumulative - below
                    share = (rank - below) / inside if inside else 1.0
                    value = le if le == float("inf") else lower + (le - lower) * share
                    break
                lower, below = le, cumulative
            quantiles[f"p{round(q * 100)}"] = value
        out[stage] = {**quantiles, "mean": (total - old_total) / n if n else float("nan"), "count": n}
    return out


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


COMPONENTS = ("kube-apiserver", "etcd", "kube-scheduler", "kube-controller-manager", "kwok-controller")


def _cpu_by_component(bed: tb.Testbed, operator: int | None = None) -> dict[str, float]:
    """CPU seconds so far of every control-plane process, the operator and this script: where the
    two shared cores go during a run."""
    seconds = {f"{c.name}/{component}": _cpu_seconds(tb.component_pid(c.name, component))
               for c in [bed.hub, *bed.members] for component in COMPONENTS}
    if operator is not None:
        seconds["operator"] = _cpu_seconds(operator)
    seconds["bench client"] = time.process_time()
    return seconds


def _cpu_delta(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    return {k: round(after[k] - before[k], 2) for k in after}


def cpu_summary(used: dict[str, float], whole: Collection[str] = ()) -> str:
    """Grouped: the hub's control plane, the members' API servers and etcds, their schedulers and
    kwok controllers (which start the pods), the operator, this script; the clusters in `whole`
    summed as one each."""
    groups: dict[str, float] = {}
    for key, value in used.items():
        cluster, _, component = key.partition("/")
        if not component:
            group = key
        elif cluster in whole:
            group = f"{cluster} (all)"
        elif cluster == "hub":
            group = f"hub {component}"
        elif component in ("kube-apiserver", "etcd"):
            group = f"members {component}"
        else:
            group = "members scheduling+kwok+kcm"
        groups[group] = groups.get(group, 0.0) + value
    ordered = sorted(groups.items(), key=lambda kv: -kv[1])
    return ", ".join(f"{k} {v:.1f}" for k, v in ordered if v >= 0.05)


def _peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", default="100,1000")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--with-multikueue", action="store_true",
                        help="also measure Kueue's MultiKueue (built from its Go module) on the same N")
    parser.add_argument("--multikueue-variants", default="shipped,qps-lifted",
                        help="of: shipped, qps-lifted (worker clients unthrottled, bench/multikueue-qps.patch)")
    parser.add_argument("--multikueue-timeout", type=float, default=1200,
                        help="seconds to wait for MultiKueue's worker Jobs; those made by then are counted")
    args = parser.parse_args()
    # A stopped run still cleans up after itself (the finally below): offers, nodes, namespaces.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    sizes = [int(x) for x in args.jobs.split(",")]
    kueue_bin = mk.build() if args.with_multikueue else None  # before the test bed: minutes of CPU cold
    bed = tb.start(3)
    members = [c.name for c in bed.members]
    # Room for the baseline's pods and ours at once, so neither waits for cards.
    nodes_each = 2 * max(sizes) // (8 * len(members)) + 2
    for member in members:
        add_bench_nodes(bed, member, nodes_each)
        subprocess.run(bed.kubectl_cmd(member, "create", "namespace", "bench"), capture_output=True)
    rows = []
    try:
        mk_opts = None
        if kueue_bin is not None:
            mk.install(bed, kueue_bin, nodes_each * 8)
            mk_opts = {"bin": kueue_bin, "variants": args.multikueue_variants.split(","),
                       "timeout": args.multikueue_timeout}
        rows = _run(bed, members, sizes, nodes_each, args.json, mk_opts)
    finally:  # leave the test bed as it was: the tests count offers and cards
        if kueue_bin is not None:
            mk.uninstall(bed, kueue_bin)
        for member in members:
            subprocess.run(bed.kubectl_cmd("hub", "delete", "computeoffer", f"bench-{member}", "--ignore-not-found"),
                           capture_output=True)
            subprocess.run(bed.kubectl_cmd(member, "delete", "namespace", "bench", "--wait=false"),
                           capture_output=True)
            subprocess.run(bed.kubectl_cmd(member, "delete", "nodes", "-l", f"{BENCH_LABEL}=true"),
                           capture_output=True)
    if args.json:
        write_json(args.json, rows)
    print_table(rows)
    return 0


def print_table(rows: list[dict[str, Any]]) -> None:
    """All systems of every N against the baseline measured just before them."""
    print("\n| N | system | jobs/s | ratio to baseline | dispatch p50 / p99 s | to Running p50 / p99 s |"
          " CPU s (dispatch window) | peak RSS MiB |")
    print("|---:|---|---:|---:|---|---|---|---|")
    for row in rows:
        n, base = row["n"], row["baseline"]
        c = base["create"]
        print(f"| {n} | direct creates (baseline) | {base['throughput']:.1f} | 1 | {c['p50']:.2f} / {c['p99']:.2f}"
              " (the create) | | | |")
        run = row["interconnect"]
        d, r = run["dispatch_latency"], run["to_running"]
        print(f"| {n} | this project | {run['throughput']:.1f} | {run['throughput'] / base['throughput']:.3f} |"
              f" {d['p50']:.2f} / {d['p99']:.2f} | {r['p50']:.1f} / {r['p99']:.1f} |"
              f" operator {run['cpu_seconds_until_dispatched'].get('operator', float('nan')):.1f} |"
              f" operator {run['operator_peak_rss_mib']:.0f} |")
        for variant, res in row.get("multikueue", {}).items():
            if not res.get("dispatched"):
                why = res.get("error") or res.get("probe")
                print(f"| {n} | MultiKueue {variant} | 0 | 0 | (no worker Job: {why}) | | | |")
                continue
            d, r = res["dispatch_latency"], res["to_running"]
            cpu = res["managers_cpu_seconds"]
            rss = res["managers_peak_rss_mib"]
            done = "" if res["dispatched"] == n else f" ({res['dispatched']}/{n} in {res['window_seconds']:.0f} s)"
            print(f"| {n} | MultiKueue {variant}{done} | {res['throughput']:.2f} |"
                  f" {res['throughput'] / base['throughput']:.3f} | {d['p50']:.1f} / {d['p99']:.1f} |"
                  f" {r['p50']:.1f} / {r['p99']:.1f} | hub {cpu['hub']:.1f}, workers"
                  f" {sum(v for k, v in cpu.items() if k != 'hub'):.1f} |"
                  f" hub {rss['hub']:.0f}, workers {max(v for k, v in rss.items() if k != 'hub'):.0f} max |")


def write_json(path: Path, rows: list[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"date": time.strftime("%Y-%m-%d"), "rows": rows}, indent=2))


def _run(bed: tb.Testbed, members: list[str], sizes: list[int], nodes_each: int,
         json_out: Path | None, mk_opts: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    rows = []
    # The operator as it runs in production (the tests' market meters every 2 s, the chart every 15 s).
    port = _free_port()
    production = {"INTERCONNECT_METERING_INTERVAL_SECONDS": "15", "INTERCONNECT_HEARTBEAT_SECONDS": "5",
                  "INTERCONNECT_METRICS_PORT": str(port)}
    with tempfile.TemporaryDirectory() as logs, m.running_market(bed, Path(logs), production) as operator:
        for member in members:
            node = next(n for n, (mm, *_) in m.NODES.items() if mm == member)
            offer = m.offer_manifest("gz-a100")
            offer["metadata"]["name"] = f"bench-{member}"
            offer["spec"].update(nodeRef=node, gpuModel=GPU_MODEL, cards=nodes_each * 8,
                                 price={"amount": "1.00", "currency": "CNY", "unit": "card-hour"})
            m.apply(bed, offer)
        time.sleep(5)
        assert operator.proc is not None
        for n in sizes:
            base = asyncio.run(baseline(bed, members, n))
            # The members' controllers take minutes to churn through a thousand pods: without this,
            # our run would share the cores with the baseline's pods starting and ending.
            quiesce(bed, members, "bench", f"{BENCH_LABEL}=baseline")
            stages_before = _stage_buckets(port)
            run = asyncio.run(ours(bed, members, n, operator.proc.pid))
            run["stages"] = _stage_quantiles(stages_before, _stage_buckets(port))
            ratio = run["throughput"] / base["throughput"]
            rows.append({"n": n, "baseline": base, "interconnect": run, "throughput_ratio": ratio})
            d, r, a = run["dispatch_latency"], run["to_running"], run["dispatch_latency_from_accepted"]
            c = base["create"]
            print(f"N={n}: baseline {base['throughput']:.1f} jobs/s; interconnect {run['throughput']:.1f} jobs/s "
                  f"(ratio {ratio:.2f}); dispatch latency p50 {d['p50']:.2f}s p95 {d['p95']:.2f}s p99 {d['p99']:.2f}s;"
                  f" from the hub's answer p50 {a['p50']:.2f}s p99 {a['p99']:.2f}s"
                  f" (a direct create alone: p50 {c['p50']:.2f}s p99 {c['p99']:.2f}s);"
                  f" to Running p50 {r['p50']:.2f}s p99 {r['p99']:.2f}s;"
                  f" operator peak {run['operator_peak_rss_mib']:.0f} MiB, {run['operator_cpu_seconds']:.1f} CPU s"
                  f" ({1000 * run['cpu_seconds_until_dispatched'].get('operator', 0.0) / n:.2f} ms per job"
                  " until dispatched);"
                  f" {run['dispatched']}/{n} dispatched", flush=True)
            print(f"  CPU s, baseline creates: {cpu_summary(base['cpu_seconds'])}", flush=True)
            print(f"  CPU s, submit -> all dispatched: {cpu_summary(run['cpu_seconds_until_dispatched'])}",
                  flush=True)
            print(f"  hub writes per job, submit -> all running, the {n} creates and leases left out:"
                  f" {run['hub_writes_per_job']:.2f} ({run['hub_writes']})", flush=True)
            print("  where dispatch time goes (interconnect_dispatch_stage_seconds, p50 / p99 / mean s): " + ", ".join(
                f"{stage} {q['p50']:.3f} / {q['p99']:.3f} / {q['mean']:.3f} ({q['count']})"
                for stage, q in run["stages"].items()), flush=True)
            # The running operator deletes the member Jobs of the deleted ComputeJobs (only the
            # benchmark's: the tests' jobs may share the namespace).
            offers = ",".join(f"bench-{member}" for member in members)
            quiesce(bed, members, m.WORK_NS, f"interconnect.dev/offer in ({offers})", delete=False)
            if mk_opts is not None:
                rows[-1]["multikueue"] = _multikueue(bed, members, n, mk_opts, rows[-1]["baseline"])
            if json_out is not None:  # each size as soon as it is measured: a long run may be stopped
                write_json(json_out, rows)
    return rows


def _multikueue(bed: tb.Testbed, members: list[str], n: int, opts: dict[str, Any],
                base: dict[str, Any]) -> dict[str, Any]:
    logs = Path(tempfile.mkdtemp(prefix="multikueue-"))  # the managers' logs, kept
    print(f"  MultiKueue, N={n}: the managers' logs in {logs}", flush=True)
    results: dict[str, Any] = {}
    for variant in opts["variants"]:
        try:
            res = mk.run_variant(bed, opts["bin"], variant, n, logs, timeout=opts["timeout"], watch_cls=RawWatch,
                                 percentiles=percentiles, cpu_by_component=_cpu_by_component, cpu_delta=_cpu_delta)
        except Exception as e:  # the other systems' figures stand; the managers' logs say why
            print(f"N={n}: MultiKueue {variant} failed: {e!r}; manager logs in {logs}", flush=True)
            results[variant] = {"dispatched": 0, "error": repr(e)}
            continue
        results[variant] = res
        # The namespace is being deleted with its Jobs: wait for the workers' pods to go.
        quiesce(bed, members, res["namespace"], BENCH_LABEL, delete=False)
        if not res.get("dispatched"):
            print(f"N={n}: MultiKueue {variant}: nothing dispatched (probe {res.get('probe')});"
                  f" manager logs in {logs}", flush=True)
            continue
        d, r = res["dispatch_latency"], res["to_running"]
        print(f"N={n}: MultiKueue {variant}: {res['throughput']:.2f} jobs/s (ratio"
              f" {res['throughput'] / base['throughput']:.3f} to the baseline); {res['dispatched']}/{n} worker Jobs"
              f" in {res['window_seconds']:.0f}s; hub create -> worker Job p50 {d['p50']:.1f}s p99 {d['p99']:.1f}s;"
              f" -> Running p50 {r['p50']:.1f}s p99 {r['p99']:.1f}s; per worker {res['per_worker']};"
              f" managers CPU s {res['managers_cpu_seconds']}, peak RSS MiB {res['managers_peak_rss_mib']}",
              flush=True)
        print(f"  CPU s, submit -> all dispatched: {cpu_summary(res['cpu_seconds_until_dispatched'])}", flush=True)
    return results


if __name__ == "__main__":
    sys.exit(main())

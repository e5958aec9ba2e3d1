"""A soak of short jobs through the real controller: does the operator's memory stay flat?

    .venv/bin/python bench/soak.py [--jobs 8640] [--in-flight 40] [--keep 50] [--every 1000] [--json out.json]

A day of one short job every 10 seconds is 8,640 jobs. This runs that many through the whole
controller as `handlers/runtime.py` starts it (`Controller`, every loop, the hub's ComputeJob
watch, two members with their four watches each), as fast as it takes them: each job is
created on the hub, placed, journalled, dispatched as a member Job, its pod runs and ends (1 in
20 fails, 1 in 20 is refused by the member with a 422), its usage is metered and recorded, and,
once ``--keep`` newer jobs have finished, it is deleted, and with it its member Job. The API
servers are in-memory fakes (bench/fake_kube.py) behind the operator's own clients, so nothing
but the operator holds per-job state in this process, and what the fakes hold is printed too.

Every ``--every`` jobs the workload is drained (no job in flight, every finished one deleted,
the members empty, the loops given two heartbeats to settle) and the process measured: resident
memory (less tracemalloc's own), the Python heap traced by tracemalloc, live objects of the
operator's own classes, and the length of every dict, set, list and queue reachable from the
controller (its stores, indices, journal, ledgers, caches) and of every Prometheus family. The
first drain after ``--warmup`` jobs is the baseline; the growth per 1,000 jobs is printed for the
first and the second half of the run after it, with their ratio and the end against the baseline,
and the containers and allocation sites that grew. Figures, not assertions: read them.

The clock is real (the operator reads it directly), so what is pruned by age or by month (the
usage ledger keeps a month of records by design) cannot age here: those containers show as
growth per job and are reported as such.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import collections
import gc
import json
import os
import random
import sys
import time
import tracemalloc
from collections.abc import Mapping, Set
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "operator"), str(ROOT)]

from bench import fake_kube as fk  # noqa: E402
from bench.memory import rss_mib  # noqa: E402

NAMESPACE = "interconnect-system"
WORK_NS = "interconnect-jobs"
GROUP = "interconnect.dev"
# ComputeNode -> (member host, offer, GPU nodes of 8 cards on the member)
MEMBERS = {"gz-regional": ("member-1", "gz-a100", 16), "bj-regional": ("member-3", "bj-l40s", 1)}
MODELS = {"gz-a100": "NVIDIA-A100-SXM4-80GB", "bj-l40s": "NVIDIA-L40S"}
REGIONS = {"gz-regional": "CN-GZ", "bj-regional": "CN-BJ"}
TENANTS = 20
DELETE_RUNNING = "bench.interconnect.dev/delete-running"
"""A ComputeJob label: the workload deletes the job as soon as it is Running."""
BUDGETED = ("tenant-0", "tenant-1")
"""Tenants with a ComputeQuota and a monthly budget: their placements count spend from the ledger."""


def kubeconfig(host: str) -> str:
    return json.dumps({"apiVersion": "v1", "kind": "Config", "current-context": "c",
                       "clusters": [{"name": "m", "cluster": {"server": f"https://{host}.fake"}}],
                       "users": [{"name": "u", "user": {"token": "not-a-jwt"}}],
                       "contexts": [{"name": "c", "context": {"cluster": "m", "user": "u"}}]})


def member_node(name: str, model: str, region: str) -> dict[str, Any]:
    capacity = {"cpu": "128", "memory": "1Ti", "pods": "500", "nvidia.com/gpu": "8"}
    return {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name, "labels": {
        "nvidia.com/gpu.product": model, "topology.kubernetes.io/region": region}},
        "status": {"capacity": capacity, "allocatable": capacity,
                   "conditions": [{"type": "Ready", "status": "True"}]}}


# ------------------------------------------------------------------------------------------ the workload


@dataclass
class Workload:
    """Submits ComputeJobs with at most ``in_flight`` unfinished, deletes each finished one once
    ``keep`` newer ones have finished (all of them when draining)."""

    hub: fk.FakeApiServer
    total: int
    in_flight: int
    keep: int
    fail_every: int
    refuse_every: int
    delete_running_every: int
    submitted: int = 0
    finished: int = 0
    deleted: int = 0
    outcomes: collections.Counter[str] = field(default_factory=collections.Counter)
    _unfinished: set[str] = field(default_factory=set)
    _done: collections.deque[tuple[str, str]] = field(default_factory=collections.deque)
    _slot: asyncio.Event = field(default_factory=asyncio.Event)
    _last_progress: float = field(default_factory=time.monotonic)

    def __post_init__(self) -> None:
        self.hub.on("computejobs", self._written)

    def _written(self, kind: str, obj: fk.Obj, old: fk.Obj | None) -> None:
        uid = obj["metadata"]["uid"]
        phase = (obj.get("status") or {}).get("phase")
        if kind == "DELETED" or uid not in self._unfinished:
            return
        key = (obj["metadata"]["namespace"], obj["metadata"]["name"])
        if phase == "Running" and (obj["metadata"].get("labels") or {}).get(DELETE_RUNNING):
            # Deleted while it runs: metered until its pods are gone, and billed all the same.
            asyncio.get_running_loop().call_soon(self.hub.delete, GROUP, "computejobs", key)
            self._ended(uid, "deleted while running")
            self.deleted += 1
            return
        if phase not in ("Succeeded", "Failed"):
            return
        self._ended(uid, phase)
        self._done.append(key)
        self._delete_finished(self.keep)

    def _ended(self, uid: str, outcome: str) -> None:
        self._unfinished.discard(uid)
        self.finished += 1
        self.outcomes[outcome] += 1
        self._last_progress = time.monotonic()
        self._slot.set()

    def _delete_finished(self, keep: int) -> None:
        while len(self._done) > keep:
            key = self._done.popleft()
            self.hub.delete(GROUP, "computejobs", key)
            self.deleted += 1

    def manifest(self, i: int) -> fk.Obj:
        from tests.e2e import market as m

        tenant = f"tenant-{i % TENANTS}"
        fail = self.fail_every and i % self.fail_every == self.fail_every // 2
        body = m.job_manifest(f"soak-{i:06d}", tenant, gpus=1, origin="CN-GZ", tier="20ms", max_price="10",
                              run_for="10s", outcome="fail" if fail else None)
        if self.refuse_every and i % self.refuse_every == self.refuse_every - 1:
            body["spec"]["template"]["metadata"]["annotations"][fk.REFUSE] = "true"
        elif self.delete_running_every and i % self.delete_running_every == 1:
            body["metadata"]["labels"] = {DELETE_RUNNING: "true"}
        return body

    async def run_until(self, count: int) -> None:
        """Submit jobs until ``count`` were submitted, then wait until all of them are finished and deleted."""
        while self.submitted < min(count, self.total):
            if len(self._unfinished) >= self.in_flight:
                self._slot.clear()
                await self._wait_slot()
                continue
            created = self.hub.create(GROUP, "computejobs", self.manifest(self.submitted))
            self._unfinished.add(created["metadata"]["uid"])
            self.submitted += 1
            if self.submitted % 8 == 0:
                await asyncio.sleep(0)  # let the operator see them as a burst does, not all at once
        while self._unfinished:
            self._slot.clear()
            await self._wait_slot()
        self._delete_finished(0)

    async def _wait_slot(self) -> None:
        try:
            await asyncio.wait_for(self._slot.wait(), 30)
        except TimeoutError:
            phases = collections.Counter(
                (o.get("status") or {}).get("phase", "(none)") for o in self.hub.objects(GROUP, "computejobs").values()
                if o["metadata"]["uid"] in self._unfinished)
            print(f"  (no job finished for {time.monotonic() - self._last_progress:.0f}s; unfinished by phase: "
                  f"{dict(phases)})", flush=True)


# ------------------------------------------------------------------------------------------ measuring


def _module(obj: object) -> str:
    module = getattr(type(obj), "__module__", "")
    return module if isinstance(module, str) else ""


def _ours(value: object) -> bool:
    return _module(value).startswith("interconnect.") and not hasattr(type(value), "model_fields")


def containers(root: object, name: str = "controller", depth: int = 5) -> dict[str, int]:
    """The length of every dict, set, list, deque and queue reachable from ``root`` through the
    attributes of the operator's own objects (and the values of small dicts: members, informers)."""
    out: dict[str, int] = {}
    seen: set[int] = set()

    def attributes(obj: object) -> dict[str, Any]:
        if hasattr(obj, "__dict__"):
            return dict(vars(obj))
        slots = [s for cls in type(obj).__mro__ for s in getattr(cls, "__slots__", ())]
        return {s: getattr(obj, s) for s in slots if hasattr(obj, s)}

    def visit(obj: object, path: str, left: int) -> None:
        if id(obj) in seen or left < 0:
            return
        seen.add(id(obj))
        for attr, value in attributes(obj).items():
            where = f"{path}.{attr}"
            if isinstance(value, Mapping | Set | list | collections.deque):
                out[where] = len(value)
                if isinstance(value, Mapping) and len(value) <= 16:
                    for key, item in value.items():
                        if _ours(item):
                            visit(item, f"{where}[{key}]", left - 1)
            elif isinstance(value, asyncio.Queue):
                out[f"{where} (queue)"] = value.qsize()
            elif _ours(value):
                visit(value, where, left - 1)

    visit(root, name, depth)
    return out


def prometheus_series(metrics: Any) -> dict[str, int]:
    return {f"metric {family.name}": len(family.samples) for family in metrics.registry.collect()}


def live_objects() -> dict[str, int]:
    """Instances of the operator's own classes, and all dicts, alive now."""
    counts: collections.Counter[str] = collections.Counter()
    for obj in gc.get_objects():
        if _module(obj).startswith("interconnect."):
            counts[f"objects {type(obj).__name__}"] += 1
    return dict(counts)


@dataclass
class Sample:
    jobs: int
    seconds: float
    cpu_seconds: float
    """CPU time of this process so far (the operator and the fakes): per job, it should not grow either."""
    rss_mib: float
    traced_mib: float
    sizes: dict[str, int]
    fake: dict[str, dict[str, int]]


def measure(controller: Any, jobs: int, started: float, servers: list[fk.FakeApiServer]) -> Sample:
    for server in servers:
        server.compact()
    gc.collect()
    traced, _ = tracemalloc.get_traced_memory() if tracemalloc.is_tracing() else (0, 0)
    own = tracemalloc.get_tracemalloc_memory() if tracemalloc.is_tracing() else 0
    sizes = {**containers(controller), **prometheus_series(controller.metrics), **live_objects(),
             "asyncio tasks": len(asyncio.all_tasks())}
    return Sample(jobs, time.monotonic() - started, time.process_time(), rss_mib() - own / 2**20, traced / 2**20, sizes,
                  {s.host: s.census() for s in servers})


async def settle(controller: Any, members: list[fk.FakeApiServer], hub: fk.FakeApiServer, seconds: float) -> None:
    """Until the members hold none of our Jobs and pods, no journal segment is left and the
    controller's queues (events to post, watch events) are empty; then ``seconds`` more."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        left = sum(len(s.objects("batch", "jobs")) + len(s.objects("", "pods")) for s in members)
        left += len(hub.objects("", "configmaps")) - 1  # the identity registry stays
        queued = [k for k, v in containers(controller).items() if k.endswith("(queue)") and v]
        if left <= 0 and not queued:
            break
        await asyncio.sleep(0.1)
    await asyncio.sleep(seconds)


# ------------------------------------------------------------------------------------------ the run


async def build(hub: fk.FakeApiServer, members: dict[str, fk.FakeApiServer]) -> Any:
    from tests.e2e import market as m

    for node, (host, offer, count) in MEMBERS.items():
        hub.create("", "secrets", {"metadata": {"name": f"{host}-kubeconfig", "namespace": NAMESPACE},
                                   "data": {"kubeconfig": base64.b64encode(kubeconfig(host).encode()).decode()}})
        body = m.node_manifest(node) if node in m.NODES else None
        assert body is not None
        body["spec"]["connection"] = {"secretRef": {"name": f"{host}-kubeconfig", "namespace": NAMESPACE,
                                                    "key": "kubeconfig"}, "namespace": WORK_NS}
        hub.create(GROUP, "computenodes", body)
        hub.create(GROUP, "computeoffers", m.offer_manifest(offer, cards=count * 8))
    for tenant in BUDGETED:
        hub.create(GROUP, "computequotas", {"apiVersion": f"{GROUP}/v1alpha1", "kind": "ComputeQuota",
                                            "metadata": {"name": tenant}, "spec": {
                                                "namespace": tenant, "weight": 2, "limits": {
                                                    "cards": 16, "monthlySpend": {"amount": "1000000",
                                                                                  "currency": "CNY"}}}})
    os.environ.update(INTERCONNECT_NAMESPACE=NAMESPACE, INTERCONNECT_HEARTBEAT_SECONDS="1",
                      INTERCONNECT_METERING_INTERVAL_SECONDS="1", INTERCONNECT_MEMBER_SYNC_TIMEOUT_SECONDS="10")
    return await start_controller(hub)


async def start_controller(hub: fk.FakeApiServer) -> Any:
    """The controller on the fake hub, loaded and started as handlers/runtime.py does it (settings
    from the environment)."""
    from kubernetes_asyncio import client as k8s

    from interconnect.adapters.hub import Hub
    from interconnect.adapters.metrics import Metrics
    from interconnect.core.latency import LatencyTable
    from interconnect.services.config import Settings
    from interconnect.services.controller import Controller

    configuration = k8s.Configuration()
    configuration.host = "https://hub.fake"
    controller = Controller(Hub(k8s.ApiClient(configuration)), Settings.from_env(), LatencyTable.default(), Metrics())
    # As handlers/runtime.py loads the hub's state before the first placement.
    await controller.load_latency()
    for body in list(hub.objects(GROUP, "computenodes").values()):
        await controller.node_changed(fk.copy(body))
    for body in list(hub.objects(GROUP, "computeoffers").values()):
        await controller.offer_changed(fk.copy(body))
    for body in list(hub.objects(GROUP, "computequotas").values()):
        await controller.quota_changed(fk.copy(body))
    await controller.load_usage()
    await controller.recover_journal()
    await controller.watch_jobs()
    await controller.fence_all()
    controller.start()
    controller.wake()
    controller.metrics.active.set(1)  # as handlers/runtime.py does in the replica that leads
    not_ready = [s.name for s in controller.members if not s.ready]
    if not_ready:
        raise RuntimeError(f"members not ready: {not_ready}: "
                           + "; ".join(s.ready_message for s in controller.members if not s.ready))
    return controller


def growth(samples: list[Sample], a: Sample, b: Sample) -> tuple[float, float]:
    """KiB per 1,000 jobs from ``a`` to ``b``: resident, traced; the least-squares slope over the
    samples in between (both ends included), which one noisy sample moves less than two points."""
    within = [s for s in samples if a.jobs <= s.jobs <= b.jobs]

    def slope(values: list[float]) -> float:
        xs = [float(s.jobs) for s in within]
        mean_x, mean_y = sum(xs) / len(xs), sum(values) / len(values)
        var = sum((x - mean_x) ** 2 for x in xs)
        return sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, values, strict=True)) / var if var else 0.0

    return (slope([s.rss_mib for s in within]) * 1024 * 1000,
            slope([s.traced_mib for s in within]) * 1024 * 1000)


def report(samples: list[Sample], base: Sample, mid: Sample, end: Sample, snapshots: dict[str, Any],
           workload: Workload, elapsed: float) -> dict[str, Any]:
    print("\n== growth")
    first, second = growth(samples, base, mid), growth(samples, mid, end)
    print(f"baseline after warm-up ({base.jobs} jobs): RSS {base.rss_mib:.1f} MiB, traced {base.traced_mib:.1f} MiB")
    for label, (rss, traced), a, b in (("first half", first, base, mid), ("second half", second, mid, end)):
        print(f"{label} ({a.jobs} -> {b.jobs} jobs): RSS {rss:+.1f} KiB, traced {traced:+.1f} KiB per 1,000 jobs "
              "(least squares over its samples)")
    ratio_rss = end.rss_mib / base.rss_mib
    ratio_traced = end.traced_mib / base.traced_mib if base.traced_mib else float("nan")
    second_vs_first = second[1] / first[1] if abs(first[1]) > 1e-9 else float("nan")
    print(f"end / baseline: RSS {ratio_rss:.3f}, traced {ratio_traced:.3f}; second-half growth / first-half "
          f"growth (traced): {second_vs_first:.2f}")
    day = 8640
    print(f"at the second half's rate, one day of a job every 10 s ({day} jobs) adds "
          f"{second[1] * day / 1000 / 1024:.2f} MiB traced, {second[0] * day / 1000 / 1024:.2f} MiB resident")
    grew = []
    for key in sorted(set(base.sizes) & set(end.sizes)):
        before, after = base.sizes[key], end.sizes[key]
        if after > before:
            grew.append((key, before, mid.sizes.get(key, 0), after))
    print("\n== containers and live objects that grew from the baseline (baseline, half, end)")
    for key, before, half, after in sorted(grew, key=lambda g: -(g[3] - g[1])):
        print(f"  {key}: {before} -> {half} -> {after}")
    if not grew:
        print("  none")
    print("\n== what the fake API servers hold at the end (bounded: not the operator's)")
    for host, census in end.fake.items():
        print(f"  {host}: {census}")
    top: list[str] = []
    if "base" in snapshots and "end" in snapshots:
        print("\n== allocation sites that grew most from the baseline to the end (tracemalloc; the bench's own "
              "allocations left out)")
        group = "traceback" if len(snapshots["end"].traces) and tracemalloc.get_traceback_limit() > 1 else "lineno"
        ignore = [tracemalloc.Filter(False, str(ROOT / "bench" / "*")), tracemalloc.Filter(False, "<frozen *>"),
                  tracemalloc.Filter(False, tracemalloc.__file__)]
        later, earlier = snapshots["end"].filter_traces(ignore), snapshots["base"].filter_traces(ignore)
        for stat in later.compare_to(earlier, group)[:15]:
            frames = " <- ".join(f"{Path(f.filename).name}:{f.lineno}" for f in reversed(stat.traceback))
            line = f"  {stat.size_diff / 1024:+9.1f} KiB {stat.count_diff:+7d} blocks  {frames}"
            top.append(line.strip())
            print(line)
    return {"jobs": end.jobs, "seconds": elapsed, "outcomes": dict(workload.outcomes),
            "samples": [{"jobs": s.jobs, "seconds": round(s.seconds, 1), "cpu_seconds": round(s.cpu_seconds, 1),
                         "rss_mib": round(s.rss_mib, 2),
                         "traced_mib": round(s.traced_mib, 3)} for s in samples],
            "growth_kib_per_1000_jobs": {"first_half": {"rss": first[0], "traced": first[1]},
                                         "second_half": {"rss": second[0], "traced": second[1]}},
            "end_over_baseline": {"rss": ratio_rss, "traced": ratio_traced},
            "grew": {k: [b, h, a] for k, b, h, a in grew}, "top_allocation_growth": top,
            "fake_servers_at_end": end.fake}


async def soak(args: argparse.Namespace) -> dict[str, Any]:
    fk.install()
    hub = fk.FakeApiServer("hub.fake", write_only={"events", "computeusages"})
    members: dict[str, fk.FakeApiServer] = {}
    for node, (host, offer, count) in MEMBERS.items():
        server = members[host] = fk.FakeApiServer(f"{host}.fake")
        names = [f"{host}-gpu-{i}" for i in range(count)]
        for name in names:
            server.create("", "nodes", member_node(name, MODELS[offer], REGIONS[node]))
        fk.MemberSimulation(server, names, run_for=args.run_for)
    # One pod of someone else's on member-1 asks for a GPU count that is not a quantity: its watch
    # skips it (counted in interconnect_unreadable_objects_total) and goes on.
    odd = {"metadata": {"name": "not-a-quantity", "namespace": "default"},
           "spec": {"nodeName": "member-1-gpu-0", "containers": [
               {"name": "c", "resources": {"limits": {"nvidia.com/gpu": "lots"}}}]},
           "status": {"phase": "Running"}}
    members["member-1"].create("", "pods", odd)
    if args.fail_writes:  # a flaky hub: status writes refused now and then (counted, retried)
        rng = random.Random(21)
        hub.fault = lambda method, resource, sub: fk.ApiError(500, "etcdserver: request timed out") if (
            method == "PATCH" and sub == "status" and resource == "computejobs"
            and rng.random() < args.fail_writes) else None
    servers = [hub, *members.values()]
    controller = await build(hub, members)
    if args.metrics_port:  # e.g. for a Prometheus, to draw the dashboards from (hack/render-dashboards)
        controller.metrics.serve(args.metrics_port, "127.0.0.1")
    workload = Workload(hub, args.jobs, args.in_flight, args.keep, args.fail_every, args.refuse_every,
                        args.delete_running_every)
    started, cpu0 = time.monotonic(), time.process_time()
    points = sorted({min(args.warmup, args.jobs), *range(args.every, args.jobs, args.every), args.jobs})
    samples: list[Sample] = []
    snapshots: dict[str, Any] = {}
    mid_target = args.warmup + (args.jobs - args.warmup) // 2
    print(f"{args.jobs} jobs, {args.in_flight} in flight, finished ones kept {args.keep} deep; "
          f"1 in {args.fail_every} fails, 1 in {args.refuse_every} refused, 1 in {args.delete_running_every} "
          f"deleted while it runs; tracemalloc "
          f"{'on' if tracemalloc.is_tracing() else 'off'}", flush=True)
    print(f"{'jobs':>6} {'s':>6} {'CPU ms/job':>10} {'RSS MiB':>8} {'traced MiB':>10} {'JobStore':>8} "
          f"{'Deletions':>9} {'ledger':>6} {'tasks':>5}  fake hub objects", flush=True)
    base: Sample | None = None
    mid: Sample | None = None
    try:
        for point in points:
            await workload.run_until(point)
            await settle(controller, list(members.values()), hub, args.settle)
            sample = measure(controller, workload.deleted, started, servers)
            samples.append(sample)
            s = sample.sizes
            last = samples[-2] if len(samples) > 1 else None
            cpu = (sample.cpu_seconds - (last.cpu_seconds if last else cpu0)) * 1000 / max(
                1, sample.jobs - (last.jobs if last else 0))
            print(f"{sample.jobs:>6} {sample.seconds:>6.0f} {cpu:>10.1f} {sample.rss_mib:>8.1f} "
                  f"{sample.traced_mib:>10.2f} {s.get('controller.jobs._jobs', -1):>8} "
                  f"{s.get('controller.members._deletions._names', -1):>9} "
                  f"{s.get('controller.usage_records._records', -1):>6} {s.get('asyncio tasks', -1):>5}  "
                  f"{sum(v for k, v in sample.fake['hub.fake'].items() if not k.startswith('('))}", flush=True)
            if point == min(args.warmup, args.jobs):
                base = sample
                if tracemalloc.is_tracing():
                    snapshots["base"] = tracemalloc.take_snapshot()
            if mid is None and point >= mid_target and base is not None and sample is not base:
                mid = sample
        if tracemalloc.is_tracing():
            snapshots["end"] = tracemalloc.take_snapshot()
        counted = {f"{s.name}{{{','.join(f'{k}={v}' for k, v in sorted(s.labels.items()))}}}": s.value
                   for family in controller.metrics.registry.collect() for s in family.samples
                   if s.name in ("interconnect_reconcile_errors_total", "interconnect_unreadable_objects_total")
                   and s.value}
        print(f"errors counted (the loops went on; every job finished): {counted or 'none'}; outcomes: "
              f"{dict(workload.outcomes)}", flush=True)
    finally:
        await controller.stop()
        await controller.hub.close()
        for server in servers:
            server.close()
    base = base or samples[0]
    mid = mid or samples[len(samples) // 2]
    return report(samples, base, mid, samples[-1], snapshots, workload, time.monotonic() - started)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=8640, help="jobs in all (a day of one every 10 s: 8640)")
    parser.add_argument("--in-flight", type=int, default=100, help="unfinished jobs at once")
    parser.add_argument("--keep", type=int, default=50, help="finished jobs left undeleted (the newest)")
    parser.add_argument("--every", type=int, default=1000, help="drain and measure every this many jobs")
    parser.add_argument("--warmup", type=int, default=2000, help="jobs before the baseline")
    parser.add_argument("--fail-every", type=int, default=20, help="1 job in this many fails (0: none)")
    parser.add_argument("--refuse-every", type=int, default=20, help="1 job in this many is refused (0: none)")
    parser.add_argument("--delete-running-every", type=int, default=20,
                        help="1 job in this many is deleted while it runs (0: none)")
    parser.add_argument("--run-for", type=float, default=0.05, help="real seconds a pod runs")
    parser.add_argument("--settle", type=float, default=2.5, help="seconds the loops get before a measurement")
    parser.add_argument("--no-tracemalloc", action="store_true", help="RSS only (faster)")
    parser.add_argument("--frames", type=int, default=1, help="tracemalloc frames per allocation")
    parser.add_argument("--fail-writes", type=float, default=0.0,
                        help="fraction of ComputeJob status writes the hub refuses (500)")
    parser.add_argument("--metrics-port", type=int, default=0, help="serve the operator's metrics on this port")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    import logging

    logging.basicConfig(level=logging.ERROR)
    import interconnect.handlers  # noqa: F401  (the whole operator, kopf included, as the process has it)

    if not args.no_tracemalloc:
        tracemalloc.start(args.frames)
    result = asyncio.run(soak(args))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

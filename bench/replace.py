"""A hundred members without a hundred clusters, and the re-placement of a lost member's jobs.

    .venv/bin/python bench/replace.py [--nodes 100] [--hosts 3] [--jobs 5000] [--json out.json]
    flock /tmp/testbed.lock .venv/bin/python bench/replace.py --testbed [--hosts 2] [--jobs 1000]
                                                         [--replace-timeout 1800] [--json out.json]

``--nodes`` ComputeNodes, every one with its own dispatch namespace, its own node pool (machines
labelled with its name, its offer selecting them) and its own connection, all but one pointing
at ``--hosts`` shared member API servers (so 33 ComputeNodes watch one member, as many members
would when one provider registers a node per data hall). The first ComputeNode, ``node-000``, is
alone on its member and the cheapest: all ``--jobs`` jobs (one card each, running for an hour)
go there. Then that member's API server goes away (connections refused, its watches closed)
and the run times what the operator does: the member marked not Ready, its jobs re-placed after
the grace period (both configured short here: 3 s and 5 s) onto the 99 others, their member
Jobs created, their pods Running.

By default the API servers are the in-memory fakes of bench/fake_kube.py behind the operator's
own clients (the controller as handlers/runtime.py starts it, every loop running), in one
process: the CPU seconds and resident memory printed are the process's, the fakes' included.
The operator's own memory for 100 members and 50,000 jobs is bench/memory.py's.

``--testbed`` runs the same experiment on the real test bed (hack/testbed: etcd, kube-apiserver,
controller manager and scheduler per cluster, kwok playing the kubelet), started or reused with
``--hosts`` + 1 members (default 2 + 1, the usual three): ``node-000`` alone on member-1, the other
ComputeNodes round robin on the others, each pool made of fake kwok machines of 8 cards in its
member; the operator a process of its own (as bench/dispatch.py runs it, real clients), the
ComputeJobs submitted to the hub's API server 64 at a time. Once all run on member-1, its
kube-apiserver is killed (SIGKILL: connections refused from then on, its watches cut), and the
hub's ComputeJobs and the surviving members' Jobs and pods are followed with watches: loss ->
node not Ready, -> first and last job re-placed (the hub's status), -> first and last member Job
created elsewhere, -> every pod Running again; the operator's CPU seconds and peak memory
(/proc), the CPU seconds of every control-plane process, per window, and the operator log's errors
and warnings by kind. "Re-placed" on the hub is the status write, after the member Job's create.
The operator runs with the tests' 10 s Lease (tests/e2e/market.py), as in bench/dispatch.py; its
first registration of 100 ComputeNodes (identity codes, members connected) comes before the
clock starts. A run that does not finish within ``--replace-timeout`` still reports how far it got.

The default on the test bed is 1,000 jobs, not 5,000: on this 2-core machine 5,000 took 11 min to
run on member-1 and the re-placement then stalled at 780 (the operator kept losing its Lease while
it loaded the hub again); 1,000 run through in about 12 min, the test bed's start included.

The run needs a test bed without ComputeJobs and ends with member-1 broken (its API server gone,
the jobs' Jobs on the others): **afterwards run ``hack/testbed down``** (``flock /tmp/testbed.lock
hack/testbed down``).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import collections
import itertools
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "operator"), str(ROOT)]

from bench import fake_kube as fk  # noqa: E402
from bench.memory import rss_mib  # noqa: E402
from bench.soak import GROUP, NAMESPACE, kubeconfig, member_node, start_controller  # noqa: E402

if TYPE_CHECKING:
    from tests import testbed as tb

POOL = "bench.interconnect.dev/pool"
MODEL = "NVIDIA-A100-SXM4-80GB"
LOST = "node-000"
CARDS_PER_MACHINE = 8
TENANTS = 20
VERSION = "v1alpha1"


# ------------------------------------------------------------------------------ the market, both modes


def layout(nodes: int, lost_host: str, hosts: list[str], jobs: int) -> dict[str, tuple[str, int]]:
    """ComputeNode -> (its member, machines of 8 cards in its pool). The lost node, alone on its
    member, holds every job; the others together hold them all again, with 10% to spare."""
    spare = -(-jobs * 11 // 10 // (nodes - 1) // CARDS_PER_MACHINE) + 1
    return {
        f"node-{i:03d}": (lost_host, -(-jobs // CARDS_PER_MACHINE)) if i == 0 else (hosts[(i - 1) % len(hosts)], spare)
        for i in range(nodes)
    }


def compute_node(node: str, host: str) -> dict[str, Any]:
    """The ComputeNode: the test market's regional node, connected to ``host`` through its
    kubeconfig Secret and dispatching into a namespace of its own."""
    from tests.e2e import market as m

    manifest = m.node_manifest("gz-regional")
    manifest["metadata"]["name"] = node
    manifest["spec"]["connection"] = {
        "secretRef": {"name": f"{host}-kubeconfig", "namespace": NAMESPACE, "key": "kubeconfig"},
        "namespace": f"jobs-{node}",
    }
    return manifest


def offer(node: str, machines: int) -> dict[str, Any]:
    """The node's one offer, selecting its pool: the lost node's is the cheapest, so every job
    goes there first."""
    from tests.e2e import market as m

    manifest = m.offer_manifest(
        "gz-a100",
        nodeRef=node,
        gpuModel=MODEL,
        cards=machines * CARDS_PER_MACHINE,
        nodeSelector={"matchLabels": {POOL: node}},
    )
    manifest["metadata"]["name"] = f"{node}-a100"
    manifest["spec"]["price"] = {"amount": "1.00" if node == LOST else "2.00", "currency": "CNY", "unit": "card-hour"}
    return manifest


def job(i: int) -> dict[str, Any]:
    """One card for an hour: nothing ends before the measurement does."""
    from tests.e2e import market as m

    return m.job_manifest(
        f"job-{i:05d}", f"tenant-{i % TENANTS}", origin="CN-GZ", tier="20ms", gpus=1, max_price="10", run_for="1h"
    )


# ------------------------------------------------------------------------------ the fake API servers


class PoolSimulation(fk.MemberSimulation):
    """A member shared by many ComputeNodes: a pod goes to a machine of the pool its Job's
    nodeSelector names (the member's scheduler would do the same)."""

    def __init__(self, server: fk.FakeApiServer, pools: dict[str, list[str]], **kwargs: Any) -> None:
        super().__init__(server, [n for names in pools.values() for n in names], **kwargs)
        self._pools = {pool: itertools.cycle(names) for pool, names in pools.items()}

    def node_for(self, pod_spec: fk.Obj) -> str:
        return next(self._pools[(pod_spec.get("nodeSelector") or {})[POOL]])


def market(hub: fk.FakeApiServer, nodes: int, hosts: int, jobs: int) -> dict[str, fk.FakeApiServer]:
    """ComputeNodes, their offers and the member API servers with their machines."""
    shared = [f"member-{k}" for k in range(1, hosts + 1)]
    servers: dict[str, fk.FakeApiServer] = {}
    pools: dict[str, dict[str, list[str]]] = {}
    for node, (host, machines) in layout(nodes, "member-lost", shared, jobs).items():
        if host not in servers:
            servers[host] = fk.FakeApiServer(f"{host}.fake")
            secret = base64.b64encode(kubeconfig(host).encode()).decode()
            hub.create(
                "",
                "secrets",
                {"metadata": {"name": f"{host}-kubeconfig", "namespace": NAMESPACE}, "data": {"kubeconfig": secret}},
            )
        names = [f"{node}-gpu-{k}" for k in range(machines)]
        for name in names:
            body = member_node(name, MODEL, "CN-GZ")
            body["metadata"]["labels"][POOL] = node
            servers[host].create("", "nodes", body)
        pools.setdefault(host, {})[node] = names
        servers[host].create("", "namespaces", {"metadata": {"name": f"jobs-{node}"}})
        hub.create(GROUP, "computenodes", compute_node(node, host))
        hub.create(GROUP, "computeoffers", offer(node, machines))
    for host, server in servers.items():
        PoolSimulation(server, pools[host], run_for=3600)
    return servers


class Stamps:
    """When each job was first seen in a phase, and on which node (from the hub's writes: the fake
    hub's hook, or the real hub's watch)."""

    def __init__(self) -> None:
        self.at: dict[tuple[str, str], float] = {}

    def record(self, obj: fk.Obj) -> None:
        status = obj.get("status") or {}
        node = (status.get("placement") or {}).get("node")
        phase = status.get("phase")
        if node and phase in ("Dispatched", "Running"):
            key = (obj["metadata"]["uid"], f"{node}:{phase}")
            self.at.setdefault(key, time.monotonic())

    def count(self, where: str, phase: str) -> int:
        """Jobs seen in ``phase`` on a node (``where``: ``lost`` or ``elsewhere``)."""
        return sum(1 for (_, at) in self.at if at.endswith(f":{phase}") and (at.startswith(LOST) == (where == "lost")))

    def times(self, where: str, phase: str) -> list[float]:
        return sorted(
            t
            for (_, at), t in self.at.items()
            if at.endswith(f":{phase}") and (at.startswith(LOST) == (where == "lost"))
        )

    def moved(self) -> int:
        """Jobs seen Dispatched or Running on another node than the lost one."""
        return len({u for (u, at) in self.at if not at.startswith(LOST)})


async def wait_until(predicate: Callable[[], bool], timeout: float, what: str) -> float:
    started = time.monotonic()
    while not predicate():
        if time.monotonic() - started > timeout:
            raise TimeoutError(f"{what}: not after {timeout:.0f}s")
        await asyncio.sleep(0.1)
    return time.monotonic() - started


async def run(args: argparse.Namespace) -> dict[str, Any]:
    fk.install()
    os.environ.update(
        INTERCONNECT_NAMESPACE=NAMESPACE,
        INTERCONNECT_HEARTBEAT_SECONDS="1",
        INTERCONNECT_NOT_READY_AFTER_SECONDS=str(args.not_ready_after),
        INTERCONNECT_RE_PLACE_AFTER_SECONDS=str(args.re_place_after),
        INTERCONNECT_METERING_INTERVAL_SECONDS="15",
        INTERCONNECT_MEMBER_SYNC_TIMEOUT_SECONDS="30",
    )
    hub = fk.FakeApiServer("hub.fake", write_only={"events", "computeusages"})
    servers = market(hub, args.nodes, args.hosts, args.jobs)
    stamps = Stamps()
    hub.on("computejobs", lambda kind, obj, old: stamps.record(obj))
    t = time.monotonic()
    controller = await start_controller(hub)
    ready = sum(1 for s in controller.members if s.ready)
    print(
        f"{args.nodes} ComputeNodes on {len(servers)} member API servers ({ready} Ready) in "
        f"{time.monotonic() - t:.1f}s; RSS {rss_mib():.0f} MiB",
        flush=True,
    )
    try:
        cpu0 = time.process_time()
        for i in range(args.jobs):
            hub.create(GROUP, "computejobs", job(i))
            if i % 50 == 49:
                await asyncio.sleep(0)
        placed = await wait_until(
            lambda: stamps.count("lost", "Running") >= args.jobs, 1800, f"{args.jobs} jobs Running on {LOST}"
        )
        first_cpu = time.process_time() - cpu0
        print(
            f"{args.jobs} jobs Running on {LOST} {placed:.1f}s after the first create; process CPU "
            f"{first_cpu:.1f}s; RSS {rss_mib():.0f} MiB",
            flush=True,
        )
        await asyncio.sleep(2)
        # The member goes away: connections refused, its watches end.
        cpu1, lost_at = time.process_time(), time.monotonic()
        servers["member-lost"].close()
        servers["member-lost"].down = True
        reporter = asyncio.create_task(progress(lambda: f"{stamps.moved()} re-placed", lost_at))
        await wait_until(
            lambda: stamps.count("elsewhere", "Dispatched") + stamps.count("elsewhere", "Running") >= 1,
            600,
            "the first re-placed job",
        )
        dispatched = await wait_until(lambda: stamps.moved() >= args.jobs, 1800, "every job re-placed")
        await wait_until(lambda: stamps.count("elsewhere", "Running") >= args.jobs, 1800, "every job Running again")
        reporter.cancel()
        elsewhere = sorted(min(ts) for ts in _first_by_job(stamps).values())
        cpu = time.process_time() - cpu1
        first, last = elsewhere[0] - lost_at, elsewhere[-1] - lost_at
        running = stamps.times("elsewhere", "Running")[-1] - lost_at
        nodes_used = len({at.split(":")[0] for (_, at) in stamps.at if not at.startswith(LOST)})
        result = {
            "nodes": args.nodes,
            "hosts": args.hosts,
            "jobs": args.jobs,
            "not_ready_after": args.not_ready_after,
            "re_place_after": args.re_place_after,
            "first_placement_seconds": placed,
            "first_placement_cpu_seconds": first_cpu,
            "lost_to_first_replaced_seconds": first,
            "lost_to_all_replaced_seconds": last,
            "replace_window_seconds": last - first,
            "lost_to_all_running_seconds": running,
            "replace_cpu_seconds": cpu,
            "nodes_used": nodes_used,
            "rss_mib": rss_mib(),
            "dispatched_wait_seconds": dispatched,
        }
        print(
            f"member of {LOST} lost: first job re-placed after {first:.1f}s (not Ready after "
            f"{args.not_ready_after:g}s, grace {args.re_place_after:g}s), all {args.jobs} re-placed on "
            f"{nodes_used} ComputeNodes after {last:.1f}s ({last - first:.1f}s from the first, "
            f"{args.jobs / max(last - first, 1e-9):.0f} jobs/s), all Running again after {running:.1f}s; "
            f"process CPU {cpu:.1f}s ({1000 * cpu / args.jobs:.1f} ms per job, the fakes' included); "
            f"RSS {result['rss_mib']:.0f} MiB",
            flush=True,
        )
        if args.json:  # now: a slow shutdown must not lose the figures
            write_json(args.json, result)
        return result
    finally:
        try:
            await asyncio.wait_for(controller.stop(), 30)
        except TimeoutError:
            print("  (the controller did not stop within 30 s)", flush=True)
        await controller.hub.close()
        for server in [hub, *servers.values()]:
            server.close()


async def progress(what: Callable[[], str], since: float, after: str = "the loss") -> None:
    """Every 15 s, how far the run has got: a long run shows it is moving."""
    while True:
        await asyncio.sleep(15)
        print(f"  {time.monotonic() - since:.0f}s after {after}: {what()}", flush=True)


def _first_by_job(stamps: Stamps) -> dict[str, list[float]]:
    """Per job, when it was first Dispatched or Running on another node than the lost one."""
    out: dict[str, list[float]] = {}
    for (uid, at), t in stamps.at.items():
        if not at.startswith(LOST):
            out.setdefault(uid, []).append(t)
    return out


def write_json(path: Path, result: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2))


# ------------------------------------------------------------------------------ the real test bed


def machine(name: str, node: str) -> dict[str, Any]:
    """A fake 8-card machine of ``node``'s pool, run by the member's kwok (its annotation), which
    makes it Ready; as hack/testbed's fake GPU nodes, with the pool label the offer selects."""
    capacity = {"cpu": "96", "memory": "1Ti", "pods": "110", "nvidia.com/gpu": str(CARDS_PER_MACHINE)}
    labels = {
        "type": "kwok",
        "kubernetes.io/hostname": name,
        "kubernetes.io/os": "linux",
        "nvidia.com/gpu.present": "true",
        "nvidia.com/gpu.product": MODEL,
        "topology.kubernetes.io/region": "CN-GZ",
        POOL: node,
    }
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "annotations": {"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"},
            "labels": labels,
        },
        "spec": {},
        "status": {"capacity": capacity, "allocatable": capacity},
    }


def apply_hub(bed: tb.Testbed, items: list[dict[str, Any]]) -> None:
    """Server-side apply of hub objects in one kubectl call (the market's own are all on the hub)."""
    subprocess.run(
        bed.kubectl_cmd(
            "hub", "apply", "--server-side", "--force-conflicts", "--field-manager=bench-replace", "-f", "-"
        ),
        input=json.dumps({"apiVersion": "v1", "kind": "List", "items": items}),
        text=True,
        check=True,
        capture_output=True,
    )


async def create_all(api: Any, items: list[tuple[str, dict[str, Any]]], in_flight: int = 32) -> None:
    """Create namespaces and nodes in a member, ``in_flight`` at a time; those already there (a
    reused test bed) are left as they are. Creates, not applies: a Node's status (its cards) is
    kept only when the Node is created."""
    from kubernetes_asyncio import client as aclient
    from kubernetes_asyncio.client.exceptions import ApiException

    core: Any = aclient.CoreV1Api(api)  # bodies as dicts, which the API classes send as they are
    slots = asyncio.Semaphore(in_flight)

    async def one(kind: str, body: dict[str, Any]) -> None:
        async with slots:
            try:
                await (core.create_node(body) if kind == "node" else core.create_namespace(body))
            except ApiException as exc:
                if exc.status != 409:
                    raise

    await asyncio.gather(*(one(kind, body) for kind, body in items))


async def follow(list_fn: Any, *args: Any, on_event: Callable[[str, dict[str, Any]], None], **kwargs: Any) -> None:
    """Feed every event of a watch to ``on_event``, starting again if it breaks (first stamps are
    kept by the callers, so the objects listed again do not move them). Events stay dicts: turning
    thousands into generated models costs this script more CPU than the operator spends."""
    from bench.dispatch import RawWatch

    while True:
        try:
            async with RawWatch().stream(list_fn, *args, timeout_seconds=3600, **kwargs) as stream:
                async for event in stream:
                    if isinstance(event.get("object"), dict):
                        on_event(event["type"], event["object"])
        except asyncio.CancelledError:
            raise
        except Exception:
            await asyncio.sleep(0.5)


class MemberStamps:
    """On the surviving members, when each job's member Job was first seen and its pod first
    Running (by the job's uid label), from their watches."""

    def __init__(self) -> None:
        self.created: dict[str, float] = {}
        self.running: dict[str, float] = {}

    def job(self, kind: str, obj: dict[str, Any]) -> None:
        uid = (obj["metadata"].get("labels") or {}).get("interconnect.dev/job-uid")
        if uid and kind != "DELETED":
            self.created.setdefault(uid, time.monotonic())

    def pod(self, kind: str, obj: dict[str, Any]) -> None:
        uid = (obj["metadata"].get("labels") or {}).get("interconnect.dev/job-uid")
        if uid and kind != "DELETED" and (obj.get("status") or {}).get("phase") == "Running":
            self.running.setdefault(uid, time.monotonic())


class NodeStamps:
    """When the lost node's Ready condition was first seen False on the hub."""

    def __init__(self) -> None:
        self.not_ready: float | None = None

    def record(self, kind: str, obj: dict[str, Any]) -> None:
        if obj["metadata"]["name"] != LOST or self.not_ready is not None:
            return
        conditions = {c.get("type"): c.get("status") for c in (obj.get("status") or {}).get("conditions") or []}
        if conditions.get("Ready") == "False":
            self.not_ready = time.monotonic()


def cpu_seconds(pid: int) -> float | None:
    """utime + stime of a process (None once it is gone: the killed API server)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def memory_mib(pid: int, field: str) -> float:
    """``VmHWM`` (peak) or ``VmRSS`` of a process, in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    return float("nan")


COMPONENTS = ("kube-apiserver", "etcd", "kube-scheduler", "kube-controller-manager", "kwok-controller")


class CpuMeter:
    """CPU seconds of the operator, every control-plane process and this script, read at the start
    and the end of each window: where the two shared cores went. The pids are read once, before
    the loss: the killed API server's pid file stays, its process does not."""

    def __init__(self, bed: tb.Testbed, operator: int) -> None:
        from tests import testbed as tbm

        self.pids = {
            f"{c.name}/{component}": tbm.component_pid(c.name, component)
            for c in [bed.hub, *bed.members]
            for component in COMPONENTS
        }
        self.pids["operator"] = operator
        self.last: dict[str, float] = {}

    def read(self) -> dict[str, float]:
        for key, pid in self.pids.items():
            seconds = cpu_seconds(pid)
            if seconds is not None:
                self.last[key] = seconds
        self.last["bench client"] = time.process_time()
        return dict(self.last)

    @staticmethod
    def delta(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
        return {k: round(after[k] - before.get(k, after[k]), 2) for k in after}


def percentiles(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)

    def at(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 2) if ordered else float("nan")

    return {"p50": at(0.5), "p99": at(0.99), "max": at(1.0)}


NAMES = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|node-\d+|job-\d+|'[^']*'"
"""What varies between two lines of one kind: uids, node and job names, quoted values."""


def log_lines(path: Path) -> list[str]:
    return path.read_text(errors="replace").splitlines() if path.exists() else []


def log_problems(lines: list[str]) -> dict[str, Any]:
    """The errors and warnings of a stretch of the operator's log, counted by kind (the message
    without its numbers, names and times): a run whose figures look fine may still have failed
    writes behind it, and a start-up's thousands of retries are one kind, not thousands."""
    kinds: collections.Counter[str] = collections.Counter()
    for line in lines:
        level = next((lv for lv in ("ERROR", "WARNING", "Traceback") if lv in line), None)
        if level is not None:
            message = line.split(f" {level} ", 1)[-1]
            kinds[level + " " + re.sub(r"\d+", "N", re.sub(NAMES, "X", message))[:200]] += 1
    errors = sum(n for kind, n in kinds.items() if not kind.startswith("WARNING"))
    return {
        "lines": len(lines),
        "errors_and_warnings": sum(kinds.values()),
        "kinds": dict(kinds.most_common(8)),
        "errors": errors,
    }


async def run_testbed(args: argparse.Namespace) -> dict[str, Any]:
    """The experiment on the test bed (the module docstring); the figures, also written to --json."""
    from bench.dispatch import cpu_summary
    from kubernetes_asyncio import client as aclient
    from kubernetes_asyncio.config import new_client_from_config
    from tests import testbed as tbm
    from tests.e2e import market as m

    bed = tbm.start(args.hosts + 1)
    members = [c.name for c in bed.members]
    lost_host, shared = members[0], members[1 : args.hosts + 1]
    plan = layout(args.nodes, lost_host, shared, args.jobs)
    hub = await new_client_from_config(config_file=str(bed.hub.kubeconfig), context=bed.hub.context)
    apis = {
        name: await new_client_from_config(config_file=str(bed.clusters[name].kubeconfig), context=name)
        for name in members[: args.hosts + 1]
    }
    custom = aclient.CustomObjectsApi(hub)
    m.install_crds(bed)
    left = (await custom.list_cluster_custom_object(GROUP, VERSION, "computejobs", limit=1))["items"]
    if left:
        raise SystemExit("the test bed has ComputeJobs already: `hack/testbed down` first (a run breaks it anyway)")

    t = time.monotonic()
    await create_all(hub, [("namespace", {"metadata": {"name": n}}) for n in [NAMESPACE, *tenants()]])
    secrets = [
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": f"{host}-kubeconfig", "namespace": NAMESPACE},
            "stringData": {"kubeconfig": m.member_kubeconfig(bed, host)},
        }
        for host in [lost_host, *shared]
    ]
    apply_hub(bed, [*secrets, *(compute_node(n, h) for n, (h, _) in plan.items())])
    apply_hub(bed, [offer(n, machines) for n, (_, machines) in plan.items()])
    for host in [lost_host, *shared]:
        mine = [(n, machines) for n, (h, machines) in plan.items() if h == host]
        await create_all(
            apis[host],
            [("namespace", {"metadata": {"name": f"jobs-{n}"}}) for n, _ in mine]
            + [("node", machine(f"{n}-gpu-{k}", n)) for n, machines in mine for k in range(machines)],
        )
    machines_total = sum(machines for _, machines in plan.values())
    print(
        f"{args.nodes} ComputeNodes, offers and {machines_total} kwok machines on {lost_host} ({LOST} alone) and "
        f"{', '.join(shared)} in {time.monotonic() - t:.1f}s",
        flush=True,
    )

    log_dir = Path(tempfile.mkdtemp(prefix="replace-testbed-"))
    env = {
        "INTERCONNECT_HEARTBEAT_SECONDS": "1",
        "INTERCONNECT_NOT_READY_AFTER_SECONDS": str(args.not_ready_after),
        "INTERCONNECT_RE_PLACE_AFTER_SECONDS": str(args.re_place_after),
        "INTERCONNECT_METERING_INTERVAL_SECONDS": "15",
        "INTERCONNECT_MEMBER_SYNC_TIMEOUT_SECONDS": "30",
    }
    operator = m.Operator(bed, log_dir, env)
    operator.start()
    assert operator.proc is not None
    pid = operator.proc.pid
    print(f"operator pid {pid}, log {log_dir / 'operator-1.log'}", flush=True)
    stamps, on_members, node_stamps = Stamps(), MemberStamps(), NodeStamps()
    watches: list[asyncio.Task[None]] = []
    try:
        t = time.monotonic()
        expected = {f"{n}-a100": machines * CARDS_PER_MACHINE for n, (_, machines) in plan.items()}
        await wait_until_async(lambda: market_ready(custom, expected, plan), 600, "every node Ready, every offer full")
        print(
            f"every ComputeNode Ready and every offer showing its cards {time.monotonic() - t:.1f}s after the "
            f"operator started; operator RSS {memory_mib(pid, 'VmRSS'):.0f} MiB",
            flush=True,
        )
        meter = CpuMeter(bed, pid)

        watches.append(
            asyncio.create_task(
                follow(
                    custom.list_cluster_custom_object,
                    GROUP,
                    VERSION,
                    "computejobs",
                    on_event=lambda kind, obj: stamps.record(obj),
                )
            )
        )
        watches.append(
            asyncio.create_task(
                follow(custom.list_cluster_custom_object, GROUP, VERSION, "computenodes", on_event=node_stamps.record)
            )
        )
        selector = "interconnect.dev/managed-by=interconnect-hub"
        for host in shared:
            batch, core = aclient.BatchV1Api(apis[host]), aclient.CoreV1Api(apis[host])
            watches.append(
                asyncio.create_task(
                    follow(batch.list_job_for_all_namespaces, label_selector=selector, on_event=on_members.job)
                )
            )
            watches.append(
                asyncio.create_task(
                    follow(core.list_pod_for_all_namespaces, label_selector=selector, on_event=on_members.pod)
                )
            )
        await asyncio.sleep(1)  # the watches are open before the first submit

        cpu0 = meter.read()
        submitted = time.monotonic()
        slots = asyncio.Semaphore(64)

        async def submit(i: int) -> None:
            body = job(i)
            async with slots:
                await custom.create_namespaced_custom_object(
                    GROUP, VERSION, body["metadata"]["namespace"], "computejobs", body
                )

        await asyncio.gather(*(submit(i) for i in range(args.jobs)))
        submit_seconds = time.monotonic() - submitted
        print(f"{args.jobs} ComputeJobs submitted in {submit_seconds:.1f}s", flush=True)
        reporter = asyncio.create_task(
            progress(lambda: f"{stamps.count('lost', 'Running')} Running on {LOST}", submitted, "the first submit")
        )
        await wait_until(lambda: stamps.count("lost", "Running") >= args.jobs, 3600, f"every job Running on {LOST}")
        reporter.cancel()
        placed = stamps.times("lost", "Running")[-1] - submitted
        cpu1 = meter.read()
        rss_before = memory_mib(pid, "VmRSS")
        print(
            f"{args.jobs} jobs Running on {LOST} ({lost_host}) {placed:.1f}s after the first submit "
            f"({args.jobs / placed:.1f} jobs/s); operator CPU {cpu1['operator'] - cpu0['operator']:.1f}s, "
            f"RSS {rss_before:.0f} MiB; CPU s: {cpu_summary(CpuMeter.delta(cpu0, cpu1), ('hub', lost_host))}",
            flush=True,
        )
        await asyncio.sleep(2)

        # The member goes away: its API server killed, connections refused from now on.
        cpu2 = meter.read()
        logged = len(log_lines(log_dir / "operator-1.log"))
        os.kill(tbm.component_pid(lost_host, "kube-apiserver"), signal.SIGKILL)
        lost_at = time.monotonic()
        reporter = asyncio.create_task(
            progress(
                lambda: (
                    f"{stamps.moved()} re-placed (hub), {len(on_members.created)} member Jobs, "
                    f"{len(on_members.running)} pods Running elsewhere"
                ),
                lost_at,
            )
        )
        # One deadline for the whole re-placement: a run that stalls still reports how far it got.
        deadline = time.monotonic() + args.replace_timeout
        unfinished = None
        try:
            for what, reached in (
                ("every job re-placed", lambda: stamps.moved() >= args.jobs),
                ("every member Job created elsewhere", lambda: len(on_members.created) >= args.jobs),
                ("every pod Running elsewhere", lambda: len(on_members.running) >= args.jobs),
                ("every job Running again", lambda: stamps.count("elsewhere", "Running") >= args.jobs),
            ):
                await wait_until(reached, deadline - time.monotonic(), what)
        except TimeoutError as exc:
            unfinished = f"{exc} (--replace-timeout)"
            print(f"  NOT FINISHED: {unfinished}", flush=True)
        reporter.cancel()
        cpu3 = meter.read()

        replaced = sorted(min(ts) - lost_at for ts in _first_by_job(stamps).values())
        created = sorted(t - lost_at for t in on_members.created.values())
        pods = sorted(t - lost_at for t in on_members.running.values())
        running_again = stamps.times("elsewhere", "Running")
        used = CpuMeter.delta(cpu2, cpu3)
        after_loss = log_lines(log_dir / "operator-1.log")[logged:]
        result: dict[str, Any] = {
            "mode": "testbed",
            "nodes": args.nodes,
            "hosts": args.hosts,
            "members": [lost_host, *shared],
            "jobs": args.jobs,
            "machines": machines_total,
            "not_ready_after": args.not_ready_after,
            "re_place_after": args.re_place_after,
            "unfinished": unfinished,
            "submit_seconds": submit_seconds,
            "first_placement_seconds": placed,
            "first_placement_rate": args.jobs / placed,
            "first_placement_cpu_seconds": CpuMeter.delta(cpu0, cpu1),
            "lost_to_not_ready_seconds": None if node_stamps.not_ready is None else node_stamps.not_ready - lost_at,
            "replaced": len(replaced),
            "member_jobs_created": len(created),
            "pods_running": len(pods),
            "running_again": len(running_again),
            "lost_to_first_replaced_seconds": replaced[0] if replaced else None,
            "lost_to_all_replaced_seconds": replaced[-1] if len(replaced) >= args.jobs else None,
            "replace_rate": len(replaced) / max(replaced[-1] - replaced[0], 1e-9) if replaced else 0.0,
            "lost_to_first_member_job_seconds": created[0] if created else None,
            "lost_to_all_member_jobs_seconds": created[-1] if len(created) >= args.jobs else None,
            "lost_to_all_pods_running_seconds": pods[-1] if len(pods) >= args.jobs else None,
            "lost_to_all_running_seconds": running_again[-1] - lost_at if len(running_again) >= args.jobs else None,
            "replaced_after_loss": percentiles(replaced),
            "member_job_after_loss": percentiles(created),
            "pod_running_after_loss": percentiles(pods),
            "nodes_used": len({at.split(":")[0] for (_, at) in stamps.at if not at.startswith(LOST)}),
            "replace_cpu_seconds": used,
            "operator_cpu_seconds_replace": used["operator"],
            "operator_cpu_seconds_total": cpu3["operator"],
            "operator_rss_mib_before_loss": rss_before,
            "operator_rss_mib_after": memory_mib(pid, "VmRSS"),
            "operator_peak_rss_mib": memory_mib(pid, "VmHWM"),
            # A replica that cannot renew its Lease in time stops, and loads the hub again when it
            # leads again: with one replica, the re-placement waits for that.
            "leadership_lost_after_loss": sum("stops leading" in line for line in after_loss),
            "operator_log": str(log_dir / "operator-1.log"),
            "operator_log_before_loss": log_problems(log_lines(log_dir / "operator-1.log")[:logged]),
            "operator_log_after_loss": log_problems(after_loss),
        }
        print_testbed(result, lost_host)
        if args.json:
            write_json(args.json, result)
        return result
    finally:
        for task in watches:
            task.cancel()
        operator.stop()
        await hub.close()
        for api in apis.values():
            await api.close()
        print(f"operator log kept in {log_dir}; {lost_host} is broken: `hack/testbed down` next", flush=True)


def tenants() -> list[str]:
    return [f"tenant-{k}" for k in range(TENANTS)]


async def wait_until_async(check: Callable[[], Awaitable[bool]], timeout: float, what: str) -> float:
    """`wait_until` for a check that asks an API server (a coroutine), every 2 s."""
    started = time.monotonic()
    while not await check():
        if time.monotonic() - started > timeout:
            raise TimeoutError(f"{what}: not after {timeout:.0f}s")
        await asyncio.sleep(2)
    return time.monotonic() - started


async def market_ready(custom: Any, expected: dict[str, int], plan: dict[str, tuple[str, int]]) -> bool:
    """Every ComputeNode Ready and every offer showing all its cards: before that, jobs would go
    to the dearer nodes while the cheapest still counts its machines."""
    nodes = (await custom.list_cluster_custom_object(GROUP, VERSION, "computenodes"))["items"]
    ready = {
        n["metadata"]["name"]
        for n in nodes
        if any(
            c.get("type") == "Ready" and c.get("status") == "True"
            for c in (n.get("status") or {}).get("conditions") or []
        )
    }
    offers = (await custom.list_cluster_custom_object(GROUP, VERSION, "computeoffers"))["items"]
    full = {
        o["metadata"]["name"]
        for o in offers
        if (o.get("status") or {}).get("cardsTotal") == expected.get(o["metadata"]["name"])
    }
    return set(plan) <= ready and set(expected) <= full


def print_testbed(r: dict[str, Any], lost_host: str) -> None:
    from bench.dispatch import cpu_summary

    def at(key: str) -> str:
        return "-" if r[key] is None else f"{r[key]:.1f}s"

    print(
        f"{lost_host} lost ({LOST}, {r['jobs']} jobs): node not Ready after {at('lost_to_not_ready_seconds')} "
        f"(configured {r['not_ready_after']:g}s, grace {r['re_place_after']:g}s); re-placed {r['replaced']}/{r['jobs']}"
        f" on {r['nodes_used']} ComputeNodes, the first after {at('lost_to_first_replaced_seconds')}, all after "
        f"{at('lost_to_all_replaced_seconds')} ({r['replace_rate']:.1f} jobs/s from the first to the last); member "
        f"Jobs created elsewhere {r['member_jobs_created']}, the first after {at('lost_to_first_member_job_seconds')},"
        f" all after {at('lost_to_all_member_jobs_seconds')}; pods Running {r['pods_running']}, all after "
        f"{at('lost_to_all_pods_running_seconds')}; ComputeJobs Running again {r['running_again']}, all after "
        f"{at('lost_to_all_running_seconds')}; the operator lost its Lease {r['leadership_lost_after_loss']} times"
        + (f"; NOT FINISHED: {r['unfinished']}" if r["unfinished"] else ""),
        flush=True,
    )
    print(
        f"  operator: {r['operator_cpu_seconds_replace']:.1f} CPU s from the loss to the end "
        f"({1000 * r['operator_cpu_seconds_replace'] / r['jobs']:.1f} ms per job), "
        f"{r['operator_cpu_seconds_total']:.1f}"
        f" in all; RSS {r['operator_rss_mib_before_loss']:.0f} MiB before the loss, {r['operator_rss_mib_after']:.0f} "
        f"after, peak {r['operator_peak_rss_mib']:.0f} MiB",
        flush=True,
    )
    print(f"  CPU s, from the loss to the end: {cpu_summary(r['replace_cpu_seconds'], ('hub', lost_host))}", flush=True)
    for when in ("before", "after"):
        problems = r[f"operator_log_{when}_loss"]
        print(
            f"  operator log {when} the loss: {problems['errors_and_warnings']} errors and warnings in "
            f"{problems['lines']} lines ({r['operator_log']})",
            flush=True,
        )
        for kind, n in problems["kinds"].items():
            print(f"    {n} x {kind}", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--testbed", action="store_true", help="on the real test bed (hack/testbed), not the fakes")
    parser.add_argument("--nodes", type=int, default=100)
    parser.add_argument("--hosts", type=int, help="shared member API servers (default 3; 2 with --testbed)")
    parser.add_argument("--jobs", type=int, help="default 5000; 1000 with --testbed (see above)")
    parser.add_argument("--not-ready-after", type=float, default=3)
    parser.add_argument("--re-place-after", type=float, default=5)
    parser.add_argument(
        "--replace-timeout", type=float, default=1800, help="--testbed: seconds from the loss until it stops waiting"
    )
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    if args.hosts is None:
        args.hosts = 2 if args.testbed else 3
    if args.jobs is None:
        args.jobs = 1000 if args.testbed else 5000
    if args.testbed:
        # A stopped run still stops its operator (the finally blocks).
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
        asyncio.run(run_testbed(args))
    else:
        asyncio.run(run(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())

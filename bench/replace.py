"""A hundred members without a hundred clusters, and the re-placement of a lost member's jobs.

    .venv/bin/python bench/replace.py [--nodes 100] [--hosts 3] [--jobs 5000] [--json out.json]

``--nodes`` ComputeNodes, every one with its own dispatch namespace, its own node pool (machines
labelled with its name, its offer selecting them) and its own connection, all but one pointing
at ``--hosts`` shared member API servers (so 33 ComputeNodes watch one member, as many members
would when one provider registers a node per data hall). The first ComputeNode, ``node-000``, is
alone on its member and the cheapest: all ``--jobs`` jobs (one card each, running for an hour)
go there. Then that member's API server goes away (connections refused, its watches closed)
and the run times what the operator does: the member marked not Ready, its jobs re-placed after
the grace period (both configured short here: 3 s and 5 s) onto the 99 others, their member
Jobs created, their pods Running.

The API servers are the in-memory fakes of bench/fake_kube.py behind the operator's own clients
(the controller as handlers/runtime.py starts it, every loop running), in one process: the CPU
seconds and resident memory printed are the process's, the fakes' included. The operator's own
memory for 100 members and 50,000 jobs is bench/memory.py's.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import itertools
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "operator"), str(ROOT)]

from bench import fake_kube as fk  # noqa: E402
from bench.memory import rss_mib  # noqa: E402
from bench.soak import GROUP, NAMESPACE, kubeconfig, member_node, start_controller  # noqa: E402

POOL = "bench.interconnect.dev/pool"
MODEL = "NVIDIA-A100-SXM4-80GB"
LOST = "node-000"


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
    from tests.e2e import market as m

    host_of = {f"node-{i:03d}": ("member-lost" if i == 0 else f"member-{(i - 1) % hosts + 1}") for i in range(nodes)}
    # The lost node holds every job; the others together hold them all again, with 10% to spare.
    machines_of = {node: (-(-jobs // 8) if node == LOST else -(-jobs * 11 // 10 // (nodes - 1) // 8) + 1)
                   for node in host_of}
    servers: dict[str, fk.FakeApiServer] = {}
    pools: dict[str, dict[str, list[str]]] = {}
    for node, host in host_of.items():
        if host not in servers:
            servers[host] = fk.FakeApiServer(f"{host}.fake")
            hub.create("", "secrets", {"metadata": {"name": f"{host}-kubeconfig", "namespace": NAMESPACE},
                                       "data": {"kubeconfig": base64.b64encode(kubeconfig(host).encode()).decode()}})
        names = [f"{node}-gpu-{k}" for k in range(machines_of[node])]
        for name in names:
            body = member_node(name, MODEL, "CN-GZ")
            body["metadata"]["labels"][POOL] = node
            servers[host].create("", "nodes", body)
        pools.setdefault(host, {})[node] = names
        servers[host].create("", "namespaces", {"metadata": {"name": f"jobs-{node}"}})
        manifest = m.node_manifest("gz-regional")
        manifest["metadata"]["name"] = node
        manifest["spec"]["connection"] = {"secretRef": {"name": f"{host}-kubeconfig", "namespace": NAMESPACE,
                                                        "key": "kubeconfig"}, "namespace": f"jobs-{node}"}
        hub.create(GROUP, "computenodes", manifest)
        offer = m.offer_manifest("gz-a100", nodeRef=node, gpuModel=MODEL, cards=machines_of[node] * 8,
                                 nodeSelector={"matchLabels": {POOL: node}})
        offer["metadata"]["name"] = f"{node}-a100"
        offer["spec"]["price"] = {"amount": "1.00" if node == LOST else "2.00", "currency": "CNY",
                                  "unit": "card-hour"}
        hub.create(GROUP, "computeoffers", offer)
    for host, server in servers.items():
        PoolSimulation(server, pools[host], run_for=3600)
    return servers


class Stamps:
    """When each job was first seen in a phase, and on which node (from the hub's own writes)."""

    def __init__(self, hub: fk.FakeApiServer) -> None:
        self.at: dict[tuple[str, str], float] = {}
        hub.on("computejobs", self._written)

    def _written(self, kind: str, obj: fk.Obj, old: fk.Obj | None) -> None:
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
        return sorted(t for (_, at), t in self.at.items()
                      if at.endswith(f":{phase}") and (at.startswith(LOST) == (where == "lost")))


async def wait_until(predicate: Any, timeout: float, what: str) -> float:
    started = time.monotonic()
    while not predicate():
        if time.monotonic() - started > timeout:
            raise TimeoutError(f"{what}: not after {timeout:.0f}s")
        await asyncio.sleep(0.1)
    return time.monotonic() - started


async def run(args: argparse.Namespace) -> dict[str, Any]:
    from tests.e2e import market as m

    fk.install()
    os.environ.update(INTERCONNECT_NAMESPACE=NAMESPACE, INTERCONNECT_HEARTBEAT_SECONDS="1",
                      INTERCONNECT_NOT_READY_AFTER_SECONDS=str(args.not_ready_after),
                      INTERCONNECT_RE_PLACE_AFTER_SECONDS=str(args.re_place_after),
                      INTERCONNECT_METERING_INTERVAL_SECONDS="15", INTERCONNECT_MEMBER_SYNC_TIMEOUT_SECONDS="30")
    hub = fk.FakeApiServer("hub.fake", write_only={"events", "computeusages"})
    servers = market(hub, args.nodes, args.hosts, args.jobs)
    stamps = Stamps(hub)
    t = time.monotonic()
    controller = await start_controller(hub)
    ready = sum(1 for s in controller.members if s.ready)
    print(f"{args.nodes} ComputeNodes on {len(servers)} member API servers ({ready} Ready) in "
          f"{time.monotonic() - t:.1f}s; RSS {rss_mib():.0f} MiB", flush=True)
    try:
        cpu0 = time.process_time()
        for i in range(args.jobs):
            hub.create(GROUP, "computejobs", m.job_manifest(f"job-{i:05d}", f"tenant-{i % 20}", origin="CN-GZ",
                                                            tier="20ms", gpus=1, max_price="10", run_for="1h"))
            if i % 50 == 49:
                await asyncio.sleep(0)
        placed = await wait_until(lambda: stamps.count("lost", "Running") >= args.jobs, 1800,
                                  f"{args.jobs} jobs Running on {LOST}")
        first_cpu = time.process_time() - cpu0
        print(f"{args.jobs} jobs Running on {LOST} {placed:.1f}s after the first create; process CPU "
              f"{first_cpu:.1f}s; RSS {rss_mib():.0f} MiB", flush=True)
        await asyncio.sleep(2)
        # The member goes away: connections refused, its watches end.
        cpu1, lost_at = time.process_time(), time.monotonic()
        servers["member-lost"].close()
        servers["member-lost"].down = True

        async def progress() -> None:
            while True:
                await asyncio.sleep(15)
                moved = len({u for (u, at) in stamps.at if not at.startswith(LOST)})
                print(f"  {time.monotonic() - lost_at:.0f}s after the loss: {moved} re-placed", flush=True)

        reporter = asyncio.create_task(progress())
        await wait_until(lambda: stamps.count("elsewhere", "Dispatched") + stamps.count("elsewhere", "Running")
                         >= 1, 600, "the first re-placed job")
        dispatched = await wait_until(lambda: len({u for (u, at) in stamps.at if not at.startswith(LOST)})
                                      >= args.jobs, 1800, "every job re-placed")
        await wait_until(lambda: stamps.count("elsewhere", "Running") >= args.jobs, 1800, "every job Running again")
        reporter.cancel()
        elsewhere = sorted(min(ts) for ts in _first_by_job(stamps).values())
        cpu = time.process_time() - cpu1
        first, last = elsewhere[0] - lost_at, elsewhere[-1] - lost_at
        running = stamps.times("elsewhere", "Running")[-1] - lost_at
        nodes_used = len({at.split(":")[0] for (_, at) in stamps.at if not at.startswith(LOST)})
        result = {"nodes": args.nodes, "hosts": args.hosts, "jobs": args.jobs,
                  "not_ready_after": args.not_ready_after, "re_place_after": args.re_place_after,
                  "first_placement_seconds": placed, "first_placement_cpu_seconds": first_cpu,
                  "lost_to_first_replaced_seconds": first, "lost_to_all_replaced_seconds": last,
                  "replace_window_seconds": last - first, "lost_to_all_running_seconds": running,
                  "replace_cpu_seconds": cpu, "nodes_used": nodes_used, "rss_mib": rss_mib(),
                  "dispatched_wait_seconds": dispatched}
        print(f"member of {LOST} lost: first job re-placed after {first:.1f}s (not Ready after "
              f"{args.not_ready_after:g}s, grace {args.re_place_after:g}s), all {args.jobs} re-placed on "
              f"{nodes_used} ComputeNodes after {last:.1f}s ({last - first:.1f}s from the first, "
              f"{args.jobs / max(last - first, 1e-9):.0f} jobs/s), all Running again after {running:.1f}s; "
              f"process CPU {cpu:.1f}s ({1000 * cpu / args.jobs:.1f} ms per job, the fakes' included); "
              f"RSS {result['rss_mib']:.0f} MiB", flush=True)
        if args.json:  # now: a slow shutdown must not lose the figures
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps(result, indent=2))
        return result
    finally:
        try:
            await asyncio.wait_for(controller.stop(), 30)
        except TimeoutError:
            print("  (the controller did not stop within 30 s)", flush=True)
        await controller.hub.close()
        for server in [hub, *servers.values()]:
            server.close()


def _first_by_job(stamps: Stamps) -> dict[str, list[float]]:
    """Per job, when it was first Dispatched or Running on another node than the lost one."""
    out: dict[str, list[float]] = {}
    for (uid, at), t in stamps.at.items():
        if not at.startswith(LOST):
            out.setdefault(uid, []).append(t)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nodes", type=int, default=100)
    parser.add_argument("--hosts", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=5000)
    parser.add_argument("--not-ready-after", type=float, default=3)
    parser.add_argument("--re-place-after", type=float, default=5)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    asyncio.run(run(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())

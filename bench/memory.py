"""What the operator's state costs in memory for N jobs across M members, without clusters.

The controller keeps, per ComputeJob, its state (the job kept compact, its status as the
operator knows it, the labels of its usage series, registered as when it was placed); per
member, four watch caches of small projections (nodes, GPU pods, the dispatched pods and Jobs);
and the hub's ComputeJob watch keeps a (generation, deleting) pair per job. This script builds exactly those
structures, from objects shaped like the API servers' (running jobs, one pod each, with usage
and attempt history), in a process that has imported the whole operator, and reports its
resident memory. It measures state, not traffic: the peak of a live operator also holds
response buffers (see bench/dispatch.py for a live run).

    .venv/bin/python bench/memory.py [--jobs 5000] [--members 10] [--json out.json]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import sys
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "operator"), str(ROOT)]


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def job_body(i: int, member: str) -> dict[str, Any]:
    from tests.e2e import market as m

    body = m.job_manifest(f"job-{i:05d}", f"tenant-{i % 50}", origin="CN-GZ", tier="20ms", gpus=1,
                          max_price="10", run_for="1h")
    uid = str(uuid.uuid4())
    body["metadata"].update(uid=uid, generation=1, resourceVersion=str(1000 + i),
                            creationTimestamp="2026-11-23T10:00:00Z")
    price = {"amount": "8.00", "currency": "CNY", "unit": "card-hour"}
    member_job = f"ic-{uid}-1"
    body["status"] = {
        "phase": "Running", "attempts": 1, "observedGeneration": 1, "startTime": "2026-11-23T10:00:02Z",
        "placement": {"node": member, "identityCode": "CIRGZ000001E", "offer": f"{member}-a100", "price": price,
                      "tier": "20ms", "region": "CN-GZ", "gpuModel": "NVIDIA-A100-SXM4-80GB",
                      "placedAt": "2026-11-23T10:00:01Z"},
        "memberJob": {"cluster": member, "namespace": "interconnect-jobs", "name": member_job,
                      "uid": str(uuid.uuid4())},
        "attemptHistory": [{"attempt": 1, "node": member, "memberJobName": member_job, "offer": f"{member}-a100",
                            "price": price, "cardHours": "0.5"}],
        "usage": {"cardHours": "0.5", "cost": "4.00", "currency": "CNY", "accruedUntil": "2026-11-23T10:30:02Z",
                  "pods": [{"attempt": 1, "pod": str(uuid.uuid4()), "gpus": 1, "microseconds": 1_800_000_000,
                            "finished": False}]},
        "conditions": [
            {"type": t, "status": "True", "reason": r, "message": msg, "lastTransitionTime": "2026-11-23T10:00:02Z",
             "observedGeneration": 1}
            for t, r, msg in (("Scheduled", "Placed", "offer x on y (CIRGZ000001E, CN-GZ), tier 20ms, 8.00 CNY per "
                                                     "card-hour; 1/5 offers fit: 4 latency beyond 20ms"),
                              ("Dispatched", "MemberJobCreated", f"Job interconnect-jobs/{member_job} on {member}"),
                              ("Running", "PodsRunning", f"running on {member}"))],
    }
    return body


def member_objects(job: dict[str, Any], node: str) -> tuple[dict[str, Any], dict[str, Any]]:
    uid = job["metadata"]["uid"]
    labels = {"interconnect.dev/managed-by": "interconnect-hub", "interconnect.dev/job-uid": uid,
              "interconnect.dev/attempt": "1", "interconnect.dev/offer": "gz-a100"}
    name = job["status"]["memberJob"]["name"]
    member_job = {"metadata": {"name": name, "uid": job["status"]["memberJob"]["uid"], "labels": labels},
                  "status": {"active": 1, "startTime": "2026-11-23T10:00:02Z"}}
    pod = {"metadata": {"name": f"{name}-abcde", "uid": job["status"]["usage"]["pods"][0]["pod"], "labels": labels,
                        "ownerReferences": [{"kind": "Job", "name": name}]},
           "spec": {"nodeName": node, "containers": [{"name": "train", "resources": {
               "limits": {"nvidia.com/gpu": "1"}, "requests": {"nvidia.com/gpu": "1"}}}]},
           "status": {"phase": "Running", "containerStatuses": [
               {"name": "train", "state": {"running": {"startedAt": "2026-11-23T10:00:02Z"}}}]}}
    return member_job, pod


async def build(jobs: int, members: int) -> dict[str, Any]:
    from kubernetes_asyncio import client as k8s

    from interconnect.adapters.hub import Hub
    from interconnect.adapters.informer import Change
    from interconnect.adapters.member import (
        MemberCluster,
        project_dispatched_job,
        project_dispatched_pod,
        project_gpu_pod,
        project_node,
    )
    from interconnect.adapters.metrics import Metrics
    from interconnect.core.latency import LatencyTable
    from interconnect.services.config import Settings
    from interconnect.services.controller import Controller
    from interconnect.services.job_watch import job_key

    gc.collect()
    before = rss_mib()
    controller = Controller(Hub(k8s.ApiClient(k8s.Configuration())), Settings.from_env(), LatencyTable.default(),
                            Metrics())
    nodes_per_member = max(1, jobs // (8 * members) + 1)
    clusters = []
    for i in range(members):
        member = MemberCluster(f"member-{i}", k8s.ApiClient(k8s.Configuration()), "interconnect-jobs",
                               lambda *_: None)
        for n in range(nodes_per_member):
            capacity = {"nvidia.com/gpu": "8", "cpu": "256"}
            node = {"metadata": {"name": f"member-{i}-gpu-{n}", "uid": str(uuid.uuid4()), "labels": {
                "nvidia.com/gpu.product": "NVIDIA-A100-SXM4-80GB", "topology.kubernetes.io/region": "CN-GZ"}},
                "status": {"capacity": capacity, "allocatable": capacity,
                           "conditions": [{"type": "Ready", "status": "True"}]}}
            projected = project_node(node)
            if projected is not None:
                member.nodes.items[node["metadata"]["uid"]] = projected
        clusters.append(member)
    hub_watch: dict[str, tuple[int, bool]] = {}
    for j in range(jobs):
        i = j % members
        body = job_body(j, f"member-{i}")
        await controller.job_watch.job_changed(body)  # as the hub's watch hands it over
        hub_watch[body["metadata"]["uid"]] = job_key(body)
        state = controller.jobs.get(body["metadata"]["uid"])
        assert state is not None
        controller.meter.register(state, state.attempt)  # its usage series, as when it was placed
        member_job, pod = member_objects(body, f"member-{i}-gpu-{(j // members) // 8}")
        member = clusters[i]
        for informer, obj, projected in ((member.jobs, member_job, project_dispatched_job(member_job)),
                                         (member.pods, pod, project_dispatched_pod(pod))):
            informer.items[obj["metadata"]["uid"]] = projected  # type: ignore[index]
            member._index(Change(informer.name, obj["metadata"]["uid"], None, projected))  # and its index
        member.gpu_pods.items[pod["metadata"]["uid"]] = project_gpu_pod(pod)  # type: ignore[assignment]
    gc.collect()
    after = rss_mib()
    for member in clusters:
        await member.api.close()
    await controller.hub.close()
    return {"jobs": jobs, "members": members, "process_before_mib": before, "process_after_mib": after,
            "state_mib": after - before, "per_job_kib": (after - before) * 1024 / max(jobs, 1)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=5000)
    parser.add_argument("--members", type=int, default=10)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    import interconnect.handlers  # noqa: F401  (the whole operator, kopf included, as the process has it)

    result = asyncio.run(build(args.jobs, args.members))
    print(f"{result['jobs']} jobs, {result['members']} members: process {result['process_after_mib']:.0f} MiB "
          f"(operator imported: {result['process_before_mib']:.0f} MiB; state {result['state_mib']:.0f} MiB, "
          f"{result['per_job_kib']:.1f} KiB per job)")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The test bed itself: real schedulers place GPU Jobs on fake GPU nodes, which run them."""

from __future__ import annotations

import os
import socket
import subprocess
import time
import uuid
from pathlib import Path

import pytest
from kubernetes import client

from tests import testbed as tb

pytestmark = pytest.mark.e2e

GPU = "nvidia.com/gpu"


def gpu_job(name: str, gpus: int, run_for: str = "2s") -> client.V1Job:
    return client.V1Job(
        metadata=client.V1ObjectMeta(name=name),
        spec=client.V1JobSpec(
            backoff_limit=0,
            template=client.V1PodTemplateSpec(
                metadata=client.V1ObjectMeta(annotations={"testbed.interconnect.dev/run-for": run_for}),
                spec=client.V1PodSpec(
                    restart_policy="Never",
                    containers=[client.V1Container(
                        name="train", image="registry.example/train:1",
                        resources=client.V1ResourceRequirements(limits={GPU: str(gpus)}),
                    )],
                ),
            ),
        ),
    )


def wait_for(predicate, timeout: float, what: str):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def test_every_member_reports_its_fake_gpu_capacity(testbed: tb.Testbed) -> None:
    assert testbed.members, "the test bed has no members"
    regions = set()
    for member in testbed.members:
        nodes = client.CoreV1Api(testbed.api(member.name)).list_node().items
        gpu_nodes = [n for n in nodes if GPU in (n.status.allocatable or {})]
        assert gpu_nodes, f"{member.name} has no node with {GPU}"
        for node in gpu_nodes:
            assert int(node.status.capacity[GPU]) > 0
            assert node.metadata.labels["nvidia.com/gpu.product"].startswith("NVIDIA-")
            assert node.metadata.labels["topology.kubernetes.io/region"].startswith("CN-")
            ready = {c.type: c.status for c in node.status.conditions}
            assert ready.get("Ready") == "True", f"{node.metadata.name} is not Ready"
            regions.add((member.name, node.metadata.labels["topology.kubernetes.io/region"]))
    regions = {region for _, region in regions}
    assert len(regions) == len(testbed.members), "members should differ in region"


def test_gpu_job_is_scheduled_runs_and_completes(testbed: tb.Testbed) -> None:
    member = testbed.members[0].name
    api = testbed.api(member)
    name = f"gpu-{uuid.uuid4().hex[:6]}"
    client.BatchV1Api(api).create_namespaced_job("default", gpu_job(name, gpus=2))
    try:
        def complete() -> client.V1Job | None:
            job = client.BatchV1Api(api).read_namespaced_job(name, "default")
            conds = {c.type: c.status for c in job.status.conditions or []}
            return job if conds.get("Complete") == "True" else None

        wait_for(complete, 60, f"Job {name} to complete on {member}")
        pods = client.CoreV1Api(api).list_namespaced_pod("default", label_selector=f"job-name={name}").items
        assert len(pods) == 1
        pod = pods[0]
        node = client.CoreV1Api(api).read_node(pod.spec.node_name)
        assert int(node.status.allocatable[GPU]) >= 2, "scheduled onto a node without GPUs"
        term = pod.status.container_statuses[0].state.terminated
        assert term.exit_code == 0
        # The fake kubelet keeps real start and finish times: metering depends on them.
        ran = (term.finished_at - term.started_at).total_seconds()
        assert 1.5 <= ran <= 30, f"pod ran {ran}s, declared 2s"
    finally:
        client.BatchV1Api(api).delete_namespaced_job(name, "default", propagation_policy="Background")


def test_oversized_job_stays_pending_unschedulable(testbed: tb.Testbed) -> None:
    member = testbed.members[0].name
    api = testbed.api(member)
    name = f"huge-{uuid.uuid4().hex[:6]}"
    client.BatchV1Api(api).create_namespaced_job("default", gpu_job(name, gpus=64))
    try:
        def unschedulable() -> client.V1Pod | None:
            pods = client.CoreV1Api(api).list_namespaced_pod("default", label_selector=f"job-name={name}").items
            for pod in pods:
                for cond in pod.status.conditions or []:
                    if cond.type == "PodScheduled" and cond.reason == "Unschedulable":
                        return pod
            return None

        pod = wait_for(unschedulable, 60, f"pod of {name} to be Unschedulable")
        cond = next(c for c in pod.status.conditions if c.type == "PodScheduled")
        assert "Insufficient nvidia.com/gpu" in cond.message
        assert pod.status.phase == "Pending"
    finally:
        client.BatchV1Api(api).delete_namespaced_job(name, "default", propagation_policy="Background")


def test_up_then_down_leaves_no_process_and_no_port(tmp_path: Path, testbed: tb.Testbed) -> None:
    """A separate, hub-only test bed in its own state directory: `down` must leave nothing."""
    env = dict(os.environ, INTERCONNECT_TESTBED_DIR=str(tmp_path / "bed"))
    up = subprocess.run([tb.REPO / "hack" / "testbed", "up", "--members", "0"], env=env,
                        capture_output=True, text=True, check=True)
    kubeconfig = Path(up.stdout.strip().splitlines()[-1])
    assert kubeconfig.exists()
    pid_files = list((tmp_path / "bed" / "kwok" / "clusters" / "hub" / "pids").glob("*.pid"))
    pids = [int(p.read_text()) for p in pid_files]
    assert len(pids) >= 4, f"expected etcd, apiserver, controller-manager, scheduler, kwok: {pid_files}"
    port = int(next(line for line in kubeconfig.read_text().splitlines()
                    if "server:" in line).rsplit(":", 1)[1])
    subprocess.run([tb.REPO / "hack" / "testbed", "down"], env=env, check=True, capture_output=True)
    for pid in pids:
        assert not Path(f"/proc/{pid}").exists() or _is_zombie(pid), f"process {pid} still running"
    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", port)) != 0, f"port {port} still open"
    assert not (tmp_path / "bed").exists()


def _is_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"
    except OSError:
        return True

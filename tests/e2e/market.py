"""A market on the test bed: CRDs on the hub, members joined, offers published, the operator.

The operator runs as a real process (``python -m interconnect run``) against the hub's API
server; members are reached through kubeconfig Secrets, exactly as in production.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from interconnect.core.credit_code import make_credit_code
from tests import testbed as tb

REPO = Path(__file__).resolve().parents[2]
GROUP, VERSION = "interconnect.dev", "v1alpha1"
OPERATOR_NS = "interconnect-system"
WORK_NS = "interconnect-jobs"
CREDIT_CODE = make_credit_code("91520100MA6DJ7H8X")

# name -> (member, type, region, industry, parent)
NODES: dict[str, tuple[str, str, str, str | None, str | None]] = {
    "gz-regional": ("member-1", "regional", "CN-GZ", None, None),
    "bj-regional": ("member-3", "regional", "CN-BJ", None, None),
    "sh-finance": ("member-2", "industry", "CN-SH", "finance", "bj-regional"),
}
A100, H800, H20, L40S = "NVIDIA-A100-SXM4-80GB", "NVIDIA-H800", "NVIDIA-H20", "NVIDIA-L40S"
# name -> (node, model, memory GiB, cards, price, unit, cards per machine)
OFFERS: dict[str, tuple[str, str, int, int, str, str, int | None]] = {
    "gz-a100": ("gz-regional", A100, 80, 24, "8.00", "card-hour", None),
    "sh-h800": ("sh-finance", H800, 80, 16, "28.00", "card-hour", None),
    "sh-a100": ("sh-finance", A100, 80, 8, "80.00", "machine-hour", 8),
    "bj-h20": ("bj-regional", H20, 96, 16, "15.00", "card-hour", None),
    "bj-l40s": ("bj-regional", L40S, 45, 8, "6.00", "card-hour", None),
}


def custom(api: client.ApiClient) -> client.CustomObjectsApi:
    return client.CustomObjectsApi(api)


def apply(bed: tb.Testbed, manifest: dict[str, Any]) -> None:
    """Server-side apply of one object on the hub (create or update), as a user would."""
    subprocess.run(bed.kubectl_cmd("hub", "apply", "--server-side", "--force-conflicts", "--field-manager=e2e",
                                   "-f", "-"), input=json.dumps(manifest), text=True, check=True,
                   capture_output=True)


def ensure_namespace(api: client.ApiClient, name: str) -> None:
    with contextlib.suppress(ApiException):
        client.CoreV1Api(api).create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))


def install_crds(bed: tb.Testbed) -> None:
    subprocess.run(bed.kubectl_cmd("hub", "apply", "--server-side", "--force-conflicts", "-f", str(REPO / "crds")),
                   check=True, capture_output=True)
    subprocess.run(bed.kubectl_cmd("hub", "wait", "--for=condition=Established", "--timeout=60s",
                                   "crd/computenodes.interconnect.dev", "crd/computeoffers.interconnect.dev",
                                   "crd/computejobs.interconnect.dev", "crd/computequotas.interconnect.dev",
                                   "crd/computeusages.interconnect.dev"),
                   check=True, capture_output=True)


def member_kubeconfig(bed: tb.Testbed, member: str) -> str:
    out = subprocess.run(bed.kubectl_cmd(member, "config", "view", "--raw", "--flatten", "--minify"),
                         check=True, capture_output=True, text=True)
    return out.stdout


def node_manifest(name: str) -> dict[str, Any]:
    member, type_, region, industry, parent = NODES[name]
    spec: dict[str, Any] = {
        "type": type_, "region": region,
        "operatingEntity": {"name": f"{name} computing co.", "creditCode": CREDIT_CODE,
                            "telecomLicence": "B1-20230001", "registeredCapital": "100000000"},
        "connection": {"secretRef": {"name": f"{member}-kubeconfig", "namespace": OPERATOR_NS, "key": "kubeconfig"},
                       "namespace": WORK_NS},
    }
    if industry:
        spec["industry"] = industry
        spec["parentNode"] = parent
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": "ComputeNode", "metadata": {"name": name}, "spec": spec}


def offer_manifest(name: str, **overrides: Any) -> dict[str, Any]:
    node, model, memory, cards, amount, unit, per_machine = OFFERS[name]
    price: dict[str, Any] = {"amount": amount, "currency": "CNY", "unit": unit}
    if per_machine:
        price["cardsPerMachine"] = per_machine
    spec = {"nodeRef": node, "gpuModel": model, "gpuMemoryGiB": memory, "cards": cards, "price": price,
            **overrides}
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": "ComputeOffer", "metadata": {"name": name}, "spec": spec}


def job_manifest(name: str, namespace: str, *, gpus: int, origin: str, tier: str, max_price: str,
                 replicas: int = 1, models: list[str] | None = None, run_for: str = "3s",
                 outcome: str | None = None, **spec: Any) -> dict[str, Any]:
    annotations = {"testbed.interconnect.dev/run-for": run_for}
    if outcome:
        annotations["testbed.interconnect.dev/outcome"] = outcome
    return {
        "apiVersion": f"{GROUP}/{VERSION}", "kind": "ComputeJob",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "gpus": {"count": gpus, **({"models": models} if models else {})},
            "replicas": replicas, "origin": origin, "latencyTier": tier,
            "maxPrice": {"amount": max_price, "currency": "CNY"},
            "template": {"metadata": {"annotations": annotations},
                         "spec": {"containers": [{"name": "train", "image": "registry.example/train:1"}]}},
            **spec,
        },
    }


class Operator:
    """The operator as a child process, with its log kept for post-mortems."""

    def __init__(self, bed: tb.Testbed, log_dir: Path, env: dict[str, str] | None = None,
                 priority: int | None = None, name: str = "operator", kubeconfig: Path | None = None) -> None:
        self.bed = bed
        self.kubeconfig = kubeconfig or bed.hub.kubeconfig
        """How this replica reaches the hub (a test may route it through a proxy it can cut)."""
        self.log_dir = log_dir
        self.extra_env = env or {}
        self.priority = priority
        """None: standalone; else a replica in kopf peering with this priority."""
        self.name = name
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> None:
        self.starts += 1
        log = open(self.log_dir / f"{self.name}-{self.starts}.log", "wb")  # noqa: SIM115
        env = dict(os.environ, INTERCONNECT_NAMESPACE=OPERATOR_NS, INTERCONNECT_HEARTBEAT_SECONDS="2",
                   INTERCONNECT_METERING_INTERVAL_SECONDS="2", INTERCONNECT_NOT_READY_AFTER_SECONDS="8",
                   INTERCONNECT_RE_PLACE_AFTER_SECONDS="15", PYTHONUNBUFFERED="1",
                   # Like a pod's name: the same across restarts of this replica, so a restarted
                   # one takes its own Lease back at once; another replica waits the Lease out.
                   INTERCONNECT_LEASE_IDENTITY=self.name, INTERCONNECT_LEASE_SECONDS="10")
        env.update(self.extra_env)
        mode = ["--standalone"] if self.priority is None else ["--priority", str(self.priority)]
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "interconnect", "run", *mode, "--kubeconfig",
             str(self.kubeconfig), "--context", self.bed.hub.context, "--liveness", ""],
            cwd=REPO, env={**env, "PYTHONPATH": str(REPO / "operator")}, stdout=log, stderr=subprocess.STDOUT)

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()

    def log_tail(self, lines: int = 60) -> str:
        path = self.log_dir / f"{self.name}-{self.starts}.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""


def wait_for(predicate: Callable[[], Any], timeout: float, what: str, interval: float = 0.5) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


def wait_phase(bed: tb.Testbed, namespace: str, name: str, phases: set[str], timeout: float) -> dict[str, Any]:
    """Wait for a ComputeJob to reach one of ``phases``; on a timeout, say where it stood: its
    status and its pods on every member (a bare "timed out" tells nobody what went wrong)."""
    hub = bed.api("hub")

    def reached() -> dict[str, Any] | None:
        job = get_job(hub, namespace, name)
        return job if (job.get("status") or {}).get("phase") in phases else None

    try:
        return wait_for(reached, timeout, f"{namespace}/{name} to reach {sorted(phases)}")  # type: ignore[no-any-return]
    except AssertionError as exc:
        job = get_job(hub, namespace, name)
        uid = job["metadata"]["uid"]
        pods = {member: [(p.metadata.name, p.status.phase, p.spec.node_name) for p in client.CoreV1Api(
            bed.api(member)).list_namespaced_pod(WORK_NS, label_selector=f"interconnect.dev/job-uid={uid}").items]
            for member in sorted({mm for mm, *_ in NODES.values()})}
        raise AssertionError(f"{exc}; status: {dump(job.get('status'))}; member pods: {pods}") from None


def tenant(api: client.ApiClient) -> str:
    name = f"tenant-{uuid.uuid4().hex[:6]}"
    ensure_namespace(api, name)
    return name


def get_job(api: client.ApiClient, namespace: str, name: str) -> dict[str, Any]:
    return custom(api).get_namespaced_custom_object(GROUP, VERSION, namespace, "computejobs", name)  # type: ignore[no-any-return]


def phase_of(api: client.ApiClient, namespace: str, name: str) -> str | None:
    return (get_job(api, namespace, name).get("status") or {}).get("phase")


@contextlib.contextmanager
def running_market(bed: tb.Testbed, log_dir: Path, env: dict[str, str] | None = None) -> Iterator[Operator]:
    hub = bed.api("hub")
    install_crds(bed)
    ensure_namespace(hub, OPERATOR_NS)
    core = client.CoreV1Api(hub)
    for member in {m for m, *_ in NODES.values()}:
        ensure_namespace(bed.api(member), WORK_NS)
        secret = client.V1Secret(metadata=client.V1ObjectMeta(name=f"{member}-kubeconfig", namespace=OPERATOR_NS),
                                 string_data={"kubeconfig": member_kubeconfig(bed, member)})
        with contextlib.suppress(ApiException):
            core.delete_namespaced_secret(secret.metadata.name, OPERATOR_NS)
        core.create_namespaced_secret(OPERATOR_NS, secret)
    for name in NODES:
        apply(bed, node_manifest(name))
    for name in OFFERS:
        apply(bed, offer_manifest(name))
    operator = Operator(bed, log_dir, env)
    operator.start()
    try:
        wait_for(lambda: all(_ready(hub, n) for n in NODES), 60, "every ComputeNode Ready")
        wait_for(lambda: all(_selling(hub, o) for o in OFFERS), 60, "every ComputeOffer to show its cards")
        yield operator
    finally:
        operator.stop()


def _selling(api: client.ApiClient, name: str) -> bool:
    offer = custom(api).get_cluster_custom_object(GROUP, VERSION, "computeoffers", name)
    return bool((offer.get("status") or {}).get("cardsTotal"))


def _ready(api: client.ApiClient, name: str) -> bool:
    node = custom(api).get_cluster_custom_object(GROUP, VERSION, "computenodes", name)
    conds = {c["type"]: c["status"] for c in (node.get("status") or {}).get("conditions", [])}
    return conds.get("Ready") == "True"


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def dump(obj: Any) -> str:
    return yaml.safe_dump(obj, sort_keys=False)

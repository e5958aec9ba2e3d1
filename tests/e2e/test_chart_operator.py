"""The hub chart's Deployment, run from the operator's image the way a kubelet would run it.

hack/run-chart-pods takes the Deployment that `helm template` renders and runs each replica's
container from the image built from this working tree (a chroot into the unpacked image, as the
pod's user, with its command, args, env, volumes and a token of the chart's own ServiceAccount
from the TokenRequest API). Two replicas, under the RBAC that `helm install` gave that
ServiceAccount and nothing else, must dispatch, meter and fail over as the local-process tests
show the operator does; the admin kubeconfig serves only the test's own setup and checks.
"""

from __future__ import annotations

import base64
import contextlib
import importlib.machinery
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
import urllib.parse
import uuid
from decimal import Decimal
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml
from kubernetes import client

from tests import testbed as tb
from tests.e2e import market as m
from tests.e2e.test_failover import _jobs, _metric
from tests.e2e.test_metering import JOBS, check_against_member_clocks, run_jobs, truth

pytestmark = pytest.mark.e2e

CHART = m.REPO / "charts" / "interconnect-hub"
SA_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
RUNS = m.REPO / "build" / "chart-pods" / "e2e"
"""Each run's pods (logs, container specs, status) and summary.json: the last 5 runs are kept."""
# The session market's pace (tests/e2e/market.py), through the chart's values; the chart's own RBAC.
VALUES = ["--set", "crds.install=false", "--set", "replicaCount=2",
          "--set", "settings.heartbeatSeconds=2", "--set", "settings.meteringIntervalSeconds=2",
          "--set", "settings.notReadyAfterSeconds=8", "--set", "settings.rePlaceAfterSeconds=15",
          "--set", "settings.peeringLifetimeSeconds=12"]
ACTIVE = "interconnect_operator_active"


def _load_harness() -> ModuleType:
    path = m.REPO / "hack" / "run-chart-pods"
    loader = importlib.machinery.SourceFileLoader("run_chart_pods", str(path))
    spec = importlib.util.spec_from_loader("run_chart_pods", loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["run_chart_pods"] = module
    loader.exec_module(module)
    return module


cp = _load_harness()


def helm(bed: tb.Testbed, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run([bed.helm, "--kubeconfig", str(bed.hub.kubeconfig), "--kube-context", bed.hub.context,
                           *args], capture_output=True, text=True, check=check)


@pytest.fixture(scope="module")
def image() -> Any:
    """The image of this working tree, built by hack/build-image unless its inputs are unchanged."""
    if os.geteuid() != 0:
        pytest.skip("running the image's root file system needs root (mounts, chroot, namespaces)")
    start = time.monotonic()
    built = cp.ensure_image()
    print(f"\nimage {built.tag} {built.digest} ready after {time.monotonic() - start:.0f}s")
    return built


def _state_dir(release: str) -> Path:
    RUNS.mkdir(parents=True, exist_ok=True)
    for old in sorted(RUNS.iterdir(), key=lambda p: p.stat().st_mtime)[:-4]:
        shutil.rmtree(old, ignore_errors=True)
    state = RUNS / f"{time.strftime('%Y%m%d-%H%M%S')}-{release}"
    state.mkdir()
    return state


def _roles(pods: Any) -> dict[str, float] | None:
    """Each replica's interconnect_operator_active, once exactly one of them is active."""
    values = {r.name: _metric(r.ports["metrics"], ACTIVE) for r in pods.replicas if r.running}
    return values if sorted(values.values(), key=lambda v: -1 if v is None else v) == [0, 1] else None


def _environ(pid: int) -> dict[str, str]:
    entries = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(e.decode(errors="replace").split("=", 1) for e in entries if b"=" in e)


def _pem_markers(pem: bytes) -> list[bytes]:
    """Base64 lines that only this PEM object holds: a certificate's signature (its middle holds
    names that other certificates share), a key's middle."""
    body = [line for line in pem.splitlines() if line and not line.startswith(b"-----")]
    lines = body[-3:-1] if b"CERTIFICATE-----" in pem else body[len(body) // 2:len(body) // 2 + 2]
    return [line for line in lines if len(line) >= 40]


def _user_markers(config: dict[str, Any]) -> list[bytes]:
    """What only the first user of a kubeconfig holds: its client key and certificate, or token."""
    user = config["users"][0]["user"]
    markers: list[bytes] = []
    for key in ("client-certificate", "client-key"):
        if user.get(key):
            markers += _pem_markers(Path(user[key]).read_bytes())
        elif user.get(f"{key}-data"):
            markers += _pem_markers(base64.b64decode(user[f"{key}-data"]))
    if user.get("token"):
        markers.append(user["token"].encode())
    return markers


def _credentials_in(root: Path, server: str, hub_only: list[bytes], members: list[bytes]) -> dict[str, list[str]]:
    """Files under a container's root (as /proc/<pid>/root shows it, mounts included), by what they
    hold: the hub admin's credential or a kubeconfig naming the hub (``hub``); a member's credential,
    from the kubeconfig Secrets the chart's RBAC lets the operator read (``member``)."""
    address = urllib.parse.urlsplit(server).netloc.encode()
    found: dict[str, list[str]] = {"hub": [], "member": []}
    for directory, subdirs, files in os.walk(root):
        if Path(directory) == root:
            subdirs[:] = [d for d in subdirs if d not in ("proc", "sys", "dev")]
        for name in files:
            path = Path(directory) / name
            try:
                if not path.is_file() or path.is_symlink() or path.stat().st_size > 20_000_000:
                    continue
                data = path.read_bytes()
            except OSError:
                continue
            rel = "/" + str(path.relative_to(root))
            kubeconfig = b"clusters:" in data and b"users:" in data and b"contexts:" in data
            if any(mk in data for mk in hub_only) or (kubeconfig and address in data):
                found["hub"].append(rel)
            elif kubeconfig or any(mk in data for mk in members):
                found["member"].append(rel)
    return found


def _forbidden(pods: Any) -> list[str]:
    """Log lines of the replicas that tell of a request the API server refused (after the time stamp)."""
    lines = []
    for r in pods.replicas:
        for line in r.logs().splitlines():
            if re.search(r"\b403\b|forbidden", re.sub(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ ", "", line), re.I):
                lines.append(f"{r.name}: {line.strip()[:400]}")
    return lines


class Leadership(threading.Thread):
    """Which replicas say they are active, and the highest epoch among them, every half second."""

    def __init__(self, pods: Any) -> None:
        super().__init__(name="leadership", daemon=True)
        self.pods = pods
        self.changes: list[tuple[float, tuple[str, ...], float | None]] = []
        self.most_active = 0
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.wait(0.5):
            active = tuple(r.name for r in self.pods.replicas
                           if r.running and _metric(r.ports["metrics"], ACTIVE) == 1)
            epochs = [_metric(r.ports["metrics"], "interconnect_leader_epoch") for r in self.pods.replicas
                      if r.name in active]
            state = (active, max((e for e in epochs if e is not None), default=None))
            self.most_active = max(self.most_active, len(active))
            if not self.changes or self.changes[-1][1:] != state:
                self.changes.append((time.monotonic(), *state))

    def stop(self) -> None:
        self._stop_event.set()
        if self.is_alive():
            self.join(5)

    def quiet_for(self) -> float:
        """Seconds since the last change, when exactly one replica is active (else 0)."""
        if not self.changes or len(self.changes[-1][1]) != 1:
            return 0.0
        return time.monotonic() - self.changes[-1][0]

    def since(self, start: float) -> list[tuple[float, tuple[str, ...], float | None]]:
        return [(round(t - start, 1), active, epoch) for t, active, epoch in self.changes if t >= start - 1]


def _diagnosis(pods: Any) -> str:
    parts = [json.dumps(pods.status(), indent=1, default=str)]
    for r in pods.replicas:
        tail = "\n".join(r.logs().splitlines()[-40:])
        parts.append(f"--- {r.name} (last lines)\n{tail}")
    return "\n".join(parts)


def _lease_holder(hub: client.ApiClient) -> str | None:
    with contextlib.suppress(client.exceptions.ApiException):
        lease = client.CoordinationV1Api(hub).read_namespaced_lease("interconnect-leader", m.OPERATOR_NS)
        return lease.spec.holder_identity  # type: ignore[no-any-return]
    return None


def _ensure_peering_crd(bed: tb.Testbed) -> None:
    """kopf's ClusterKopfPeering CRD: the chart's post-install hook creates the peering object."""
    crd = CHART / "files" / "crds" / "clusterkopfpeerings.kopf.dev.yaml"
    subprocess.run(bed.kubectl_cmd("hub", "apply", "--server-side", "--force-conflicts", "-f", str(crd)),
                   check=True, capture_output=True)
    subprocess.run(bed.kubectl_cmd("hub", "wait", "--for=condition=Established", "--timeout=60s",
                                   "crd/clusterkopfpeerings.kopf.dev"), check=True, capture_output=True)


def _submit(hub: client.ApiClient, ns: str, name: str, **spec: Any) -> None:
    m.custom(hub).create_namespaced_custom_object(m.GROUP, m.VERSION, ns, "computejobs",
                                                  m.job_manifest(name, ns, **spec))


def _ran_once_and_metered(bed: tb.Testbed, ns: str, names: list[str], member: str = "member-1") -> None:
    for name in names:
        job = m.wait_phase(bed, ns, name, {"Succeeded", "Failed"}, 120)
        status, uid = job["status"], job["metadata"]["uid"]
        assert status["phase"] == "Succeeded", f"{name}: {m.dump(status)}"
        assert status["attempts"] == 1, f"{name}: {m.dump(status)}"
        jobs = [j.metadata.name for mm in ("member-1", "member-2", "member-3") for j in _jobs(bed, mm, uid)]
        assert jobs == [f"ic-{uid}-1"], f"{name}: member Jobs {jobs}"
        real, pods = truth(bed, member, uid)
        metered = Decimal(status["usage"]["cardHours"])
        assert abs(metered - real) <= Decimal(pods) / 3600, f"{name}: metered {metered}, the member says {real}"


@pytest.mark.timeout(1500)
def test_two_replicas_from_the_chart_and_the_image_dispatch_meter_and_fail_over_under_the_chart_s_rbac(
        testbed: tb.Testbed, operator: m.Operator, image: Any) -> None:
    hub = testbed.api("hub")
    _ensure_peering_crd(testbed)
    for old in helm(testbed, "list", "-n", m.OPERATOR_NS, "-q").stdout.split():
        if old.startswith("pods-"):  # left by an interrupted run
            helm(testbed, "uninstall", old, "-n", m.OPERATOR_NS, "--wait", check=False)
    release = f"pods-{uuid.uuid4().hex[:6]}"
    harness_hub = cp.Hub(testbed.hub.kubeconfig, testbed.hub.context, testbed.kubectl)
    deployment = cp.render_deployment(release, m.OPERATOR_NS, VALUES, harness_hub.version(), helm=testbed.helm)
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["image"].endswith(f":{image.tag}"), "the chart's default image tag is the image's"
    state = _state_dir(release)
    pods = cp.ChartPods(deployment, hub=harness_hub, image=image, state=state)
    record: dict[str, Any] = {"image": image.digest}
    helm(testbed, "install", release, str(CHART), "-n", m.OPERATOR_NS, *VALUES)
    leadership = Leadership(pods)
    operator.stop()
    try:
        pods.start()
        leadership.start()
        assert len(pods.replicas) == 2
        try:
            roles = m.wait_for(lambda: _roles(pods), 120, "one replica active, the other on standby")
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{_diagnosis(pods)}") from None
        active = next(r for r in pods.replicas if roles[r.name] == 1)
        standby = next(r for r in pods.replicas if r is not active)
        probes = {r.name: {k: pods.call_probe(r, k) for k in r.probes} for r in pods.replicas}
        record.update(roles=roles, probes=probes, rewrites={r.name: r.rewrites for r in pods.replicas})
        print(f"\nroles {roles}; probes now {probes}; port rewrites {record['rewrites']}")
        assert all(ok for per in probes.values() for ok, _ in per.values()), probes

        # Nothing but the ServiceAccount token: no kubeconfig in the environment or the file system.
        admin = yaml.safe_load(testbed.hub.kubeconfig.read_text())
        server = admin["clusters"][0]["cluster"]["server"]
        members = [mk for member in ("member-1", "member-2", "member-3")
                   for mk in _user_markers(yaml.safe_load(m.member_kubeconfig(testbed, member)))]
        hub_only = [mk for mk in _user_markers(admin) if mk not in members]
        assert hub_only, "the members' kubeconfig Secrets hold the hub admin's credential: nothing to tell apart"
        for r in pods.replicas:
            assert r.pid, r.name
            env = _environ(r.pid)
            assert "KUBECONFIG" not in env, env
            assert (env["POD_ID"], env["HOSTNAME"], env["POD_NAMESPACE"]) == (r.name, r.name, m.OPERATOR_NS)
            host = urllib.parse.urlsplit(server)
            assert (env["KUBERNETES_SERVICE_HOST"], env["KUBERNETES_SERVICE_PORT"]) == (host.hostname, str(host.port))
            root = Path(f"/proc/{r.pid}/root")  # the container's root, its mounts included
            token = cp.resolve_in_root(root, f"{SA_DIR}/token").read_text()
            ca_path = state / f"{r.name}-ca.crt"
            ca_path.write_bytes(cp.resolve_in_root(root, f"{SA_DIR}/ca.crt").read_bytes())
            whoami = subprocess.run([testbed.kubectl, "--kubeconfig", "/dev/null", "--server", server,
                                     "--certificate-authority", str(ca_path), "--token", token, "auth", "whoami",
                                     "-o", "json"], capture_output=True, text=True, check=True)
            user = json.loads(whoami.stdout)["status"]["userInfo"]["username"]
            assert user == f"system:serviceaccount:{m.OPERATOR_NS}:interconnect-hub", user
            found = _credentials_in(root, server, hub_only, members)
            assert not found["hub"], f"{r.name} holds a credential for the hub other than its token: {found['hub']}"
            record[r.name] = {"uid": Path(f"/proc/{r.pid}").stat().st_uid, "user": user,
                              "memberCredentialFiles": found["member"]}
            print(f"{r.name}: {record[r.name]}")

        # Dispatch and metering, from the members' own clocks.
        ns = m.tenant(hub)
        try:
            jobs = run_jobs(testbed, ns, JOBS)
            check_against_member_clocks(testbed, jobs)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{_diagnosis(pods)}") from None
        assert _metric(standby.ports["metrics"], "interconnect_placements_total") == 0, "the standby placed work"
        assert _lease_holder(hub) == active.name

        # The active replica's container is killed (SIGKILL) while jobs arrive: the standby takes over.
        names = [f"burst-{i:02d}" for i in range(24)]
        killed_at = 0.0
        for i, name in enumerate(names):
            if i == 10:
                pods.kill(active.name, hold=True)
                killed_at = time.monotonic()
            _submit(hub, ns, name, origin="CN-GZ", tier="1ms", gpus=1, max_price="10", run_for="2s")
        try:
            m.wait_for(lambda: _metric(standby.ports["metrics"], ACTIVE) == 1, 90, "the standby to take over")
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{_diagnosis(pods)}") from None
        takeover = time.monotonic() - killed_at
        try:
            _ran_once_and_metered(testbed, ns, names)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{_diagnosis(pods)}") from None
        assert _lease_holder(hub) == standby.name
        record["takeoverSeconds"] = round(takeover, 1)
        print(f"SIGKILL of the active replica's container -> the standby active after {takeover:.1f}s")

        # The kubelet restarts the killed container in the same pod: one replica active again, and
        # work placed after that still runs once.
        # What the killed container left in the pod's emptyDir /tmp survives its restart, as on a node
        # (kubernetes_asyncio writes a kubeconfig's *-data, the members' keys too, to temporary files
        # and deletes them only at a clean exit): recorded, for the report.
        empty_dirs = [v["name"] for v in deployment["spec"]["template"]["spec"].get("volumes") or []
                      if "emptyDir" in v]
        record["leftInEmptyDirsByTheKilledContainer"] = sorted(
            f"{name}/{p.name}" for name in empty_dirs for p in (active.directory / "volumes" / name).iterdir())
        restarted_at = time.monotonic()
        pods.restart(active.name)
        m.wait_for(lambda: pods.call_probe(active, "readiness")[0], 90, "the restarted replica ready")
        m.wait_for(lambda: _roles(pods), 90, "one active replica after the restart")
        after = [f"after-{i}" for i in range(4)]
        for name in after:
            _submit(hub, ns, name, origin="CN-GZ", tier="1ms", gpus=1, max_price="10", run_for="2s")
        try:
            _ran_once_and_metered(testbed, ns, after)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{_diagnosis(pods)}") from None
        assert _environ(active.pid)["POD_ID"] == active.name and active.restarts == 1

        status = pods.status()
        for row in status:
            assert row["probes"]["liveness"]["ok"] is not False, row
            assert not [n for n in row["notes"] if "probe failed" in n], row["notes"]
        print("pods: " + json.dumps([{k: row[k] for k in ("pod", "restartCount", "ports", "rewrites", "probes",
                                                          "exits", "peakMemoryBytes", "notes")} for row in status]))
        refused = _forbidden(pods)
        assert not refused, "the chart's RBAC refused the operator:\n" + "\n".join(refused)

        # Leadership settles after the restart: one replica active, no change for 20 s.
        try:
            m.wait_for(lambda: leadership.quiet_for() >= 20, 120, "one active replica and no change for 20s")
        finally:
            record.update(afterRestart=leadership.since(restarted_at), leaseHolder=_lease_holder(hub),
                          mostActiveAtOnce=leadership.most_active)
            print(f"after the restart (s, active, epoch): {record['afterRestart']}; Lease: {record['leaseHolder']}")
    finally:
        leadership.stop()
        record["leadership"] = leadership.since(leadership.changes[0][0] if leadership.changes else 0)
        pods.stop()
        record["pods"] = pods.status()
        (state / "summary.json").write_text(json.dumps(record, indent=1, default=str))
        helm(testbed, "uninstall", release, "-n", m.OPERATOR_NS, "--wait", check=False)
        operator.start()
        m.wait_for(lambda: _metric(int(operator.extra_env.get("INTERCONNECT_METRICS_PORT", "0")), ACTIVE) == 1,
                   90, "the session operator back")

"""Member loss and operator failover on the test bed: re-placement, fencing, lost time, takeover.

A member is "lost" the way it happens in production: its API server stops answering (SIGSTOP
freezes the process; TCP connections stay open and silent), and comes back (SIGCONT) with its
old pods still there.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from tests import testbed as tb
from tests.e2e import market as m
from tests.e2e.proxy import CuttableProxy
from tests.e2e.test_metering import truth

pytestmark = pytest.mark.e2e

MICRO = dt.timedelta(microseconds=1)
# A100 or H800 from Hubei within 20 ms: gz-a100 (8.00) first; when member-1 is lost, sh-h800 (28.00).
JOURNAL = "interconnect.dev/dispatch-journal=true"
MOVABLE = dict(origin="CN-HB", tier="20ms", gpus=1, max_price="30", models=[m.A100, m.H800])


@pytest.fixture()
def local_testbed() -> None:
    if os.environ.get("INTERCONNECT_KUBECONFIG_DIR"):
        pytest.skip("freezing a member's API server needs the local test bed (its process ids)")


@pytest.fixture()
def frozen_member_1(local_testbed: None) -> Iterator[Any]:
    """A function that freezes member-1's kube-apiserver; it is always thawed at the end."""
    pid = tb.component_pid("member-1", "kube-apiserver")
    frozen = []

    def freeze() -> float:
        os.kill(pid, signal.SIGSTOP)
        frozen.append(True)
        return time.monotonic()

    yield freeze
    if frozen:
        os.kill(pid, signal.SIGCONT)


def _pods(bed: tb.Testbed, member: str, uid: str) -> list[client.V1Pod]:
    return client.CoreV1Api(bed.api(member)).list_namespaced_pod(
        m.WORK_NS, label_selector=f"interconnect.dev/job-uid={uid}").items


def _jobs(bed: tb.Testbed, member: str, uid: str) -> list[client.V1Job]:
    return client.BatchV1Api(bed.api(member)).list_namespaced_job(
        m.WORK_NS, label_selector=f"interconnect.dev/job-uid={uid}").items


def _start(pod: client.V1Pod) -> dt.datetime:
    state = pod.status.container_statuses[0].state
    return (state.running or state.terminated).started_at  # type: ignore[no-any-return]


def _gpus(pod: client.V1Pod) -> int:
    return sum(int((c.resources.limits or {}).get("nvidia.com/gpu", 0)) for c in pod.spec.containers)


def _finished_micro(pods: list[client.V1Pod]) -> int:
    micro = 0
    for pod in pods:
        term = pod.status.container_statuses[0].state.terminated
        micro += _gpus(pod) * ((term.finished_at - term.started_at) // MICRO)
    return micro


def _hours(micro: int) -> Decimal:
    return Decimal(micro) / Decimal(3_600_000_000)


def test_a_frozen_member_s_jobs_are_re_placed_fenced_and_billed_up_to_the_loss(
        testbed: tb.Testbed, operator: m.Operator, frozen_member_1: Any) -> None:
    hub = testbed.api("hub")
    ns = m.tenant(hub)
    names = [f"move-{i}" for i in range(10)]
    for name in names:
        m.custom(hub).create_namespaced_custom_object(m.GROUP, m.VERSION, ns, "computejobs", m.job_manifest(
            name, ns, run_for="40s", failurePolicy={"rePlaceAfterSeconds": 4}, **MOVABLE))
    m.custom(hub).create_namespaced_custom_object(m.GROUP, m.VERSION, ns, "computejobs", m.job_manifest(
        "run-once", ns, origin="CN-HB", tier="20ms", gpus=1, max_price="30", models=[m.A100], run_for="40s",
        failurePolicy={"rePlace": "Never"}))
    everything = [*names, "run-once"]
    for name in everything:
        _wait_running(testbed, ns, name)
    uids = {n: m.get_job(hub, ns, n)["metadata"]["uid"] for n in everything}
    for name in everything:
        assert m.get_job(hub, ns, name)["status"]["placement"]["node"] == "gz-regional"
    # The pods' start times on member-1, as its own API server reports them before it freezes.
    first_starts = {n: {p.metadata.uid: (_start(p), _gpus(p)) for p in _pods(testbed, "member-1", uids[n])}
                    for n in everything}
    assert all(len(s) == 1 for s in first_starts.values())

    frozen_at = frozen_member_1()

    def re_placed() -> bool:
        return all((m.get_job(hub, ns, n).get("status") or {}).get("attempts") == 2 for n in names)

    m.wait_for(re_placed, 120, "the 10 jobs to be re-placed")
    re_placement_seconds = time.monotonic() - frozen_at
    print(f"\nfreeze -> all 10 re-placed: {re_placement_seconds:.1f}s")
    for name in names:
        status = m.get_job(hub, ns, name)["status"]
        assert status["placement"]["node"] == "sh-finance", status["placement"]
        first = status["attemptHistory"][0]
        assert (first["node"], first["outcome"]) == ("gz-regional", "NodeLost"), first
    m.wait_for(lambda: m.phase_of(hub, ns, "run-once") == "Failed", 60, "the rePlace: Never job to fail")
    once = m.get_job(hub, ns, "run-once")["status"]
    failed = next(c for c in once["conditions"] if c["type"] == "Failed")
    assert failed["reason"] == "NodeLost" and "Never" in failed["message"], failed
    assert once["attempts"] == 1
    node = m.custom(hub).get_cluster_custom_object(m.GROUP, m.VERSION, "computenodes", "gz-regional")
    ready = next(c for c in node["status"]["conditions"] if c["type"] == "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "MemberUnavailable"), ready
    events = client.CoreV1Api(hub).list_namespaced_event(ns).items
    assert {e.involved_object.name for e in events if e.reason == "NodeLost"} == set(everything)

    os.kill(tb.component_pid("member-1", "kube-apiserver"), signal.SIGCONT)
    thawed_at = time.monotonic()
    # Fencing: every superseded attempt's Job and pod is gone from member-1.
    m.wait_for(lambda: not any(_jobs(testbed, "member-1", u) or _pods(testbed, "member-1", u)
                               for u in uids.values()), 90, "member-1 to be fenced")
    print(f"thaw -> member-1 fenced: {time.monotonic() - thawed_at:.1f}s")
    m.wait_for(lambda: next(c for c in m.custom(hub).get_cluster_custom_object(
        m.GROUP, m.VERSION, "computenodes", "gz-regional")["status"]["conditions"]
        if c["type"] == "Ready")["status"] == "True", 60, "gz-regional Ready again")

    for name in names:
        m.wait_for(lambda n=name: m.phase_of(hub, ns, n) == "Succeeded", 120, f"{name} to succeed")
    for name in names:
        job = m.get_job(hub, ns, name)
        status, uid = job["status"], uids[name]
        assert not _jobs(testbed, "member-1", uid), "no superseded Job came back after the fence"
        second = _pods(testbed, "member-2", uid)
        assert len(second) == 1 and len(_jobs(testbed, "member-2", uid)) == 1
        lost_since = dt.datetime.fromisoformat(status["attemptHistory"][0]["finishedAt"].replace("Z", "+00:00"))
        charged_first = sum(gpus * max(0, (lost_since - start) // MICRO)
                            for start, gpus in first_starts[name].values())
        expected = charged_first + _finished_micro(second)
        charged = sum(p["gpus"] * p["microseconds"] for p in status["usage"]["pods"])
        assert charged == expected, (name, status["usage"], expected)
        assert Decimal(status["usage"]["cardHours"]) == _hours(expected).quantize(Decimal("1e-12"))
        lost = Decimal(status["usage"]["lostCardHours"])
        assert Decimal(0) < lost <= _hours(int((time.monotonic() - frozen_at) * 1e6)), status["usage"]
        by_attempt = {p["attempt"]: p for p in status["usage"]["pods"]}
        assert by_attempt[1]["microseconds"] == charged_first and by_attempt[1]["lostMicroseconds"] > 0
    # The run-once job's Job is gone too, its time split the same way and never re-run.
    assert not _jobs(testbed, "member-1", uids["run-once"])
    assert not any(_jobs(testbed, member, uids["run-once"]) for member in ("member-2", "member-3"))
    assert Decimal(m.get_job(hub, ns, "run-once")["status"]["usage"]["lostCardHours"]) > 0


def test_a_placement_only_in_the_dispatch_journal_survives_a_crash_and_runs_once_where_placed(
        testbed: tb.Testbed, operator: m.Operator, frozen_member_1: Any) -> None:
    """The operator is killed after the placement is durable (journal) but before the job's status
    has it: the restarted operator must resume it on the member it chose, not place it afresh."""
    hub = testbed.api("hub")
    ns = m.tenant(hub)
    frozen_member_1()  # member-1 is silent: the member Job's create hangs there, the status waits
    m.custom(hub).create_namespaced_custom_object(m.GROUP, m.VERSION, ns, "computejobs", m.job_manifest(
        "journaled", ns, origin="CN-HB", tier="20ms", gpus=1, max_price="30", models=[m.A100], run_for="3s"))
    uid = m.get_job(hub, ns, "journaled")["metadata"]["uid"]
    core = client.CoreV1Api(hub)

    def journal_entry() -> dict[str, Any] | None:
        for cm in core.list_namespaced_config_map(m.OPERATOR_NS, label_selector=JOURNAL).items:
            if uid in (cm.data or {}):
                return json.loads(cm.data[uid])  # type: ignore[no-any-return]
        return None

    entry = m.wait_for(journal_entry, 15, "the placement in the dispatch journal", interval=0.1)
    assert entry["placement"]["node"] == "gz-regional" and entry["attempts"] == 1, entry
    operator.kill()
    status = m.get_job(hub, ns, "journaled").get("status") or {}
    assert not status.get("placement"), f"the status already had the placement: {status}"
    os.kill(tb.component_pid("member-1", "kube-apiserver"), signal.SIGCONT)
    operator.start()
    m.wait_for(lambda: m.phase_of(hub, ns, "journaled") == "Succeeded", 120, "the journaled job to succeed")
    job = m.get_job(hub, ns, "journaled")
    assert job["status"]["attempts"] == 1 and job["status"]["placement"]["node"] == "gz-regional", job["status"]
    assert job["status"]["placement"]["placedAt"] == entry["placement"]["placedAt"]
    jobs = {member: [j.metadata.name for j in _jobs(testbed, member, uid)]
            for member in ("member-1", "member-2", "member-3")}
    assert jobs == {"member-1": [f"ic-{uid}-1"], "member-2": [], "member-3": []}, jobs
    m.wait_for(lambda: journal_entry() is None, 30, "the journal entry to go once the status holds it")
    logs = "".join(p.read_text(errors="replace") for p in operator.log_dir.glob(f"{operator.name}-*.log"))
    assert "journaled: attempt 1 recovered from dispatch journal" in logs


def _wait_running(bed: tb.Testbed, ns: str, name: str) -> None:
    """Wait for a job to run; on a timeout, say where it stood (its status and its member pods)."""
    hub = bed.api("hub")
    try:
        m.wait_for(lambda: m.phase_of(hub, ns, name) == "Running", 90, f"{name} running")
    except AssertionError as exc:
        job = m.get_job(hub, ns, name)
        pods = [(p.metadata.name, p.status.phase, p.spec.node_name)
                for p in _pods(bed, "member-1", job["metadata"]["uid"])]
        raise AssertionError(f"{exc}; status: {job.get('status')}; member-1 pods: {pods}") from None


def _metric(port: int, name: str) -> float | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as r:
            text = r.read().decode()
    except OSError:
        return None
    values = [float(line.split()[-1]) for line in text.splitlines()
              if line.startswith(name) and not line.startswith("#")]
    return sum(values) if values else 0.0


def _ensure_peering(bed: tb.Testbed) -> None:
    crd = m.REPO / "charts" / "interconnect-hub" / "files" / "crds" / "clusterkopfpeerings.kopf.dev.yaml"
    subprocess.run(bed.kubectl_cmd("hub", "apply", "--server-side", "-f", str(crd)), check=True, capture_output=True)
    subprocess.run(bed.kubectl_cmd("hub", "wait", "--for=condition=Established", "--timeout=60s",
                                   "crd/clusterkopfpeerings.kopf.dev"), check=True, capture_output=True)
    m.apply(bed, {"apiVersion": "kopf.dev/v1", "kind": "ClusterKopfPeering", "metadata": {"name": "interconnect"}})


def test_the_standby_takes_over_when_the_active_replica_is_killed_and_nothing_runs_twice(
        testbed: tb.Testbed, operator: m.Operator, tmp_path: Any) -> None:
    hub = testbed.api("hub")
    _ensure_peering(testbed)
    operator.stop()
    env = {"INTERCONNECT_PEERING_LIFETIME_SECONDS": "12"}
    ports = {"active": m.free_port(), "standby": m.free_port()}
    first = m.Operator(testbed, tmp_path, {**env, "INTERCONNECT_METRICS_PORT": str(ports["active"])},
                       priority=200, name="replica-a")
    second = m.Operator(testbed, tmp_path, {**env, "INTERCONNECT_METRICS_PORT": str(ports["standby"])},
                        priority=100, name="replica-b")
    try:
        first.start()
        m.wait_for(lambda: _metric(ports["active"], "interconnect_operator_active") == 1, 60, "replica A active")
        second.start()
        m.wait_for(lambda: _metric(ports["standby"], "interconnect_operator_active") == 0, 60,
                   "replica B up, on standby")
        ns = m.tenant(hub)
        names = [f"burst-{i:02d}" for i in range(30)]
        killed_at = 0.0
        for i, name in enumerate(names):
            if i == 12:
                assert _metric(ports["standby"], "interconnect_placements_total") == 0, "the standby placed work"
                first.kill()
                killed_at = time.monotonic()
            m.custom(hub).create_namespaced_custom_object(m.GROUP, m.VERSION, ns, "computejobs", m.job_manifest(
                name, ns, origin="CN-GZ", tier="1ms", gpus=1, max_price="10", run_for="2s"))
        m.wait_for(lambda: _metric(ports["standby"], "interconnect_operator_active") == 1, 60, "replica B active")
        takeover = time.monotonic() - killed_at
        for name in names:
            m.wait_for(lambda n=name: m.phase_of(hub, ns, n) == "Succeeded", 120, f"{name} to succeed")
        first_after = min(dt.datetime.fromisoformat(m.get_job(hub, ns, n)["status"]["placement"]["placedAt"]
                                                    .replace("Z", "+00:00")) for n in names[12:])
        print(f"\nSIGKILL of the active replica -> standby active: {takeover:.1f}s "
              f"(peering lifetime 12s); first placement after the kill at {first_after.isoformat()}")
        for name in names:
            job = m.get_job(hub, ns, name)
            assert job["status"]["attempts"] == 1, job["status"]
            uid = job["metadata"]["uid"]
            jobs = [j.metadata.name for member in ("member-1", "member-2", "member-3")
                    for j in _jobs(testbed, member, uid)]
            assert jobs == [f"ic-{uid}-1"], f"{name}: member Jobs {jobs}"
    finally:
        for replica in (first, second):
            replica.stop()
        operator.start()
        m.wait_for(lambda: _metric(int(operator.extra_env.get("INTERCONNECT_METRICS_PORT", "0")),
                                   "interconnect_operator_active") == 1, 60, "the session operator back")


def _proxied_kubeconfig(bed: tb.Testbed, proxy: CuttableProxy, path: Path) -> Path:
    """The hub's kubeconfig with its API server reached through ``proxy`` (same host name, so the
    server's certificate still matches)."""
    config = yaml.safe_load(bed.hub.kubeconfig.read_text())
    for cluster in config["clusters"]:
        server = urllib.parse.urlsplit(cluster["cluster"]["server"])
        cluster["cluster"]["server"] = f"{server.scheme}://{server.hostname}:{proxy.port}"
    path.write_text(yaml.safe_dump(config))
    return path


def _hub_address(bed: tb.Testbed) -> tuple[str, int]:
    config = yaml.safe_load(bed.hub.kubeconfig.read_text())
    server = urllib.parse.urlsplit(config["clusters"][0]["cluster"]["server"])
    assert server.hostname is not None and server.port is not None
    return server.hostname, server.port


def test_a_replica_cut_off_from_the_hub_stops_and_never_touches_the_new_leader_s_work(
        testbed: tb.Testbed, operator: m.Operator, tmp_path: Path) -> None:
    """Split brain: the leader loses the hub (a proxy the test closes) but still reaches every
    member. It must stop within its renew deadline; the standby takes over with a higher epoch;
    the old leader deletes none of the new leader's member Jobs; every job runs once per attempt
    and is billed exactly from the member pods' own timestamps."""
    hub = testbed.api("hub")
    _ensure_peering(testbed)
    operator.stop()
    proxy = CuttableProxy(*_hub_address(testbed))
    env = {"INTERCONNECT_PEERING_LIFETIME_SECONDS": "12"}
    ports = {"a": m.free_port(), "b": m.free_port()}
    first = m.Operator(testbed, tmp_path, {**env, "INTERCONNECT_METRICS_PORT": str(ports["a"])}, priority=200,
                       name="split-a", kubeconfig=_proxied_kubeconfig(testbed, proxy, tmp_path / "proxied.kubeconfig"))
    second = m.Operator(testbed, tmp_path, {**env, "INTERCONNECT_METRICS_PORT": str(ports["b"])}, priority=100,
                        name="split-b")
    try:
        first.start()
        m.wait_for(lambda: _metric(ports["a"], "interconnect_operator_active") == 1, 60, "replica A active")
        second.start()
        m.wait_for(lambda: _metric(ports["b"], "interconnect_operator_active") == 0, 60, "replica B on standby")
        epoch_a = _metric(ports["a"], "interconnect_leader_epoch")
        assert epoch_a, "the leader names its epoch"
        ns = m.tenant(hub)
        spec = dict(origin="CN-GZ", tier="1ms", gpus=1, max_price="10")
        before = [f"split-before-{i}" for i in range(6)]
        for name in before:
            m.custom(hub).create_namespaced_custom_object(m.GROUP, m.VERSION, ns, "computejobs", m.job_manifest(
                name, ns, run_for="50s", **spec))
        for name in before:
            m.wait_phase(testbed, ns, name, {"Running"}, 60)

        proxy.cut()
        cut_at = time.monotonic()
        m.wait_for(lambda: _metric(ports["a"], "interconnect_operator_active") == 0, 30,
                   "replica A, cut off from the hub, to stop leading")
        stopped = time.monotonic() - cut_at
        assert _metric(ports["b"], "interconnect_operator_active") == 0, "B led while A still did"
        m.wait_for(lambda: _metric(ports["b"], "interconnect_operator_active") == 1, 90, "replica B to take over")
        takeover = time.monotonic() - cut_at
        epoch_b = _metric(ports["b"], "interconnect_leader_epoch")
        assert epoch_b is not None and epoch_a is not None and epoch_b > epoch_a
        print(f"\nhub cut off from the leader: it stopped leading after {stopped:.1f}s; the standby led after "
              f"{takeover:.1f}s (lease 10s, peering lifetime 12s); epochs {epoch_a:.0f} -> {epoch_b:.0f}")

        # The new leader sees changes made after it took over (kopf's handlers reach its controller).
        m.custom(hub).patch_cluster_custom_object(m.GROUP, m.VERSION, "computeoffers", "sh-h800",
                                                  {"spec": {"cards": 12}})
        try:
            m.wait_for(lambda: (m.custom(hub).get_cluster_custom_object(m.GROUP, m.VERSION, "computeoffers",
                                                                        "sh-h800").get("status") or {})
                       .get("cardsTotal") == 12, 30, "the new leader to see an offer changed after the takeover")
        finally:
            m.custom(hub).patch_cluster_custom_object(m.GROUP, m.VERSION, "computeoffers", "sh-h800",
                                                      {"spec": {"cards": 16}})
        after = [f"split-after-{i}" for i in range(6)]
        for name in after:
            m.custom(hub).create_namespaced_custom_object(m.GROUP, m.VERSION, ns, "computejobs", m.job_manifest(
                name, ns, run_for="20s", **spec))
        created: dict[str, str] = {}
        for name in after:
            job = m.wait_phase(testbed, ns, name, {"Running"}, 60)
            [member_job] = _jobs(testbed, "member-1", job["metadata"]["uid"])
            assert member_job.metadata.labels["interconnect.dev/epoch"] == f"{epoch_b:.0f}"
            created[name] = member_job.metadata.uid
        # The old leader still reaches member-1 and still runs: give it time to do harm.
        time.sleep(10)
        finished = {name: m.wait_phase(testbed, ns, name, {"Succeeded", "Failed"}, 180) for name in before + after}
        for name, job in finished.items():
            status = job["status"]
            assert status["phase"] == "Succeeded", f"{name}: {m.dump(status)}"
            assert status["attempts"] == 1, f"{name}: {m.dump(status)}"
            assert status["leaderEpoch"] == epoch_b, f"{name}: the last status writer is the new leader"
            uid = job["metadata"]["uid"]
            jobs = [j for member in ("member-1", "member-2", "member-3") for j in _jobs(testbed, member, uid)]
            assert [j.metadata.name for j in jobs] == [f"ic-{uid}-1"], f"{name}: member Jobs {jobs}"
            if name in created:
                assert jobs[0].metadata.uid == created[name], f"{name}: the new leader's member Job was replaced"
            real, pods = truth(testbed, "member-1", uid)
            metered = Decimal(status["usage"]["cardHours"])
            assert abs(metered - real) <= Decimal(pods) / 3600, f"{name}: metered {metered}, member says {real}"
        assert "stops leading" in first.log_tail(400)
    finally:
        proxy.cut()
        for replica in (first, second):
            replica.stop()
        operator.start()
        m.wait_for(lambda: _metric(int(operator.extra_env.get("INTERCONNECT_METRICS_PORT", "0")),
                                   "interconnect_operator_active") == 1, 60, "the session operator back")


def test_a_cordoned_node_gets_no_new_work_and_its_running_jobs_finish(
        testbed: tb.Testbed, operator: m.Operator) -> None:
    hub = testbed.api("hub")
    ns = m.tenant(hub)
    a100_only = dict(origin="CN-HB", tier="20ms", gpus=1, max_price="30", models=[m.A100])
    m.custom(hub).create_namespaced_custom_object(m.GROUP, m.VERSION, ns, "computejobs", m.job_manifest(
        "before", ns, run_for="15s", **a100_only))
    m.wait_for(lambda: m.phase_of(hub, ns, "before") == "Running", 60, "before running")

    def cordon(value: bool) -> None:
        m.custom(hub).patch_cluster_custom_object(m.GROUP, m.VERSION, "computenodes", "gz-regional",
                                                  {"spec": {"cordoned": value}})

    cordon(True)
    try:
        # The operator has seen the cordon once the node's offer sells no free card (a job created
        # before that may still be placed there, as a pod may be bound before kubectl cordon lands).
        m.wait_for(lambda: ((m.custom(hub).get_cluster_custom_object(m.GROUP, m.VERSION, "computeoffers", "gz-a100")
                             .get("status") or {}).get("cardsFree")) == 0, 30, "gz-a100 to offer no free card")
        m.custom(hub).create_namespaced_custom_object(m.GROUP, m.VERSION, ns, "computejobs", m.job_manifest(
            "after", ns, run_for="1s", **a100_only))

        def waits_for_cordon() -> str | None:
            status = m.get_job(hub, ns, "after").get("status") or {}
            summary = (status.get("unschedulable") or {}).get("summary", "")
            return summary if status.get("phase") == "Pending" and "cordoned" in summary else None

        print("\n" + m.wait_for(waits_for_cordon, 30, "the new job to wait, naming the cordon"))
        m.wait_for(lambda: m.phase_of(hub, ns, "before") == "Succeeded", 60, "the running job to finish there")
        assert m.phase_of(hub, ns, "after") == "Pending"
    finally:
        cordon(False)
    m.wait_for(lambda: m.phase_of(hub, ns, "after") == "Succeeded", 60, "the job placed once uncordoned")
    assert m.get_job(hub, ns, "after")["status"]["placement"]["node"] == "gz-regional"

"""A dispatched pod as the hub meters it: from the member's pod status, the first start of any of
its containers (init containers and native sidecars included, restarts included) to the last
finish, once the pod is done (issue 21: cards held without paying)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from interconnect.adapters.member import ATTEMPT, JOB_UID, DispatchedPod, project_dispatched_pod
from interconnect.api.v1alpha1 import ComputeJob
from interconnect.core.metering import PodRun, UsageRecord, accrue
from interconnect.services.jobs import JobState, job_state
from interconnect.services.meter import Meter

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)
SECOND = timedelta(seconds=1)
IMAGE = "registry.example.cn/ml/finetune:2.4.0"


def at(offset: timedelta) -> str:
    return (T0 + offset).strftime("%Y-%m-%dT%H:%M:%SZ")


def running(start: timedelta) -> dict[str, Any]:
    return {"running": {"startedAt": at(start)}}


def terminated(start: timedelta, end: timedelta, code: int = 0, reason: str | None = None) -> dict[str, Any]:
    return {"terminated": {"exitCode": code, "reason": reason or ("Completed" if code == 0 else "Error"),
                           "startedAt": at(start), "finishedAt": at(end),
                           "containerID": "containerd://4f1c0a9e2b7d"}}


def waiting(reason: str, message: str | None = None) -> dict[str, Any]:
    return {"waiting": {"reason": reason, **({"message": message} if message else {})}}


def container(name: str, state: dict[str, Any], last: dict[str, Any] | None = None,
              restarts: int = 0) -> dict[str, Any]:
    """A container status as the kubelet writes it (``lastState`` is ``{}`` before any restart)."""
    return {"name": name, "image": IMAGE, "imageID": "", "state": state, "lastState": last or {},
            "ready": "running" in state, "restartCount": restarts, "started": "running" in state}


def pod(phase: str, containers: list[dict[str, Any]], init: list[dict[str, Any]] | None = None,
        restart_policy: str = "OnFailure", sidecars: tuple[str, ...] = (), gpus: int = 8,
        deleting: bool = False, reason: str | None = None) -> dict[str, Any]:
    """A pod of the member Job ``ic-<uid>-1``, holding ``gpus`` cards in its main container."""
    init = init or []
    spec_init = [{"name": s["name"], "image": IMAGE, **({"restartPolicy": "Always"} if s["name"] in sidecars else {})}
                 for s in init]
    status: dict[str, Any] = {"phase": phase, "hostIP": "10.0.3.7", "podIP": "10.244.1.9",
                              "startTime": at(-5 * SECOND), "qosClass": "Burstable",
                              "containerStatuses": containers}
    if init:
        status["initContainerStatuses"] = init
    if reason:
        status["reason"] = reason
    meta: dict[str, Any] = {
        "name": "ic-0b7a5e0e-1-x7k2p", "namespace": "interconnect-jobs", "uid": "pod-1",
        "labels": {JOB_UID: "0b7a5e0e-1c2d-4e5f-8a9b-0c1d2e3f4a5b", ATTEMPT: "1",
                   "batch.kubernetes.io/job-name": "ic-0b7a5e0e-1"},
        "ownerReferences": [{"apiVersion": "batch/v1", "kind": "Job", "name": "ic-0b7a5e0e-1", "uid": "j-1",
                             "controller": True}],
    }
    if deleting:
        meta["deletionTimestamp"] = at(HOUR)
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta,
            "spec": {"nodeName": "gpu-node-3", "restartPolicy": restart_policy, "initContainers": spec_init,
                     "containers": [{"name": "trainer", "image": IMAGE,
                                     "resources": {"limits": {"nvidia.com/gpu": str(gpus)},
                                                   "requests": {"nvidia.com/gpu": str(gpus)}}}]},
            "status": status}


HOUR = 60 * MINUTE
INIT = 10 * HOUR  # the init container (fetching weights onto the node) runs for 10 hours

# -- a 10-hour init container, then a 1-minute main container starting 2 s after it -------------
LONG_INIT = [
    pod("Pending", [container("trainer", waiting("PodInitializing"))],
        init=[container("fetch-weights", running(0 * MINUTE))]),
    pod("Running", [container("trainer", running(INIT + 2 * SECOND))],
        init=[container("fetch-weights", terminated(0 * MINUTE, INIT))]),
    pod("Succeeded", [container("trainer", terminated(INIT + 2 * SECOND, INIT + MINUTE + 2 * SECOND))],
        init=[container("fetch-weights", terminated(0 * MINUTE, INIT))]),
]

# -- restartPolicy OnFailure: three 50-minute runs, each restarted 5 minutes after it failed -------
RUN1, RUN2, RUN3 = (0 * MINUTE, 50 * MINUTE), (55 * MINUTE, 105 * MINUTE), (110 * MINUTE, 160 * MINUTE)
BACKOFF = "back-off 5m0s restarting failed container=trainer pod=ic-0b7a5e0e-1-x7k2p"
THREE_RUNS = [
    pod("Running", [container("trainer", running(RUN1[0]))]),
    pod("Running", [container("trainer", waiting("CrashLoopBackOff", BACKOFF), terminated(*RUN1, code=1), 1)]),
    pod("Running", [container("trainer", running(RUN2[0]), terminated(*RUN1, code=1), 1)]),
    # the kubelet keeps only the current run and the last one: run 1's start is gone from here on
    pod("Running", [container("trainer", waiting("CrashLoopBackOff", BACKOFF), terminated(*RUN2, code=1), 2)]),
    pod("Running", [container("trainer", running(RUN3[0]), terminated(*RUN2, code=1), 2)]),
    pod("Succeeded", [container("trainer", terminated(*RUN3), terminated(*RUN2, code=1), 2)]),
]
# when the member's watch delivered each of them (the meter counts a running pod up to then)
THREE_RUNS_SEEN = [30 * MINUTE, 52 * MINUTE, 80 * MINUTE, 107 * MINUTE, 130 * MINUTE, 161 * MINUTE]

# -- a native sidecar that runs until the kubelet stops it, 30 s after the main container ----------
SIDECAR = [
    pod("Running", [container("trainer", running(3 * SECOND))],
        init=[container("log-shipper", running(0 * MINUTE))], sidecars=("log-shipper",), gpus=1),
    pod("Running", [container("trainer", terminated(3 * SECOND, HOUR))],
        init=[container("log-shipper", running(0 * MINUTE))], sidecars=("log-shipper",), gpus=1),
    pod("Succeeded", [container("trainer", terminated(3 * SECOND, HOUR))],
        init=[container("log-shipper", terminated(0 * MINUTE, HOUR + 30 * SECOND, code=143))],
        sidecars=("log-shipper",), gpus=1),
]


@pytest.mark.parametrize(
    ("obj", "started", "finished", "reason", "message"),
    [
        pytest.param(LONG_INIT[0], 0 * MINUTE, None, None, None, id="init-container-running"),
        pytest.param(LONG_INIT[1], 0 * MINUTE, None, None, None, id="main-running-after-init"),
        pytest.param(LONG_INIT[2], 0 * MINUTE, INIT + MINUTE + 2 * SECOND, None, None, id="init-then-main-done"),
        pytest.param(THREE_RUNS[0], RUN1[0], None, None, None, id="run-1"),
        pytest.param(THREE_RUNS[1], RUN1[0], None, None, None, id="crash-loop-back-off-is-not-finished"),
        pytest.param(THREE_RUNS[2], RUN1[0], None, None, None, id="run-2-last-state-run-1"),
        pytest.param(THREE_RUNS[3], RUN2[0], None, None, None, id="run-1-forgotten-by-the-kubelet"),
        pytest.param(THREE_RUNS[5], RUN2[0], RUN3[1], None, None, id="succeeded-on-run-3"),
        pytest.param(
            pod("Running", [container("trainer", terminated(*RUN1, code=1))]), RUN1[0], None, "Error",
            "container trainer exited with code 1", id="failed-under-OnFailure-about-to-restart"),
        pytest.param(
            pod("Running", [container("trainer", terminated(*RUN1, code=1))], restart_policy="Never"), RUN1[0],
            RUN1[1], "Error", "container trainer exited with code 1", id="failed-under-Never-phase-not-yet-Failed"),
        pytest.param(
            pod("Running", [container("trainer", terminated(*RUN1, code=137))], deleting=True), RUN1[0], RUN1[1],
            "Error", "container trainer exited with code 137", id="deleted-and-stopped"),
        pytest.param(SIDECAR[0], 0 * MINUTE, None, None, None, id="sidecar-starts-first"),
        pytest.param(SIDECAR[1], 0 * MINUTE, None, None, None, id="main-done-sidecar-still-runs"),
        pytest.param(SIDECAR[2], 0 * MINUTE, HOUR + 30 * SECOND, None, None,
                     id="sidecar-stopped-by-the-kubelet-is-no-failure"),
        pytest.param(
            pod("Failed", [container("trainer", waiting("PodInitializing"))], restart_policy="Never",
                init=[container("fetch-weights", terminated(0 * MINUTE, 5 * MINUTE, code=2))]),
            0 * MINUTE, 5 * MINUTE, "Error", "container fetch-weights exited with code 2", id="init-container-failed"),
        pytest.param(
            pod("Failed", [container("trainer", terminated(0 * MINUTE, 20 * MINUTE, code=137))], reason="Evicted",
                restart_policy="Never"),
            0 * MINUTE, 20 * MINUTE, "Evicted", "container trainer exited with code 137",
            id="evicted-the-pod-says-why"),
    ],
)
def test_projection(obj: dict[str, Any], started: timedelta | None, finished: timedelta | None,
                    reason: str | None, message: str | None) -> None:
    projected = project_dispatched_pod(obj)
    assert projected is not None
    assert projected.started == (None if started is None else T0 + started)
    assert projected.finished == (None if finished is None else T0 + finished)
    assert (projected.reason, projected.message) == (reason, message)
    assert (projected.attempt, projected.member_job, projected.node) == (1, "ic-0b7a5e0e-1", "gpu-node-3")


def test_a_container_that_never_started_has_no_start() -> None:
    # containerd's StartError reports the zero time as the start (kubernetes#120331): not 56 years of cards
    failed = terminated(0 * MINUTE, MINUTE, code=128, reason="StartError")
    failed["terminated"]["startedAt"] = "1970-01-01T00:00:00Z"
    projected = project_dispatched_pod(pod("Failed", [container("trainer", failed)], restart_policy="Never"))
    assert projected is not None
    assert (projected.started, projected.finished, projected.reason) == (None, T0 + MINUTE, "StartError")
    retried = project_dispatched_pod(pod("Running", [container("trainer", running(2 * MINUTE), failed, 1)]))
    assert retried is not None and retried.started == T0 + 2 * MINUTE


def test_pods_of_others_are_not_projected() -> None:
    obj = pod("Running", [container("trainer", running(0 * MINUTE))])
    del obj["metadata"]["labels"][JOB_UID]
    assert project_dispatched_pod(obj) is None


# -- what the meter makes of them --------------------------------------------------------------


EMPTY = UsageRecord()


def metered(statuses: list[dict[str, Any]], seen: list[timedelta], record: UsageRecord = EMPTY) -> UsageRecord:
    """Each status as the member's watch delivered it, accrued in turn (as `services.meter` does)."""
    for obj, when in zip(statuses, seen, strict=True):
        p = project_dispatched_pod(obj)
        assert p is not None and p.started is not None
        record = accrue(record, [PodRun(p.uid, p.gpus, p.started, p.finished)], T0 + when, attempt=1)
    return record


@pytest.mark.parametrize(
    ("statuses", "seen", "minutes", "card_hours"),
    [
        # 10 h of init container + 2 s + 1 min of main container = 601 min 2 s, x 8 cards
        pytest.param(LONG_INIT, [5 * HOUR, INIT + 30 * SECOND, INIT + 2 * MINUTE], Decimal(36062) / 60,
                     Decimal(8 * 36062) / 3600, id="10h-init-container"),
        # 3 x 50 min of runs + 2 x 5 min between them = 160 min, x 8 cards = 21.33 card-hours
        # (the bug: 50 min, the last run's state only, x 8 = 6.67 of them)
        pytest.param(THREE_RUNS, THREE_RUNS_SEEN, Decimal(3 * 50 + 2 * 5), Decimal(8 * (3 * 50 + 2 * 5)) / 60,
                     id="three-OnFailure-runs"),
        # the sidecar's 60 min 30 s, not only the main container's 59 min 57 s, x 1 card
        pytest.param(SIDECAR, [30 * MINUTE, HOUR + 10 * SECOND, HOUR + MINUTE], Decimal(3630) / 60,
                     Decimal(3630) / 3600, id="native-sidecar"),
    ],
)
def test_metered_from_the_first_start_to_the_last_finish(
        statuses: list[dict[str, Any]], seen: list[timedelta], minutes: Decimal, card_hours: Decimal) -> None:
    record = metered(statuses, seen)
    [accrual] = record.pods
    assert Decimal(accrual.microseconds) / 60_000_000 == minutes
    assert accrual.finished and accrual.started == T0
    assert abs(record.card_hours() - card_hours) < Decimal("1e-11")
    assert metered(statuses, seen, record) == record  # the same observations again: the same record


def test_a_crash_looping_pod_keeps_counting() -> None:
    record = metered(THREE_RUNS[:4], THREE_RUNS_SEEN[:4])
    [accrual] = record.pods
    assert not accrual.finished
    assert accrual.microseconds == 107 * 60_000_000  # 0 to 107 min, though the member shows 55 min now


# -- through the job's status: an operator restart keeps the first start -----------------------

PRICE = {"amount": "20", "currency": "CNY", "unit": "card-hour"}


def job(usage: dict[str, Any] | None = None) -> JobState:
    obj: dict[str, Any] = {
        "apiVersion": "interconnect.dev/v1alpha1", "kind": "ComputeJob",
        "metadata": {"name": "llm-finetune", "namespace": "tenant-a", "uid": "0b7a5e0e-1c2d-4e5f-8a9b-0c1d2e3f4a5b"},
        "spec": {"gpus": {"count": 8}, "origin": "CN-SH", "latencyTier": "5ms",
                 "maxPrice": {"amount": "25", "currency": "CNY"},
                 "template": {"spec": {"restartPolicy": "OnFailure",
                                       "containers": [{"name": "trainer", "image": IMAGE}]}}},
        "status": {"phase": "Running", "attempts": 1,
                   "placement": {"node": "sh-regional", "identityCode": "CIRSH000001A", "offer": "h800",
                                 "price": PRICE, "tier": "5ms", "region": "CN-SH", "gpuModel": "NVIDIA-H800",
                                 "placedAt": at(-MINUTE)},
                   "attemptHistory": [{"attempt": 1, "node": "sh-regional", "memberJobName": "ic-0b7a5e0e-1",
                                       "price": PRICE, "startedAt": at(0 * MINUTE)}],
                   **({"usage": usage} if usage is not None else {})},
    }
    return job_state(ComputeJob.model_validate(obj))


def meter_in_turn(meter: Meter, state: JobState, statuses: list[dict[str, Any]], seen: list[timedelta]
                  ) -> dict[str, Any]:
    usage: dict[str, Any] = {}
    for obj, when in zip(statuses, seen, strict=True):
        projected = project_dispatched_pod(obj)
        assert isinstance(projected, DispatchedPod)
        new, _ = meter.accrue(state, [projected], T0 + when)
        usage = new or usage
    return usage


def test_an_operator_restart_keeps_the_first_start() -> None:
    meter = Meter(None, None, None, None, None, 60.0, None, None)  # type: ignore[arg-type]  # accrue needs only the job
    throughout = job()
    final = meter_in_turn(meter, throughout, THREE_RUNS, THREE_RUNS_SEEN)

    before = job()
    usage = meter_in_turn(meter, before, THREE_RUNS[:3], THREE_RUNS_SEEN[:3])  # saw run 1's start, then stopped
    assert usage["pods"] == [{"attempt": 1, "pod": "pod-1", "gpus": 8, "microseconds": 80 * 60_000_000,
                              "finished": False, "startedAt": "2026-03-02T08:00:00Z"}]
    restarted = job(usage)  # rebuilt from the status, once the member shows only runs 2 and 3
    assert restarted.usage == before.usage
    after = meter_in_turn(meter, restarted, THREE_RUNS[3:], THREE_RUNS_SEEN[3:])
    assert after["pods"] == final["pods"] == [{"attempt": 1, "pod": "pod-1", "gpus": 8,
                                               "microseconds": 160 * 60_000_000, "finished": True,
                                               "startedAt": "2026-03-02T08:00:00Z"}]
    assert restarted.usage == throughout.usage
    assert after["cardHours"] == "21.333333333333" and after["cost"] == "426.67"  # 8 x 160/60 h x 20 CNY


def test_a_status_written_before_starts_were_kept_still_reads_and_never_shrinks() -> None:
    meter = Meter(None, None, None, None, None, 60.0, None, None)  # type: ignore[arg-type]
    legacy = job({"cardHours": "14.266666666667", "accruedUntil": at(107 * MINUTE),
                  "pods": [{"attempt": 1, "pod": "pod-1", "gpus": 8, "microseconds": 107 * 60_000_000}]})
    assert legacy.usage.pods[0].started is None
    usage = meter_in_turn(meter, legacy, THREE_RUNS[4:5], THREE_RUNS_SEEN[4:5])  # 130 min; the member shows 55
    assert usage["pods"][0]["microseconds"] == 107 * 60_000_000  # not 75 min
    assert usage["pods"][0]["startedAt"] == "2026-03-02T08:55:00Z"


def test_a_member_node_s_cards_are_its_model_s_resource() -> None:
    from interconnect.adapters.member import project_node

    ready = [{"type": "Ready", "status": "True"}]
    ascend = project_node({"metadata": {"name": "n1", "labels": {
        "accelerator": "huawei-Ascend910", "node.kubernetes.io/npu.chip.name": "910B3"}},
        "status": {"capacity": {"huawei.com/Ascend910": "8"}, "allocatable": {"huawei.com/Ascend910": "8"},
                   "conditions": ready}})
    assert ascend is not None and (ascend.gpu_model, ascend.allocatable_gpus) == ("Ascend910B3", 8)
    nvidia = project_node({"metadata": {"name": "n2", "labels": {"nvidia.com/gpu.product": "NVIDIA-B200"}},
                           "status": {"capacity": {"nvidia.com/gpu": "8", "huawei.com/Ascend910": "8"},
                                      "allocatable": {"nvidia.com/gpu": "4"}, "conditions": ready}})
    assert nvidia is not None and (nvidia.gpu_model, nvidia.allocatable_gpus) == ("NVIDIA-B200", 4)
    assert project_node({"metadata": {"name": "cpu"}, "status": {"capacity": {"cpu": "8"}}}) is None

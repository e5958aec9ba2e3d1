"""The controller's stores and its routing, each on its own state, without a cluster.

The wiring (`Controller`) is built for real with a hub client that is never called; what each
store owns is checked through its own methods: the job store's queries, the market's one
reserve/release path, the deletions that are forgotten once seen, the member sync's routing of
watch events, and a job's state rebuilt from its status.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator
from typing import Any

import pytest
from kubernetes_asyncio import client as k8s

from interconnect.adapters.hub import Hub
from interconnect.adapters.informer import Change
from interconnect.adapters.member import DispatchedJob
from interconnect.adapters.metrics import Metrics
from interconnect.api.v1alpha1 import ComputeJob, set_condition, to_api
from interconnect.core.latency import LatencyTable
from interconnect.core.vocabulary import JobPhase
from interconnect.services.config import Settings
from interconnect.services.controller import Controller
from interconnect.services.job_watch import EVENTS_BETWEEN_YIELDS
from interconnect.services.jobs import JobStore, job_state
from interconnect.services.members import Deletions
from interconnect.services.translate import job_request
from tests.integration.bad_manifests import job

SETTINGS = Settings(namespace="ops", latency_config_map="x", identity_config_map="y", heartbeat_interval=5,
                    not_ready_after=30, re_place_after=120, metering_interval=15, member_sync_timeout=30,
                    metrics_port=0)
T0 = "2026-11-30T08:00:00Z"


def compute_job(name: str, uid: str, namespace: str = "team-a", **status: Any) -> ComputeJob:
    body = job(name)
    body["metadata"].update(namespace=namespace, uid=uid, generation=1, creationTimestamp=T0)
    body["status"] = status
    return ComputeJob.model_validate(body)


def placed(node: str = "gz", offer: str = "gz-a100", attempt: int = 1) -> dict[str, Any]:
    price = {"amount": "8.00", "currency": "CNY", "unit": "card-hour"}
    return {"phase": "Running", "attempts": attempt,
            "placement": {"node": node, "identityCode": "CIRGZ000001E", "offer": offer, "price": price,
                          "tier": "20ms", "region": "CN-GZ", "gpuModel": "NVIDIA-A100-SXM4-80GB", "placedAt": T0},
            "attemptHistory": [{"attempt": attempt, "node": node, "memberJobName": f"ic-u-{attempt}",
                                "offer": offer, "price": price}]}


@pytest.fixture
async def controller() -> AsyncIterator[Controller]:
    ctl = Controller(Hub(k8s.ApiClient(k8s.Configuration())), SETTINGS, LatencyTable.default(), Metrics())
    yield ctl
    await ctl.hub.close()


def test_a_job_state_is_rebuilt_from_its_status() -> None:
    state = job_state(compute_job("train", "u1", **placed(attempt=2)))
    assert (state.phase, state.attempt, state.node, state.durable_attempt) == (JobPhase.RUNNING, 2, "gz", 2)
    assert state.cards == 2
    assert state.attempt_price(2) == {"amount": "8.00", "currency": "CNY", "unit": "card-hour"}
    fresh = job_state(compute_job("new", "u2"))
    assert (fresh.phase, fresh.attempt, fresh.node, fresh.durable_attempt) == (JobPhase.PENDING, 0, None, 0)


def test_a_kept_job_gives_back_the_job_it_was_given() -> None:
    """A job's state keeps its spec and metadata compact and its conditions as rows; what it gives
    back (the whole job for the member Job, the placement request, the conditions for the next
    status write) is what it was given, whatever the spec asks."""
    body = job("kept")
    body["metadata"].update(namespace="team-a", uid="u9", generation=3, creationTimestamp=T0,
                            labels={"team": "vision"}, annotations={"note": "x"})
    body["spec"].update(replicas=2, budget={"amount": "500", "currency": "CNY"}, expectedHours="4",
                        startDeadlineSeconds=600, failurePolicy={"rePlace": "Never"}, priority=5,
                        placement={"allowedRegions": ["CN-SH", "CN-ZJ"], "prefer": "greener", "priceBandPercent": 10})
    body["status"] = {**placed(), "conditions": [
        {"type": "Scheduled", "status": "True", "reason": "Placed", "message": "offer gz-a100 on gz",
         "lastTransitionTime": T0, "observedGeneration": 3},
        {"type": "Running", "status": "False", "reason": "Waiting", "lastTransitionTime": T0}]}
    validated = ComputeJob.model_validate(body)
    state = job_state(validated)

    assert state.model == validated.model_copy(update={"status": type(validated.status)()})
    assert state.model is not state.model  # a fresh object each read: nothing can change what is kept
    assert state.request() == job_request(validated) and state.request() is state.request()
    assert (state.kept.uid, state.kept.namespace, state.kept.name, state.kept.generation) == ("u9", "team-a", "kept", 3)
    assert (state.cards, state.kept.budget, state.kept.start_deadline_seconds) == (4, validated.spec.budget, 600)
    assert state.kept.failure_policy == validated.spec.failure_policy
    assert state.conditions == validated.status.conditions
    assert [to_api(c) for c in state.conditions] == [to_api(c) for c in validated.status.conditions]
    assert [c.model_fields_set for c in state.conditions] == [c.model_fields_set for c in validated.status.conditions]

    changed = set_condition(state.conditions, "Running", True, "PodsRunning", "running on gz", 3,
                            dt.datetime(2026, 11, 30, 9, tzinfo=dt.UTC))
    state.conditions = changed
    assert state.conditions == changed
    state.placed()  # placed: the request is let go, and read again from the kept job when asked
    assert state.placing is None and state.request() == job_request(validated)
    newer = validated.model_copy(update={"spec": validated.spec.model_copy(update={"priority": 9})})
    state.keep(newer)
    assert state.request().priority == 9 and state.model.spec.priority == 9


def test_the_job_store_answers_by_phase_and_node() -> None:
    jobs = JobStore()
    running = job_state(compute_job("run", "u1", **placed()))
    elsewhere = job_state(compute_job("far", "u2", **placed(node="bj", offer="bj-h20")))
    waiting = job_state(compute_job("wait", "u3"))
    for state in (running, elsewhere, waiting):
        jobs.add(state)
    assert [s.uid for s in jobs.active_on("gz")] == ["u1"]
    assert [s.uid for s in jobs.pending()] == ["u3"]
    waiting.dispatching = 1
    assert jobs.pending() == []  # a dispatch task has it
    assert {s.uid for s in jobs.in_phase(JobPhase.RUNNING)} == {"u1", "u2"}
    assert jobs.remove("u1") is running and "u1" not in jobs and len(jobs) == 2


def test_deletions_are_forgotten_once_seen() -> None:
    deletions = Deletions()
    deletions.mark("ic-a-1")
    assert "ic-a-1" in deletions
    assert deletions.seen_gone("ic-a-1") is True
    assert deletions.seen_gone("ic-a-1") is False  # someone else deleted it this time
    assert len(deletions) == 0


async def test_the_market_is_the_one_place_reservations_change(controller: Controller) -> None:
    market = controller.market
    market.reserve("gz-a100", "u1", 8, free_now=16)
    market.reserve("gz-a100", "u2", 4, free_now=16)  # free_now counts the cards already reserved
    assert market.reserved("gz-a100") == 12
    market.release("u1")
    assert market.reserved("gz-a100") == 4
    market.release("u1")  # twice is harmless
    assert market.reserved("gz-a100") == 4


async def test_a_member_job_deleted_by_someone_else_fails_its_job_and_ours_do_not(controller: Controller) -> None:
    state = job_state(compute_job("run", "u1", **placed()))
    controller.jobs.add(state)

    def gone(name: str) -> Change[Any]:
        value = DispatchedJob(uid="m1", name=name, job_uid="u1", attempt=1, active=1, succeeded=0, failed=0,
                              complete=False, failed_reason=None, failed_message=None, start_time=None,
                              completion_time=None, deleting=False)
        return Change("gz/jobs", "m1", value, None)

    controller.job_watch._deletions.mark("ic-u-1")  # the hub deletes its own
    controller.sync.member_changed("gz", gone("ic-u-1"))
    assert state.member_job_deleted is False
    assert "ic-u-1" not in controller.job_watch._deletions  # pruned once seen
    controller.sync.member_changed("gz", gone("ic-u-1"))
    assert state.member_job_deleted is True


async def test_the_sync_decision_fails_a_job_whose_member_job_vanished(controller: Controller) -> None:
    """Without a member connection nothing is decided (the watch cannot be trusted)."""
    state = job_state(compute_job("run", "u1", **placed()))
    state.member_job_deleted = True
    controller.jobs.add(state)
    await controller.sync.sync_job("u1")
    assert state.phase is JobPhase.RUNNING


def test_the_placement_reason_is_data() -> None:
    from interconnect.core.placement import PlacementSnapshot, place
    from interconnect.services.translate import job_request

    request = job_request(compute_job("run", "u1"))
    decision = place(request, PlacementSnapshot.of([], [], LatencyTable.default(), dt.datetime.now(dt.UTC)))
    assert decision.top_reason == "no offers published"


def test_once_placed_the_operator_keeps_what_decided_the_placement() -> None:
    from interconnect.services.job_watch import placed_spec_kept

    old = compute_job("run", "u1", **placed())
    body = job("run")
    body["metadata"].update(namespace="team-a", uid="u1", generation=2, creationTimestamp=T0)
    body["spec"].update(replicas=8, priority=-5)
    body["spec"]["maxPrice"]["amount"] = "99"
    kept = placed_spec_kept(old, ComputeJob.model_validate(body))
    assert (kept.spec.replicas, kept.spec.max_price.amount) == (old.spec.replicas, old.spec.max_price.amount)
    assert kept.spec.priority == -5  # what does not decide the placement follows the object


async def test_taking_in_a_burst_of_jobs_lets_the_other_tasks_run(controller: Controller) -> None:
    """Thousands of jobs seen at once (a start-up, a burst of creates) are CPU work whose awaits
    need not suspend; the watch's loop hands the event loop on every few dozen, so the leader
    Lease's renewal (another task) is never starved by it."""
    jobs = 640
    for i in range(jobs):
        body = compute_job(f"burst-{i}", f"burst-uid-{i}").model_dump(by_alias=True, mode="json", exclude_none=True)
        controller.job_watch._seen(body)
    progress: list[int] = []

    async def renewal() -> None:  # what the leadership loop would be doing meanwhile
        while len(controller.jobs) < jobs:
            progress.append(len(controller.jobs))
            await asyncio.sleep(0)

    watch = asyncio.create_task(controller.job_watch.run())
    try:
        await asyncio.wait_for(renewal(), 30)
    finally:
        watch.cancel()
    assert len(controller.jobs) == jobs
    # The other task ran between chunks, not only before the first and after the last.
    assert len([n for n in progress if 0 < n < jobs]) >= jobs // EVENTS_BETWEEN_YIELDS - 2

"""The bill (issue 21, "spend that disappears"): one ComputeUsage record per finished attempt,
built from the job's state (pure), written once and before the status that records the end, and
read by the quotas without counting an attempt twice."""

from __future__ import annotations

import copy
import datetime as dt
from collections.abc import AsyncIterator, Mapping
from decimal import Decimal
from typing import Any

import pytest
from kubernetes_asyncio import client as k8s

from interconnect.adapters.hub import Hub
from interconnect.adapters.member import DispatchedJob, DispatchedPod
from interconnect.adapters.metrics import Metrics
from interconnect.api.v1alpha1 import ComputeJob, ComputeQuota, ComputeUsage
from interconnect.core.latency import LatencyTable
from interconnect.core.money import Money
from interconnect.core.vocabulary import JobPhase
from interconnect.services.controller import Controller
from interconnect.services.jobs import JobState, job_state
from interconnect.services.members import NodeState
from interconnect.services.meter import Meter
from interconnect.services.usage_records import DELETED, UsageLedger, usage_record
from tests.integration.bad_manifests import job, node
from tests.unit.api.test_models import SCHEMAS, schema_errors
from tests.unit.services.test_stores import SETTINGS

UTC = dt.UTC
PRICE = {"amount": "8.00", "currency": "CNY", "unit": "card-hour"}
HOUR = 3_600_000_000


def t(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


def pod(attempt: int, name: str, started: str, microseconds: int, *, finished: bool = True, gpus: int = 2,
        lost: int = 0) -> dict[str, Any]:
    out: dict[str, Any] = {"attempt": attempt, "pod": name, "gpus": gpus, "microseconds": microseconds,
                           "finished": finished, "startedAt": started}
    if lost:
        out["lostMicroseconds"] = lost
    return out


def state_of(pods: list[dict[str, Any]], *, phase: str = "Running", attempt: int = 1, uid: str = "u1",
             namespace: str = "team-a", history: list[dict[str, Any]] | None = None,
             price: Mapping[str, Any] = PRICE) -> JobState:
    """A job of 2 cards (1 replica x 2 GPUs) placed on gz at ``price``, with these pods metered."""
    body = job("train")
    body["metadata"].update(namespace=namespace, uid=uid, generation=1, creationTimestamp="2026-11-01T00:00:00Z")
    placement = {"node": "gz", "identityCode": "CIRGZ000001E", "offer": "gz-a100", "price": dict(price),
                 "tier": "20ms", "region": "CN-GZ", "gpuModel": "NVIDIA-A100-SXM4-80GB",
                 "placedAt": "2026-11-01T00:00:00Z"}
    body["status"] = {
        "phase": phase, "attempts": attempt, "placement": placement,
        "attemptHistory": history or [{"attempt": attempt, "node": "gz", "memberJobName": f"ic-{uid}-{attempt}",
                                       "offer": "gz-a100", "price": dict(price)}],
        "usage": {"pods": pods},
    }
    return job_state(ComputeJob.model_validate(body))


def conforms(body: dict[str, Any]) -> ComputeUsage:
    """The record is valid for the CRD's schema and the model (which also checks its name)."""
    assert schema_errors(SCHEMAS["ComputeUsage"], {"spec": body["spec"]}) == []
    return ComputeUsage.model_validate(body)


# ---------------------------------------------------------------------------------------------
# The record of one attempt (pure)
# ---------------------------------------------------------------------------------------------


def test_a_succeeded_attempt_is_recorded_with_where_it_ran_its_price_and_its_span() -> None:
    state = state_of([pod(1, "p1", "2026-11-10T08:00:00Z", HOUR // 2),
                      pod(1, "p2", "2026-11-10T08:05:00Z", HOUR // 2)])
    body = usage_record(state, 1, "Succeeded", t("2026-11-10T09:00:00Z"))
    assert body is not None
    record = conforms(body)
    assert body["metadata"]["name"] == "u1-1"
    assert body["metadata"]["labels"] == {"interconnect.dev/tenant": "team-a", "interconnect.dev/month": "2026-11",
                                          "interconnect.dev/node": "gz"}
    assert body["spec"] == {
        "tenant": "team-a", "jobName": "train", "jobUID": "u1", "attempt": 1, "node": "gz", "offer": "gz-a100",
        "identityCode": "CIRGZ000001E", "region": "CN-GZ", "gpuModel": "NVIDIA-A100-SXM4-80GB", "price": PRICE,
        "cardHours": "2", "cost": "16.00", "lostCardHours": "0", "currency": "CNY",
        # From the first pod's start to the last pod's finish (not the completion time given).
        "startedAt": "2026-11-10T08:00:00Z", "finishedAt": "2026-11-10T08:35:00Z", "month": "2026-11",
        "outcome": "Succeeded",
        # 2 card-hours of A100 SXM4 at 312 dense BF16 TFLOPS (the accelerator catalogue).
        "pflopsHours": "0.624", "precision": "bf16"}
    assert record.spec.job_uid == "u1" and record.spec.finished_at == t("2026-11-10T08:35:00Z")


def test_the_record_holds_what_the_status_charges_per_attempt() -> None:
    """Each attempt's record carries its own rounded cost; together they are the status' cost."""
    state = state_of([pod(1, "p1", "2026-11-10T08:00:00Z", 1_234_567_891, lost=99),
                      pod(2, "p2", "2026-11-10T09:00:00Z", 2_345_678_912)],
                     attempt=2, history=[
                         {"attempt": 1, "node": "bj", "memberJobName": "ic-u1-1", "offer": "bj-h20",
                          "price": {"amount": "15.00", "currency": "CNY", "unit": "card-hour"}, "outcome": "NodeLost",
                          "finishedAt": "2026-11-10T08:30:00Z"},
                         {"attempt": 2, "node": "gz", "memberJobName": "ic-u1-2", "offer": "gz-a100", "price": PRICE}])
    meter = Meter(None, None, None, None, None, 60.0, None, None)  # type: ignore[arg-type]  # accrue needs only the job
    status, _ = meter.accrue(state, [], t("2026-11-10T10:00:00Z"), final=True)
    assert status is not None
    first = usage_record(state, 1, "NodeLost", None, lost_since=t("2026-11-10T08:30:00Z"))
    second = usage_record(state, 2, "Succeeded", t("2026-11-10T10:00:00Z"))
    assert first is not None and second is not None
    assert Decimal(first["spec"]["cost"]) + Decimal(second["spec"]["cost"]) == Decimal(status["cost"])
    # An earlier attempt: where it ran from its history (the placement is the current attempt's).
    assert (first["spec"]["node"], first["spec"]["offer"], first["spec"]["price"]["amount"]) == (
        "bj", "bj-h20", "15.00")
    assert "identityCode" not in first["spec"] and "region" not in first["spec"]
    assert first["spec"]["lostCardHours"] != "0"
    conforms(first)
    conforms(second)


def test_an_attempt_lost_with_its_node_ends_at_the_loss() -> None:
    lost = t("2026-11-10T08:30:00Z")
    state = state_of([pod(1, "p1", "2026-11-10T08:00:00Z", HOUR // 4, finished=False)])  # metered to 08:15
    body = usage_record(state, 1, "NodeLost", lost, lost_since=lost)
    assert body is not None
    assert (body["spec"]["finishedAt"], body["spec"]["outcome"], body["spec"]["cardHours"]) == (
        "2026-11-10T08:30:00Z", "NodeLost", "0.5")
    conforms(body)


@pytest.mark.parametrize("reason", ["BudgetExceeded", "StartDeadlineExceeded", DELETED])
def test_an_attempt_stopped_while_it_ran_ends_where_it_was_metered(reason: str) -> None:
    state = state_of([pod(1, "p1", "2026-11-10T08:00:00Z", HOUR // 10 + 123, finished=False)])
    body = usage_record(state, 1, reason, t("2026-11-10T09:00:00Z"))
    assert body is not None
    assert (body["spec"]["outcome"], body["spec"]["finishedAt"]) == (reason, "2026-11-10T08:06:00.000123Z")
    assert body["spec"]["cost"] == "1.60"  # 2 cards x 0.1 h x 8
    conforms(body)


@pytest.mark.parametrize("pods", [[], [pod(1, "p1", "2026-11-10T08:00:00Z", 0)],
                                  [pod(2, "other-attempt", "2026-11-10T08:00:00Z", HOUR)]])
def test_an_attempt_that_ran_nothing_has_no_record(pods: list[dict[str, Any]]) -> None:
    """A refused workload, pods that never started: nothing charged, nothing to bill or write."""
    assert usage_record(state_of(pods), 1, "MemberRejected", t("2026-11-10T09:00:00Z")) is None


@pytest.mark.parametrize(("started", "microseconds", "finished", "month"), [
    ("2026-11-30T23:00:00Z", HOUR - 1, "2026-11-30T23:59:59.999999Z", "2026-11"),
    ("2026-11-30T23:00:00Z", HOUR, "2026-12-01T00:00:00Z", "2026-12"),
    ("2026-11-30T23:30:00Z", HOUR, "2026-12-01T00:30:00Z", "2026-12"),  # started in November: it counts there too
    ("2026-12-31T23:30:00Z", HOUR, "2027-01-01T00:30:00Z", "2027-01"),
])
def test_the_month_is_that_of_the_finish_in_utc(started: str, microseconds: int, finished: str, month: str) -> None:
    body = usage_record(state_of([pod(1, "p1", started, microseconds)]), 1, "Succeeded", None)
    assert body is not None
    assert (body["spec"]["startedAt"], body["spec"]["finishedAt"], body["spec"]["month"]) == (started, finished, month)
    assert body["metadata"]["labels"]["interconnect.dev/month"] == month
    conforms(body)


def test_without_any_start_the_end_given_dates_it_and_without_either_there_is_none() -> None:
    legacy = state_of([{"attempt": 1, "pod": "p1", "gpus": 2, "microseconds": HOUR, "finished": True}])
    body = usage_record(legacy, 1, "Succeeded", t("2026-11-10T09:00:00Z"))
    assert body is not None and "startedAt" not in body["spec"] and body["spec"]["finishedAt"] == "2026-11-10T09:00:00Z"
    assert usage_record(legacy, 1, "Succeeded", None) is None


# ---------------------------------------------------------------------------------------------
# The ledger: written once, read back, kept for the month
# ---------------------------------------------------------------------------------------------


class FakeHub(Hub):
    """A hub that keeps objects in memory and the order of writes."""

    def __init__(self) -> None:
        super().__init__(k8s.ApiClient(k8s.Configuration()))
        self.objects: dict[str, dict[str, Any]] = {}
        self.writes: list[tuple[str, str]] = []
        self.fail_create: Exception | None = None
        self.fail_status: Exception | None = None
        self.selectors: list[str | None] = []

    async def create(self, plural: str, body: Mapping[str, Any]) -> bool:
        name = body["metadata"]["name"]
        self.writes.append(("create", name))
        if self.fail_create is not None:
            raise self.fail_create
        if name in self.objects:
            return False
        self.objects[name] = copy.deepcopy(dict(body))
        return True

    async def get(self, plural: str, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        return copy.deepcopy(self.objects.get(name))

    async def list_all(self, plural: str, selector: str | None = None, page: int = 500) -> list[dict[str, Any]]:
        self.selectors.append(selector)
        key, _, value = (selector or "").partition("=")
        return [copy.deepcopy(o) for o in self.objects.values() if o["metadata"]["labels"].get(key) == value]

    async def patch_status(self, plural: str, name: str, patch: Mapping[str, Any],
                           namespace: str | None = None) -> None:
        self.writes.append(("status", name))
        if self.fail_status is not None:
            raise self.fail_status

    async def event(self, obj: Mapping[str, Any], type_: str, reason: str, message: str) -> None:
        return None


@pytest.fixture
async def hub() -> AsyncIterator[FakeHub]:
    fake = FakeHub()
    yield fake
    await fake.close()


@pytest.fixture
async def controller(hub: FakeHub) -> Controller:
    return Controller(hub, SETTINGS, LatencyTable.default(), Metrics())


def ran_an_hour(uid: str = "u1", **kwargs: Any) -> JobState:
    return state_of([pod(1, "p1", "2026-11-10T08:00:00Z", HOUR)], uid=uid, **kwargs)


async def test_a_record_is_written_once_and_kept(hub: FakeHub) -> None:
    ledger = UsageLedger(hub)
    state = ran_an_hour()
    await ledger.record(state, 1, "Succeeded", None)
    await ledger.record(state, 1, "Succeeded", None)  # a retried sync: already recorded, no second write
    assert hub.writes == [("create", "u1-1")]
    assert ("u1", 1) in ledger and len(ledger) == 1
    [recorded] = list(ledger)
    assert (recorded.tenant, recorded.charge.cost) == ("team-a", Money(Decimal("16.00"), "CNY"))


async def test_a_record_that_exists_already_is_success_and_the_hubs_copy_stands(hub: FakeHub) -> None:
    state = ran_an_hour()
    body = usage_record(state, 1, "Succeeded", None)
    assert body is not None
    body["spec"]["cost"] = "15.00"  # written before (another replica, or before a restart), as it was then
    hub.objects["u1-1"] = body
    ledger = UsageLedger(hub)
    await ledger.record(state, 1, "Succeeded", None)
    [recorded] = list(ledger)
    assert recorded.charge.cost == Money(Decimal("15.00"), "CNY")


async def test_a_failed_write_raises_and_keeps_nothing(hub: FakeHub) -> None:
    hub.fail_create = RuntimeError("hub unavailable")
    ledger = UsageLedger(hub)
    with pytest.raises(RuntimeError):
        await ledger.record(ran_an_hour(), 1, "Succeeded", None)
    assert len(ledger) == 0


async def test_start_up_reads_this_months_records_and_the_month_turn_forgets_the_old(hub: FakeHub) -> None:
    for uid, started in (("old", "2026-10-10T08:00:00Z"), ("new", "2026-11-10T08:00:00Z"),
                         ("late", "2026-11-30T23:30:00Z")):
        body = usage_record(state_of([pod(1, "p1", started, HOUR)], uid=uid), 1, "Succeeded", None)
        assert body is not None
        hub.objects[body["metadata"]["name"]] = body
    hub.objects["broken-1"] = {"metadata": {"name": "broken-1", "labels": {"interconnect.dev/month": "2026-11"}},
                               "spec": {"tenant": "team-a"}}
    ledger = UsageLedger(hub)
    await ledger.load(t("2026-11-20T00:00:00Z"))
    assert hub.selectors == ["interconnect.dev/month=2026-11"]
    assert {r.job_uid for r in ledger} == {"new"}, "October's is not listed; one that cannot be read is skipped"
    await ledger.record(state_of([pod(1, "p1", "2026-11-30T23:30:00Z", HOUR)], uid="late"), 1, "Succeeded", None)
    assert {r.job_uid for r in ledger.charges(t("2026-11-30T23:59:00Z"))} == {"new", "late"}
    # December: November's "new" counts no more; "late" ran into December and still counts there.
    assert {r.job_uid for r in ledger.charges(t("2026-12-01T00:10:00Z"))} == {"late"}


# ---------------------------------------------------------------------------------------------
# Quotas: spend = this month's records + what runs without one; never both
# ---------------------------------------------------------------------------------------------


def budgeted(tenant: str = "team-a") -> ComputeQuota:
    return ComputeQuota.model_validate({"metadata": {"name": tenant}, "spec": {
        "namespace": tenant, "limits": {"monthlySpend": {"amount": "1000", "currency": "CNY"}}}})


async def test_spend_counts_each_attempt_once_from_its_record_if_it_has_one(controller: Controller) -> None:
    market, ledger = controller.market, controller.usage_records
    market.quota_changed(budgeted())
    now = t("2026-11-20T12:00:00Z")
    # A job deleted after it finished: only its record is left (2 cards x 1 h x 8 = 16.00).
    await ledger.record(ran_an_hour("gone"), 1, "Succeeded", None)
    # A job running its second attempt on gz: the first, lost with its node, has its record (4.00);
    # its job's own figure for it (16.00 at bj's 8.00) must not count as well.
    running = state_of([pod(1, "p1", "2026-11-20T08:00:00Z", HOUR), pod(2, "p2", "2026-11-20T10:00:00Z", HOUR // 2,
                                                                         finished=False)],
                       uid="run", attempt=2, history=[
                           {"attempt": 1, "node": "bj", "memberJobName": "ic-run-1", "offer": "bj-h20", "price": PRICE,
                            "outcome": "NodeLost", "finishedAt": "2026-11-20T09:00:00Z"},
                           {"attempt": 2, "node": "gz", "memberJobName": "ic-run-2", "offer": "gz-a100",
                            "price": PRICE}])
    lost = usage_record(running, 1, "NodeLost", None, lost_since=t("2026-11-20T09:00:00Z"))
    assert lost is not None
    lost["spec"]["cost"] = "4.00"  # what was charged when the attempt ended (the job's figure grew since)
    controller.hub.objects["run-1"] = lost  # type: ignore[attr-defined]
    await ledger.record(running, 1, "NodeLost", None, lost_since=t("2026-11-20T09:00:00Z"))
    controller.jobs.add(running)
    # Another tenant's record and a record of October count nowhere here.
    await ledger.record(ran_an_hour("theirs", namespace="team-b"), 1, "Succeeded", None)
    ledger.remember(usage_record(state_of([pod(1, "p1", "2026-10-10T08:00:00Z", HOUR)], uid="oct"), 1,
                                 "Succeeded", None) or {})
    usage = market.tenant_usage(now)
    # 16.00 (gone) + 4.00 (attempt 1's record) + 8.00 (attempt 2 running: 2 cards x 0.5 h x 8)
    assert usage["team-a"].spent_in("CNY") == Money(Decimal("28.00"), "CNY")
    assert usage["team-a"].cards == 2
    assert "team-b" not in usage, "no budget there: its spend is not counted"


async def test_a_running_attempt_whose_record_is_written_counts_once(controller: Controller) -> None:
    """The record lands, the status write that ends the job has not (or failed): the job is still
    Running in memory, and its attempt counts from its record only."""
    controller.market.quota_changed(budgeted())
    state = ran_an_hour()
    controller.jobs.add(state)
    now = t("2026-11-20T12:00:00Z")
    assert controller.market.tenant_usage(now)["team-a"].spent_in("CNY") == Money(Decimal("16.00"), "CNY")
    await controller.usage_records.record(state, 1, "Succeeded", None)
    assert state.phase is JobPhase.RUNNING
    assert controller.market.tenant_usage(now)["team-a"].spent_in("CNY") == Money(Decimal("16.00"), "CNY")


async def test_a_record_spanning_the_month_turn_counts_pro_rata(controller: Controller) -> None:
    controller.market.quota_changed(budgeted())
    # 23:30 to 00:30, 16.00: half in November, half in December.
    await controller.usage_records.record(
        state_of([pod(1, "p1", "2026-11-30T23:30:00Z", HOUR)]), 1, "Succeeded", None)
    assert controller.market.tenant_usage(t("2026-11-30T23:59:00Z"))["team-a"].spent_in("CNY") == Money(
        Decimal("8.00"), "CNY")
    assert controller.market.tenant_usage(t("2026-12-01T01:00:00Z"))["team-a"].spent_in("CNY") == Money(
        Decimal("8.00"), "CNY")


async def test_deleting_a_finished_job_keeps_its_spend(controller: Controller) -> None:
    controller.market.quota_changed(budgeted())
    state = ran_an_hour()
    await controller.usage_records.record(state, 1, "Succeeded", None)
    state.phase = JobPhase.SUCCEEDED
    controller.jobs.add(state)
    now = t("2026-11-20T12:00:00Z")
    before = controller.market.tenant_usage(now)["team-a"].spent_in("CNY")
    await controller.job_watch.job_deleted({"metadata": {"uid": "u1"}, "status": {}})
    assert controller.market.tenant_usage(now)["team-a"].spent_in("CNY") == before == Money(Decimal("16.00"), "CNY")


# ---------------------------------------------------------------------------------------------
# Where records are written: before the status that records the end
# ---------------------------------------------------------------------------------------------


async def test_a_refusal_records_what_ran_before_the_status_write(controller: Controller, hub: FakeHub) -> None:
    state = ran_an_hour()
    controller.jobs.add(state)
    await controller.dispatcher.refuse(state, "spent 16.00 CNY, its budget is 15.00 CNY", "BudgetExceeded")
    assert hub.writes == [("create", "u1-1"), ("status", "train")]
    assert hub.objects["u1-1"]["spec"]["outcome"] == "BudgetExceeded"
    assert state.phase is JobPhase.FAILED


async def test_no_record_no_end(controller: Controller, hub: FakeHub) -> None:
    """A record that cannot be written keeps the end from being written: it is tried again."""
    state = ran_an_hour()
    controller.jobs.add(state)
    hub.fail_create = RuntimeError("hub unavailable")
    with pytest.raises(RuntimeError):
        await controller.dispatcher.refuse(state, "spent", "BudgetExceeded")
    assert hub.writes == [("create", "u1-1")] and state.phase is JobPhase.RUNNING


async def test_a_refused_workload_that_never_ran_writes_no_record(controller: Controller, hub: FakeHub) -> None:
    state = state_of([], phase="Scheduled")
    controller.jobs.add(state)
    await controller.dispatcher.refuse(state, "member gz refused the Job (HTTP 422)", "MemberRejected")
    assert hub.writes == [("status", "train")]


async def test_an_attempt_lost_with_its_node_is_recorded_before_it_is_superseded(
        controller: Controller, hub: FakeHub) -> None:
    state = state_of([pod(1, "p1", "2026-11-10T08:00:00Z", HOUR // 2, finished=False)])
    controller.jobs.add(state)
    lost_since = t("2026-11-10T08:31:00Z")
    from interconnect.api.v1alpha1 import ComputeNode

    gz = NodeState(ComputeNode.model_validate(node("gz")), lost_since=lost_since, ready_message="no answer")
    await controller.failover._supersede(state, gz, re_place=True)
    assert hub.writes == [("create", "u1-1"), ("status", "train")]
    spec = hub.objects["u1-1"]["spec"]
    assert (spec["outcome"], spec["finishedAt"], spec["cardHours"]) == ("NodeLost", "2026-11-10T08:31:00Z", "1")
    assert state.phase is JobPhase.PENDING and state.lost_at(1) == lost_since


class FakeMember:
    name = "gz"

    def __init__(self, uid: str, finished: dt.datetime) -> None:
        self.job = DispatchedJob(uid="m1", name=f"ic-{uid}-1", job_uid=uid, attempt=1, active=0, succeeded=1,
                                 failed=0, complete=True, failed_reason=None, failed_message=None, start_time=None,
                                 completion_time=finished, deleting=False)
        self.pods = [DispatchedPod(uid="p1", name="p1", job_uid=uid, attempt=1, member_job=f"ic-{uid}-1",
                                   node="n1", phase="Succeeded", gpus=2, started=t("2026-11-10T08:00:00Z"),
                                   finished=finished, reason=None, message=None, unschedulable=None, deleted=False)]

    def cached_job(self, uid: str, attempt: int) -> DispatchedJob:
        return self.job

    def cached_pods(self, uid: str, attempt: int) -> list[DispatchedPod]:
        return self.pods


async def test_the_member_sync_records_a_finished_attempt_before_it_writes_the_end(
        controller: Controller, hub: FakeHub, monkeypatch: pytest.MonkeyPatch) -> None:
    state = state_of([pod(1, "p1", "2026-11-10T08:00:00Z", HOUR // 2, finished=False)])
    state.member_job = {"cluster": "gz", "namespace": "jobs", "name": "ic-u1-1"}
    controller.jobs.add(state)
    member = FakeMember("u1", t("2026-11-10T09:30:00Z"))
    monkeypatch.setattr(controller.members, "connected", lambda name: member)
    monkeypatch.setattr(controller.members, "answered_at", lambda name: t("2026-11-10T09:31:00Z"))
    await controller.sync.sync_job("u1")
    assert hub.writes == [("create", "u1-1"), ("status", "train")]
    spec = hub.objects["u1-1"]["spec"]
    assert (spec["outcome"], spec["cardHours"], spec["cost"], spec["finishedAt"]) == (
        "Succeeded", "3", "24.00", "2026-11-10T09:30:00Z")
    assert state.phase is JobPhase.SUCCEEDED


async def test_a_failed_end_write_is_retried_without_a_second_record(
        controller: Controller, hub: FakeHub, monkeypatch: pytest.MonkeyPatch) -> None:
    state = state_of([pod(1, "p1", "2026-11-10T08:00:00Z", HOUR // 2, finished=False)])
    controller.jobs.add(state)
    member = FakeMember("u1", t("2026-11-10T09:30:00Z"))
    monkeypatch.setattr(controller.members, "connected", lambda name: member)
    monkeypatch.setattr(controller.members, "answered_at", lambda name: t("2026-11-10T09:31:00Z"))
    hub.fail_status = RuntimeError("conflict")
    with pytest.raises(RuntimeError):
        await controller.sync.sync_job("u1")
    assert state.phase is JobPhase.RUNNING, "rolled back: not durable"
    hub.fail_status = None
    await controller.sync.sync_job("u1")
    assert hub.writes == [("create", "u1-1"), ("status", "train"), ("status", "train")]
    assert state.phase is JobPhase.SUCCEEDED


async def test_a_job_deleted_while_it_ran_keeps_what_it_was_charged(controller: Controller, hub: FakeHub) -> None:
    state = state_of([pod(1, "p1", "2026-11-10T08:00:00Z", HOUR // 4, finished=False)])
    controller.jobs.add(state)
    await controller.job_watch.job_deleted({"metadata": {"uid": "u1"}, "status": {}})
    spec = hub.objects["u1-1"]["spec"]
    assert (spec["outcome"], spec["cardHours"], spec["cost"]) == ("Deleted", "0.5", "4.00")
    assert "u1" not in controller.jobs

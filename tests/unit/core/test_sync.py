"""core.sync: what a member's Job and pods mean for their ComputeJob; how a refused dispatch and a
failed member Job are reported (never retried forever, never a message that outgrows the object)."""

from __future__ import annotations

import datetime as dt

import pytest

from interconnect.core.sync import (
    MESSAGE_LIMIT,
    MemberJobView,
    PodView,
    failure_summary,
    member_outcome,
    member_refused,
    start_failure,
    start_overdue,
    summarised,
)
from interconnect.core.vocabulary import JobPhase


@pytest.mark.parametrize(("status", "refused"), [
    (400, True), (403, True), (404, True), (422, True),
    (401, False), (408, False), (409, False), (429, False), (500, False), (503, False), (None, False),
])
def test_which_member_answers_end_the_attempt(status: int | None, refused: bool) -> None:
    assert member_refused(status) is refused


def test_a_long_message_is_summarised_and_says_how_much_was_left_out() -> None:
    text = "x" * 40_000
    short = summarised(text)
    assert len(short) == MESSAGE_LIMIT
    assert short.endswith(f"... ({40_000 - MESSAGE_LIMIT} more characters)")
    assert summarised("short") == "short"


def test_four_hundred_failing_pods_make_one_line() -> None:
    pods = [(f"p-{i:03d}", "container train exited with code 1") for i in range(398)]
    pods += [("p-398", "OOMKilled"), ("p-399", "Evicted")]
    text = failure_summary("BackoffLimitExceeded", "Job has reached the specified backoff limit", pods)
    assert text.startswith("BackoffLimitExceeded: Job has reached the specified backoff limit (398 pods: "
                           "container train exited with code 1 (e.g. p-000)")
    assert "p-398: OOMKilled" in text and "p-399: Evicted" in text
    assert len(text) < 400
    many = [(f"p{i}", f"reason {i}") for i in range(50)]
    assert failure_summary("Failed", None, many).endswith("; 45 other reasons)")


# --------------------------------------------------------------------------------------------
# The sync decision: member Job and pods -> phase, condition, event (table-driven)
# --------------------------------------------------------------------------------------------

T0 = dt.datetime(2026, 11, 30, 8, 0, tzinfo=dt.UTC)
DONE = MemberJobView(complete=True, failed_reason=None, failed_message=None, completion_time=T0)
FAILED = MemberJobView(complete=False, failed_reason="BackoffLimitExceeded", failed_message="limit reached",
                       completion_time=T0)
ACTIVE_JOB = MemberJobView(complete=False, failed_reason=None, failed_message=None, completion_time=None)
RUNNING_POD = PodView("p0", "Running")
PENDING_POD = PodView("p0", "Pending")
STUCK_POD = PodView("p0", "Pending", unschedulable="0/3 nodes are available: 3 Insufficient nvidia.com/gpu.")
FAILED_POD = PodView("p1", "Failed", reason="Error", message="container train exited with code 1")
D, R = JobPhase.DISPATCHED, JobPhase.RUNNING

CASES = [
    # (name, phase, job, pods, deleted by others, phase after, condition (type, status, reason), event reason)
    ("job not seen yet", D, None, [], False, None, None, None),
    ("job deleted by someone else", R, None, [], True, JobPhase.FAILED, ("Failed", True, "MemberJobDeleted"),
     "MemberJobDeleted"),
    ("complete", R, DONE, [], False, JobPhase.SUCCEEDED, ("Succeeded", True, "Completed"), "Completed"),
    ("complete while dispatched", D, DONE, [PENDING_POD], False, JobPhase.SUCCEEDED,
     ("Succeeded", True, "Completed"), "Completed"),
    ("failed", R, FAILED, [FAILED_POD], False, JobPhase.FAILED, ("Failed", True, "BackoffLimitExceeded"), "Failed"),
    ("a pod runs", D, ACTIVE_JOB, [RUNNING_POD], False, JobPhase.RUNNING, ("Running", True, "PodsRunning"), None),
    ("still running", R, ACTIVE_JOB, [RUNNING_POD], False, None, None, None),
    ("pods unschedulable", D, ACTIVE_JOB, [STUCK_POD], False, None, ("Running", False, "MemberUnschedulable"), None),
    ("pods pending", D, ACTIVE_JOB, [PENDING_POD], False, None, None, None),
]


@pytest.mark.parametrize(("name", "phase", "job", "pods", "deleted", "after", "condition", "event"), CASES,
                         ids=[c[0] for c in CASES])
def test_member_outcome(name: str, phase: JobPhase, job: MemberJobView | None, pods: list[PodView], deleted: bool,
                        after: JobPhase | None, condition: tuple[str, bool, str] | None, event: str | None) -> None:
    outcome = member_outcome(phase, "member-1", "ic-uid-1", job, pods, deleted_by_others=deleted)
    assert outcome.phase is after
    assert (outcome.condition[:3] if outcome.condition else None) == condition
    assert (outcome.event[1] if outcome.event else None) == event
    if after is not None and after.is_terminal and job is not None:
        assert outcome.completed_at == T0


def test_outcome_messages_say_where_and_why() -> None:
    deleted = member_outcome(R, "member-1", "ic-uid-1", None, [], deleted_by_others=True)
    assert deleted.condition is not None
    assert deleted.condition[3] == "the member Job ic-uid-1 was deleted on member-1 by someone other than the hub"
    failed = member_outcome(R, "member-1", "ic-uid-1", FAILED, [FAILED_POD], deleted_by_others=False)
    assert failed.condition is not None
    assert failed.condition[3] == "BackoffLimitExceeded: limit reached (p1: container train exited with code 1)"


# --------------------------------------------------------------------------------------------
# Start deadline: pods that never start do not hold cards for free
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("seconds", "replicas", "started", "overdue"), [
    (599, 1, 0, False), (600, 1, 0, True), (3600, 2, 1, True), (3600, 2, 2, False), (3600, 1, 3, False),
])
def test_start_overdue(seconds: int, replicas: int, started: int, overdue: bool) -> None:
    assert start_overdue(T0, T0 + dt.timedelta(seconds=seconds), 600, replicas, started) is overdue


def test_the_start_failure_says_what_the_member_says() -> None:
    text = start_failure("member-1", 600, 2, [STUCK_POD], 1)
    assert text.startswith("StartDeadlineExceeded: 1 of 2 pods started on member-1 within 600s of placement "
                           "(spec.startDeadlineSeconds) (p0: 0/3 nodes are available")
    assert start_failure("member-1", 10, 1, [], 0).endswith(": the member created no pod")

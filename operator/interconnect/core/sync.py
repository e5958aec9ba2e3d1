"""What a member's Job and pods mean for their ComputeJob: the sync decision (pure, no I/O).

The member sync worker reads the member Job and pods of a job's current attempt from the
watches; this module says what follows from them: a phase change, the condition that records
it, the event to post, and the completion time. Nothing here writes; the worker writes the
status first and changes its state only once the write has landed.

Also here: how a member's refusal is told from a passing failure, and how long messages are
kept short (a condition may not outgrow the object, whatever a member or a tenant writes).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from interconnect.core.vocabulary import JobPhase


@dataclass(frozen=True, slots=True)
class MemberJobView:
    """The member Job of the current attempt, as its watch last saw it."""

    complete: bool
    failed_reason: str | None
    failed_message: str | None
    completion_time: dt.datetime | None


@dataclass(frozen=True, slots=True)
class PodView:
    """One pod of the current attempt, as its watch last saw it."""

    name: str
    phase: str
    reason: str | None = None
    message: str | None = None
    unschedulable: str | None = None


@dataclass(frozen=True, slots=True)
class Outcome:
    """What the member's objects mean for the job. ``phase`` None: no phase change."""

    phase: JobPhase | None = None
    condition: tuple[str, bool, str, str] | None = None
    """(type, status, reason, message) to set, if any."""
    event: tuple[str, str, str] | None = None
    """(type, reason, message) of the event to post, if any."""
    completed_at: dt.datetime | None = None
    """For a terminal phase: when (the member's completion time, else the caller's now)."""


NO_CHANGE = Outcome()


def member_outcome(
    phase: JobPhase,
    member: str,
    member_job_name: str | None,
    job: MemberJobView | None,
    pods: Sequence[PodView],
    *,
    deleted_by_others: bool,
) -> Outcome:
    """The decision for a Dispatched or Running job, in the order the member's facts decide it:
    its Job gone (deleted by someone else), complete, failed, then its pods running or stuck."""
    if job is None:
        if not deleted_by_others:
            return NO_CHANGE  # not created yet, or the watch has not seen it
        message = f"the member Job {member_job_name} was deleted on {member} by someone other than the hub"
        return Outcome(JobPhase.FAILED, ("Failed", True, "MemberJobDeleted", message),
                       ("Warning", "MemberJobDeleted", message))
    if job.complete:
        return Outcome(JobPhase.SUCCEEDED, ("Succeeded", True, "Completed", f"the member Job completed on {member}"),
                       ("Normal", "Completed", f"completed on {member}"), job.completion_time)
    if job.failed_reason:
        message = failure_summary(job.failed_reason, job.failed_message,
                                  [(p.name, p.message or p.reason or "") for p in pods if p.phase == "Failed"])
        return Outcome(JobPhase.FAILED, ("Failed", True, job.failed_reason, message),
                       ("Warning", "Failed", message), job.completion_time)
    if any(p.phase == "Running" for p in pods):
        if phase is JobPhase.RUNNING:
            return NO_CHANGE
        # No event: the Running condition says it, and an event per job start is a hub write.
        return Outcome(JobPhase.RUNNING, ("Running", True, "PodsRunning", f"running on {member}"))
    unschedulable = next((p.unschedulable for p in pods if p.unschedulable), None)
    if unschedulable:
        return Outcome(None, ("Running", False, "MemberUnschedulable", unschedulable))
    return NO_CHANGE


START_DEADLINE_EXCEEDED = "StartDeadlineExceeded"


def start_overdue(placed_at: dt.datetime, at: dt.datetime, deadline_seconds: float, replicas: int,
                  started: int) -> bool:
    """Whether an attempt's pods missed their start deadline: fewer than ``replicas`` have ever
    started, ``deadline_seconds`` after placement. Such pods hold cards without paying for them
    (an unpullable image, a refusal by the member's quota or admission, no room on the member)."""
    return started < replicas and (at - placed_at).total_seconds() >= deadline_seconds


def start_failure(node: str, deadline_seconds: float, replicas: int, pods: Sequence[PodView], started: int) -> str:
    """Why the attempt ended: how many pods started, and what the member says of the others."""
    waiting = [(p.name, p.unschedulable or p.message or p.reason or p.phase) for p in pods]
    text = (f"{started} of {replicas} pods started on {node} within {deadline_seconds:.0f}s of placement "
            f"(spec.startDeadlineSeconds)")
    if not pods:
        return f"{text}: the member created no pod"
    return failure_summary(START_DEADLINE_EXCEEDED, text, waiting)


def member_refused(status: int | None) -> bool:
    """A member's answer that no retry can change: a 4xx other than 409 (it exists: adopt it),
    429 (throttled) and 408 (timed out), and other than 401 (our credential: the node's Ready
    condition says so, and a re-join fixes it)."""
    return status is not None and 400 <= status < 500 and status not in (401, 408, 409, 429)


def failure_summary(reason: str, message: str | None, pods: Sequence[tuple[str, str]], shown: int = 5) -> str:
    """Why a member Job failed, with the reasons of a few of its failed pods: a job with 400
    failing pods gets one readable line, not 400 (which once overflowed the condition)."""
    text = f"{reason}: {message or ''}".strip()
    if not pods:
        return text
    by_reason: dict[str, list[str]] = {}
    for name, why in sorted(pods):
        by_reason.setdefault(why, []).append(name)
    parts = [f"{len(names)} pods: {why} (e.g. {names[0]})" if len(names) > 1 else f"{names[0]}: {why}"
             for why, names in sorted(by_reason.items(), key=lambda kv: (-len(kv[1]), kv[0]))[:shown]]
    more = len(by_reason) - shown
    return f"{text} ({'; '.join(parts)}{f'; {more} other reasons' if more > 0 else ''})"


MESSAGE_LIMIT = 4096
"""A condition message is summarised to this many characters (the API allows 32,768; a job's
status must stay far from the object size limit whatever a member or a tenant writes)."""


def summarised(message: str, limit: int = MESSAGE_LIMIT) -> str:
    """``message`` cut to ``limit`` characters, saying how much was left out."""
    if len(message) <= limit:
        return message
    tail = f" ... ({len(message) - limit} more characters)"
    return message[: limit - len(tail)] + tail

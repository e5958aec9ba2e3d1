"""Leadership by a coordination.k8s.io Lease, with a fencing epoch: the pure rules.

Two replicas that both believe they lead would place a job twice and delete each other's
member Jobs. kopf's peering alone cannot prevent it: a replica that cannot reach the hub keeps
its last belief. So the replica that leads holds a Lease, and:

- it *takes* the Lease only when the Lease is free, or has not changed for a whole
  ``leaseDurationSeconds`` as measured on this replica's own monotonic clock (client-go's rule:
  no comparison of two machines' wall clocks);
- it *leads* only while its last successful renewal was sent less than ``renew_deadline`` ago,
  which is shorter than the lease duration, so it stops before anyone else may start;
- every acquisition raises the Lease's ``leaseTransitions``: that number is the leader's
  *epoch*. Member Jobs, dispatch journal segments and ComputeJob status carry it, and nothing
  written under a newer epoch is deleted or overwritten by an older one (a request sent just
  before the deadline and delivered late is still fenced).
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

LEASE_NAME = "interconnect-leader"
EPOCH_LABEL = "interconnect.dev/epoch"
"""On member Jobs, their pods and journal segments: the epoch of the leader that wrote them."""
MICRO_TIME = "%Y-%m-%dT%H:%M:%S.%fZ"


class NotLeader(Exception):
    """This replica cannot confirm that it leads: it must not write."""


Fence = Callable[[], int]
"""Asked before every write: the epoch to write under, or NotLeader."""


def unfenced() -> int:
    """The fence of tools that are not an operator replica (the CLI, benchmarks): epoch 0."""
    return 0


@dataclass(frozen=True, slots=True)
class LeaseRecord:
    holder: str
    duration: float
    """leaseDurationSeconds."""
    transitions: int
    """leaseTransitions: the epoch of the current (or last) holder."""
    renewed: str
    """renewTime as written (compared for change, never against this machine's clock)."""
    acquired: str
    resource_version: str


class Move(enum.Enum):
    RENEW = "renew"
    """We hold it: write a new renewTime."""
    ACQUIRE = "acquire"
    """Free, expired, or ours from before this process: take it with a new epoch."""
    WAIT = "wait"
    """Someone else holds it and it is not expired (as far as this replica has seen)."""


def read_lease(obj: Mapping[str, Any]) -> LeaseRecord:
    spec = obj.get("spec") or {}
    meta = obj.get("metadata") or {}
    return LeaseRecord(
        holder=str(spec.get("holderIdentity") or ""),
        duration=float(spec.get("leaseDurationSeconds") or 0),
        transitions=int(spec.get("leaseTransitions") or 0),
        renewed=str(spec.get("renewTime") or ""),
        acquired=str(spec.get("acquireTime") or ""),
        resource_version=str(meta.get("resourceVersion") or ""),
    )


def next_move(record: LeaseRecord | None, identity: str, *, holding: bool, unchanged_for: float) -> Move:
    """What this replica does with the Lease now.

    ``holding``: this process holds it (it acquired it and has renewed it since).
    ``unchanged_for``: seconds, on this replica's monotonic clock, since it first saw the
    Lease's current (holder, renewTime, transitions); 0 when it has just changed.
    """
    if record is None or not record.holder:
        return Move.ACQUIRE
    if record.holder == identity:
        # Ours, but from a previous process of the same replica (a restarted container): that
        # process is gone, so take it at once, with a new epoch.
        return Move.RENEW if holding else Move.ACQUIRE
    if unchanged_for >= record.duration:
        return Move.ACQUIRE
    return Move.WAIT


def lease_body(*, name: str, namespace: str, identity: str, duration: int, at: datetime,
               record: LeaseRecord | None, move: Move) -> dict[str, Any]:
    """The Lease to write for ``move`` (RENEW or ACQUIRE); conditional on the version read."""
    stamp = at.strftime(MICRO_TIME)
    spec: dict[str, Any] = {"holderIdentity": identity, "leaseDurationSeconds": duration, "renewTime": stamp}
    if move is Move.ACQUIRE:
        spec["acquireTime"] = stamp
        spec["leaseTransitions"] = (record.transitions if record else 0) + 1
    else:
        assert record is not None
        spec["acquireTime"] = record.acquired or stamp
        spec["leaseTransitions"] = record.transitions
    meta: dict[str, Any] = {"name": name, "namespace": namespace}
    if record is not None:
        meta["resourceVersion"] = record.resource_version
    return {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": meta, "spec": spec}


def released_body(record: LeaseRecord, *, name: str, namespace: str, at: datetime) -> dict[str, Any]:
    """The Lease handed back on a clean stop: no holder, so a standby takes it without waiting."""
    return {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
            "metadata": {"name": name, "namespace": namespace, "resourceVersion": record.resource_version},
            "spec": {"holderIdentity": "", "leaseDurationSeconds": 1, "renewTime": at.strftime(MICRO_TIME),
                     "acquireTime": record.acquired or at.strftime(MICRO_TIME),
                     "leaseTransitions": record.transitions}}


def renew_deadline(duration: float) -> float:
    """How long after sending its last successful renewal the leader keeps leading: two thirds
    of the lease, so it has stopped a third of a lease before a standby may take over."""
    return duration * 2 / 3


def epoch_of(labels: Mapping[str, str] | None) -> int | None:
    """The epoch an object was written under (None: written before epochs, or not by us)."""
    value = (labels or {}).get(EPOCH_LABEL)
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def may_delete(written_under: int | None, own_epoch: int) -> bool:
    """A leader deletes only what leaders up to its own epoch wrote: a newer leader's work is
    out of its reach even if it still believes it leads."""
    return written_under is None or written_under <= own_epoch

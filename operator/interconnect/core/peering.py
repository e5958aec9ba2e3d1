"""Which operator replica is active: kopf's peering rule, so our own loops obey it too.

kopf freezes its handlers in every replica that sees a live peer of higher priority (or of the
same priority: then all of them freeze). The controller's own loops (placement, dispatch,
metering, heartbeats) are not kopf handlers, so they follow the same rule over the same peering
object; otherwise a standby would place and dispatch alongside the active replica.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any


@dataclass(frozen=True, slots=True)
class Peer:
    identity: str
    priority: int
    lastseen: datetime
    lifetime: timedelta

    @property
    def deadline(self) -> datetime:
        return self.lastseen + self.lifetime


def peers_from_status(status: Mapping[str, Any] | None) -> list[Peer]:
    """The peers kopf keeps in a peering object's status (entries it cannot read are skipped)."""
    peers: list[Peer] = []
    for identity, info in (status or {}).items():
        if not isinstance(info, Mapping) or "lastseen" not in info:
            continue
        try:
            lastseen = datetime.fromisoformat(str(info["lastseen"]).replace("Z", "+00:00"))
            peers.append(Peer(str(identity), int(info.get("priority", 0)), lastseen,
                              timedelta(seconds=int(info.get("lifetime", 60)))))
        except (TypeError, ValueError):
            continue
    return peers


def is_active(identity: str, priority: int, peers: list[Peer], now: datetime) -> bool:
    """True when this replica is alive in the peering and no other live peer outranks or ties it."""
    alive = [p for p in peers if p.deadline > now]
    if not any(p.identity == identity for p in alive):
        return False  # kopf has not announced us yet: it is not processing either
    return not any(p.priority >= priority for p in alive if p.identity != identity)


def blocked_until(identity: str, priority: int, peers: list[Peer], now: datetime) -> datetime | None:
    """When the last peer that keeps us on standby expires, if it stops renewing (None: not blocked)."""
    blockers = [p.deadline for p in peers
                if p.identity != identity and p.deadline > now and p.priority >= priority]
    return max(blockers) if blockers else None

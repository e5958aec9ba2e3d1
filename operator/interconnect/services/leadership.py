"""Holding the leader Lease: this replica's one answer to "may I write now?".

`Leadership.step` runs every second in the leadership loop (handlers/runtime.py): it takes the
Lease when this replica should lead and may (see core/leadership.py), renews it while it does,
and hands it back when it should not. `check` is the fence every hub and member write asks
first: it answers the epoch while the last renewal is recent enough, NotLeader otherwise. The
rules are in core/leadership.py; this class only keeps the clock readings and does the I/O.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import time

from interconnect.adapters.hub import Conflict, Hub
from interconnect.core.leadership import (
    LEASE_NAME,
    LeaseRecord,
    Move,
    NotLeader,
    lease_body,
    next_move,
    read_lease,
    released_body,
    renew_deadline,
)

log = logging.getLogger(__name__)

RENEW_EVERY_SECONDS = 2.0


class Leadership:
    def __init__(self, hub: Hub, namespace: str, identity: str, *, lease_seconds: int,
                 name: str = LEASE_NAME) -> None:
        self._hub = hub
        self.namespace = namespace
        self.identity = identity
        self.name = name
        self.lease_seconds = lease_seconds
        self._record: LeaseRecord | None = None
        self._seen: tuple[str, str, int] | None = None
        self._seen_at = 0.0
        """Monotonic time at which this replica first saw the Lease as it is now."""
        self._valid_until = 0.0
        """Monotonic: until when this replica leads without another renewal."""
        self._last_renewal = 0.0
        self._last_read = 0.0
        self.epoch: int | None = None
        """The epoch of this replica's current term (None: it does not lead)."""

    @property
    def renew_every(self) -> float:
        """Several renewals fit in the renew deadline, so one lost request does not end the lead."""
        return min(RENEW_EVERY_SECONDS, renew_deadline(self.lease_seconds) / 4)

    @property
    def last_renewal(self) -> float:
        """Monotonic time at which the last successful renewal (or acquisition) was sent."""
        return self._last_renewal

    @property
    def leading(self) -> bool:
        return self.epoch is not None and time.monotonic() < self._valid_until

    def check(self) -> int:
        """The fence: the epoch to write under, or NotLeader when the lead is not confirmed."""
        epoch = self.epoch
        if epoch is None or time.monotonic() >= self._valid_until:
            raise NotLeader(f"replica {self.identity} cannot confirm it leads (no renewal of Lease "
                            f"{self.namespace}/{self.name} within {renew_deadline(self.lease_seconds):.0f}s)")
        return epoch

    async def step(self, want: bool) -> bool:
        """One round: lead if ``want`` and the Lease allows, hand it back if not ``want``.
        Never raises: a hub that does not answer means no renewal, and the lead runs out."""
        try:
            if want:
                await self._contend()
            elif self.epoch is not None:
                await self.release()
            elif time.monotonic() - self._last_read >= RENEW_EVERY_SECONDS:
                # Watched while on standby too, so that when this replica should lead it knows
                # already how long the holder has been silent.
                self._observe(await self._read())
        except Exception as exc:
            log.warning("leader Lease %s/%s: %s", self.namespace, self.name, str(exc) or type(exc).__name__)
        if self.epoch is not None and not self.leading:
            log.warning("replica %s stops leading (epoch %d): no renewal of the Lease in time", self.identity,
                        self.epoch)
            self.epoch = None
        return self.leading

    async def _contend(self) -> None:
        now = time.monotonic()
        if self.leading and now - self._last_renewal < self.renew_every:
            return
        if not self.leading or self._record is None:
            self._observe(await self._read())
        move = next_move(self._record, self.identity, holding=self.leading,
                         unchanged_for=now - self._seen_at)
        if move is Move.WAIT:
            return
        sent = time.monotonic()
        body = lease_body(name=self.name, namespace=self.namespace, identity=self.identity,
                          duration=self.lease_seconds, at=dt.datetime.now(dt.UTC), record=self._record, move=move)
        try:
            written = await self._hub.write_lease(body)
        except Conflict:
            self._record = None  # someone else wrote it: read it again next round
            return
        self._observe(read_lease(written))
        assert self._record is not None
        self._valid_until = sent + renew_deadline(self.lease_seconds)
        self._last_renewal = sent
        if move is Move.ACQUIRE:
            self.epoch = self._record.transitions
            log.info("replica %s leads with epoch %d (Lease %s/%s)", self.identity, self.epoch, self.namespace,
                     self.name)

    async def release(self) -> None:
        """Hand the Lease back (a clean stop, or a peer should lead): a standby need not wait."""
        if self.epoch is not None:
            log.info("replica %s stops leading (epoch %d) and hands the Lease back", self.identity, self.epoch)
        record, self.epoch, self._valid_until = self._record, None, 0.0
        if record is None or record.holder != self.identity:
            return
        with contextlib.suppress(Conflict):  # someone else holds it already
            await self._hub.write_lease(released_body(record, name=self.name, namespace=self.namespace,
                                                      at=dt.datetime.now(dt.UTC)))
        self._record = None

    async def _read(self) -> LeaseRecord | None:
        self._last_read = time.monotonic()
        obj = await self._hub.read_lease(self.namespace, self.name)
        return read_lease(obj) if obj is not None else None

    def _observe(self, record: LeaseRecord | None) -> None:
        self._record = record
        seen = (record.holder, record.renewed, record.transitions) if record else None
        if seen != self._seen:
            self._seen, self._seen_at = seen, time.monotonic()

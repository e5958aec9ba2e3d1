"""The dispatch journal writes several segments at once, never two of one job at once, and a
failed write fails only the placements it carried.

The hub here is a stand-in recording the segment writes (the journal's own logic is under test;
the e2e restart tests run it against a real API server)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from interconnect.services.journal import MAX_IN_FLIGHT, DispatchJournal


class SlowHub:
    """Answers each ConfigMap create when released; remembers what was written, and how many
    creates were in flight at most."""

    epoch = 1

    def __init__(self) -> None:
        self.written: list[dict[str, str]] = []
        self.in_flight = 0
        self.most = 0
        self.release = asyncio.Event()
        self.fail_next = False

    async def create_config_map(self, namespace: str, name: str, data: dict[str, str], labels: Any) -> None:
        self.in_flight += 1
        self.most = max(self.most, self.in_flight)
        try:
            await self.release.wait()
            if self.fail_next:
                self.fail_next = False
                raise RuntimeError("hub: etcdserver: request timed out")
            self.written.append(dict(data))
        finally:
            self.in_flight -= 1

    async def delete_config_map(self, namespace: str, name: str) -> None:
        return None


def _run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_a_burst_goes_in_one_segment_and_the_next_ones_do_not_wait_for_it() -> None:
    async def scenario() -> tuple[int, list[dict[str, str]]]:
        hub = SlowHub()
        journal = DispatchJournal(hub, "ns")  # type: ignore[arg-type]
        first = [asyncio.create_task(journal.record(f"a{i}", {"attempts": 1})) for i in range(10)]
        await asyncio.sleep(0.01)
        # Three more placement passes while the first segment is still being written.
        later = []
        for burst in range(3):
            later += [asyncio.create_task(journal.record(f"b{burst}-{i}", {"attempts": 1})) for i in range(5)]
            await asyncio.sleep(0.01)
        in_flight = hub.in_flight
        hub.release.set()
        await asyncio.gather(*first, *later)
        await journal.close()
        return in_flight, hub.written

    in_flight, written = _run(scenario())
    assert in_flight == 4 <= MAX_IN_FLIGHT
    assert sorted(written[0]) == sorted(f"a{i}" for i in range(10))
    assert sum(len(w) for w in written) == 25


def test_a_jobs_newer_placement_waits_for_its_older_segment() -> None:
    async def scenario() -> tuple[list[dict[str, str]], str]:
        hub = SlowHub()
        journal = DispatchJournal(hub, "ns")  # type: ignore[arg-type]
        old = asyncio.create_task(journal.record("job", {"attempts": 1}))
        await asyncio.sleep(0.01)
        new = asyncio.create_task(journal.record("job", {"attempts": 2}))
        other = asyncio.create_task(journal.record("other", {"attempts": 1}))
        await asyncio.sleep(0.01)
        assert hub.in_flight == 2  # "other" did not wait; the job's second placement did
        hub.release.set()
        await asyncio.gather(old, new, other)
        segment = journal._segment_of["job"]
        await journal.close()
        return hub.written, segment

    written, _ = _run(scenario())
    job_entries = [w["job"] for w in written if "job" in w]
    assert job_entries == ['{"attempts":1}', '{"attempts":2}']


def test_a_failed_write_fails_only_its_placements() -> None:
    async def scenario() -> tuple[BaseException | None, BaseException | None]:
        hub = SlowHub()
        journal = DispatchJournal(hub, "ns")  # type: ignore[arg-type]
        hub.fail_next = True
        doomed = asyncio.create_task(journal.record("a", {"attempts": 1}))
        await asyncio.sleep(0.01)
        fine = asyncio.create_task(journal.record("b", {"attempts": 1}))
        await asyncio.sleep(0.01)
        hub.release.set()
        results = await asyncio.gather(doomed, fine, return_exceptions=True)
        await journal.close()
        return results[0], results[1]

    doomed, fine = _run(scenario())
    assert isinstance(doomed, RuntimeError) and "timed out" in str(doomed)
    assert fine is None


@pytest.mark.parametrize("n", [1, MAX_IN_FLIGHT + 3])
def test_every_placement_is_written_once_however_many_segments(n: int) -> None:
    async def scenario() -> list[dict[str, str]]:
        hub = SlowHub()
        hub.release.set()
        journal = DispatchJournal(hub, "ns")  # type: ignore[arg-type]
        tasks = []
        for burst in range(n):
            tasks += [asyncio.create_task(journal.record(f"{burst}-{i}", {"attempts": 1})) for i in range(3)]
            await asyncio.sleep(0)
        await asyncio.gather(*tasks)
        await journal.close()
        return hub.written

    written = _run(scenario())
    keys = [k for w in written for k in w]
    assert sorted(keys) == sorted(f"{b}-{i}" for b in range(n) for i in range(3))

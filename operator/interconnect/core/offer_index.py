"""Offers indexed for placement: the cheapest offers that may fit a job, without walking the market.

Placement (`core.placement`) scanned every offer of the market for every pending job: 10,000
offers took about 4 ms a decision, 100,000 about 400 ms, and a pass places thousands of jobs.
Almost all of that work rejects offers that could never win. This index finds the few that can:

- An offer's *class* is what placement reads from it that does not change while cards are taken
  (GPU model, currency, billing unit and machine size, allowed registries, published
  tolerations); a job accepts or refuses a whole class at once, with one check per class. GPU
  memory is kept per offer instead (a job asking for a minimum skips the smaller ones): it
  varies little within a model, and splitting classes by it would triple the buckets a job
  opens for nothing when it asks for no minimum, as most do.
- A *bucket* holds the offers of one class, either in one region or in every region, sorted by
  (price, name). Within a bucket the job's price key (per card-hour or per PFLOPS-hour: the
  bucket's unit and model fix the multiplier) only grows with the price, and so do maxPrice and
  budget verdicts: a bucket is read from its cheapest end and given up at the first offer over.
- Free cards are kept in a max-tree over each bucket (`Bucket.first_fit`: the next offer with at
  least N free cards in O(log n)), updated in place when a placement takes cards (`set_free`),
  so a pass never rebuilds what it has not changed.
- Regions: the latency table says which regions meet a tier from an origin (about 1 for 1ms, 2
  for 5ms, 16 of 34 for 20ms). A job reaching few regions reads the per-region buckets of those
  regions; one reaching many reads the all-region buckets and skips offers elsewhere (cheaper
  than opening hundreds of small buckets).

`cheapest_first` merges the chosen buckets by key and yields *batches*: every offer that passed
the index's checks at the lowest key left, together. The index only prunes by conditions that
placement's filter chain also checks (it never decides alone): placement runs its one filter
chain over each batch, and the first batch with a fitting offer holds every fitting offer of
the lowest fitting key, so the tie-break sees exactly what a full scan would.

Pure and in memory; `OfferIndex` is mutable (free cards) and owned by one snapshot at a time.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Collection, Hashable, Iterable, Iterator, Sequence
from decimal import Decimal
from typing import NamedTuple

KeyOf = Callable[[Decimal], Decimal | None]
"""A bucket's price -> the job's key for it, or None when the price is beyond what the job pays
(then every dearer offer of the bucket is too)."""


class Entry(NamedTuple):
    """One offer, as the index sees it."""

    name: str
    region: str
    cls: Hashable
    amount: Decimal
    free: int
    memory: int


class Bucket:
    """The offers of one class (in one region, or in all when `region` is None), cheapest first."""

    __slots__ = ("_size", "_tree", "amounts", "cls", "least_memory", "memories", "most_memory", "names", "region",
                 "regions")

    def __init__(self, cls: Hashable, region: str | None, entries: Iterable[Entry]) -> None:
        ordered = sorted(entries, key=lambda e: (e.amount, e.name))
        self.cls = cls
        self.region = region
        self.names = [e.name for e in ordered]
        self.amounts = [e.amount for e in ordered]
        self.regions = [e.region for e in ordered]
        self.memories = [e.memory for e in ordered]
        self.least_memory = min(self.memories, default=0)
        self.most_memory = max(self.memories, default=0)
        size = 1
        while size < len(ordered):
            size <<= 1
        tree = [-1] * (2 * size)
        tree[size : size + len(ordered)] = [e.free for e in ordered]
        for i in range(size - 1, 0, -1):
            left, right = tree[2 * i], tree[2 * i + 1]
            tree[i] = left if left >= right else right
        self._size = size
        self._tree = tree

    def __len__(self) -> int:
        return len(self.names)

    def free_at(self, position: int) -> int:
        return self._tree[self._size + position]

    def set_free(self, position: int, free: int) -> None:
        tree = self._tree
        i = self._size + position
        tree[i] = free
        i >>= 1
        while i:
            left, right = tree[2 * i], tree[2 * i + 1]
            best = left if left >= right else right
            if tree[i] == best:
                break
            tree[i] = best
            i >>= 1

    def first_fit(self, start: int, needed: int) -> int:
        """The first position >= `start` whose offer has at least `needed` free cards, or -1."""
        tree = self._tree
        if start >= len(self.names) or tree[1] < needed:
            return -1
        i = start + self._size
        while tree[i] < needed:
            while i & 1:  # a right child: nothing more to its right at this level, climb
                i >>= 1
            if i == 0:
                return -1
            i += 1
        size = self._size
        while i < size:
            i <<= 1
            if tree[i] < needed:
                i += 1
        return i - size


class Source(NamedTuple):
    """One bucket to read for a job: its key function, for an all-region bucket the regions the
    job may use (None: all), and the least GPU memory it accepts."""

    bucket: Bucket
    key_of: KeyOf
    regions: Collection[str] | None
    min_memory: int


class OfferIndex:
    """Buckets per (region, class) and per class, and where each offer sits in them."""

    __slots__ = ("by_class", "by_region", "memo", "where")

    def __init__(self, entries: Iterable[Entry]) -> None:
        per_region: dict[str, dict[Hashable, list[Entry]]] = {}
        per_class: dict[Hashable, list[Entry]] = {}
        for entry in entries:
            per_region.setdefault(entry.region, {}).setdefault(entry.cls, []).append(entry)
            per_class.setdefault(entry.cls, []).append(entry)
        self.by_region: dict[str, tuple[Bucket, ...]] = {
            region: tuple(Bucket(cls, region, group) for cls, group in classes.items())
            for region, classes in per_region.items()
        }
        self.by_class: dict[Hashable, Bucket] = {cls: Bucket(cls, None, group) for cls, group in per_class.items()}
        self.where: dict[str, list[tuple[Bucket, int]]] = {}
        for buckets in (*self.by_region.values(), tuple(self.by_class.values())):
            for bucket in buckets:
                for position, name in enumerate(bucket.names):
                    self.where.setdefault(name, []).append((bucket, position))
        self.memo: dict[Hashable, object] = {}
        """Job-independent answers worth keeping with the index (e.g. regions reached from an origin)."""

    @property
    def regions(self) -> Collection[str]:
        return self.by_region.keys()

    def __contains__(self, name: str) -> bool:
        return name in self.where

    def set_free(self, name: str, free: int) -> None:
        """An indexed offer now has `free` cards free (e.g. a placement took some)."""
        for bucket, position in self.where[name]:
            bucket.set_free(position, free)

    def sources(
        self, regions: Collection[str], key_of: Callable[[Hashable], KeyOf | None], min_memory: int = 0
    ) -> list[Source]:
        """The buckets to read for a job that may use `regions`, prices classes with `key_of`
        (None: the job refuses the class) and needs `min_memory` GiB per card.

        Per region when the job reaches few regions (r buckets per class), else per class,
        skipping offers outside `regions` (about total/r offers skipped per offer read): the
        cheaper of the two, r * r against the number of regions with offers.
        """
        if not regions:
            return []
        out: list[Source] = []
        if len(regions) * len(regions) <= len(self.by_region):
            for region in regions:
                for bucket in self.by_region.get(region, ()):
                    if bucket.most_memory >= min_memory and (key := key_of(bucket.cls)) is not None:
                        out.append(Source(bucket, key, None, min_memory))
            return out
        wanted = frozenset(regions)
        allowed = None if wanted.issuperset(self.by_region) else wanted
        for cls, bucket in self.by_class.items():
            if bucket.most_memory >= min_memory and (key := key_of(cls)) is not None:
                out.append(Source(bucket, key, allowed, min_memory))
        return out


def _next(source: Source, start: int, needed: int) -> int:
    """The next offer of the source's bucket at or after `start` with the cards, in its regions,
    with the memory: -1 when there is none."""
    bucket, _, regions, min_memory = source
    position = bucket.first_fit(start, needed)
    if regions is None and min_memory <= bucket.least_memory:
        return position
    in_region, memories = bucket.regions, bucket.memories
    while position >= 0 and (
        (regions is not None and in_region[position] not in regions) or memories[position] < min_memory
    ):
        position = bucket.first_fit(position + 1, needed)
    return position


def cheapest_first(sources: Sequence[Source], needed: int) -> Iterator[list[str]]:
    """Offers with at least `needed` free cards, in batches of equal key, lowest key first.

    Each batch holds every offer of the sources at that key (all offers of one price in a
    bucket share a key), so a caller comparing ties within a batch compares all of them.
    """
    heap: list[tuple[Decimal, int, int]] = []
    for i, source in enumerate(sources):
        position = _next(source, 0, needed)
        if position >= 0:
            key = source.key_of(source.bucket.amounts[position])
            if key is not None:
                heap.append((key, i, position))
    heapq.heapify(heap)
    while heap:
        lowest = heap[0][0]
        batch: list[str] = []
        while heap and heap[0][0] == lowest:
            _, i, position = heapq.heappop(heap)
            source = sources[i]
            amounts, names = source.bucket.amounts, source.bucket.names
            amount = amounts[position]
            while position >= 0 and amounts[position] == amount:
                batch.append(names[position])
                position = _next(source, position + 1, needed)
            if position >= 0:
                key = source.key_of(amounts[position])
                if key is not None:
                    heapq.heappush(heap, (key, i, position))
        yield batch


__all__ = ["Bucket", "Entry", "KeyOf", "OfferIndex", "Source", "cheapest_first"]

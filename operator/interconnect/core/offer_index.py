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
  least N free cards in O(log n)) and a sorted list (`count_free_below`, for explanations),
  updated in place when a placement takes cards (`set_free`), so a pass never rebuilds what it
  has not changed.
- Regions: the latency table says which regions meet a tier from an origin (about 1 for 1ms, 2
  for 5ms, 16 of 34 for 20ms). A job reaching few regions reads the per-region buckets of those
  regions; one reaching many reads the all-region buckets and skips offers elsewhere (cheaper
  than opening hundreds of small buckets).

`cheapest_first` merges the chosen buckets by key and yields *batches*: every offer that passed
the index's checks at the lowest key left, together. The index only prunes by conditions that
placement's filter chain also checks (it never decides alone): placement runs its one filter
chain over each batch, and the first batch with a fitting offer holds every fitting offer of
the lowest fitting key, so the tie-break sees exactly what a full scan would (a job preferring
greener nodes within a price band reads on to the band's ceiling, and the chain chooses among
all of those).

The same buckets also count, for a job that fits nowhere, why (placement's
`_counts_when_unplaced`): whole buckets and regions at a time rather than offer by offer.

Pure and in memory; `OfferIndex` is mutable (free cards, and `memo`: answers kept for the jobs
of a pass) and owned by one snapshot at a time.
"""

from __future__ import annotations

import heapq
from bisect import bisect_left, insort
from collections.abc import Callable, Collection, Hashable, Iterable, Iterator, Sequence
from decimal import Decimal
from itertools import repeat
from operator import itemgetter
from typing import Any, NamedTuple

KeyOf = Callable[[Decimal], Decimal | None]
"""A bucket's price -> the job's key for it, or None when the price is beyond what the job pays
(then every dearer offer of the bucket is too)."""


class Entry(NamedTuple):
    """One offer, as the index sees it (as `OfferIndex.of_entries` takes it)."""

    name: str
    region: str
    cls: Hashable
    amount: Decimal
    free: int
    memory: int


class Layout(NamedTuple):
    """Where an item given to the index (an `Entry`, or placement's own offer rows) keeps what the
    index reads: the index is built from the caller's objects, none of its own per offer (a
    100,000-offer index is built once per pass; per-offer objects there mostly fed the garbage
    collector, which took two thirds of the time)."""

    name: Callable[[Any], str]
    amount: Callable[[Any], Decimal]
    free: Callable[[Any], int]
    memory: Callable[[Any], int]


ENTRY = Layout(itemgetter(0), itemgetter(3), itemgetter(4), itemgetter(5))
"""The layout of `Entry`."""


class Bucket:
    """The offers of one class (in one region, or in all when `region` is None), cheapest first."""

    __slots__ = ("_fits", "_fits_at", "_size", "_sorted_frees", "_tree", "amounts", "cls", "least_memory",
                 "memories", "most_memory", "names", "positions", "region", "regions")

    def __init__(
        self,
        cls: Hashable,
        region: str | None,
        names: Sequence[str],
        amounts: Sequence[Decimal],
        frees: Sequence[int],
        memories: Sequence[int],
        regions: Sequence[str],
    ) -> None:
        """From columns in any order (sorted here by price, then name)."""
        order = sorted(range(len(names)), key=lambda i: (amounts[i], names[i]))
        self.cls = cls
        self.region = region
        self.names = [names[i] for i in order]
        self.amounts = [amounts[i] for i in order]
        self.regions = [regions[i] for i in order]
        self.memories = [memories[i] for i in order]
        self.positions = dict(zip(self.names, range(len(order)), strict=True))
        self.least_memory = min(self.memories, default=0)
        self.most_memory = max(self.memories, default=0)
        size = 1
        while size < len(order):
            size <<= 1
        tree = [-1] * (2 * size)
        tree[size : size + len(order)] = [frees[i] for i in order]
        for i in range(size - 1, 0, -1):
            left, right = tree[2 * i], tree[2 * i + 1]
            tree[i] = left if left >= right else right
        self._size = size
        self._tree = tree
        # Counting is done per region (explanations); the all-region buckets do not keep it up.
        self._sorted_frees = None if region is None else sorted(tree[size : size + len(order)])
        self._fits: dict[tuple[int, Collection[str] | None, int], int] = {}
        """(cards, regions, memory) -> the first position that has them (-1: none): `first_from_start`."""
        self._fits_at: dict[int, list[tuple[int, Collection[str] | None, int]]] = {}
        """Position -> the `_fits` answers that are that position (what taking its cards may undo)."""

    def __len__(self) -> int:
        return len(self.names)

    def free_at(self, position: int) -> int:
        return self._tree[self._size + position]

    def frees(self, start: int = 0, stop: int | None = None) -> list[int]:
        """Free cards of the offers at positions start..stop, in price order."""
        size = self._size
        return self._tree[size + start : size + (len(self.names) if stop is None else stop)]

    def count_free_below(self, needed: int) -> int:
        """How many offers of the bucket have fewer than `needed` free cards (for explanations)."""
        if self._sorted_frees is None:
            return sum(1 for free in self.frees() if free < needed)
        return bisect_left(self._sorted_frees, needed)

    def set_free(self, position: int, free: int) -> None:
        tree = self._tree
        i = self._size + position
        was = tree[i]
        if free == was:
            return
        if free < was:
            # Fewer cards: an answer of `first_from_start` stays right unless it was this
            # position and now asks for more than is left (nothing before it changed, and a
            # position after it had too few before and has no more now).
            asked = self._fits_at.get(position)
            if asked:
                for query in [query for query in asked if query[0] > free]:
                    asked.remove(query)
                    del self._fits[query]
        elif self._fits:
            self._fits.clear()  # more cards: any answer may move earlier (rare within a pass)
            self._fits_at.clear()
        frees = self._sorted_frees
        if frees is not None:
            del frees[bisect_left(frees, was)]
            insort(frees, free)
        tree[i] = free
        i >>= 1
        while i:
            left, right = tree[2 * i], tree[2 * i + 1]
            best = left if left >= right else right
            if tree[i] == best:
                break
            tree[i] = best
            i >>= 1

    def first_from_start(self, needed: int, regions: Collection[str] | None, min_memory: int) -> int:
        """The first position with at least `needed` free cards, in `regions` (None: any) and
        with at least `min_memory` GiB, or -1: remembered until taking cards changes it.

        Within a pass thousands of jobs ask the same few questions (1, 2, 4 or 8 cards, from the
        same regions) of buckets that change a position at a time; answered once each, the walk
        down the tree (and past the offers of other regions) is not repeated per job.
        """
        query = (needed, regions, min_memory)
        position = self._fits.get(query)
        if position is None:
            position = self.first_fit(0, needed)
            if regions is not None or min_memory > self.least_memory:
                in_region, memories = self.regions, self.memories
                while position >= 0 and (
                    (regions is not None and in_region[position] not in regions) or memories[position] < min_memory
                ):
                    position = self.first_fit(position + 1, needed)
            self._fits[query] = position
            if position >= 0:
                self._fits_at.setdefault(position, []).append(query)
        return position

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

    __slots__ = ("by_class", "by_region", "class_bucket", "memo", "region_bucket")

    def __init__(self, items: Iterable[tuple[str, Hashable, Any]], layout: Layout = ENTRY) -> None:
        """From (region, class, item) for every offer, the item read through `layout`."""
        per_region: dict[str, dict[Hashable, list[Any]]] = {}
        for region, cls, item in items:
            per_region.setdefault(region, {}).setdefault(cls, []).append(item)
        name, amount, free, memory = layout
        self.by_region: dict[str, tuple[Bucket, ...]] = {
            region: tuple(
                Bucket(cls, region, list(map(name, group)), list(map(amount, group)), list(map(free, group)),
                       list(map(memory, group)), [region] * len(group))
                for cls, group in classes.items()
            )
            for region, classes in per_region.items()
        }
        per_class: dict[Hashable, list[Bucket]] = {}
        for buckets in self.by_region.values():
            for bucket in buckets:
                per_class.setdefault(bucket.cls, []).append(bucket)
        self.by_class: dict[Hashable, Bucket] = {
            cls: Bucket(
                cls,
                None,
                [n for b in buckets for n in b.names],
                [a for b in buckets for a in b.amounts],
                [b.free_at(i) for b in buckets for i in range(len(b))],
                [m for b in buckets for m in b.memories],
                [r for b in buckets for r in b.regions],
            )
            for cls, buckets in per_class.items()
        }
        # Offer name -> its bucket in its region, and in all regions (no per-offer objects).
        self.region_bucket: dict[str, Bucket] = {}
        for buckets in self.by_region.values():
            for bucket in buckets:
                self.region_bucket.update(zip(bucket.names, repeat(bucket)))
        self.class_bucket: dict[str, Bucket] = {}
        for bucket in self.by_class.values():
            self.class_bucket.update(zip(bucket.names, repeat(bucket)))
        self.memo: dict[Hashable, object] = {}
        """Job-independent answers worth keeping with the index (e.g. regions reached from an origin)."""

    @classmethod
    def of_entries(cls, entries: Iterable[Entry]) -> OfferIndex:
        return cls((entry.region, entry.cls, entry) for entry in entries)

    @property
    def regions(self) -> Collection[str]:
        return self.by_region.keys()

    def __contains__(self, name: str) -> bool:
        return name in self.region_bucket

    def set_free(self, name: str, free: int) -> None:
        """An indexed offer now has `free` cards free (e.g. a placement took some)."""
        bucket = self.region_bucket[name]
        bucket.set_free(bucket.positions[name], free)
        bucket = self.class_bucket[name]
        bucket.set_free(bucket.positions[name], free)

    def plan(
        self, regions: Collection[str], admits: Callable[[Hashable], bool], min_memory: int = 0
    ) -> list[tuple[Bucket, Collection[str] | None]]:
        """The buckets to read for a job that may use `regions`, accepts the classes `admits`
        and needs `min_memory` GiB per card; with each, the regions to keep (None: all).

        Per region when the job reaches few regions (r buckets per class), else per class,
        skipping offers outside `regions` (about total/r offers skipped per offer read): the
        cheaper of the two, r * r against the number of regions with offers. Depends on no
        price, so callers may keep it for the jobs that ask the same.
        """
        if not regions:
            return []
        if len(regions) * len(regions) <= len(self.by_region):
            return [
                (bucket, None)
                for region in regions
                for bucket in self.by_region.get(region, ())
                if bucket.most_memory >= min_memory and admits(bucket.cls)
            ]
        wanted = frozenset(regions)
        allowed = None if wanted.issuperset(self.by_region) else wanted
        return [
            (bucket, allowed)
            for cls, bucket in self.by_class.items()
            if bucket.most_memory >= min_memory and admits(cls)
        ]

    def sources(
        self, regions: Collection[str], key_of: Callable[[Hashable], KeyOf | None], min_memory: int = 0
    ) -> list[Source]:
        """`plan`, with each bucket's key function (`key_of`; None: the job refuses the class)."""
        keys: dict[Hashable, KeyOf | None] = {}
        out = []
        for bucket, allowed in self.plan(regions, lambda cls: (keys.get(cls) or keys.setdefault(cls, key_of(cls)))
                                         is not None, min_memory):
            key = keys[bucket.cls]
            assert key is not None
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


EAGER_SOURCES = 16
"""Up to this many sources, `cheapest_first` looks at each at once rather than lazily."""


def cheapest_first(sources: Sequence[Source], needed: int) -> Iterator[tuple[Decimal, list[str]]]:
    """Offers with at least `needed` free cards, in batches of equal key, lowest key first:
    (key, names).

    Each batch holds every offer of the sources at that key (all offers of one price in a
    bucket share a key), so a caller comparing ties within a batch compares all of them.
    """
    # (key, source, position, verified): with few sources every one is looked at (free cards,
    # region, memory) at once, as nearly all would be; with many, a source enters at its cheapest
    # offer's key, a lower bound, and is looked at only when it reaches the top, so the many
    # sources dearer than the answer cost one key each.
    heap: list[tuple[Decimal, int, int, bool]] = []
    eager = len(sources) <= EAGER_SOURCES
    for i, source in enumerate(sources):
        if not len(source.bucket):
            continue
        if eager:
            position = source.bucket.first_from_start(needed, source.regions, source.min_memory)
            if position < 0:
                continue
        else:
            position = 0
        key = source.key_of(source.bucket.amounts[position])
        if key is not None:
            heap.append((key, i, position, eager))
    heapq.heapify(heap)
    while heap:
        lowest, i, position, verified = heap[0]
        if not verified:
            heapq.heappop(heap)
            _verify(heap, sources[i], i, position, lowest, needed)
            continue
        batch: list[str] = []
        while heap and heap[0][0] == lowest:
            _, i, position, verified = heapq.heappop(heap)
            source = sources[i]
            if not verified:
                _verify(heap, source, i, position, lowest, needed)
                continue
            amounts, names = source.bucket.amounts, source.bucket.names
            amount = amounts[position]
            while position >= 0 and amounts[position] == amount:
                batch.append(names[position])
                position = _next(source, position + 1, needed)
            if position >= 0:
                key = source.key_of(amounts[position])
                if key is not None:
                    heapq.heappush(heap, (key, i, position, True))
        if batch:
            yield lowest, batch


def _verify(heap: list[tuple[Decimal, int, int, bool]], source: Source, i: int, position: int, key: Decimal,
            needed: int) -> None:
    """Back on the heap at the source's first offer from `position` that passes, with its key."""
    found = _next(source, position, needed)
    if found < 0:
        return
    if found != position:
        moved = source.key_of(source.bucket.amounts[found])
        if moved is None:
            return
        key = moved
    heapq.heappush(heap, (key, i, found, True))


__all__ = ["ENTRY", "Bucket", "Entry", "KeyOf", "Layout", "OfferIndex", "Source", "cheapest_first"]

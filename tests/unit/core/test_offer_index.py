"""The offer index: its free-card tree, and placement through it against the full scan.

The property that matters: `place` (through the index) decides exactly what `place_by_scan` (every
offer through every filter) decides, on random markets of every shape the filters care about:
models of several vendors and unknown ones, regions near and far and unknown, per-card and
per-machine prices with many ties, currencies, validity windows, registries, tolerations, node
health and policies, green shares (a minimum, and greener preferred within a price band),
maxPrice, budgets, per-PFLOPS-hour jobs; and through a whole pass that takes cards after each
placement (`with_offers`, as the scheduler does).
"""

from __future__ import annotations

import dataclasses
import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal, localcontext

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from interconnect.core import offer_index
from interconnect.core.accelerators import CATALOGUE
from interconnect.core.latency import LatencyTable
from interconnect.core.money import MONEY_CONTEXT, Money, Price
from interconnect.core.offer_index import Bucket, Entry, OfferIndex, cheapest_first
from interconnect.core.placement import (
    JobRequest,
    NodeView,
    OfferView,
    PlacementSnapshot,
    _evaluate,
    _search,
    place,
    place_by_scan,
    what_would_fit,
)
from interconnect.core.regions import REGION_CODES
from interconnect.core.vocabulary import BillingUnit, Industry, LatencyTier, NodeType
from interconnect.core.workload_policy import Toleration

NOW = datetime(2026, 12, 2, 5, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
TABLE = LatencyTable.default()
MODELS = (*sorted(CATALOGUE), "GHOST-GPU")  # every vendor's, and one the catalogue does not know
VENDORS = ("nvidia", "huawei", "cambricon", "hygon")
REGISTRIES = ("registry.example.cn", "docker.io", "nvcr.io")
IMAGES = ("registry.example.cn/ml/train:1", "busybox", "nvcr.io/nvidia/pytorch:24.01", "ghcr.io/x/y")
TOLERATIONS = (Toleration("dedicated", "Equal", "gpu", "NoSchedule"), Toleration("spot", "Exists", "", ""))
MARKETS = 400
JOBS_PER_MARKET = 8


# -- the free-card tree ---------------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 20), max_size=40), st.data())
def test_first_fit_is_the_first_offer_with_the_cards(frees: list[int], data: st.DataObject) -> None:
    n = len(frees)
    bucket = Bucket("c", None, [f"o{i:02d}" for i in range(n)], [Decimal(i) for i in range(n)], frees, [80] * n,
                    ["R"] * n)
    for _ in range(5):
        if len(frees) > 0 and data.draw(st.booleans()):
            position = data.draw(st.integers(0, len(frees) - 1))
            frees[position] = data.draw(st.integers(0, 20))
            bucket.set_free(position, frees[position])
        start, needed = data.draw(st.integers(0, len(frees) + 1)), data.draw(st.integers(0, 21))
        expected = next((i for i in range(start, len(frees)) if frees[i] >= needed), -1)
        assert bucket.first_fit(start, needed) == expected
        assert [bucket.free_at(i) for i in range(len(frees))] == frees




@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 12), st.sampled_from("ABC"), st.sampled_from((40, 80))), max_size=30),
       st.data())
def test_remembered_first_fits_follow_every_change_of_free_cards(offers: list[tuple[int, str, int]],
                                                                 data: st.DataObject) -> None:
    """`first_from_start` answers from memory between changes; after cards are taken (the answer
    may move later), given back (it may move earlier) or left as they were, it still names the
    first offer with the cards, in the regions and with the memory asked for."""
    n = len(offers)
    frees = [free for free, _, _ in offers]
    bucket = Bucket("c", None, [f"o{i:02d}" for i in range(n)], [Decimal(i) for i in range(n)], frees,
                    [memory for _, _, memory in offers], [region for _, region, _ in offers])
    questions = [(needed, regions, memory) for needed in (0, 1, 4, 8) for regions in (None, frozenset("A"),
                                                                                      frozenset("BC"))
                 for memory in (0, 80)]
    for _ in range(12):
        if n and data.draw(st.booleans()):
            position = data.draw(st.integers(0, n - 1))
            frees[position] = data.draw(st.sampled_from((0, max(0, frees[position] - 3), frees[position],
                                                          frees[position] + 5)))
            bucket.set_free(position, frees[position])
        for needed, regions, memory in questions:
            expected = next((i for i, (_, region, gib) in enumerate(offers)
                             if frees[i] >= needed and (regions is None or region in regions) and gib >= memory), -1)
            assert bucket.first_from_start(needed, regions, memory) == expected
@pytest.mark.parametrize("eager_sources", [0, 16], ids=["lazy", "eager"])
def test_batches_come_cheapest_first_with_every_tie_together(eager_sources: int,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(offer_index, "EAGER_SOURCES", eager_sources)
    entries = [Entry("a", "R1", "x", Decimal(2), 4, 80), Entry("b", "R1", "x", Decimal(1), 0, 80),
               Entry("c", "R2", "x", Decimal(2), 8, 80), Entry("d", "R2", "y", Decimal(1), 8, 80),
               Entry("e", "R1", "y", Decimal(3), 8, 40)]
    index = OfferIndex.of_entries(entries)
    sources = index.sources(["R1", "R2"], lambda cls: lambda amount: amount * (2 if cls == "y" else 1))
    assert [(key, sorted(batch)) for key, batch in cheapest_first(sources, 4)] == [(2, ["a", "c", "d"]),
                                                                                   (6, ["e"])]
    index.set_free("c", 0)
    assert [sorted(b) for _, b in cheapest_first(index.sources(["R2"], lambda cls: lambda a: a), 4)] == [["d"]]
    assert list(cheapest_first(index.sources([], lambda cls: lambda a: a), 1)) == []
    assert [sorted(b) for _, b in cheapest_first(index.sources(["R1"], lambda cls: lambda a: a, 48), 1)] == [["a"]]
    capped = index.sources(["R1", "R2"], lambda cls: lambda a: None if a > 1 else a)
    assert [sorted(batch) for _, batch in cheapest_first(capped, 1)] == [["d"]]


# -- indexed placement == the scan, on random markets ----------------------------------------------


def random_market(rng: random.Random) -> PlacementSnapshot:
    regions = [*rng.sample(REGION_CODES, rng.randint(1, 12)), *(["XX-NOWHERE"] if rng.random() < 0.1 else [])]
    nodes = []
    for i in range(rng.randint(1, 25)):
        health = rng.choice([(True, True, False, False)] * 10 + [(False, True, False, False),
                            (True, False, False, False), (True, True, True, False), (True, True, False, True)])
        industry = rng.choice([None, None, Industry.FINANCE, Industry.HEALTHCARE])
        nodes.append(NodeView(name=f"n{i}", identity_code=f"ID-{i}",
                              type=NodeType.REGIONAL if industry is None else NodeType.INDUSTRY,
                              region=rng.choice(regions), industry=industry, ready=health[0], registered=health[1],
                              cordoned=health[2], fenced=health[3],
                              green_share=Decimal(rng.choice((0, 20, 50, 50, 80, 100))).scaleb(-2)))
    names = [n.name for n in nodes] + ["ghost-node"] * (rng.random() < 0.2)
    models = rng.sample(MODELS, rng.randint(1, 6))
    amounts = [Decimal(rng.randint(1, 60)).scaleb(-1) for _ in range(rng.randint(1, 12))]  # few: many ties
    offers = []
    for i in range(rng.randint(0, 160)):
        machine = rng.choice([None, None, None, 2, 4, 8])
        unit = BillingUnit.CARD_HOUR if machine is None else BillingUnit.MACHINE_HOUR
        amount = rng.choice(amounts)
        if machine is not None and rng.random() < 0.5:
            amount *= machine  # the same price per card as a per-card offer: a tie across units
        currency = "CNY" if rng.random() < 0.9 else "USD"
        card_machine = rng.choice([None, None, 4]) if machine is None else machine
        offers.append(OfferView(
            name=f"o{i:03d}", node=rng.choice(names), gpu_model=rng.choice(models),
            gpu_memory_gib=rng.choice((32, 48, 64, 80, 96)), cards_total=16, cards_free=rng.randint(0, 16),
            price=Price(Money(amount, currency), unit, card_machine),
            valid_from=rng.choice([None] * 8 + [NOW - HOUR, NOW, NOW + HOUR]),
            valid_until=rng.choice([None] * 8 + [NOW - HOUR, NOW, NOW + HOUR]),
            allowed_registries=frozenset(rng.sample(REGISTRIES, rng.randint(1, 2))) if rng.random() < 0.2
            else frozenset(),
            tolerations=frozenset(rng.sample(TOLERATIONS, rng.randint(1, 2))) if rng.random() < 0.3 else frozenset(),
        ))
    return PlacementSnapshot.of(nodes, offers, TABLE, NOW)


def random_job(rng: random.Random, snapshot: PlacementSnapshot, i: int = 0) -> JobRequest:
    regions = sorted({n.region for n in snapshot.nodes.values()} | {"CN-SH"})
    nodes = sorted(snapshot.nodes)

    def some(values: list[str] | tuple[str, ...], often: float = 0.15) -> frozenset[str]:
        return frozenset(rng.sample(list(values), rng.randint(1, min(2, len(values))))) if rng.random() < often \
            else frozenset()

    capability: dict[str, object] = {}
    if rng.random() < 0.2:
        capability["vendors"] = frozenset(rng.sample(VENDORS, rng.randint(1, 3)))
    if rng.random() < 0.15:
        capability["min_tflops"] = {rng.choice(("bf16", "fp16", "fp32")): Decimal(rng.choice((50, 150, 300, 700)))}
    currency = "CNY" if rng.random() < 0.9 else "USD"
    cap = Money(Decimal(rng.randint(1, 80)).scaleb(-1), currency) if rng.random() < 0.6 else None
    budget = Money(Decimal(rng.randint(0, 3000)).scaleb(-1), currency) if rng.random() < 0.25 else None
    return JobRequest(
        namespace="t", name=f"j{i}", uid=f"u{i}", gpus_per_replica=rng.choice((1, 1, 2, 3, 4, 8)),
        replicas=rng.choice((1, 1, 1, 2, 3)), models=some(sorted({o.gpu_model for o in snapshot.offers}) or ["A"]),
        min_memory_gib=rng.choice((0, 0, 0, 48, 80)), origin=rng.choice([*regions, *regions, "XX-UNKNOWN"]),
        tier=rng.choice(LatencyTier.ordered()), max_price=cap, budget=budget,
        expected_hours=Decimal(rng.randint(0, 400)).scaleb(-1) if rng.random() < 0.3 else None,
        allowed_regions=some(regions), denied_regions=some(regions, 0.1),
        allowed_industries=frozenset({Industry.FINANCE}) if rng.random() < 0.05 else frozenset(),
        denied_industries=frozenset({Industry.HEALTHCARE}) if rng.random() < 0.05 else frozenset(),
        allowed_nodes=some(nodes, 0.05), denied_nodes=some(nodes, 0.1), created=NOW,
        images=tuple(rng.sample(IMAGES, rng.randint(0, 2))),
        tolerations=frozenset(rng.sample(TOLERATIONS, rng.randint(1, 2))) if rng.random() < 0.2 else frozenset(),
        price_basis="pflops-hour" if rng.random() < 0.25 else "card-hour",
        min_green_share=Decimal(rng.choice((20, 50, 80))).scaleb(-2) if rng.random() < 0.1 else None,
        prefer_greener=rng.random() < 0.2, price_band=Decimal(rng.choice((0, 5, 10, 30, 100))).scaleb(-2),
        **capability,  # type: ignore[arg-type]
    )


@pytest.mark.parametrize("seed", range(MARKETS // 50))
def test_indexed_placement_decides_what_the_scan_decides(seed: int) -> None:
    """MARKETS random markets in all (50 per seed), JOBS_PER_MARKET jobs each, at every tier."""
    rng = random.Random(seed)
    placed = counted = 0
    for _ in range(50):
        snapshot = random_market(rng)
        for i in range(JOBS_PER_MARKET):
            job = random_job(rng, snapshot, i)
            indexed, scanned = place(job, snapshot), place_by_scan(job, snapshot)
            assert indexed.chosen == scanned.chosen, (job, indexed.chosen, scanned.chosen)
            # What the scheduler reads first, before anything makes the indexed decision scan:
            # counted from the index for a job placed nowhere, and the first rejections.
            assert (indexed.summary, indexed.top_reason, indexed.reason_counts, indexed.fitting) == (
                scanned.summary, scanned.top_reason, scanned.reason_counts, scanned.fitting), job
            assert indexed.first_rejected(7) == scanned.rejected[:7]
            counted += indexed._explained is None and not indexed.placed
            assert indexed == scanned  # and the whole explanation, scanned now
            placed += indexed.placed
            with localcontext(MONEY_CONTEXT):
                for tier in LatencyTier.ordered():
                    for cap_price in (True, False):
                        found = _search(job, snapshot, required=tier, cap_price=cap_price)
                        best = _evaluate(job, snapshot, required=tier, cap_price=cap_price).best
                        assert found == best
    assert placed > 50  # the markets are not all hopeless
    assert counted > 50  # and most jobs placed nowhere were explained without a scan


@pytest.mark.parametrize("seed", range(2))
def test_sources_looked_at_lazily_choose_what_the_scan_chooses(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """`cheapest_first` looks at many sources lazily (a lower bound first): the same choices."""
    monkeypatch.setattr(offer_index, "EAGER_SOURCES", 0)
    rng = random.Random(500 + seed)
    for _ in range(50):
        snapshot = random_market(rng)
        for i in range(JOBS_PER_MARKET):
            job = random_job(rng, snapshot, i)
            assert place(job, snapshot).chosen == place_by_scan(job, snapshot).chosen, job


@pytest.mark.parametrize("seed", range(4))
def test_a_pass_taking_cards_decides_what_scans_of_rebuilt_snapshots_decide(seed: int) -> None:
    """Jobs placed one after the other, each placement taking its cards from the offer (and
    from the other offers of its node and model, as the scheduler does) through `with_offer`,
    which updates the index in place: every decision equals a scan of a snapshot built anew."""
    rng = random.Random(1000 + seed)
    for _ in range(25):
        snapshot = random_market(rng)
        offers = {o.name: o for o in snapshot.offers}
        for i in range(30):
            job = random_job(rng, snapshot, i)
            decision = place(job, snapshot)
            rebuilt = PlacementSnapshot.of(snapshot.nodes.values(), offers.values(), TABLE, NOW)
            assert decision.chosen == place_by_scan(job, rebuilt).chosen
            if decision.chosen is None:
                continue
            view = offers[decision.chosen.offer]
            for name, other in list(offers.items()):
                if other.node == view.node and other.gpu_model == view.gpu_model:
                    offers[name] = other.with_cards_free(max(0, other.cards_free - job.cards))
                    snapshot = snapshot.with_offer(offers[name])
            if rng.random() < 0.1:  # a change the index cannot take in place: a new price
                name = rng.choice(sorted(offers))
                offers[name] = dataclasses.replace(offers[name], price=Price(Money(Decimal("0.1"), "CNY"),
                                                                             BillingUnit.CARD_HOUR))
                snapshot = snapshot.with_offer(offers[name])


def test_what_would_fit_through_the_index_matches_the_scan() -> None:
    rng = random.Random(7)
    for _ in range(30):
        snapshot = random_market(rng)
        job = random_job(rng, snapshot)
        hint = what_would_fit(job, snapshot)
        assert hint.fits_now == place_by_scan(job, snapshot).placed


def test_a_snapshot_that_handed_its_index_on_still_places_right() -> None:
    rng = random.Random(3)
    snapshot = random_market(rng)
    while not snapshot.offers:
        snapshot = random_market(rng)
    job = random_job(rng, snapshot)
    before = place(job, snapshot)
    target = snapshot.offers[0]
    after = snapshot.with_offer(dataclasses.replace(target, cards_free=0))
    assert place(job, after).chosen == place_by_scan(job, after).chosen
    assert place(job, snapshot) == before == place_by_scan(job, snapshot)


def test_taking_cards_and_replacing_several_offers_at_once_equals_rebuilding() -> None:
    rng = random.Random(11)
    for _ in range(40):
        snapshot = random_market(rng)
        if not snapshot.offers:
            continue
        chosen = rng.sample(list(snapshot.offers), min(3, len(snapshot.offers)))
        taken = [o.with_cards_free(rng.randint(0, 16)) for o in chosen]
        assert taken == [dataclasses.replace(o, cards_free=t.cards_free) for o, t in zip(chosen, taken, strict=True)]
        job = random_job(rng, snapshot)
        place(job, snapshot)  # builds the index, which with_offers then updates
        replaced = snapshot.with_offers(taken)
        by_name = {o.name: o for o in snapshot.offers} | {o.name: o for o in taken}
        rebuilt = PlacementSnapshot.of(snapshot.nodes.values(), by_name.values(), TABLE, NOW)
        assert replaced == rebuilt and tuple(replaced.offers) == rebuilt.offers
        assert place(job, replaced) == place_by_scan(job, rebuilt)


@pytest.mark.parametrize("seed", range(3))
def test_taking_cards_by_name_equals_replacing_the_offers(seed: int) -> None:
    """`with_cards_taken`, the scheduler's path, gives the snapshot `with_offers` gives (and a
    rebuilt one), and the next placements through its updated index equal the scan's."""
    rng = random.Random(2000 + seed)
    for _ in range(25):
        snapshot = random_market(rng)
        offers = {o.name: o for o in snapshot.offers}
        if not offers:
            continue
        for i in range(20):
            job = random_job(rng, snapshot, i)
            place(job, snapshot)  # the index exists, as in a pass
            names = rng.sample(sorted(offers), min(len(offers), rng.randint(1, 4)))
            cards = rng.randint(1, 12)
            replaced = [offers[n].with_cards_free(max(0, offers[n].cards_free - cards)) for n in names]
            by_offers = snapshot.with_offers(replaced)  # takes the index along
            snapshot = PlacementSnapshot.of(snapshot.nodes.values(), offers.values(), TABLE, NOW)
            place(job, snapshot)  # a fresh index for the path under test
            snapshot = snapshot.with_cards_taken([*names, "no-such-offer"], cards)
            assert [snapshot.cards_free(n) for n in names] == [o.cards_free for o in replaced]
            offers.update({o.name: o for o in replaced})
            rebuilt = PlacementSnapshot.of(snapshot.nodes.values(), offers.values(), TABLE, NOW)
            assert snapshot == by_offers == rebuilt and tuple(snapshot.offers) == rebuilt.offers
            nxt = random_job(rng, snapshot, 100 + i)
            assert place(nxt, snapshot).chosen == place_by_scan(nxt, rebuilt).chosen

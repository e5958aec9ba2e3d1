"""Where a job goes, and why everything else did not fit: a pure function of one snapshot.

`place(job, snapshot)` runs every offer through the filters below, in this order, and records
the first one each offer fails (`FILTER_ORDER`, the order of `RejectReason`):

 1. node missing, not registered, not Ready, cordoned, fenced        (is the node usable)
 2. region, industry, node: denied, then not allowed                (the tenant's policy)
 3. latency tier not met, from the job's origin to the node's region (where the node is)
 4. offer not yet valid / expired; an image from a registry the offer does not allow
                                                                     (the offer's window and terms)
 5. GPU model not accepted, GPU memory below the minimum, a replica larger than one machine,
    not enough free cards for all replicas                           (what the offer holds)
 6. currency mismatch, price above maxPrice, budget exceeded for the expected hours

Where comes before what, as in kube-scheduler (node affinity before resource fit): a tenant
learns that a node is out of its latency tier rather than that it is short of cards it could
never use anyway; and the node-level filters (1-3) settle all of a node's offers at once.

Prices are compared as the EFFECTIVE price per card-hour: a machine-hour offer bills whole
machines, so 3 cards of an 8-card machine pay one machine / 3 per card-hour. All replicas of a
job go to one offer. Among the offers that pass, the best is the lowest of
(effective price, tier, measured RTT, fewer cards left free (negated: more is better), offer
name): deterministic, and independent of the order the offers arrive in.

Placement runs for every pending job on every change, against up to ~100,000 offers, so it
does not scan (issue 22). `place` finds the choice through `core.offer_index`: offers indexed
by class (model, billing, currency, registries, tolerations) and region, cheapest first, with
their free cards kept up to date as a pass takes them (`PlacementSnapshot.with_offers`); the
index yields candidates in price order and `_evaluate`, the one filter chain below, judges
them, so the choice is the scan's (`place_by_scan`, kept as the reference and held to it by
tests/unit/core/test_offer_index.py). Why the other offers were not chosen is read on demand:
for a job placed nowhere its counts come from the index too, otherwise from the scan.

The scan (`_evaluate` over every offer) is kept lean: node and region verdicts are computed
once per node, messages are built once per distinct value, and prices are compared as exact
hourly totals (the job's card count is the same for every offer, so ordering by hourly total
is ordering by price per card-hour).
"""

from __future__ import annotations

import enum
import functools
from collections import Counter
from collections.abc import Callable, Collection, Hashable, Iterable, Iterator, Mapping, Sequence
from dataclasses import MISSING, dataclass, field, fields
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal, localcontext
from fractions import Fraction
from operator import attrgetter, itemgetter
from types import MappingProxyType
from typing import NamedTuple, Protocol, TypeVar, cast, overload

from interconnect.core.accelerators import by_name as accelerator_model
from interconnect.core.accelerators import compute_rate
from interconnect.core.latency import LatencyTable, UnknownRegion, tier_for_rtt
from interconnect.core.money import (
    MONEY_CONTEXT,
    Money,
    MoneyError,
    Price,
    cap_admitting,
    minor_unit,
    price_per_card_hour,
    round_to_minor_unit,
)
from interconnect.core.offer_index import Bucket, KeyOf, Layout, OfferIndex, Source, cheapest_first
from interconnect.core.vocabulary import BillingUnit, Industry, LatencyTier, NodeType
from interconnect.core.workload_policy import Toleration, image_registry, normal_registry

DEFAULT_CURRENCY = "CNY"


def _require_aware(value: datetime | None, what: str) -> None:
    if value is not None and value.utcoffset() is None:
        raise ValueError(f"{what} must be timezone-aware (Kubernetes timestamps are UTC)")


@dataclass(frozen=True, slots=True, kw_only=True)
class JobRequest:
    """What a pending ComputeJob asks for, as placement sees it."""

    namespace: str
    name: str
    uid: str
    gpus_per_replica: int
    replicas: int = 1
    models: frozenset[str] = frozenset()
    """Acceptable GPU models; empty accepts any."""
    min_memory_gib: int = 0
    origin: str
    tier: LatencyTier
    max_price: Money | None = None
    """Highest effective price per card-hour the tenant accepts."""
    budget: Money | None = None
    expected_hours: Decimal | None = None
    allowed_regions: frozenset[str] = frozenset()
    denied_regions: frozenset[str] = frozenset()
    allowed_industries: frozenset[Industry] = frozenset()
    denied_industries: frozenset[Industry] = frozenset()
    allowed_nodes: frozenset[str] = frozenset()
    denied_nodes: frozenset[str] = frozenset()
    priority: int = 0
    created: datetime
    images: tuple[str, ...] = ()
    """The images of the job's containers and init containers (offers may restrict registries)."""
    tolerations: frozenset[Toleration] = frozenset()
    """The pod's tolerations: an offer must publish each of them."""
    vendors: frozenset[str] = frozenset()
    """Acceptable accelerator vendors (the catalogue's); empty accepts any."""
    min_tflops: Mapping[str, Decimal] = field(default_factory=dict)
    """Least dense TFLOPS per card, by precision (bf16, fp16, fp32), from the catalogue."""
    price_basis: str = "card-hour"
    """card-hour, or pflops-hour: the cheapest per PFLOPS-hour (the catalogue's BF16, else FP16)."""
    min_green_share: Decimal | None = None
    """Least share of green power the node must declare for this month (0 to 1); None: any."""
    prefer_greener: bool = False
    """Among the offers at most `price_band` dearer than the cheapest, take the greenest node's."""
    price_band: Decimal = Decimal(0)
    """How much dearer than the cheapest (a fraction: 0.05 is 5%) a greener offer may be."""

    def __post_init__(self) -> None:
        if self.gpus_per_replica < 1 or self.replicas < 1:
            raise ValueError("a job needs at least one replica of at least one GPU")
        if self.min_memory_gib < 0:
            raise ValueError("min_memory_gib must not be negative")
        if self.expected_hours is not None and (
            not isinstance(self.expected_hours, Decimal)
            or not self.expected_hours.is_finite()
            or self.expected_hours < 0
        ):
            raise ValueError(f"expected_hours must be a non-negative Decimal, not {self.expected_hours!r}")
        if self.min_green_share is not None and not Decimal(0) <= self.min_green_share <= Decimal(1):
            raise ValueError(f"min_green_share is a fraction from 0 to 1, not {self.min_green_share}")
        if not Decimal(0) <= self.price_band <= Decimal(1):
            raise ValueError(f"price_band is a fraction from 0 to 1, not {self.price_band}")
        if self.max_price is not None and self.budget is not None and self.max_price.currency != self.budget.currency:
            raise MoneyError(f"maxPrice is in {self.max_price.currency} but budget in {self.budget.currency}")
        _require_aware(self.created, "created")

    @property
    def cards(self) -> int:
        """All replicas go to one offer, so the offer must hold replicas x GPUs per replica."""
        return self.replicas * self.gpus_per_replica

    @property
    def currency(self) -> str | None:
        """The currency the tenant pays in, when it said (maxPrice or budget)."""
        if self.max_price is not None:
            return self.max_price.currency
        return None if self.budget is None else self.budget.currency


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeView:
    """A member cluster's health and identity, as placement sees it."""

    name: str
    identity_code: str | None
    type: NodeType
    region: str
    industry: Industry | None = None
    ready: bool
    registered: bool
    cordoned: bool = False
    fenced: bool = False
    """Declared lost: its jobs are being failed over, nothing new may land there."""
    green_share: Decimal = Decimal(0)
    """The node's declared share of green power for the month placement runs in (0 to 1)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class OfferView:
    """One published offer. `cards_free` is already net of reservations and running pods."""

    name: str
    node: str
    gpu_model: str
    gpu_memory_gib: int
    cards_total: int
    cards_free: int
    price: Price
    valid_from: datetime | None = None
    valid_until: datetime | None = None
    """Exclusive: the offer is no longer valid at `valid_until`."""
    allowed_registries: frozenset[str] = frozenset()
    """Image registries the offer runs images from (host[:port], docker.io for Docker Hub); empty: any."""
    tolerations: frozenset[Toleration] = frozenset()
    """The tolerations a job may carry here (the taints of the offer's nodes); empty: none."""

    def __post_init__(self) -> None:
        _require_aware(self.valid_from, "valid_from")
        _require_aware(self.valid_until, "valid_until")
        object.__setattr__(self, "allowed_registries", frozenset(map(normal_registry, self.allowed_registries)))

    def with_cards_free(self, free: int) -> OfferView:
        """This offer holding `free` free cards: what a placement pass does to thousands of offers,
        so the fields are copied as they are rather than validated and normalised again."""
        offer = object.__new__(OfferView)
        for set_slot, value in zip(_OFFER_SLOT_SETTERS, _offer_slots(self), strict=True):
            set_slot(offer, value)  # the slot's own descriptor: past the frozen __setattr__
        _set_cards_free(offer, free)
        return offer


_offer_slots = attrgetter(*OfferView.__slots__)
_OFFER_SLOT_SETTERS = tuple(getattr(OfferView, name).__set__ for name in OfferView.__slots__)
_set_cards_free = _OFFER_SLOT_SETTERS[OfferView.__slots__.index("cards_free")]


class RejectReason(enum.StrEnum):
    """Why an offer cannot take a job; declared in the order the filters run."""

    NODE_MISSING = "NodeMissing"
    NODE_NOT_REGISTERED = "NodeNotRegistered"
    NODE_NOT_READY = "NodeNotReady"
    NODE_CORDONED = "NodeCordoned"
    NODE_FENCED = "NodeFenced"
    REGION_DENIED = "RegionDenied"
    REGION_NOT_ALLOWED = "RegionNotAllowed"
    INDUSTRY_DENIED = "IndustryDenied"
    INDUSTRY_NOT_ALLOWED = "IndustryNotAllowed"
    NODE_DENIED = "NodeDenied"
    NODE_NOT_ALLOWED = "NodeNotAllowed"
    GREEN_SHARE_TOO_LOW = "GreenShareTooLow"
    LATENCY_TIER_NOT_MET = "LatencyTierNotMet"
    OFFER_NOT_YET_VALID = "OfferNotYetValid"
    OFFER_EXPIRED = "OfferExpired"
    IMAGE_REGISTRY_NOT_ALLOWED = "ImageRegistryNotAllowed"
    TOLERATION_NOT_ALLOWED = "TolerationNotAllowed"
    GPU_MODEL_NOT_ACCEPTED = "GPUModelNotAccepted"
    VENDOR_NOT_ACCEPTED = "VendorNotAccepted"
    COMPUTE_TOO_LOW = "ComputeTooLow"
    GPU_MEMORY_TOO_SMALL = "GPUMemoryTooSmall"
    REPLICA_LARGER_THAN_MACHINE = "ReplicaLargerThanMachine"
    INSUFFICIENT_FREE_CARDS = "InsufficientFreeCards"
    CURRENCY_MISMATCH = "CurrencyMismatch"
    PRICE_ABOVE_MAX = "PriceAboveMax"
    BUDGET_EXCEEDED = "BudgetExceeded"

    @property
    def label(self) -> str:
        """The phrase in a summary ("2 price above maxPrice"); latency labels also name the tiers."""
        return _LABELS[self]


_LABELS: Mapping[RejectReason, str] = MappingProxyType(
    {
        RejectReason.NODE_MISSING: "node missing",
        RejectReason.NODE_NOT_REGISTERED: "node not registered",
        RejectReason.NODE_NOT_READY: "node not ready",
        RejectReason.NODE_CORDONED: "node cordoned",
        RejectReason.NODE_FENCED: "node fenced",
        RejectReason.OFFER_NOT_YET_VALID: "offer not yet valid",
        RejectReason.OFFER_EXPIRED: "offer expired",
        RejectReason.IMAGE_REGISTRY_NOT_ALLOWED: "image registry not allowed",
        RejectReason.TOLERATION_NOT_ALLOWED: "toleration not allowed",
        RejectReason.REGION_DENIED: "region denied",
        RejectReason.REGION_NOT_ALLOWED: "region not allowed",
        RejectReason.INDUSTRY_DENIED: "industry denied",
        RejectReason.INDUSTRY_NOT_ALLOWED: "industry not allowed",
        RejectReason.NODE_DENIED: "node denied",
        RejectReason.NODE_NOT_ALLOWED: "node not allowed",
        RejectReason.GREEN_SHARE_TOO_LOW: "green share below minimum",
        RejectReason.GPU_MODEL_NOT_ACCEPTED: "GPU model not accepted",
        RejectReason.VENDOR_NOT_ACCEPTED: "vendor not accepted",
        RejectReason.COMPUTE_TOO_LOW: "compute below minimum",
        RejectReason.GPU_MEMORY_TOO_SMALL: "GPU memory below minimum",
        RejectReason.REPLICA_LARGER_THAN_MACHINE: "replica larger than a machine",
        RejectReason.INSUFFICIENT_FREE_CARDS: "insufficient free cards",
        RejectReason.LATENCY_TIER_NOT_MET: "latency tier not met",
        RejectReason.CURRENCY_MISMATCH: "currency mismatch",
        RejectReason.PRICE_ABOVE_MAX: "price above maxPrice",
        RejectReason.BUDGET_EXCEEDED: "budget exceeded",
    }
)

_REASON_BY_LABEL: Mapping[str, RejectReason] = MappingProxyType({label: r for r, label in _LABELS.items()})

FILTER_ORDER: tuple[RejectReason, ...] = tuple(RejectReason)

# One offer, flattened once per snapshot for the hot loop:
# (offer, name, gpu model, GPU memory, cards free, price amount, currency, billed per card,
#  cards per machine, validity verdict at `now`, its message, its label, allowed registries,
#  published tolerations).
_Row = tuple[
    OfferView, str, str, int, int, Decimal, str, bool, int | None, RejectReason | None, str, str, frozenset[str],
    frozenset[Toleration],
]


def _row(offer: OfferView, now: datetime) -> _Row:
    validity: RejectReason | None = None
    message = ""
    if offer.valid_from is not None and now < offer.valid_from:
        validity, message = RejectReason.OFFER_NOT_YET_VALID, f"offer is valid from {offer.valid_from.isoformat()}"
    elif offer.valid_until is not None and now >= offer.valid_until:
        validity, message = RejectReason.OFFER_EXPIRED, f"offer expired at {offer.valid_until.isoformat()}"
    label = "" if validity is None else _LABELS[validity]
    price = offer.price
    return (
        offer,
        offer.name,
        offer.gpu_model,
        offer.gpu_memory_gib,
        offer.cards_free,
        price.amount.amount,
        price.amount.currency,
        price.unit is BillingUnit.CARD_HOUR,
        price.cards_per_machine,
        validity,
        message,
        label,
        offer.allowed_registries,
        offer.tolerations,
    )


def _offer_of(row: _Row) -> OfferView:
    """The row's offer with the row's free cards (`with_cards_taken` changes only the count)."""
    offer, free = row[0], row[4]
    return offer if offer.cards_free == free else offer.with_cards_free(free)


# What the offer index keys an offer by (see `core.offer_index`): the attributes placement reads
# that taking cards does not change, but memory: (GPU model, currency, billed per card, cards
# per machine, allowed registries, published tolerations).
_Class = tuple[str, str, bool, int | None, frozenset[str], frozenset[Toleration]]


def _class_of(row: _Row) -> _Class:
    return (row[2], row[6], row[7], row[8], row[12], row[13])


_ROW_LAYOUT = Layout(name=itemgetter(1), amount=itemgetter(5), free=itemgetter(4), memory=itemgetter(3))


def _index_key(row: _Row) -> tuple[RejectReason | None, _Class, Decimal, int]:
    """Where a row sits in the index (and in its counts of invalid offers): a change of anything
    here needs a new index."""
    return (row[9], _class_of(row), row[5], row[3])


# The offers of one node, with the node's health verdict (job-independent, so computed once):
# (node name, node, health reason or None, its message, rows).
_Group = tuple[str, NodeView | None, RejectReason | None, str, tuple[_Row, ...]]


class _Offers(Sequence[OfferView]):
    """The `offers` of a snapshot made by `with_offer`: its rows' offers, flattened when first read
    (a pass replaces thousands of offers and reads none of these tuples)."""

    __slots__ = ("_flat", "_groups", "_length")

    def __init__(self, groups: tuple[_Group, ...], length: int) -> None:
        self._groups = groups
        self._length = length
        self._flat: tuple[OfferView, ...] | None = None

    def _tuple(self) -> tuple[OfferView, ...]:
        if self._flat is None:
            self._flat = tuple(_offer_of(row) for group in self._groups for row in group[4])
        return self._flat

    def __len__(self) -> int:
        return self._length

    @overload
    def __getitem__(self, index: int) -> OfferView: ...
    @overload
    def __getitem__(self, index: slice) -> tuple[OfferView, ...]: ...
    def __getitem__(self, index: int | slice) -> OfferView | tuple[OfferView, ...]:
        return self._tuple()[index]

    def __iter__(self) -> Iterator[OfferView]:
        return iter(self._tuple())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, _Offers | tuple | list):
            return self._tuple() == tuple(other)
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self._tuple())

    def __repr__(self) -> str:
        return repr(self._tuple())


@dataclass(frozen=True, slots=True)
class PlacementSnapshot:
    """Everything placement may look at, frozen at `now`.

    Built once per reconcile and shared by every pending job: the offers are sorted, grouped by
    node and flattened here, once, rather than in every `place` call.
    """

    nodes: Mapping[str, NodeView]
    offers: Sequence[OfferView]
    """Normalised to a tuple in (node, name) order."""
    latency: LatencyTable
    now: datetime
    currency: str = DEFAULT_CURRENCY
    """What jobs that name no currency (no maxPrice, no budget) pay in."""
    _groups: tuple[_Group, ...] = field(init=False, repr=False, compare=False)
    _where: Mapping[str, tuple[int, int, int]] = field(init=False, repr=False, compare=False)
    """Offer name -> (index in `offers`, group, row in group), for `with_offer`."""
    _index: OfferIndex | None = field(init=False, repr=False, compare=False)
    """Built on first use by `place` (`_offer_index`); handed on by `with_offer`."""

    def __post_init__(self) -> None:
        _require_aware(self.now, "now")
        minor_unit(self.currency)
        offers = tuple(sorted(self.offers, key=lambda o: (o.node, o.name)))
        duplicates = sorted(name for name, count in Counter(o.name for o in offers).items() if count > 1)
        if duplicates:
            raise ValueError(f"offer names must be unique in a snapshot: {duplicates}")
        groups: dict[str, list[_Row]] = {}
        for offer in offers:
            groups.setdefault(offer.node, []).append(_row(offer, self.now))
        object.__setattr__(self, "nodes", MappingProxyType(dict(self.nodes)))
        object.__setattr__(self, "offers", offers)
        nodes = self.nodes
        object.__setattr__(
            self,
            "_groups",
            tuple(
                (name, nodes.get(name), *_node_health(name, nodes.get(name)), tuple(rows))
                for name, rows in groups.items()
            ),
        )
        where: dict[str, tuple[int, int, int]] = {}
        position = 0
        for group_index, group in enumerate(self._groups):
            for row_index, row in enumerate(group[4]):
                where[row[1]] = (position, group_index, row_index)
                position += 1
        object.__setattr__(self, "_where", MappingProxyType(where))
        object.__setattr__(self, "_index", None)

    def _offer_index(self) -> OfferIndex:
        """The offer index of this snapshot, built once (about a scan's cost x 10) and then kept."""
        index = self._index
        if index is None:
            index = OfferIndex(
                (
                    (node.region, _class_of(row), row)
                    for _, node, health, _, rows in self._groups
                    if node is not None and health is None
                    for row in rows
                    if row[9] is None
                ),
                _ROW_LAYOUT,
            )
            object.__setattr__(self, "_index", index)
        return index

    def with_cards_taken(self, names: Iterable[str], cards: int) -> PlacementSnapshot:
        """This snapshot with ``cards`` fewer free cards (never below none) on each offer named (a
        placement's offer and every offer sharing its cards).

        What a placement pass does after every choice. Only free cards change: they are patched
        into the rows (a row keeps the offer it was built from, and `offers` reads the count from
        the row), each node's rows are copied once, and the offer index is updated in place
        (`with_offers` does the same for any change, slower). An unknown name is skipped.
        """
        rows_of: dict[int, list[_Row]] = {}
        index = self._index
        where_of, groups = self._where, self._groups
        for name in names:
            where = where_of.get(name)
            if where is None:
                continue
            _, group_index, row_index = where
            rows = rows_of.get(group_index)
            old = groups[group_index][4][row_index] if rows is None else rows[row_index]
            free = old[4] - cards
            if free < 0:
                free = 0
            if free == old[4]:
                continue  # none free before either: nothing changes
            if rows is None:
                rows = rows_of[group_index] = list(groups[group_index][4])
            rows[row_index] = (*old[:4], free, *old[5:])
            if index is not None and name in index:
                index.set_free(name, free)
        if not rows_of:
            return self
        # Given away (updated): no longer this snapshot's.
        object.__setattr__(self, "_index", None)
        changed = list(groups)
        for at, rows in rows_of.items():
            name, node, health, message, _ = changed[at]
            changed[at] = (name, node, health, message, tuple(rows))
        return self._replaced(tuple(changed), index)

    def cards_free(self, name: str) -> int:
        """The free cards of the offer named, as this snapshot holds them (after the cards taken)."""
        _, group_index, row_index = self._where[name]
        return self._groups[group_index][4][row_index][4]

    def with_offer(self, offer: OfferView) -> PlacementSnapshot:
        """This snapshot with one offer replaced, e.g. holding fewer free cards after a placement."""
        return self.with_offers((offer,))

    def with_offers(self, offers: Iterable[OfferView]) -> PlacementSnapshot:
        """This snapshot with these offers replaced (or added), as after a placement took cards
        from every offer of a node and model.

        Placing a queue of jobs takes cards after each choice; re-building a 10,000-offer snapshot
        costs several placements, replacing offers copies the tuple of nodes and the nodes' rows
        (the new snapshot's `offers` is flattened from them only if read). When only free cards
        changed, this snapshot's offer index is updated in place and handed to the new snapshot
        (this one builds a fresh index if it is placed against again).
        """
        replacing = tuple(offers)
        located = []
        for offer in replacing:
            where = self._where.get(offer.name)
            if where is None or self._groups[where[1]][4][where[2]][0].node != offer.node:
                named = {o.name: o for o in (*self.offers, *replacing)}  # the later of two wins
                return PlacementSnapshot(self.nodes, tuple(named.values()), self.latency, self.now, self.currency)
            located.append(where)
        changed: dict[int, _Group] = {}
        index = self._index
        for offer, (_, group_index, row_index) in zip(replacing, located, strict=True):
            name, node, health, message, rows = changed.get(group_index) or self._groups[group_index]
            old_row, new_row = rows[row_index], _row(offer, self.now)
            moves = _index_key(old_row) != _index_key(new_row)
            changed[group_index] = (name, node, health, message, (*rows[:row_index], new_row, *rows[row_index + 1 :]))
            if index is not None:
                if moves:
                    index = None
                elif offer.name in index:
                    index.set_free(offer.name, new_row[4])
        # Given away (updated) or out of date: either way no longer this snapshot's.
        object.__setattr__(self, "_index", None)
        if len(changed) == 1:  # the usual case (one node's offers): one copy of the tuple of nodes
            ((at, group),) = changed.items()
            frozen = (*self._groups[:at], group, *self._groups[at + 1 :])
        else:
            groups = list(self._groups)
            for at, group in changed.items():
                groups[at] = group
            frozen = tuple(groups)
        return self._replaced(frozen, index)

    def _replaced(self, groups: tuple[_Group, ...], index: OfferIndex | None) -> PlacementSnapshot:
        """A snapshot of these rows (the same offers, by name and place) with this index."""
        snapshot = object.__new__(PlacementSnapshot)
        for attribute, value in (
            ("nodes", self.nodes),
            ("offers", _Offers(groups, len(self.offers))),
            ("latency", self.latency),
            ("now", self.now),
            ("currency", self.currency),
            ("_groups", groups),
            ("_where", self._where),
            ("_index", index),
        ):
            object.__setattr__(snapshot, attribute, value)
        return snapshot

    @classmethod
    def of(
        cls,
        nodes: Iterable[NodeView],
        offers: Iterable[OfferView],
        latency: LatencyTable,
        now: datetime,
        currency: str = DEFAULT_CURRENCY,
    ) -> PlacementSnapshot:
        return cls({n.name: n for n in nodes}, tuple(offers), latency, now, currency)


class Rejection(NamedTuple):
    """One offer that cannot take the job: the first filter it failed."""

    offer: str
    node: str
    reason: RejectReason
    message: str
    label: str
    """The summary phrase: `reason.label`, except latency ("latency 20ms > 5ms")."""


# A message, or (formatter, *arguments) for the few whose values rarely repeat: they are
# formatted only when someone reads `Decision.rejected`.
_Message = str | tuple[Callable[..., str], *tuple[object, ...]]
_RejectionRow = tuple[str, str, RejectReason, _Message, str]


def _rejection(row: _RejectionRow) -> Rejection:
    offer, node, reason, message, label = row
    if not isinstance(message, str):
        formatter, *arguments = message
        message = formatter(*arguments)
    return Rejection(offer, node, reason, message, label)


@dataclass(frozen=True, slots=True)
class Candidate:
    """The offer chosen, and what the job will pay there."""

    offer: str
    node: str
    identity_code: str | None
    region: str
    gpu_model: str
    tier: LatencyTier
    rtt_ms: float
    cards: int
    machines: int | None
    """Whole machines billed, for machine-hour offers."""
    effective_price: Money
    """Per card-hour, whole machines included; rounded half up to 4 places for display."""
    hourly_cost: Money
    """Exact: what one hour of the whole job costs at this offer."""
    unit_price: Price
    estimated_cost: Money | None
    """For `expected_hours`, rounded once to the minor unit (as metering will)."""
    cards_free_after: int


class _Counts(NamedTuple):
    """The part of an explanation that counts: all the scheduler writes for a job not placed
    (with the first 100 rejections)."""

    fitting: int
    reason_counts: Mapping[RejectReason, int]
    summary: str
    top_reason: str | None


def _counts(
    fitting: int, considered: int, by_label: Mapping[str, int], latency_labels: Mapping[str, RejectReason]
) -> _Counts:
    by_reason: dict[RejectReason, int] = {}
    for label, count in by_label.items():
        reason = latency_labels.get(label) or _REASON_BY_LABEL[label]
        by_reason[reason] = by_reason.get(reason, 0) + count
    return _Counts(
        fitting,
        MappingProxyType({r: by_reason[r] for r in FILTER_ORDER if r in by_reason}),
        _summary(fitting, considered, by_label),
        _top_reason(considered, by_label),
    )


class Explanation(NamedTuple):
    """Why every offer but the chosen one does not take the job: needs a full scan of the market."""

    fitting: int
    reason_counts: Mapping[RejectReason, int]
    """Rejections per reason, in filter order."""
    summary: str
    """kube-scheduler style: "0/5 offers fit: 2 price above maxPrice, 1 insufficient free cards"."""
    rejection_rows: tuple[_RejectionRow, ...]
    """`rejected` as plain tuples: the hot path never pays for 10,000 named tuples it does not read."""
    top_reason: str | None
    """The summary's first reason, as data: the label most offers were rejected for (ties by label),
    "no offers published" when there were none; None when nothing was rejected."""


@dataclass(frozen=True, slots=True, eq=False)
class Decision:
    """The offer chosen (or None) and, read on demand, why the others were not.

    `place` finds `chosen` through the offer index without looking at most offers; the
    explanation (`fitting`, `reason_counts`, `summary`, `rejected`, `top_reason`) is the full
    scan, run the first time one of them is read (and then kept). A placed job whose explanation
    nobody reads never pays for it; for a job placed nowhere the counts (`summary`,
    `reason_counts`, `top_reason`) and `first_rejected` come from the index without a scan, and
    are cheapest read before the snapshot hands its index on (`with_offers`), as the scheduler
    does: read later, they rebuild it.
    """

    chosen: Candidate | None
    considered: int
    _explain: Callable[[], Explanation] = field(repr=False)
    _explained: Explanation | None = field(default=None, repr=False)
    _count: Callable[[], _Counts | None] | None = field(default=None, repr=False)
    """Counts without the scan, when the decision knows a way (None from it: it does not)."""
    _counted: _Counts | None = field(default=None, repr=False)
    _first: Callable[[int], tuple[_RejectionRow, ...]] | None = field(default=None, repr=False)
    """The first rejections in order, without the scan."""

    def explanation(self) -> Explanation:
        explained = self._explained
        if explained is None:
            explained = self._explain()
            object.__setattr__(self, "_explained", explained)
        return explained

    def _counts(self) -> _Counts | Explanation:
        if self._explained is not None:
            return self._explained
        if self._counted is None and self._count is not None:
            object.__setattr__(self, "_counted", self._count())
            object.__setattr__(self, "_count", None)
        return self._counted if self._counted is not None else self.explanation()

    @property
    def fitting(self) -> int:
        return self._counts().fitting

    @property
    def reason_counts(self) -> Mapping[RejectReason, int]:
        return self._counts().reason_counts

    @property
    def summary(self) -> str:
        return self._counts().summary

    @property
    def rejection_rows(self) -> tuple[_RejectionRow, ...]:
        return self.explanation().rejection_rows

    @property
    def top_reason(self) -> str | None:
        return self._counts().top_reason

    @property
    def placed(self) -> bool:
        return self.chosen is not None

    @property
    def rejected(self) -> tuple[Rejection, ...]:
        """Every offer that does not fit, with its reason, in (node, offer name) order."""
        return tuple(map(_rejection, self.rejection_rows))

    def first_rejected(self, limit: int) -> tuple[Rejection, ...]:
        """`rejected[:limit]`, without formatting the messages of all the others (nor, when the
        decision knows a way, scanning for them)."""
        if self._explained is None and self._first is not None:
            return tuple(map(_rejection, self._first(limit)))
        return tuple(map(_rejection, self.rejection_rows[:limit]))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Decision):
            return NotImplemented
        return (self.chosen, self.considered, self.explanation()) == (
            other.chosen, other.considered, other.explanation())

    __hash__ = None  # type: ignore[assignment]


def _summary(fitting: int, considered: int, label_counts: Mapping[str, int]) -> str:
    head = f"{fitting}/{considered} offers fit"
    if considered == 0:
        return f"{head}: no offers published"
    if not label_counts:
        return head
    ordered = sorted(label_counts.items(), key=lambda item: (-item[1], item[0]))
    return f"{head}: " + ", ".join(f"{count} {label}" for label, count in ordered)


def _top_reason(considered: int, label_counts: Mapping[str, int]) -> str | None:
    if considered == 0:
        return "no offers published"
    if not label_counts:
        return None
    return min(label_counts.items(), key=lambda item: (-item[1], item[0]))[0]


_Score = tuple[Decimal, int, float, int, str]


class _Best(NamedTuple):
    score: _Score
    offer: OfferView
    node: NodeView
    tier: LatencyTier
    rtt_ms: float
    hourly: Decimal
    free: int
    """The offer's free cards in the snapshot (its row's count, not the offer's own)."""


class _Outcome(NamedTuple):
    best: _Best | None
    fitting: int
    rejections: list[_RejectionRow]
    latency_labels: dict[str, RejectReason]


_TIER_RANK: Mapping[LatencyTier, int] = MappingProxyType({t: i for i, t in enumerate(LatencyTier.ordered())})
_PASS: tuple[None, str] = (None, "")


def _node_health(name: str, node: NodeView | None) -> tuple[RejectReason | None, str]:
    if node is None:
        return RejectReason.NODE_MISSING, f"node {name} is not known to the hub"
    if not node.registered:
        return RejectReason.NODE_NOT_REGISTERED, f"node {name} is not registered"
    if not node.ready:
        return RejectReason.NODE_NOT_READY, f"node {name} is not Ready"
    if node.cordoned:
        return RejectReason.NODE_CORDONED, f"node {name} is cordoned"
    if node.fenced:
        return RejectReason.NODE_FENCED, f"node {name} is fenced (declared lost)"
    return _PASS


def _node_policy(job: JobRequest, node: NodeView) -> tuple[RejectReason | None, str]:
    if node.region in job.denied_regions:
        return RejectReason.REGION_DENIED, f"region {node.region} is denied"
    if job.allowed_regions and node.region not in job.allowed_regions:
        return RejectReason.REGION_NOT_ALLOWED, f"region {node.region} is not among the allowed regions"
    industry = "none" if node.industry is None else node.industry.value
    if node.industry is not None and node.industry in job.denied_industries:
        return RejectReason.INDUSTRY_DENIED, f"industry {industry} is denied"
    if job.allowed_industries and node.industry not in job.allowed_industries:
        return RejectReason.INDUSTRY_NOT_ALLOWED, f"industry {industry} is not among the allowed industries"
    if node.name in job.denied_nodes:
        return RejectReason.NODE_DENIED, f"node {node.name} is denied"
    if job.allowed_nodes and node.name not in job.allowed_nodes:
        return RejectReason.NODE_NOT_ALLOWED, f"node {node.name} is not among the allowed nodes"
    least = job.min_green_share
    if least is not None and node.green_share < least:
        return (RejectReason.GREEN_SHARE_TOO_LOW,
                f"node {node.name} declares {_share(node.green_share)} green power this month, below the minimum "
                f"{_share(least)}")
    return _PASS


def _share(fraction: Decimal) -> str:
    """A share as a percentage ("82%", "12.5%")."""
    percent = (fraction * 100).normalize()
    return f"{percent:f}%"


class _Reach(NamedTuple):
    """The latency verdict for one region: computed once per region per decision."""

    tier: LatencyTier | None
    rtt_ms: float | None
    label: str | None
    """None when the required tier is met."""
    message: str


def _reach(table: LatencyTable, origin: str, region: str, required: LatencyTier) -> _Reach:
    try:
        rtt = table.rtt_ms(origin, region)
    except UnknownRegion as unknown:
        return _Reach(None, None, "latency unknown", f"latency unknown: {unknown}")
    tier = tier_for_rtt(rtt)
    where = f"RTT {rtt} ms between {origin} and {region}"
    if tier is None:
        label = f"latency beyond {LatencyTier.ordered()[-1].value}"
        return _Reach(None, rtt, label, f"{label}: {where}")
    if _TIER_RANK[tier] > _TIER_RANK[required]:
        label = f"latency {tier.value} > {required.value}"
        return _Reach(tier, rtt, label, f"{label}: {where}")
    return _Reach(tier, rtt, None, where)


def _price_message(hourly: Decimal, cards: int, max_price: Money) -> str:
    effective = Money(price_per_card_hour(hourly, cards), max_price.currency)
    return f"effective price {effective} per card-hour > maxPrice {max_price}"


def _budget_message(estimate: Decimal, hours: Decimal, budget: Money) -> str:
    return f"estimated cost {Money(estimate, budget.currency)} for {hours} h > budget {budget}"


def _toleration_message(wanted: frozenset[Toleration], published: frozenset[Toleration]) -> str:
    missing = sorted(wanted - published)
    shown = ", ".join(map(str, missing[:3]))
    more = f" and {len(missing) - 3} more" if len(missing) > 3 else ""
    return f"the offer does not publish the toleration {shown}{more} (spec.tolerations)"


def _registry_message(registries: Mapping[str, str], allowed: frozenset[str]) -> str:
    outside = [(registry, image) for registry, image in registries.items() if registry not in allowed]
    registry, image = outside[0]
    more = f" (and {len(outside) - 1} more)" if len(outside) > 1 else ""
    where = f"registry {registry}" if registry else "no registry"
    return f"image {image or '(none)'} is from {where}{more}; the offer allows only {', '.join(sorted(allowed))}"


PFLOPS_HOUR = "pflops-hour"


def _capability(job: JobRequest, model_name: str) -> tuple[RejectReason, str] | None:
    """Whether a model meets the job's vendors, minimum TFLOPS and price basis (the accelerator
    catalogue's figures); the reason and message when it does not. Once per model and job."""
    model = accelerator_model(model_name)
    vendor = model.vendor.value if model is not None else "unknown (not in the accelerator catalogue)"
    if job.vendors and (model is None or model.vendor.value not in job.vendors):
        return RejectReason.VENDOR_NOT_ACCEPTED, (
            f"vendor {vendor} of {model_name} is not one of {', '.join(sorted(job.vendors))}")
    for precision, least in sorted(job.min_tflops.items()):
        have = model.tflops_at(precision) if model is not None else None
        if have is None:
            return RejectReason.COMPUTE_TOO_LOW, (
                f"{model_name} has no published {precision.upper()} TFLOPS in the accelerator catalogue "
                f"(the job asks for at least {least})")
        if have < least:
            return RejectReason.COMPUTE_TOO_LOW, f"below {least} {precision.upper()} TFLOPS ({model_name}: {have})"
    if job.price_basis == PFLOPS_HOUR and compute_rate(model_name) is None:
        return RejectReason.COMPUTE_TOO_LOW, (
            f"{model_name} has no published BF16 or FP16 TFLOPS in the accelerator catalogue: it cannot be "
            "priced per PFLOPS-hour")
    return None


def _rate(model_name: str) -> Decimal:
    """PFLOPS-hours per card-hour (1 when the model has no figure: only read for pflops-hour jobs,
    which `_capability` has kept off such models)."""
    rate = compute_rate(model_name)
    return rate.pflops_per_card_hour if rate is not None else Decimal(1)


class _Terms:
    """What a job pays, per offer price: the price filters and the key "cheapest" is measured by.

    Shared by the scan (`_evaluate`) and the index (`_search`), so both price an offer the same
    way, to the last digit. Every method is monotone in the offer's amount for a given billing
    unit and model, which is what lets the index read a bucket cheapest first and stop at the
    first offer over maxPrice or budget. The caller holds `localcontext(MONEY_CONTEXT)`.
    """

    __slots__ = ("budget", "budget_amount", "cap_total", "currency", "hours", "machines", "max_price", "needed",
                 "needed_decimal", "per_pflops", "quantum", "rates")

    def __init__(self, job: JobRequest, default_currency: str, cap_price: bool) -> None:
        self.needed = job.cards
        self.needed_decimal = Decimal(self.needed)
        self.currency = job.currency or default_currency
        self.quantum = Decimal(1).scaleb(-minor_unit(self.currency))
        self.max_price = job.max_price if cap_price else None
        self.cap_total = None if self.max_price is None else self.max_price.amount * self.needed_decimal
        self.budget = job.budget
        self.hours = job.expected_hours if self.budget is not None else None
        self.budget_amount = None if self.budget is None else self.budget.amount
        self.per_pflops = job.price_basis == PFLOPS_HOUR
        self.machines: dict[int, Decimal] = {}
        self.rates: dict[str, Decimal] = {}

    def hourly(self, amount: Decimal, per_card: bool, per_machine: int | None) -> Decimal:
        """What one hour of the whole job costs at this price: whole machines for machine-hours."""
        if per_card:
            return amount * self.needed_decimal
        assert per_machine is not None
        billed = self.machines.get(per_machine)
        if billed is None:
            billed = self.machines[per_machine] = Decimal(-(-self.needed // per_machine))
        return amount * billed

    def over_cap(self, hourly: Decimal) -> bool:
        return self.cap_total is not None and hourly > self.cap_total

    def estimate(self, hourly: Decimal) -> Decimal | None:
        """The expected cost, rounded to the minor unit, when the job has a budget to hold it to."""
        if self.hours is None:
            return None
        return (hourly * self.hours).quantize(self.quantum, rounding=ROUND_HALF_UP)

    def over_budget(self, estimate: Decimal | None) -> bool:
        return estimate is not None and self.budget_amount is not None and estimate > self.budget_amount

    def key(self, hourly: Decimal, model: str) -> Decimal:
        """What "cheapest" means: per card-hour, or per PFLOPS-hour of what the cards compute."""
        if not self.per_pflops:
            return hourly
        rate = self.rates.get(model)
        if rate is None:
            rate = self.rates[model] = _rate(model)
        return hourly / (self.needed_decimal * rate)

    def key_function(self, model: str, per_card: bool, per_machine: int | None) -> KeyOf:
        """For the offer index: price -> key for offers of one model and billing unit, None over
        maxPrice or budget. The methods above, folded into one closure (it runs for every
        bucket a job opens): the same operations on the same operands, so the same results."""
        if per_card:
            multiplier = self.needed_decimal
        else:  # whole machines billed, as `hourly` bills them
            assert per_machine is not None
            multiplier = self.machines.get(per_machine) or self.hourly(Decimal(1), per_card, per_machine)
        cap, hours, budget, quantum = self.cap_total, self.hours, self.budget_amount, self.quantum
        divisor = self.needed_decimal * _rate(model) if self.per_pflops else None

        def key_of(amount: Decimal) -> Decimal | None:
            hourly = amount * multiplier
            if cap is not None and hourly > cap:
                return None
            if hours is not None and budget is not None and (
                (hourly * hours).quantize(quantum, rounding=ROUND_HALF_UP) > budget
            ):
                return None
            return hourly if divisor is None else hourly / divisor

        return key_of


_TOLERATION_REASON = (RejectReason.TOLERATION_NOT_ALLOWED, _LABELS[RejectReason.TOLERATION_NOT_ALLOWED])
_CHAIN_REASONS = (
    RejectReason.GPU_MODEL_NOT_ACCEPTED, _LABELS[RejectReason.GPU_MODEL_NOT_ACCEPTED],
    RejectReason.GPU_MEMORY_TOO_SMALL, _LABELS[RejectReason.GPU_MEMORY_TOO_SMALL],
    RejectReason.REPLICA_LARGER_THAN_MACHINE, _LABELS[RejectReason.REPLICA_LARGER_THAN_MACHINE],
    RejectReason.INSUFFICIENT_FREE_CARDS, _LABELS[RejectReason.INSUFFICIENT_FREE_CARDS],
    RejectReason.LATENCY_TIER_NOT_MET,
    RejectReason.CURRENCY_MISMATCH, _LABELS[RejectReason.CURRENCY_MISMATCH],
    RejectReason.IMAGE_REGISTRY_NOT_ALLOWED, _LABELS[RejectReason.IMAGE_REGISTRY_NOT_ALLOWED],
    RejectReason.PRICE_ABOVE_MAX, _LABELS[RejectReason.PRICE_ABOVE_MAX],
    RejectReason.BUDGET_EXCEEDED, _LABELS[RejectReason.BUDGET_EXCEEDED],
)
"""The reasons and labels `_evaluate`'s chain uses, looked up once rather than per call (the
offer index calls it once per job, on a handful of offers)."""


def _evaluate(
    job: JobRequest,
    snapshot: PlacementSnapshot,
    *,
    required: LatencyTier,
    cap_price: bool,
    groups: Iterable[_Group] | None = None,
    terms: _Terms | None = None,
    reach_of: Callable[[str], _Reach] | None = None,
) -> _Outcome:
    """Run every filter over every offer (see the module docstring for the order): the one filter
    chain, used by the full scan and, on the offers the index yields (`groups`), by `_search`.

    The caller holds `localcontext(MONEY_CONTEXT)`. Messages are built once per distinct value
    (price and budget messages, whose values rarely repeat, only when read).
    """
    if terms is None:
        terms = _Terms(job, snapshot.currency, cap_price)
    needed = terms.needed
    per_replica = job.gpus_per_replica
    models = job.models
    min_memory = job.min_memory_gib
    currency = terms.currency
    max_price = terms.max_price
    registries: dict[str, str] = {}  # registry -> the first image from it, once per job
    for image in job.images:
        registries.setdefault(image_registry(image), image)
    job_registries = frozenset(registries)
    tolerations = job.tolerations
    toleration_reason, toleration_label = _TOLERATION_REASON

    rows: list[_RejectionRow] = []
    add = rows.append
    latency_labels: dict[str, RejectReason] = {}
    model_messages: dict[str, str] = {}
    memory_messages: dict[int, str] = {}
    machine_messages: dict[int, str] = {}
    free_messages: dict[int, str] = {}
    currency_messages: dict[str, str] = {}
    registry_messages: dict[frozenset[str], str] = {}
    reaches: dict[str, _Reach] = {}
    best: _Best | None = None
    best_hourly: Decimal | None = None
    fitting = 0

    (model_reason, model_label, memory_reason, memory_label, machine_reason, machine_label, cards_reason, cards_label,
     latency_reason, currency_reason, currency_label, registry_reason, registry_label, price_reason, price_label,
     budget_reason, budget_label) = _CHAIN_REASONS

    by_capability = bool(job.vendors or job.min_tflops or terms.per_pflops)
    capability: dict[str, tuple[RejectReason, str] | None] = {}

    def capability_of(model: str) -> tuple[RejectReason, str] | None:
        if model not in capability:
            capability[model] = _capability(job, model)
        return capability[model]

    has_policy = bool(
        job.allowed_regions
        or job.denied_regions
        or job.allowed_industries
        or job.denied_industries
        or job.allowed_nodes
        or job.denied_nodes
        or job.min_green_share is not None
    )
    greener: list[tuple[Decimal, Decimal, _Score, _Best]] | None = [] if job.prefer_greener else None
    """With prefer_greener: every fitting offer's (price key, green share, score, candidate)."""
    for node_name, node, reason, message, group in snapshot._groups if groups is None else groups:
        if node is not None and reason is None and has_policy:
            reason, message = _node_policy(job, node)
        if node is None or reason is not None:
            assert reason is not None
            label = _LABELS[reason]
            rows.extend([(row[1], node_name, reason, message, label) for row in group])
            continue
        reach = reaches.get(node.region)
        if reach is None:
            reach = reaches[node.region] = (
                _reach(snapshot.latency, job.origin, node.region, required) if reach_of is None
                else reach_of(node.region))
            if reach.label is not None:
                latency_labels[reach.label] = latency_reason
        if reach.label is not None:
            rows.extend([(row[1], node_name, latency_reason, reach.message, reach.label) for row in group])
            continue
        tier, rtt = reach.tier, reach.rtt_ms
        assert tier is not None and rtt is not None
        tier_rank = _TIER_RANK[tier]
        for (
            offer,
            name,
            model,
            memory,
            free,
            amount,
            offer_currency,
            per_card,
            per_machine,
            validity,
            why,
            why_label,
            allowed,
            published,
        ) in group:
            if validity is not None:
                add((name, node_name, validity, why, why_label))
            elif allowed and not job_registries <= allowed:
                text = registry_messages.get(allowed)
                if text is None:
                    text = registry_messages[allowed] = _registry_message(registries, allowed)
                add((name, node_name, registry_reason, text, registry_label))
            elif tolerations and not tolerations <= published:
                add((name, node_name, toleration_reason, _toleration_message(tolerations, published),
                     toleration_label))
            elif models and model not in models:
                text = model_messages.get(model)
                if text is None:
                    text = model_messages[model] = f"GPU model {model} is not one of {', '.join(sorted(models))}"
                add((name, node_name, model_reason, text, model_label))
            elif by_capability and (verdict := capability_of(model)) is not None:
                add((name, node_name, verdict[0], verdict[1], _LABELS[verdict[0]]))
            elif memory < min_memory:
                text = memory_messages.get(memory)
                if text is None:
                    text = memory_messages[memory] = f"GPU memory {memory} GiB < minimum {min_memory} GiB"
                add((name, node_name, memory_reason, text, memory_label))
            elif per_machine is not None and per_replica > per_machine:
                text = machine_messages.get(per_machine)
                if text is None:
                    text = machine_messages[per_machine] = (
                        f"a replica needs {per_replica} cards on one machine, machines have {per_machine}"
                    )
                add((name, node_name, machine_reason, text, machine_label))
            elif free < needed:
                text = free_messages.get(free)
                if text is None:
                    text = free_messages[free] = f"needs {needed} cards ({job.replicas} x {per_replica}), {free} free"
                add((name, node_name, cards_reason, text, cards_label))
            elif offer_currency != currency:
                text = currency_messages.get(offer_currency)
                if text is None:
                    text = currency_messages[offer_currency] = (
                        f"offer is priced in {offer_currency}, the job pays in {currency}"
                    )
                add((name, node_name, currency_reason, text, currency_label))
            else:
                hourly = terms.hourly(amount, per_card, per_machine)
                if terms.over_cap(hourly):
                    assert max_price is not None
                    add((name, node_name, price_reason, (_price_message, hourly, needed, max_price), price_label))
                    continue
                estimate = terms.estimate(hourly)
                if terms.over_budget(estimate):
                    lazy = (_budget_message, estimate, terms.hours, terms.budget)
                    add((name, node_name, budget_reason, lazy, budget_label))
                    continue
                fitting += 1
                key = terms.key(hourly, model)
                if greener is not None:
                    score = (key, tier_rank, rtt, needed - free, name)
                    greener.append((key, node.green_share, score, _Best(score, offer, node, tier, rtt, hourly, free)))
                    continue
                if best_hourly is None or key <= best_hourly:
                    score = (key, tier_rank, rtt, needed - free, name)
                    if best is None or score < best.score:
                        best = _Best(score, offer, node, tier, rtt, hourly, free)
                        best_hourly = key
    if greener:
        best = _greenest(greener, job.price_band)
    return _Outcome(best, fitting, rows, latency_labels)


def _greenest(fitting: list[tuple[Decimal, Decimal, _Score, _Best]], band: Decimal) -> _Best:
    """Among the fitting offers at most `band` dearer than the cheapest (by the job's price key),
    the one on the greenest node; equal shares fall back to the usual order (price, tier, RTT,
    fewest cards left over, name)."""
    cheapest = min(entry[0] for entry in fitting)
    ceiling = cheapest * (1 + band)
    within = [entry for entry in fitting if entry[0] <= ceiling]
    return min(within, key=lambda entry: (-entry[1], entry[2]))[3]


def _candidate(job: JobRequest, best: _Best) -> Candidate:
    offer, price, cards = best.offer, best.offer.price, job.cards
    currency = price.currency
    estimated = None
    if job.expected_hours is not None:
        exact = MONEY_CONTEXT.multiply(best.hourly, job.expected_hours)
        estimated = Money(round_to_minor_unit(exact, currency), currency)
    return Candidate(
        offer=offer.name,
        node=best.node.name,
        identity_code=best.node.identity_code,
        region=best.node.region,
        gpu_model=offer.gpu_model,
        tier=best.tier,
        rtt_ms=best.rtt_ms,
        cards=cards,
        machines=price.machines_for(cards),
        effective_price=Money(price_per_card_hour(best.hourly, cards), currency),
        hourly_cost=Money(best.hourly, currency),
        unit_price=price,
        estimated_cost=estimated,
        cards_free_after=best.free - cards,
    )


def _reaches(index: OfferIndex, latency: LatencyTable, origin: str, required: LatencyTier) -> Callable[[str], _Reach]:
    """`_reach` from `origin` at `required`, kept with the index (the same for every job from there)."""
    memo_key = ("reach", origin, required)
    known = index.memo.get(memo_key)
    if not isinstance(known, dict):
        known = index.memo[memo_key] = {}

    def reach(region: str) -> _Reach:
        verdict = known.get(region)
        if verdict is None:
            verdict = known[region] = _reach(latency, origin, region, required)
        assert isinstance(verdict, _Reach)
        return verdict

    return reach


def _regions_reached(
    index: OfferIndex, job: JobRequest, latency: LatencyTable, required: LatencyTier
) -> tuple[str, ...]:
    """The regions with indexed offers that the job's region policy allows and that meet
    `required` from its origin (the latency part kept with the index: it is the same for every
    job from that origin)."""
    memo_key = ("reached", job.origin, required)
    reached = index.memo.get(memo_key)
    if reached is None:
        reach = _reaches(index, latency, job.origin, required)
        reached = index.memo[memo_key] = tuple(r for r in sorted(index.regions) if reach(r).label is None)
    assert isinstance(reached, tuple)
    denied, allowed = job.denied_regions, job.allowed_regions
    if not denied and not allowed:
        return reached
    return tuple(r for r in reached if r not in denied and (not allowed or r in allowed))


@functools.lru_cache(maxsize=4096)
def _registries_of(images: tuple[str, ...]) -> frozenset[str]:
    """The registries a job's images pull from (asked once per job per decision: kept)."""
    return frozenset(image_registry(image) for image in images)


class _ClassVerdict(NamedTuple):
    """What a job makes of a class of offers: the class-level filters of `_evaluate`, in its order,
    split where a per-offer filter comes between them (memory, then free cards, then price)."""

    before_memory: RejectReason | None
    """Registry, toleration, model, vendor or compute: the first that fails."""
    machine: bool
    """A replica larger than the class's machines."""
    currency: bool
    """Priced in another currency than the job pays in."""


_CLASS_FITS = _ClassVerdict(None, False, False)


class _Classes:
    """The class-level filters for one job, once per class (see `_Class`).

    The same conditions as `_evaluate`'s, which stays the judge of every offer the index yields:
    these only let the index prune whole classes, and count them for an explanation. A filter
    that a class decides must be added both there and here; a new per-node or per-offer filter
    only there (`_search` then stays exact; `_counts_when_unplaced` must learn it, see there).
    """

    __slots__ = ("_capability", "_job", "_memo", "_registries", "_terms")

    def __init__(self, job: JobRequest, terms: _Terms) -> None:
        self._job = job
        self._terms = terms
        self._registries = _registries_of(job.images)
        self._capability = bool(job.vendors or job.min_tflops or terms.per_pflops)
        self._memo: dict[Hashable, _ClassVerdict] = {}

    @classmethod
    def of(cls, job: JobRequest, terms: _Terms, index: OfferIndex) -> _Classes:
        """The verdicts for jobs asking what this one asks of a class, kept with the index: a
        queue holds many jobs that differ only in cards, price or place."""
        asks = ("classes", _registries_of(job.images), job.tolerations, job.models,
                job.vendors, tuple(sorted(job.min_tflops.items())), job.price_basis, job.gpus_per_replica,
                terms.currency)
        classes = index.memo.get(asks)
        if not isinstance(classes, _Classes):
            classes = index.memo[asks] = _Classes(job, terms)
        return classes

    # Kept in the index's memo and as part of its keys: by identity (one per question asked).
    __hash__ = object.__hash__

    def admits(self, cls: Hashable) -> bool:
        """Whether the job may take offers of this class at all (their node, memory, cards and
        price decide the rest)."""
        return self.verdict(cls) == _CLASS_FITS

    def verdict(self, cls: Hashable) -> _ClassVerdict:
        verdict = self._memo.get(cls)
        if verdict is None:
            job = self._job
            model, currency, _, per_machine, allowed, published = cast(_Class, cls)
            first: RejectReason | None = None
            if allowed and not self._registries <= allowed:
                first = RejectReason.IMAGE_REGISTRY_NOT_ALLOWED
            elif job.tolerations and not job.tolerations <= published:
                first = RejectReason.TOLERATION_NOT_ALLOWED
            elif job.models and model not in job.models:
                first = RejectReason.GPU_MODEL_NOT_ACCEPTED
            elif self._capability and (capability := _capability(job, model)) is not None:
                first = capability[0]
            verdict = self._memo[cls] = _ClassVerdict(
                first,
                per_machine is not None and job.gpus_per_replica > per_machine,
                currency != self._terms.currency,
            )
        return verdict


_PlanEntry = tuple[Bucket, Collection[str] | None, str, str, bool, int | None]
"""A bucket a job reads, the regions to keep, and its class's model, currency and billing unit."""


def _search(job: JobRequest, snapshot: PlacementSnapshot, *, required: LatencyTier, cap_price: bool) -> _Best | None:
    """The best offer `_evaluate` would choose, found through the offer index.

    The index yields, cheapest key first, batches of offers that pass what a whole class of
    offers or a region settles (below) and have the cards; `_evaluate`, the one filter chain,
    judges each batch. Every offer the index leaves out fails a filter of that chain, so the
    first batch with a fitting offer holds every fitting offer at the lowest key, and its best is
    the scan's. A filter added to `_evaluate` needs nothing here (it rejects within a batch and
    the search goes on); only a filter that would let through what `admit` below refuses would.
    The caller holds `localcontext(MONEY_CONTEXT)`.
    """
    index = snapshot._offer_index()
    terms = _Terms(job, snapshot.currency, cap_price)
    regions = _regions_reached(index, job, snapshot.latency, required)
    classes = _Classes.of(job, terms, index)
    # Which buckets to read depends on what the job asks of a class, where it may run and its
    # memory, not on its cards or price: kept with the index for the jobs that ask the same.
    plan_key = ("plan", classes, regions, job.min_memory_gib)
    plan = index.memo.get(plan_key)
    if plan is None:
        plan = index.memo[plan_key] = [
            (bucket, allowed, *cast(_Class, bucket.cls)[:4])
            for bucket, allowed in index.plan(regions, classes.admits, job.min_memory_gib)
        ]
    keys: dict[tuple[str, bool, int | None], KeyOf] = {}
    sources = []
    per_pflops, min_memory = terms.per_pflops, job.min_memory_gib
    for bucket, allowed, model, _, per_card, per_machine in cast(list[_PlanEntry], plan):
        pricing = (model if per_pflops else "", per_card, per_machine)  # what the key depends on
        key_of = keys.get(pricing)
        if key_of is None:
            key_of = keys[pricing] = terms.key_function(model, per_card, per_machine)
        sources.append(Source._make((bucket, key_of, allowed, min_memory)))  # tuple.__new__: no Python-level call

    where, groups = snapshot._where, snapshot._groups
    reach_of = _reaches(index, snapshot.latency, job.origin, required)  # the verdicts kept with the index

    def judge(names: list[str]) -> _Best | None:
        subset: list[_Group] = []
        for name in names:
            _, group_index, row_index = where[name]
            node_name, node, health, message, rows = groups[group_index]
            subset.append((node_name, node, health, message, (rows[row_index],)))
        return _evaluate(job, snapshot, required=required, cap_price=cap_price, groups=subset, terms=terms,
                         reach_of=reach_of).best

    batches = cheapest_first(sources, terms.needed)
    for key, batch in batches:
        best = judge(batch)
        if best is None:
            continue
        if not job.prefer_greener:
            return best
        # The greenest within the band over the cheapest fitting key (this batch's): read on to
        # the band's ceiling, computed as `_greenest` does, and let the chain choose among all.
        ceiling = key * (1 + job.price_band)
        within = list(batch)
        for dearer, more in batches:
            if dearer > ceiling:
                break
            within += more
        return judge(within)
    return None


def _explain(job: JobRequest, snapshot: PlacementSnapshot) -> tuple[_Best | None, Explanation]:
    """The full scan: the best offer, and the first failing filter of every other."""
    with localcontext(MONEY_CONTEXT):
        outcome = _evaluate(job, snapshot, required=job.tier, cap_price=True)
    by_label = Counter([row[4] for row in outcome.rejections])  # str keys: counted at C speed
    counts = _counts(outcome.fitting, len(snapshot.offers), by_label, outcome.latency_labels)
    return outcome.best, Explanation(
        fitting=counts.fitting,
        reason_counts=counts.reason_counts,
        summary=counts.summary,
        rejection_rows=tuple(outcome.rejections),
        top_reason=counts.top_reason,
    )


def _first_rows(job: JobRequest, snapshot: PlacementSnapshot, limit: int) -> tuple[_RejectionRow, ...]:
    """The first `limit` rejections of the scan, in its order, from the first nodes only."""
    rows: list[_RejectionRow] = []
    groups = snapshot._groups
    # Enough nodes for `limit` offers at the market's average per node, then twice as many.
    start, step = 0, max(8, limit * len(groups) // max(1, len(snapshot.offers)) + 1)
    with localcontext(MONEY_CONTEXT):
        while len(rows) < limit and start < len(groups):
            chunk = groups[start : start + step]
            rows += _evaluate(job, snapshot, required=job.tier, cap_price=True, groups=chunk).rejections
            start, step = start + step, step * 2
    return tuple(rows[:limit])


class _RegionTotals(NamedTuple):
    """Job-independent counts for explanations, kept with the index: offers of nodes that fail
    their health check, by label; per region, the offers of healthy nodes and, of those, the
    ones outside their validity window, by label."""

    unhealthy: Counter[str]
    offers: dict[str, int]
    invalid: dict[str, Counter[str]]


def _region_totals(snapshot: PlacementSnapshot, index: OfferIndex) -> _RegionTotals:
    totals = index.memo.get("totals")
    if totals is None:
        unhealthy: Counter[str] = Counter()
        offers: dict[str, int] = {}
        invalid: dict[str, Counter[str]] = {}
        for _, node, health, _, rows in snapshot._groups:
            if node is None or health is not None:
                unhealthy[_LABELS[RejectReason.NODE_MISSING if health is None else health]] += len(rows)
                continue
            offers[node.region] = offers.get(node.region, 0) + len(rows)
            labels = [row[11] for row in rows if row[9] is not None]
            if labels:
                invalid.setdefault(node.region, Counter()).update(labels)
        totals = index.memo["totals"] = _RegionTotals(unhealthy, offers, invalid)
    assert isinstance(totals, _RegionTotals)
    return totals


# The fields of JobRequest that `_counts_when_unplaced` knows how to count for; a job with any
# other field away from its default (a filter added to `_evaluate` that it has not learned, or
# the per-node policies it leaves to the scan) is counted by the scan.
_COUNTED_FIELDS = frozenset({
    "namespace", "name", "uid", "priority", "created", "gpus_per_replica", "replicas", "models", "min_memory_gib",
    "origin", "tier", "max_price", "budget", "expected_hours", "allowed_regions", "denied_regions", "images",
    "tolerations", "vendors", "min_tflops", "price_basis",
    "prefer_greener", "price_band",  # which fitting offer is chosen: nothing to count for a job placed nowhere
})


def _uncounted_defaults() -> tuple[tuple[str, object], ...]:
    out = []
    for f in fields(JobRequest):
        if f.name not in _COUNTED_FIELDS:
            default = f.default_factory() if f.default_factory is not MISSING else f.default
            out.append((f.name, default))
    return tuple(out)


def _counts_when_unplaced(job: JobRequest, snapshot: PlacementSnapshot) -> _Counts | None:
    """The scan's counts for a job placed nowhere, from the index and per-region totals: each
    region, then each of its buckets, is counted whole where a filter settles it, offer by offer
    only where memory splits a bucket; no pass over the market.

    Exact only because the job fits nowhere: an offer that passes every filter but price and
    budget must then fail one of them (over maxPrice is a suffix of a bucket's price order,
    the rest is over budget). None, for the scan to count, when the job has a field this does
    not know (see `_COUNTED_FIELDS`) or when the counts do not add up to every offer.
    """
    if any(getattr(job, name) != default for name, default in _UNCOUNTED_DEFAULTS):
        return None
    index = snapshot._offer_index()
    totals = _region_totals(snapshot, index)
    by_label: Counter[str] = Counter(totals.unhealthy)
    latency_labels: dict[str, RejectReason] = {}
    terms = _Terms(job, snapshot.currency, cap_price=True)
    classes = _Classes.of(job, terms, index)
    needed, min_memory = terms.needed, job.min_memory_gib
    denied, allowed = job.denied_regions, job.allowed_regions
    memory_label = _LABELS[RejectReason.GPU_MEMORY_TOO_SMALL]
    machine_label = _LABELS[RejectReason.REPLICA_LARGER_THAN_MACHINE]
    cards_label, currency_label = _LABELS[RejectReason.INSUFFICIENT_FREE_CARDS], _LABELS[RejectReason.CURRENCY_MISMATCH]
    price_label, budget_label = _LABELS[RejectReason.PRICE_ABOVE_MAX], _LABELS[RejectReason.BUDGET_EXCEEDED]
    reaches = _reaches(index, snapshot.latency, job.origin, job.tier)
    with localcontext(MONEY_CONTEXT):
        for region, count in totals.offers.items():
            if region in denied:
                by_label[_LABELS[RejectReason.REGION_DENIED]] += count
                continue
            if allowed and region not in allowed:
                by_label[_LABELS[RejectReason.REGION_NOT_ALLOWED]] += count
                continue
            reach = reaches(region)
            if reach.label is not None:
                by_label[reach.label] += count
                latency_labels[reach.label] = RejectReason.LATENCY_TIER_NOT_MET
                continue
            by_label.update(totals.invalid.get(region, {}))
            for bucket in index.by_region.get(region, ()):
                n = len(bucket)
                verdict = classes.verdict(bucket.cls)
                if verdict.before_memory is not None:
                    by_label[_LABELS[verdict.before_memory]] += n
                    continue
                if min_memory > bucket.least_memory:  # memory splits the bucket: offer by offer
                    small = sum(1 for memory in bucket.memories if memory < min_memory)
                    by_label[memory_label] += small
                    if verdict.machine:
                        by_label[machine_label] += n - small
                        continue
                    frees = [f for f, m in zip(bucket.frees(), bucket.memories, strict=True) if m >= min_memory]
                    short = sum(1 for free in frees if free < needed)
                    positions = [i for i, m in enumerate(bucket.memories) if m >= min_memory]
                else:
                    if verdict.machine:
                        by_label[machine_label] += n
                        continue
                    short = bucket.count_free_below(needed)
                    positions = None
                by_label[cards_label] += short
                rest = (n if positions is None else len(positions)) - short
                if rest == 0:
                    continue
                if verdict.currency:
                    by_label[currency_label] += rest
                    continue
                _, _, per_card, per_machine, _, _ = cast(_Class, bucket.cls)
                over = _first_over_cap(terms, bucket.amounts, per_card, per_machine)
                frees_from = bucket.frees(over)
                over_cap = sum(
                    1 for i, free in enumerate(frees_from, over)
                    if free >= needed and (positions is None or bucket.memories[i] >= min_memory)
                )
                if rest > over_cap and terms.hours is None:
                    return None  # something here would fit: not the unplaced job this counts for
                by_label[price_label] += over_cap
                by_label[budget_label] += rest - over_cap
    for label in [label for label, count in by_label.items() if not count]:
        del by_label[label]
    if sum(by_label.values()) != len(snapshot.offers):
        return None
    return _counts(0, len(snapshot.offers), by_label, latency_labels)


def _first_over_cap(terms: _Terms, amounts: Sequence[Decimal], per_card: bool, per_machine: int | None) -> int:
    """The first position whose hourly price is over the job's maxPrice (len when none is):
    prices are sorted and the hourly total grows with them."""
    low, high = 0, len(amounts)
    if terms.cap_total is None:
        return high
    while low < high:
        middle = (low + high) // 2
        if terms.over_cap(terms.hourly(amounts[middle], per_card, per_machine)):
            high = middle
        else:
            low = middle + 1
    return low


def place(job: JobRequest, snapshot: PlacementSnapshot) -> Decision:
    """The best offer for `job` in `snapshot`, or None; the reason for every other offer on demand.

    Found through the offer index (`_search`); the explanation is the scan of `place_by_scan`,
    run when first read. Chooses exactly what `place_by_scan` chooses.
    """
    with localcontext(MONEY_CONTEXT):
        best = _search(job, snapshot, required=job.tier, cap_price=True)
        chosen = None if best is None else _candidate(job, best)
    return Decision(
        chosen,
        len(snapshot.offers),
        lambda: _explain(job, snapshot)[1],
        _count=None if chosen is not None else lambda: _counts_when_unplaced(job, snapshot),
        _first=lambda limit: _first_rows(job, snapshot, limit),
    )


def place_by_scan(job: JobRequest, snapshot: PlacementSnapshot) -> Decision:
    """`place` by running every offer through the filters: the reference the index is held to."""
    best, explanation = _explain(job, snapshot)
    with localcontext(MONEY_CONTEXT):
        chosen = None if best is None else _candidate(job, best)
    return Decision(chosen, len(snapshot.offers), lambda: explanation, explanation)


@dataclass(frozen=True, slots=True)
class FitHint:
    """What would let a job be placed now, for `kubectl compute explain`.

    Each relaxation keeps every other constraint as the job declares it.
    """

    fits_now: bool
    max_price: Money | None
    """The lowest maxPrice (per card-hour, 4 places, rounded up) that places the job at its own tier."""
    tier: LatencyTier | None
    """The tightest tier that places the job at its own maxPrice: how far the tier must be loosened."""
    max_price_at_loosest_tier: Money | None
    """The lowest maxPrice that places the job once the tier is loosened to 20ms as well."""


def what_would_fit(job: JobRequest, snapshot: PlacementSnapshot) -> FitHint:
    """The cheapest maxPrice and the tier that would place `job` now (None: that alone would not)."""
    loosest = LatencyTier.ordered()[-1]
    with localcontext(MONEY_CONTEXT):
        fits_now = _search(job, snapshot, required=job.tier, cap_price=True) is not None
        tier = next(
            (t for t in LatencyTier.ordered() if _search(job, snapshot, required=t, cap_price=True)),
            None,
        )
        at_own_tier = _cheapest_cap(job, snapshot, job.tier)
        at_loosest = _cheapest_cap(job, snapshot, loosest)
    return FitHint(fits_now=fits_now, max_price=at_own_tier, tier=tier, max_price_at_loosest_tier=at_loosest)


def _cheapest_cap(job: JobRequest, snapshot: PlacementSnapshot, tier: LatencyTier) -> Money | None:
    best = _search(job, snapshot, required=tier, cap_price=False)
    if best is None:
        return None
    per_card_hour = Fraction(best.hourly) / job.cards
    return cap_admitting(per_card_hour, best.offer.price.currency)


class Queued(Protocol):
    """What ordering the pending queue needs to know about a job."""

    @property
    def priority(self) -> int: ...
    @property
    def created(self) -> datetime: ...
    @property
    def namespace(self) -> str: ...
    @property
    def name(self) -> str: ...


QueuedJob = TypeVar("QueuedJob", bound=Queued)


def pending_order(jobs: Iterable[QueuedJob]) -> list[QueuedJob]:
    """The order pending jobs are placed in: priority (high first), then oldest, then name.

    This is the one place the queue order is decided (fair share between tenants comes here).
    """
    return sorted(jobs, key=lambda j: (-j.priority, j.created, j.namespace, j.name))


_UNCOUNTED_DEFAULTS = _uncounted_defaults()


__all__ = [
    "FILTER_ORDER",
    "Candidate",
    "Decision",
    "Explanation",
    "FitHint",
    "JobRequest",
    "NodeView",
    "OfferView",
    "PlacementSnapshot",
    "RejectReason",
    "Rejection",
    "pending_order",
    "place",
    "place_by_scan",
    "what_would_fit",
]

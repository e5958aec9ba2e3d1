"""Round-trip latency between regions, and the tier a round trip fits.

The default table is a model, not a measurement: fibre between two provincial capitals runs
along roads and railways, so the route is longer than the great circle, light in fibre covers
about 200 km per millisecond, and every path pays a fixed overhead (last mile, switching,
serialisation). Operators override any pair with what they measure, through a ConfigMap.

    rtt = FIXED_OVERHEAD_MS + 2 * great_circle_km * ROUTE_INFLATION / FIBRE_KM_PER_MS

Within a region (same code) the figure is `INTRA_REGION_RTT_MS`: the programme sells 1 ms as
"same city", and a province's node sits in one metro.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from interconnect.core.regions import BY_CODE, REGIONS, is_region
from interconnect.core.vocabulary import LatencyTier

INTRA_REGION_RTT_MS = 0.8
"""Round trip inside one region: a metro network, well inside the 1 ms tier."""
FIXED_OVERHEAD_MS = 0.5
"""Per path: access, switching and serialisation, both directions."""
ROUTE_INFLATION = 1.6
"""Fibre route length over great-circle distance (typically 1.4-2 on terrestrial backbones)."""
FIBRE_KM_PER_MS = 200.0
"""Light in glass travels at about 2/3 c."""
EARTH_RADIUS_KM = 6371.0088
RTT_DECIMALS = 2
"""Default figures are rounded to 10 µs, so tables are stable and readable."""

_TIERS_TIGHTEST_FIRST: tuple[tuple[LatencyTier, float], ...] = tuple(
    (tier, tier.bound_ms) for tier in LatencyTier.ordered()
)


class LatencyTableError(ValueError):
    """A malformed latency table; the message names the offending key."""


class UnknownRegion(KeyError):
    """A region code the table does not know."""

    def __str__(self) -> str:
        return f"unknown region {self.args[0]!r}"


def great_circle_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Haversine distance on a spherical Earth (good to 0.5%, far below the model's error)."""
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    half_chord = (
        math.sin((phi2 - phi1) / 2) ** 2
        + math.cos(phi1) * math.cos(phi2) * math.sin(math.radians(lon2 - lon1) / 2) ** 2
    )
    return 2 * EARTH_RADIUS_KM * math.asin(math.sqrt(half_chord))


def modelled_rtt_ms(distance_km: float) -> float:
    """The default model's round trip between two different regions `distance_km` apart."""
    return round(FIXED_OVERHEAD_MS + 2 * distance_km * ROUTE_INFLATION / FIBRE_KM_PER_MS, RTT_DECIMALS)


def tier_for_rtt(rtt_ms: float) -> LatencyTier | None:
    """The tightest tier whose bound the round trip fits; None beyond the loosest (20 ms)."""
    for tier, bound in _TIERS_TIGHTEST_FIRST:
        if rtt_ms <= bound:
            return tier
    return None


def _pair(a: str, b: str) -> tuple[str, str]:
    return (a, b) if a <= b else (b, a)


def _validated_rtt(value: object, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise LatencyTableError(f"{where}: round trip must be a number of milliseconds, not {value!r}")
    rtt = float(value)
    if not math.isfinite(rtt) or rtt < 0:
        raise LatencyTableError(f"{where}: round trip must be a finite, non-negative number, not {value!r}")
    return rtt


@dataclass(frozen=True, slots=True)
class LatencyTable:
    """Symmetric round-trip times in milliseconds between region codes; immutable."""

    _rtt: Mapping[tuple[str, str], float] = field(repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_rtt", MappingProxyType(dict(self._rtt)))

    def __hash__(self) -> int:
        return hash(frozenset(self._rtt.items()))

    @staticmethod
    def default() -> LatencyTable:
        """The modelled table for every region in `REGIONS` (built once, shared: it is immutable)."""
        return _default_table()

    @property
    def regions(self) -> frozenset[str]:
        return frozenset(code for pair in self._rtt for code in pair)

    def rtt_ms(self, a: str, b: str) -> float:
        """Round trip between two regions; the intra-region figure when a == b."""
        try:
            return self._rtt[_pair(a, b)]
        except KeyError:
            raise UnknownRegion(a if (a, a) not in self._rtt else b) from None

    def tier_between(self, origin: str, region: str) -> LatencyTier | None:
        """The tightest tier the round trip fits; None when it is beyond 20 ms."""
        return tier_for_rtt(self.rtt_ms(origin, region))

    def __iter__(self) -> Iterator[tuple[str, str, float]]:
        """Each unordered pair once, as (a, b, rtt) with a <= b, in code order."""
        for (a, b), rtt in sorted(self._rtt.items()):
            yield a, b, rtt

    def to_mapping(self) -> dict[str, dict[str, float]]:
        """The full symmetric matrix, `{"CN-BJ": {"CN-TJ": 2.14, ...}}`, ready for YAML or JSON."""
        matrix: dict[str, dict[str, float]] = {}
        for a, b, rtt in self:
            matrix.setdefault(a, {})[b] = rtt
            matrix.setdefault(b, {})[a] = rtt
        return {a: dict(sorted(row.items())) for a, row in sorted(matrix.items())}

    @classmethod
    def from_mapping(cls, data: object, *, base: LatencyTable | None = None) -> LatencyTable:
        """Overrides from a ConfigMap (`{"CN-BJ": {"CN-TJ": 2.1}}`) on top of `base` (the default).

        Each pair applies in both directions; giving both directions with different figures is
        an error, as are unknown regions and values that are not non-negative finite numbers.
        """
        base = cls.default() if base is None else base
        if not isinstance(data, Mapping):
            raise LatencyTableError(f"latency table must be a mapping of region to mapping, not {type(data).__name__}")
        overrides: dict[tuple[str, str], tuple[float, str]] = {}
        for origin, row in data.items():
            if not isinstance(origin, str) or not is_region(origin):
                raise LatencyTableError(f"[{origin!r}]: unknown region")
            if not isinstance(row, Mapping):
                raise LatencyTableError(f"[{origin!r}]: must map region codes to milliseconds")
            for target, value in row.items():
                where = f"[{origin!r}][{target!r}]"
                if not isinstance(target, str) or not is_region(target):
                    raise LatencyTableError(f"{where}: unknown region")
                rtt = _validated_rtt(value, where)
                pair = _pair(origin, target)
                previous = overrides.get(pair)
                if previous is not None and previous[0] != rtt:
                    raise LatencyTableError(
                        f"{where}: {rtt} contradicts {previous[1]}: {previous[0]} (the table is symmetric)"
                    )
                overrides[pair] = (rtt, where)
        merged = dict(base._rtt)
        merged.update({pair: rtt for pair, (rtt, _) in overrides.items()})
        return cls(merged)


@functools.cache
def _default_table() -> LatencyTable:
    table: dict[tuple[str, str], float] = {}
    for a in REGIONS:
        for b in REGIONS:
            if a.code < b.code:
                distance = great_circle_km(a.latitude, a.longitude, b.latitude, b.longitude)
                table[(a.code, b.code)] = modelled_rtt_ms(distance)
        table[(a.code, a.code)] = INTRA_REGION_RTT_MS
    assert set(BY_CODE) == {code for pair in table for code in pair}
    return LatencyTable(table)


LATENCY_CONFIG_MAP = "interconnect-latency"
"""The hub chart's latency ConfigMap (the operator's setting INTERCONNECT_LATENCY_CONFIGMAP)."""
LATENCY_KEY = "latency.yaml"
"""Its key holding the table."""


def latency_from_config(data: Mapping[str, str]) -> LatencyTable:
    """The table a latency ConfigMap's data holds, over the built-in one (which an empty one gives)."""
    import yaml

    text = data.get(LATENCY_KEY)
    loaded = yaml.safe_load(text) if text else None
    if not loaded:
        return LatencyTable.default()
    return LatencyTable.from_mapping(loaded, base=LatencyTable.default())

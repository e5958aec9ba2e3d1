"""The latency table: the default model, ConfigMap overrides, and tiers."""

from __future__ import annotations

import json
import math

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from interconnect.core.latency import (
    FIXED_OVERHEAD_MS,
    INTRA_REGION_RTT_MS,
    LatencyTable,
    LatencyTableError,
    UnknownRegion,
    great_circle_km,
    modelled_rtt_ms,
    tier_for_rtt,
)
from interconnect.core.regions import BY_CODE, REGION_CODES
from interconnect.core.vocabulary import LatencyTier

MS1, MS5, MS20 = LatencyTier.ordered()
TABLE = LatencyTable.default()
codes = st.sampled_from(REGION_CODES)


@pytest.mark.parametrize(
    ("a", "b", "tier"),
    [
        ("CN-SH", "CN-ZJ", MS5),  # Shanghai-Hangzhou
        ("CN-SH", "CN-JS", MS5),  # Shanghai-Nanjing
        ("CN-BJ", "CN-TJ", MS5),
        ("CN-BJ", "CN-HE", MS5),  # Beijing-Shijiazhuang
        ("CN-GD", "CN-GD", MS1),  # Guangzhou-Shenzhen: one province
        ("CN-BJ", "CN-SH", MS20),
        ("CN-SH", "CN-XJ", None),  # Urumqi is beyond the national tier
    ],
)
def test_default_model_matches_the_programme(a: str, b: str, tier: LatencyTier | None) -> None:
    assert TABLE.tier_between(a, b) is tier
    assert TABLE.tier_between(b, a) is tier


def test_beijing_shanghai_is_a_bit_under_twenty() -> None:
    assert 15 < TABLE.rtt_ms("CN-BJ", "CN-SH") <= 20


def test_same_region_is_the_intra_city_figure() -> None:
    for code in REGION_CODES:
        assert TABLE.rtt_ms(code, code) == INTRA_REGION_RTT_MS
        assert TABLE.tier_between(code, code) is MS1


def test_no_two_provinces_share_the_one_millisecond_tier() -> None:
    assert all(rtt > MS1.bound_ms for a, b, rtt in TABLE if a != b)


def test_default_covers_every_pair_of_regions() -> None:
    n = len(REGION_CODES)
    assert TABLE.regions == frozenset(REGION_CODES)
    assert len(list(TABLE)) == n * (n - 1) // 2 + n


@given(codes, codes)
def test_symmetric_and_tier_consistent(a: str, b: str) -> None:
    assert TABLE.rtt_ms(a, b) == TABLE.rtt_ms(b, a)
    assert TABLE.tier_between(a, b) is tier_for_rtt(TABLE.rtt_ms(a, b))


@given(st.floats(0, 5000), st.floats(0, 5000))
def test_model_grows_with_distance(d1: float, d2: float) -> None:
    if d1 <= d2:
        assert FIXED_OVERHEAD_MS <= modelled_rtt_ms(d1) <= modelled_rtt_ms(d2)


def test_great_circle_distance() -> None:
    bj, sh = BY_CODE["CN-BJ"], BY_CODE["CN-SH"]
    assert 1050 < great_circle_km(bj.latitude, bj.longitude, sh.latitude, sh.longitude) < 1080
    assert great_circle_km(30, 120, 30, 120) == 0


@pytest.mark.parametrize(
    ("rtt", "tier"),
    [(0.0, MS1), (1.0, MS1), (1.01, MS5), (5.0, MS5), (5.001, MS20), (20.0, MS20), (20.01, None), (math.inf, None)],
)
def test_tier_is_the_tightest_bound_the_round_trip_fits(rtt: float, tier: LatencyTier | None) -> None:
    assert tier_for_rtt(rtt) is tier


@given(st.floats(0, 100), st.floats(0, 100))
def test_tiers_loosen_as_round_trips_grow(r1: float, r2: float) -> None:
    order = {t: i for i, t in enumerate(LatencyTier.ordered())} | {None: 3}
    if r1 <= r2:
        assert order[tier_for_rtt(r1)] <= order[tier_for_rtt(r2)]


def test_unknown_region_lookup_names_it() -> None:
    with pytest.raises(UnknownRegion, match="CN-XX"):
        TABLE.rtt_ms("CN-BJ", "CN-XX")
    with pytest.raises(KeyError):
        TABLE.tier_between("CN-XX", "CN-BJ")


def test_overrides_apply_both_ways_on_top_of_the_default() -> None:
    table = LatencyTable.from_mapping({"CN-BJ": {"CN-SH": 9.5, "CN-BJ": 0.4}})
    assert table.rtt_ms("CN-BJ", "CN-SH") == table.rtt_ms("CN-SH", "CN-BJ") == 9.5
    assert table.rtt_ms("CN-BJ", "CN-BJ") == 0.4
    assert table.tier_between("CN-SH", "CN-BJ") is MS20
    assert table.rtt_ms("CN-SH", "CN-ZJ") == TABLE.rtt_ms("CN-SH", "CN-ZJ")
    assert LatencyTable.default().rtt_ms("CN-BJ", "CN-SH") != 9.5  # the default is untouched


def test_overrides_on_an_explicit_base() -> None:
    base = LatencyTable.from_mapping({"CN-SH": {"CN-AH": 4.0}})
    table = LatencyTable.from_mapping({"CN-SH": {"CN-ZJ": 1.0}}, base=base)
    assert table.rtt_ms("CN-AH", "CN-SH") == 4.0
    assert table.tier_between("CN-ZJ", "CN-SH") is MS1


def test_both_directions_may_be_given_if_they_agree() -> None:
    table = LatencyTable.from_mapping({"CN-BJ": {"CN-TJ": 2}, "CN-TJ": {"CN-BJ": 2.0}})
    assert table.rtt_ms("CN-TJ", "CN-BJ") == 2.0


def test_mapping_round_trips_through_json_and_yaml() -> None:
    mapping = TABLE.to_mapping()
    assert mapping["CN-BJ"]["CN-TJ"] == mapping["CN-TJ"]["CN-BJ"]
    assert LatencyTable.from_mapping(json.loads(json.dumps(mapping))) == TABLE
    assert LatencyTable.from_mapping(yaml.safe_load(yaml.safe_dump(mapping))) == TABLE
    edited = LatencyTable.from_mapping(yaml.safe_load("CN-BJ:\n  CN-TJ: 2.1\n"))
    assert edited.rtt_ms("CN-TJ", "CN-BJ") == 2.1
    assert edited != TABLE
    assert hash(LatencyTable.from_mapping({})) == hash(TABLE)


def test_to_mapping_is_a_copy() -> None:
    mapping = TABLE.to_mapping()
    mapping["CN-BJ"]["CN-TJ"] = 99.0
    assert TABLE.rtt_ms("CN-BJ", "CN-TJ") != 99.0


@pytest.mark.parametrize(
    ("data", "names"),
    [
        ({"CN-XX": {"CN-BJ": 1.0}}, "'CN-XX'"),
        ({"CN-BJ": {"beijing": 1.0}}, "['CN-BJ']['beijing']"),
        ({"CN-BJ": {"CN-TJ": -1}}, "['CN-BJ']['CN-TJ']"),
        ({"CN-BJ": {"CN-TJ": float("nan")}}, "['CN-BJ']['CN-TJ']"),
        ({"CN-BJ": {"CN-TJ": float("inf")}}, "['CN-BJ']['CN-TJ']"),
        ({"CN-BJ": {"CN-TJ": "2.1"}}, "['CN-BJ']['CN-TJ']"),
        ({"CN-BJ": {"CN-TJ": True}}, "['CN-BJ']['CN-TJ']"),
        ({"CN-BJ": {"CN-TJ": None}}, "['CN-BJ']['CN-TJ']"),
        ({"CN-BJ": [1, 2]}, "['CN-BJ']"),
        ({"CN-BJ": {"CN-TJ": 2.0}, "CN-TJ": {"CN-BJ": 3.0}}, "['CN-TJ']['CN-BJ']"),
        ({1: {"CN-BJ": 1.0}}, "[1]"),
        (["CN-BJ"], "mapping"),
    ],
)
def test_validation_errors_name_the_offending_key(data: object, names: str) -> None:
    with pytest.raises(LatencyTableError) as error:
        LatencyTable.from_mapping(data)
    assert names in str(error.value)


@given(st.dictionaries(codes, st.dictionaries(codes, st.floats(0, 200)), max_size=4))
def test_any_valid_override_is_symmetric_and_keeps_the_rest(data: dict[str, dict[str, float]]) -> None:
    pairs: dict[frozenset[str], set[float]] = {}
    for a, row in data.items():
        for b, rtt in row.items():
            pairs.setdefault(frozenset((a, b)), set()).add(rtt)
    if any(len(values) > 1 for values in pairs.values()):
        with pytest.raises(LatencyTableError, match="symmetric"):
            LatencyTable.from_mapping(data)
        return
    table = LatencyTable.from_mapping(data)
    for a, row in data.items():
        for b, rtt in row.items():
            assert table.rtt_ms(a, b) == table.rtt_ms(b, a) == rtt
    assert table.regions == TABLE.regions

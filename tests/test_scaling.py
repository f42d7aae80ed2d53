"""The city simulation behind docs/scaling.md: its invariants, never its timings."""

from __future__ import annotations

import math
from itertools import pairwise
from uuid import UUID

import pytest

from infra import scaling
from infra.scaling import (
    City,
    command_kinds,
    shard_load,
    shard_of,
    shards_needed,
    simulate,
)

CITY_COMMUNITIES = 1_000
SHARD_COUNTS = (1, 2, 3, 4, 6, 8, 12, 16, 32)


@pytest.fixture(scope="module")
def city() -> City:
    return simulate(CITY_COMMUNITIES)


def test_the_same_seed_gives_the_same_city_and_another_seed_another() -> None:
    assert simulate(50, seed=3) == simulate(50, seed=3)
    other = simulate(50, seed=4)
    assert other.community_ids != simulate(50, seed=3).community_ids
    assert other.commands_by_community != simulate(50, seed=3).commands_by_community


def test_totals_add_up_across_kinds_communities_and_shards(city: City) -> None:
    by_community = sum(len(minutes) for minutes in city.commands_by_community.values())
    assert by_community == sum(city.commands_by_kind.values()) == city.commands
    for shards in SHARD_COUNTS:
        per_minute = scaling.commands_per_minute(city, shards)
        assert len(per_minute) == shards
        assert sum(sum(row) for row in per_minute) == city.commands


def test_each_kind_comes_at_its_expected_rate(city: City) -> None:
    """The random parts (community sizes, rounding) keep the means the seeds give."""
    for kind in command_kinds():
        expected = kind.per_day * kind.weight * CITY_COMMUNITIES
        assert city.commands_by_kind[kind.name] == pytest.approx(expected, rel=0.05, abs=50), kind.name
    welfare = scaling.BENEFICIARIES * CITY_COMMUNITIES  # monthly runs do not scale with size: one each
    assert city.commands_by_kind["welfare run"] == welfare


def test_commands_come_only_in_the_hours_their_kind_has_weight(city: City) -> None:
    hours = {minute // 60 for minutes in city.commands_by_community.values() for minute in minutes}
    active = {hour for kind in command_kinds() for hour, weight in enumerate(kind.hours) if weight}
    assert hours <= active
    assert 3 not in hours  # nobody shops, patrols or works at 3 in the morning


def test_a_community_always_maps_to_the_same_shard(city: City) -> None:
    # A function of the id alone: not of the other communities, the run or the process.
    assert shard_of(UUID("8f0e2bba-7c1d-4c8e-9a4e-3b1f6f0c2d11"), 8) == 2
    assert shard_of(UUID("8f0e2bba-7c1d-4c8e-9a4e-3b1f6f0c2d11"), 3) == 0
    smaller = simulate(100)
    assert smaller.community_ids == city.community_ids[:100]
    for shards in SHARD_COUNTS:
        first = [shard_of(community_id, shards) for community_id in city.community_ids]
        assert first == [shard_of(community_id, shards) for community_id in city.community_ids]
        assert set(first) == set(range(shards))  # every shard holds some


def test_splitting_shards_never_raises_the_busiest_shards_load(city: City) -> None:
    for chain in ((1, 2, 4, 8, 16, 32), (1, 3, 6, 12)):
        loads = [shard_load(city, shards) for shards in chain]
        for before, after in pairwise(loads):
            assert after.busiest_per_s <= before.busiest_per_s
            assert after.day_commands_max <= before.day_commands_max
            assert after.communities_max <= before.communities_max
        for fewer, more in pairwise(chain):
            # each of the more shards is part of one of the fewer: a split moves, never merges
            for community_id in city.community_ids:
                assert shard_of(community_id, more) % fewer == shard_of(community_id, fewer)


def test_the_routing_is_balanced_within_four_standard_deviations(city: City) -> None:
    """A community lands on a shard as at random, so a shard's count of `m = n / S` communities
    strays from m by about √m: none exceeds m + 4√m. Its commands stray a little more, as
    communities differ in size (COMMUNITY_SCALE spreads them by ±50%, a coefficient of variation
    of 0.29, so √(1 + 0.29²) ≈ 1.04 times more): none exceeds its share by 4.2 deviations."""
    for shards in SHARD_COUNTS:
        load = shard_load(city, shards)
        fair = CITY_COMMUNITIES / shards
        assert load.communities_max <= fair + 4 * math.sqrt(fair)
        assert load.day_commands_max <= city.commands / shards * (1 + 4.2 / math.sqrt(fair))


def test_the_busiest_shard_carries_at_least_its_share_of_the_busiest_minute(city: City) -> None:
    whole = shard_load(city, 1)
    for shards in SHARD_COUNTS:
        assert shard_load(city, shards).busiest_per_s >= whole.busiest_per_s / shards


@pytest.mark.parametrize("capacity", [20.0, 43.0, 625.0])
def test_the_shards_needed_are_the_fewest_that_fit(city: City, capacity: float) -> None:
    needed = shards_needed(city, capacity)
    assert needed.busiest_per_s <= capacity * (1 - scaling.HEADROOM)
    for fewer in range(1, needed.shards):
        assert not shard_load(city, fewer).nodes_fit(capacity)


def test_the_command_prints_its_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert scaling.main(["--communities", "40", "--capacity", "10", "--shards", "5"]) == 0
    out = capsys.readouterr().out
    assert "40 communities" in out
    assert "busiest minute city-wide" in out
    rows = [line.split() for line in out.splitlines() if line.split()[:1] in (["5"], ["16"])]
    assert [row[0] for row in rows] == ["5", "16"]
    assert "at 10 commands/s a node" in out


def test_the_command_refuses_what_cannot_be_simulated() -> None:
    with pytest.raises(SystemExit):
        scaling.main(["--communities", "0"])
    with pytest.raises(SystemExit):
        scaling.main(["--capacity", "0"])

"""A city of communities at its busiest, simulated: how many commands a second reach the writers,
city-wide and per shard, and how many shards a per-node capacity calls for (docs/scaling.md).

Deterministic for a seed, standard library only. A command is counted as the writer sees it:
a monthly welfare run, one command recording an allowance for every beneficiary, counts as one
command per allowance (each is a sale's worth of postings), and a settlement's payment as one per
merchant paid. One simulated day is the month's peak day: everyday commands (reports, reviews, sales, donations, wishes) at their daily rates with sales
raised by `PEAK_DAY_SALES_FACTOR`, plus every community's monthly runs (the welfare allowances
and the settlement), all in one time zone — a city's communities peak together.

    python -m infra.scaling [--communities 1000] [--capacity 43] [--shards 4] [--seed 9]
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import math
import random
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from uuid import UUID

# --- One community, from the seeds (/work/shared/seeds/) ------------------------------------------
VOLUNTEERS = 800  # 金沙: the 金豆 volunteers grew "从原来的17人,增加到800多人"
MERCHANTS = 100  # 金沙: "社区内的100多家金豆兑换商家"; each is paid in the month's settlement
# 金沙's busiest volunteer: "3年来我已上报了300多条线索" (0.27 a day); 瓯北's 20-odd 女子巡逻队 found
# 2,300 hazards in 11 months (0.34 a day each). We take every volunteer as busy as that: an upper bound.
REPORTS_PER_VOLUNTEER_PER_DAY = 300 / (3 * 365)
BEANS_PER_REPORT = 2_000 / 300  # 金沙: that volunteer's "2000多个" beans for "300多条" reports
# Assumptions the seeds do not give (金沙 only says beneficiaries get "一定金额" monthly):
BENEFICIARIES = 100  # elderly needing care: about 1% of a 10,000-resident community (田园路 1.17万, 金江路 2.3万)
WELFARE_UNITS_PER_BENEFICIARY_MONTH = 300  # a 10-yuan meal a day at the "虚拟老人爱心食堂"
DISPATCHED_SHARE = 0.10  # reports needing urgent handling (金沙's fire): a dispatch and a close each
DONATED_SHARE = 0.05  # of earned beans given to beneficiaries ("可以捐赠给社区的特殊人群")
BEANS_PER_DONATION = 20
UNITS_PER_SALE = 15  # a meal, vegetables, fruit
REVERSED_SHARE = 0.01  # sales the merchant gives back
WISHES_PER_MONTH = 10  # 金色's 心愿墙 and 瓯北's "微心愿" 认领: a few a month
PLEDGES_PER_WISH = 5
FUND_DONATIONS_PER_MONTH = 10  # cash into the 金豆基金
PEAK_DAY_SALES_FACTOR = 2.0  # the month's busiest day (allowances arrive, a weekend) sells twice an average day
DAYS_PER_MONTH = 30
COMMUNITY_SCALE_MIN, COMMUNITY_SCALE_MAX = 0.5, 1.5  # communities differ; the showcase 金沙 is the mean

# --- When in the day (hourly weights, local time) -------------------------------------------------
SHOPPING_HOURS = (0, 0, 0, 0, 0, 0, 2, 6, 5, 4, 5, 12, 14, 6, 3, 3, 5, 10, 11, 6, 2, 1, 0, 0)  # meals first
PATROL_HOURS = (0, 0, 0, 0, 0, 0, 1, 3, 6, 8, 8, 7, 5, 5, 6, 7, 8, 8, 7, 6, 4, 2, 1, 0)  # daylight and evening
OFFICE_HOURS = (0, 0, 0, 0, 0, 0, 0, 0, 4, 10, 10, 8, 0, 0, 6, 8, 8, 4, 0, 0, 0, 0, 0, 0)  # staff: 9–12, 14–18

MINUTES_PER_DAY = 24 * 60
HEADROOM = 0.5  # a node runs at most at half its benched capacity: reads, audits, backups, a community moving in
DEFAULT_CAPACITY = 43.0  # commands/s: docs/performance.md, PostgreSQL card sales over HTTP at 16 clients
DEFAULT_SEED = 9  # issue 9
SHARDS_SHOWN = (1, 2, 4, 8, 16)
SHARDS_MAX = 1_024  # the search for enough shards stops here


@dataclass(frozen=True)
class Kind:
    """A kind of command: how many one community sends on the peak day, at which hours, and how
    many commands each counts as (a welfare run: one per beneficiary)."""

    name: str
    per_day: float
    hours: tuple[int, ...]
    weight: int = 1


def command_kinds() -> tuple[Kind, ...]:
    reports = VOLUNTEERS * REPORTS_PER_VOLUNTEER_PER_DAY
    dispatched = reports * DISPATCHED_SHARE
    beans_earned = (reports + dispatched) * BEANS_PER_REPORT  # a close awards its handlers like a report
    beans_donated = beans_earned * DONATED_SHARE
    welfare_per_day = BENEFICIARIES * WELFARE_UNITS_PER_BENEFICIARY_MONTH / DAYS_PER_MONTH
    # In the steady state every unit minted is spent: volunteers with phone codes (an issue and a
    # redeem), beneficiaries with printed cards (a redeem).
    phone_sales = (beans_earned - beans_donated) / UNITS_PER_SALE * PEAK_DAY_SALES_FACTOR
    card_sales = (welfare_per_day + beans_donated) / UNITS_PER_SALE * PEAK_DAY_SALES_FACTOR
    wishes = WISHES_PER_MONTH / DAYS_PER_MONTH
    return (
        Kind("report", reports, PATROL_HOURS),
        Kind("review", reports, OFFICE_HOURS),  # verified or rejected by staff
        Kind("dispatch+close", 2 * dispatched, PATROL_HOURS),
        Kind("payment code", phone_sales, SHOPPING_HOURS),
        Kind("sale", phone_sales + card_sales, SHOPPING_HOURS),
        Kind("reversal", (phone_sales + card_sales) * REVERSED_SHARE, SHOPPING_HOURS),
        Kind("donation", beans_donated / BEANS_PER_DONATION, PATROL_HOURS),
        Kind("wish", wishes * (2 + PLEDGES_PER_WISH), PATROL_HOURS),  # create, pledges, fulfil
        Kind("fund donation", FUND_DONATIONS_PER_MONTH / DAYS_PER_MONTH, OFFICE_HOURS),
        Kind("welfare run", 1, OFFICE_HOURS, weight=BENEFICIARIES),  # monthly: on the peak day
        Kind("settlement", 2, OFFICE_HOURS),  # monthly: proposed, approved by another admin
        Kind("settlement paid", 1, OFFICE_HOURS, weight=MERCHANTS),  # monthly: a line per merchant
    )


MONTHLY_KINDS = ("welfare run", "settlement", "settlement paid")


@dataclass(frozen=True)
class City:
    """The peak day: for each community, the minute of each of its commands."""

    community_ids: tuple[UUID, ...]
    commands_by_community: dict[UUID, tuple[int, ...]]
    commands_by_kind: dict[str, int]

    @property
    def commands(self) -> int:
        return sum(self.commands_by_kind.values())


def simulate(communities: int, seed: int = DEFAULT_SEED) -> City:
    rng = random.Random(seed)
    kinds = command_kinds()
    minutes = range(MINUTES_PER_DAY)
    cumulative = {kind.name: list(itertools.accumulate(_per_minute(kind.hours))) for kind in kinds}
    commands_by_kind = dict.fromkeys((kind.name for kind in kinds), 0)
    ids: list[UUID] = []
    commands_by_community: dict[UUID, tuple[int, ...]] = {}
    for _ in range(communities):
        community_id = UUID(int=rng.getrandbits(128), version=4)
        scale = rng.uniform(COMMUNITY_SCALE_MIN, COMMUNITY_SCALE_MAX)
        commands: list[int] = []
        for kind in kinds:
            count = _whole(kind.per_day * (1 if kind.name in MONTHLY_KINDS else scale), rng)
            for minute in rng.choices(minutes, cum_weights=cumulative[kind.name], k=count):
                commands.extend([minute] * kind.weight)
            commands_by_kind[kind.name] += count * kind.weight
        ids.append(community_id)
        commands_by_community[community_id] = tuple(commands)
    return City(tuple(ids), commands_by_community, commands_by_kind)


def _per_minute(hours: tuple[int, ...]) -> list[int]:
    assert len(hours) == 24, hours
    return [weight for weight in hours for _ in range(60)]


def _whole(expected: float, rng: random.Random) -> int:
    """`expected` rounded up or down at random, so small daily rates keep their mean."""
    whole = math.floor(expected)
    return whole + (rng.random() < expected - whole)


def shard_of(community_id: UUID, shards: int) -> int:
    """Where a community starts: a hash of its id, so the same on every process and run. With S'
    a multiple of S, the shards of S' split those of S (a split moves half of one shard's
    communities, and no shard gains). Afterwards the routing table, not this, is the truth."""
    assert shards >= 1, shards
    digest = hashlib.sha256(community_id.bytes).digest()
    return int.from_bytes(digest[:8], "big") % shards


def commands_per_minute(city: City, shards: int) -> list[list[int]]:
    """Each shard's commands in each minute of the day."""
    per_minute = [[0] * MINUTES_PER_DAY for _ in range(shards)]
    for community_id in city.community_ids:
        row = per_minute[shard_of(community_id, shards)]
        for minute in city.commands_by_community[community_id]:
            row[minute] += 1
    return per_minute


@dataclass(frozen=True)
class ShardLoad:
    shards: int
    communities_max: int  # the most communities one shard holds
    day_commands_max: int  # the most commands one shard takes in the day
    busiest_per_s: float  # the busiest shard's busiest minute, in commands per second

    def nodes_fit(self, capacity_per_s: float) -> bool:
        return self.busiest_per_s <= capacity_per_s * (1 - HEADROOM)


def shard_load(city: City, shards: int) -> ShardLoad:
    per_minute = commands_per_minute(city, shards)
    communities = [0] * shards
    for community_id in city.community_ids:
        communities[shard_of(community_id, shards)] += 1
    return ShardLoad(
        shards=shards, communities_max=max(communities), day_commands_max=max(sum(row) for row in per_minute),
        busiest_per_s=max(max(row) for row in per_minute) / 60,
    )


def shards_needed(city: City, capacity_per_s: float) -> ShardLoad:
    """The fewest shards whose busiest one stays within a node's capacity, headroom kept."""
    for shards in range(1, SHARDS_MAX + 1):
        load = shard_load(city, shards)
        if load.nodes_fit(capacity_per_s):
            return load
    raise ValueError(f"no {SHARDS_MAX} shards hold this city at {capacity_per_s} commands/s a node")


def report(city: City, capacity_per_s: float, shards: Sequence[int]) -> str:
    per_minute = commands_per_minute(city, 1)[0]
    busiest_per_s = max(per_minute) / 60
    hour, minute = divmod(per_minute.index(max(per_minute)), 60)
    lines = [
        (f"{len(city.community_ids):,} communities, the month's peak day: {city.commands:,} commands "
         f"({city.commands / len(city.community_ids):,.0f} a community)"),
        f"busiest minute city-wide: {hour:02}:{minute:02}, {busiest_per_s:.1f} commands/s",
        "",
        f"{'kind':<16}{'commands a day':>16}{'share':>8}",
    ]
    lines += [
        f"{name:<16}{count:>16,}{count / city.commands:>8.1%}"
        for name, count in sorted(city.commands_by_kind.items(), key=lambda item: -item[1])
    ]
    lines += [
        "",
        f"{'shards':>6}{'communities (max)':>19}{'day (max)':>11}{'busiest shard /s':>18}{'city/S /s':>11}{'fits':>6}",
    ]
    for count in sorted(set(shards)):
        load = shard_load(city, count)
        fits = "yes" if load.nodes_fit(capacity_per_s) else "no"
        lines.append(
            f"{count:>6}{load.communities_max:>19}{load.day_commands_max:>11,}{load.busiest_per_s:>18.1f}"
            f"{busiest_per_s / count:>11.1f}{fits:>6}"
        )
    needed = shards_needed(city, capacity_per_s)
    lines += [
        "",
        (f"at {capacity_per_s:g} commands/s a node, kept under {1 - HEADROOM:.0%} of it: "
         f"{needed.shards} shard(s) (busiest {needed.busiest_per_s:.1f}/s)"),
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.scaling", description=__doc__.split("\n\n")[0])
    parser.add_argument("--communities", type=int, default=1_000)
    parser.add_argument("--capacity", type=float, default=DEFAULT_CAPACITY,
                        help="commands/s one node sustains (e.g. `jindou bench`'s sale-busy row)")
    parser.add_argument("--shards", type=int, action="append", default=[],
                        help="also show this many shards (repeatable)")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    args = parser.parse_args(argv)
    if args.communities < 1 or args.capacity <= 0 or any(count < 1 for count in args.shards):
        parser.error("--communities and --shards must be at least 1, --capacity above 0")
    city = simulate(args.communities, args.seed)
    print(report(city, args.capacity, (*SHARDS_SHOWN, *args.shards)))
    return 0


if __name__ == "__main__":
    sys.exit(main())

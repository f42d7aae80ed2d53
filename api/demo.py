"""`jindou demo`: three months of a believable 金沙社区, recorded through the public API, then served.

Every figure is made by a real command through the same HTTP contract a client uses (in-process,
no network), so the demo also proves the contract end to end. The months are recorded under a
simulated clock (domain/clock.py, decision 0011): each request happens at its own moment of the
last three months, so events carry those moments, sales fall on their days and hours, payment
codes expire and cards' days turn as they would have, and every closed month is settled and paid
early the next month. People and places follow the 2019 昆明日报 report on 金沙社区's 金豆 model;
the rest is invented but ordinary.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import os
import random
import secrets
import sys
import unicodedata
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta
from datetime import timezone as utc_timezone
from pathlib import Path
from typing import Any, TextIO
from uuid import uuid4
from zoneinfo import ZoneInfo

with warnings.catch_warnings():  # starlette's note about httpx2 is not for the people running a demo
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

from api.app import create_app
from domain import clock
from infra.settings import Settings, persistence_env
from infra.wiring import Services, build_services

SEED = 2019_08_03  # the day 丰国兆 reported the fire at 金夏苑
MONTHS = 3  # the current month and the two before it
TIMEZONE = ZoneInfo("Asia/Shanghai")
DAY_OPENS, DAY_CLOSES = time(7, 0), time(21, 30)  # when people report and shop
LAST_MOMENT_MARGIN = timedelta(minutes=1)  # nothing is recorded closer to the real now than this
PAYMENT_DELAY = timedelta(seconds=25)  # a code is shown, then scanned
WELFARE_PER_MONTH = (150, 200, 300)  # credits per elder per month, by need
CARD_DAILY_LIMIT = 60
FOUNDATION = ("昆明市青少年发展基金会（金豆基金专户）", 3_000_000)  # fen, paid in at the start
MONTHLY_DONORS = (("金沙物业服务有限公司", 500_000), ("辖区商户联合捐赠", 180_000), ("退休教师协会", 60_000))


@dataclass(frozen=True)
class DemoSize:
    volunteers: int
    elders: int
    elders_with_cards: int
    merchants: int
    reports_per_day: int
    sales_per_day: int
    gifts_per_day: int  # volunteers giving beans to elders


FULL = DemoSize(volunteers=300, elders=40, elders_with_cards=12, merchants=36, reports_per_day=9, sales_per_day=16,
                gifts_per_day=2)
SMALL = DemoSize(volunteers=24, elders=6, elders_with_cards=2, merchants=8, reports_per_day=2, sales_per_day=3,
                 gifts_per_day=1)
SIZES = {"full": FULL, "small": SMALL}

FAMILY_NAMES = "王李张刘陈杨赵黄周吴徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤"
GIVEN_NAMES = ["建华", "秀英", "国庆", "丽萍", "志强", "桂兰", "海燕", "文斌", "春梅", "德明", "晓东", "玉兰",
               "红梅", "永刚", "淑珍", "立新", "云飞", "小燕", "家福", "金凤", "子涵", "浩然", "雨萱", "俊杰",
               "思远", "佳怡", "明轩", "欣怡", "宇航", "梓萌", "振华", "凤英", "伟", "静", "磊", "敏"]
ELDER_TITLES = ("奶奶", "爷爷")
ELDER_PLACES = ("金夏苑", "金沙小区3幢", "金沙小区8幢", "金沙小区11幢", "金沙路", "独居", "失独", "残疾", "金沙新村")
MERCHANT_KINDS = [
    ("蔬菜", ["vegetable"]), ("鲜果", ["fruit"]), ("便民超市", ["grocery"]), ("小吃店", ["meal"]),
    ("米线馆", ["meal"]), ("早点铺", ["meal", "grocery"]), ("粮油店", ["grocery"]), ("水果批发", ["fruit", "vegetable"]),
    ("理发店", ["barber"]), ("五金店", ["hardware"]), ("药店", ["pharmacy"]), ("洗衣房", ["laundry"]),
]
MERCHANT_PLACES = ("金沙菜市场", "金沙路", "金夏苑", "金沙小区", "金沙新村", "白龙路")
REPORTS = {
    "fire": ["金夏苑14幢二单元301号阳台着火", "金沙小区垃圾桶冒烟，已用灭火器扑灭", "楼道电动车充电起火隐患"],
    "security": ["金沙路口有人撬电动车锁", "小区后门监控被人为遮挡", "夜间有陌生人在单元门口徘徊"],
    "dispute": ["8幢两户因漏水发生争执", "菜市场摊位占道纠纷", "停车位纠纷，双方情绪激动"],
    "sanitation": ["3幢楼下垃圾堆积三天未清运", "金沙路井盖缺失", "绿化带内有建筑垃圾"],
    "resident_need": ["独居老人家中水管爆裂需维修", "残疾居民需要代购药品", "老人走失，家属求助寻找"],
}
CATEGORY_WEIGHTS = {"fire": 1, "security": 3, "dispute": 2, "sanitation": 4, "resident_need": 3}
FOOD = {"grocery", "vegetable", "fruit", "meal"}


class Timeline:
    """The simulated clock: the moment the next request happens, never going backwards."""

    def __init__(self, start: datetime) -> None:
        self.moment = start

    def at(self, moment: datetime) -> None:
        self.moment = max(self.moment, moment)

    def __call__(self) -> datetime:
        return self.moment


@dataclass
class DemoCommunity:
    api: TestClient
    admin_token: str
    timeline: Timeline
    rng: random.Random
    size: DemoSize
    community: dict[str, Any] = field(default_factory=dict)
    staff: dict[str, dict[str, Any]] = field(default_factory=dict)
    volunteers: list[dict[str, Any]] = field(default_factory=list)
    elders: list[dict[str, Any]] = field(default_factory=list)
    merchants: list[dict[str, Any]] = field(default_factory=list)
    cards: dict[str, str] = field(default_factory=dict)
    held: dict[str, dict[str, int]] = field(default_factory=dict)  # what each person holds, as the replies said
    settlements: list[dict[str, Any]] = field(default_factory=list)
    sign_in_urls: dict[str, str | None] = field(default_factory=dict)  # where the deployment offers sign-in codes
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(("reports", "sales", "reversals", "gifts"), 0))

    def post(self, path: str, token: str, body: dict[str, Any] | None = None, *, keyed: bool = True,
             expect: tuple[int, ...] = (200, 201)) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {token}"}
        if keyed:
            headers["Idempotency-Key"] = f"demo-{uuid4()}"
        response = self.api.post(path, json=body or {}, headers=headers)
        if response.status_code not in expect:
            raise RuntimeError(f"demo step {path} failed: {response.status_code} {response.text}")
        return dict(response.json())

    def account(self, kind: str, name: str, **extra: Any) -> dict[str, Any]:
        body = {"community_id": self.community["id"], "kind": kind, "display_name": name, **extra}
        account = self.post("/v1/accounts", self.admin_token, body)
        self.held[account["id"]] = {"bean": 0, "welfare": 0}
        return account

    def add_staff(self, key: str, name: str, role: str, **extra: Any) -> None:
        body = {"community_id": self.community["id"], "display_name": name, "role": role, **extra}
        self.staff[key] = self.post("/v1/staff", self.admin_token, body) | {"display_name": name}

    def token(self, key: str) -> str:
        return str(self.staff[key]["token"])

    def local_day(self) -> date:
        return self.timeline().astimezone(TIMEZONE).date()


# --- the calendar: every action has its moment; actions may schedule later ones ----------------


class Calendar:
    def __init__(self, end: datetime) -> None:
        self.end = end
        self._queue: list[tuple[datetime, int, Callable[[], None]]] = []
        self._order = itertools.count()

    def add(self, moment: datetime, action: Callable[[], None]) -> None:
        if moment <= self.end:  # what would happen after now has not happened yet
            heapq.heappush(self._queue, (moment, next(self._order), action))

    def run(self, timeline: Timeline, progress: Callable[[float], None] | None = None) -> None:
        """Every action in time order; `progress` hears how far through the months it is (0..1)."""
        start = timeline()
        span = max((self.end - start).total_seconds(), 1.0)
        while self._queue:
            moment, _, action = heapq.heappop(self._queue)
            timeline.at(moment)
            action()
            if progress is not None:
                progress(min(1.0, (moment - start).total_seconds() / span))


def _months_back(today: date, count: int) -> date:
    day = today.replace(day=1)
    for _ in range(count):
        day = (day - timedelta(days=1)).replace(day=1)
    return day


def _local(day: date, at: time) -> datetime:
    return datetime.combine(day, at, TIMEZONE).astimezone(utc_timezone.utc)


def _random_moment(rng: random.Random, day: date) -> datetime:
    """A moment of the day weighted to mornings and early evenings, when people are out."""
    hour = rng.choice((7, 8, 8, 9, 9, 10, 10, 11, 12, 14, 15, 16, 17, 17, 18, 18, 19, 20))
    return _local(day, time(hour, rng.randrange(60), rng.randrange(60)))


def populate(services: Services, admin_token: str, *, size: DemoSize = FULL, now: datetime | None = None,
             origin: str = "http://127.0.0.1:8000",
             progress: Callable[[float], None] | None = None) -> DemoCommunity:
    """Record three months of 金沙社区 ending at `now` (default: the real now) in an empty store.

    The store must be empty, the admin credential included: reports cut the log where event
    times pass a moment, so every event must be stamped in the order it is recorded, and an
    event recorded first at the real now would sit before three months of simulated past."""
    if services.projector.head() != 0:
        raise ValueError("jindou demo records its months into an empty store only")
    end = (now or datetime.now(utc_timezone.utc)) - LAST_MOMENT_MARGIN
    today = end.astimezone(TIMEZONE).date()
    first_day = _months_back(today, MONTHS - 1)
    timeline = Timeline(_local(first_day, time(8, 0)))
    rng = random.Random(SEED)
    with TestClient(create_app(services), base_url=origin) as client:  # sign-in links name the real server
        with clock.simulated(timeline):
            services.app.bootstrap_admin(admin_token)
            demo = DemoCommunity(client, admin_token, timeline, rng, size)
            _founding(demo)
            calendar = Calendar(end)
            day = first_day
            while day <= today:
                _plan_day(demo, calendar, day, first_day)
                day += timedelta(days=1)
            calendar.run(timeline, progress)
        # Sign-in codes live a day at most: made now, for the people the welcome table names.
        for person in (demo.volunteers[0], demo.elders[0], demo.merchants[0]):
            demo.sign_in_urls[person["id"]] = _sign_in_url(demo, f"/v1/accounts/{person['id']}/sign-in-codes")
        for key in ("director", "worker", "auditor"):
            staff_id = demo.staff[key]["id"]
            demo.sign_in_urls[staff_id] = _sign_in_url(demo, f"/v1/staff/{staff_id}/sign-in-codes")
    return demo


def _founding(demo: DemoCommunity) -> None:
    """The first morning: the community, its staff, its people and shops, the foundation's cheque."""
    rng = demo.rng
    demo.community = demo.post("/v1/communities", demo.admin_token, {"name": "金沙社区"})
    demo.add_staff("secretary", "郑红莺（社区党委书记）", "admin")
    demo.add_staff("director", "王丽（社区主任）", "admin")
    demo.add_staff("worker", "李明（社区工作人员）", "staff")
    demo.add_staff("auditor", "昆明市青少年发展基金会 审计", "auditor")
    demo.volunteers = [demo.account("volunteer", name) for name in _volunteer_names(rng, demo.size.volunteers)]
    # 赵鸿阳 is a community worker and the keenest volunteer: staff linked to his own account,
    # so maker-checker stops him verifying his own reports.
    demo.add_staff("zhao", "赵鸿阳（社区工作人员）", "staff", account_id=demo.volunteers[1]["id"])
    demo.elders = [demo.account("beneficiary", name) for name in _elder_names(rng, demo.size.elders)]
    demo.merchants = [demo.account("merchant", name, merchant_categories=categories)
                      for name, categories in _merchants(demo.size.merchants)]
    _fund_donation(demo, *FOUNDATION, reference="KMQJ-金豆基金-0001")
    for elder in demo.elders[:demo.size.elders_with_cards]:
        demo.cards[elder["id"]] = demo.post(f"/v1/accounts/{elder['id']}/cards", demo.token("worker"),
                                            {"daily_limit": CARD_DAILY_LIMIT})["card_code"]


def _volunteer_names(rng: random.Random, count: int) -> list[str]:
    names = ["丰国兆", "赵鸿阳"]
    while len(names) < count:
        name = rng.choice(FAMILY_NAMES) + rng.choice(GIVEN_NAMES)
        if name not in names:
            names.append(name)
    return names[:count]


def _elder_names(rng: random.Random, count: int) -> list[str]:
    names: list[str] = []
    while len(names) < count:
        name = f"{rng.choice(FAMILY_NAMES)}{rng.choice(ELDER_TITLES)}（{rng.choice(ELDER_PLACES)}）"
        if name not in names:
            names.append(name)
    return names


def _merchants(count: int) -> list[tuple[str, list[str]]]:
    shops = [(f"{place}·{kind}", categories) for place in MERCHANT_PLACES for kind, categories in MERCHANT_KINDS]
    shops.insert(0, ("金沙菜市场·老周蔬菜", ["vegetable"]))
    return shops[:count]


def _fund_donation(demo: DemoCommunity, donor: str, amount_fen: int, *, reference: str) -> None:
    demo.post("/v1/fund/donations", demo.token("worker"), {
        "community_id": demo.community["id"], "donor": donor, "amount_fen": amount_fen,
        "received_on": demo.local_day().isoformat(), "reference": reference,
    })


# --- one day ------------------------------------------------------------------------------


def _plan_day(demo: DemoCommunity, calendar: Calendar, day: date, first_day: date) -> None:
    rng, size = demo.rng, demo.size
    period = day.strftime("%Y-%m")
    if day.day == 1:
        calendar.add(_local(day, time(9, 0)), lambda: _allowances(demo, period))
    if day == first_day.replace(day=WISH_WALL_DAY):
        calendar.add(_local(day, time(15, 0)), lambda: _wish_wall(demo, calendar))
    if day.day == 3 and day > first_day:  # the month before closed two days ago: settle it
        closed = _months_back(day, 1).strftime("%Y-%m")
        calendar.add(_local(day, time(10, 0)), lambda: _settle(demo, calendar, day, closed))
    for index, (donor, amount_fen) in enumerate(MONTHLY_DONORS):
        if day.day == 8 + 7 * index:
            amount = amount_fen + rng.randrange(0, amount_fen // 5, 100)
            calendar.add(_local(day, time(14, 30)), lambda d=donor, a=amount: _fund_donation(
                demo, d, a, reference=f"BANK-{rng.randrange(1000, 9999)}"))
    for _ in range(rng.randint(size.reports_per_day // 2, size.reports_per_day * 3 // 2)):
        calendar.add(_random_moment(rng, day), lambda: _report(demo, calendar))
    for _ in range(rng.randint(size.sales_per_day // 2, size.sales_per_day * 3 // 2)):
        calendar.add(_random_moment(rng, day), lambda: _sale(demo, calendar))
    for _ in range(size.gifts_per_day):
        calendar.add(_random_moment(rng, day), lambda: _gift(demo))


def _allowances(demo: DemoCommunity, period: str) -> None:
    for amount in WELFARE_PER_MONTH:
        group = [e["id"] for index, e in enumerate(demo.elders) if WELFARE_PER_MONTH[index % 3] == amount]
        if not group:
            continue
        issued = demo.post("/v1/welfare/allowances", demo.token("worker"), {
            "community_id": demo.community["id"], "period": period, "amount_per_beneficiary": amount,
            "beneficiary_ids": group,
        })
        for line in issued["issued"]:
            demo.held[line["account_id"]]["welfare"] += line["amount"]


def _report(demo: DemoCommunity, calendar: Calendar) -> None:
    rng = demo.rng
    active = demo.volunteers[: max(2, len(demo.volunteers) * 2 // 3)]  # a third never report
    reporter = rng.choice(active)
    category = rng.choices(list(CATEGORY_WEIGHTS), weights=list(CATEGORY_WEIGHTS.values()))[0]
    report = demo.post("/v1/reports", reporter["token"],
                       {"category": category, "description": rng.choice(REPORTS[category])})
    demo.counts["reports"] += 1
    checked_at = demo.timeline() + timedelta(minutes=rng.randint(20, 240))
    calendar.add(checked_at, lambda: _check_report(demo, calendar, report, reporter, category))


def _check_report(demo: DemoCommunity, calendar: Calendar, report: dict[str, Any], reporter: dict[str, Any],
                  category: str) -> None:
    rng = demo.rng
    # 赵鸿阳 checks reports too, but never his own (maker-checker would refuse it).
    own = reporter["id"] == demo.staff["zhao"]["account_id"]
    checker = demo.token("worker" if own or rng.random() < 0.7 else "zhao")
    if rng.random() < 0.08:
        demo.post(f"/v1/reports/{report['id']}/reject", checker, {"reason": "经核实信息不属实"})
        return
    verified = demo.post(f"/v1/reports/{report['id']}/verify", checker)
    demo.held[reporter["id"]]["bean"] += verified["award"]
    if category in ("fire", "security", "resident_need") and rng.random() < 0.4:
        handlers = rng.sample([v for v in demo.volunteers if v["id"] != reporter["id"]], 2)
        demo.post(f"/v1/reports/{report['id']}/dispatch", checker, {"handler_ids": [h["id"] for h in handlers]})
        awards = {h["id"]: rng.choice((3, 5, 8)) for h in handlers}
        calendar.add(demo.timeline() + timedelta(minutes=rng.randint(40, 180)), lambda: _close(demo, report, awards))


# The wish wall (微心愿), as 金色社区 keeps one: staff write down what residents cannot manage
# alone; volunteers pledge beans; a local shop delivers. Titles stay free of residents' names.
WISHES = [  # (title, story, target beans, the kind of shop that supplies it, share of the target pledged)
    ("为一位独居老人装卫生间扶手", "刘爷爷独居，卫生间起身困难，想装一个扶手。", 60, "五金店", 1.0),
    ("给行动不便的老人买一副新拐杖", "孙爷爷的拐杖断了，想换一副结实的。", 45, "药店", 1.0),
    ("为失独老人订一个月的午餐", "赵奶奶做饭不便，想每天有一顿热乎的午饭。", 240, "小吃店", 0.4),
]
WISH_WALL_DAY = 10  # of the first month: fulfilled wishes are repaid at that month's settlement
PLEDGES = (5, 10, 15)


def _wish_wall(demo: DemoCommunity, calendar: Calendar) -> None:
    for title, story, target, kind, share in WISHES:
        merchant = next((m for m in demo.merchants if m["display_name"].endswith(kind)), demo.merchants[0])
        wish = demo.post("/v1/wishes", demo.token("worker"), {
            "community_id": demo.community["id"], "title": title, "story": story, "target": target,
            "merchant_id": merchant["id"]})
        wanted, moment = round(target * share), demo.timeline()
        while wanted > 0:
            amount = min(wanted, demo.rng.choice(PLEDGES))
            moment += timedelta(hours=demo.rng.randint(2, 20))
            calendar.add(moment, lambda w=wish, a=amount: _pledge(demo, calendar, w, a))
            wanted -= amount


def _pledge(demo: DemoCommunity, calendar: Calendar, wish: dict[str, Any], amount: int) -> None:
    """A volunteer who has the beans pledges; if nobody has them yet, someone will tomorrow. The
    pledge that funds the wish sends the shop to deliver it the next day."""
    pledgers = [v for v in demo.volunteers if demo.held[v["id"]]["bean"] >= amount]
    if not pledgers:
        calendar.add(demo.timeline() + timedelta(days=1), lambda: _pledge(demo, calendar, wish, amount))
        return
    volunteer = demo.rng.choice(pledgers)
    pledged = demo.post(f"/v1/wishes/{wish['id']}/pledges", volunteer["token"], {"amount": amount})
    demo.held[volunteer["id"]]["bean"] -= amount
    if pledged["status"] == "funded":
        calendar.add(demo.timeline() + timedelta(days=1), lambda: demo.post(
            f"/v1/wishes/{wish['id']}/fulfil", demo.token("worker")))


def _close(demo: DemoCommunity, report: dict[str, Any], awards: dict[str, int]) -> None:
    demo.post(f"/v1/reports/{report['id']}/close", demo.token("worker"), {"handler_awards": awards})
    for account_id, award in awards.items():
        demo.held[account_id]["bean"] += award


def _gift(demo: DemoCommunity) -> None:
    rng = demo.rng
    amount = rng.choice((2, 3, 5, 10))
    givers = [v for v in demo.volunteers if demo.held[v["id"]]["bean"] >= amount * 3]
    if not givers:
        return
    giver, elder = rng.choice(givers), rng.choice(demo.elders)
    demo.post("/v1/donations", giver["token"], {"to_account_id": elder["id"], "amount": amount})
    demo.held[giver["id"]]["bean"] -= amount
    demo.held[elder["id"]]["bean"] += amount
    demo.counts["gifts"] += 1


def _sale(demo: DemoCommunity, calendar: Calendar) -> None:
    rng = demo.rng
    amount = rng.choice((3, 5, 6, 8, 10, 12, 15, 20))
    food = [m for m in demo.merchants if FOOD & set(m["merchant_categories"])]
    if rng.random() < 0.5:
        customers = [e for e in demo.elders if sum(demo.held[e["id"]].values()) >= amount]
        merchant = rng.choice(food)
    else:
        customers = [v for v in demo.volunteers if demo.held[v["id"]]["bean"] >= amount]
        merchant = rng.choice(demo.merchants)
    if not customers:
        return
    customer = rng.choice(customers)
    code = demo.cards.get(customer["id"])
    if code is None:
        code = demo.post(f"/v1/accounts/{customer['id']}/payment-codes", customer["token"], keyed=False)["code"]
        demo.timeline.at(demo.timeline() + PAYMENT_DELAY)
    sale = demo.post("/v1/redemptions", merchant["token"], {"payment_code": code, "amount": amount},
                     expect=(201, 409))  # a card past its day's limit is refused, as at a real till
    if "id" not in sale:
        return
    for asset in ("welfare", "bean"):
        demo.held[customer["id"]][asset] -= sale["funded"][asset]
    demo.counts["sales"] += 1
    if rng.random() < 0.02:  # rung up twice, or the wrong amount: the shopkeeper reverses it
        calendar.add(demo.timeline() + timedelta(minutes=rng.randint(1, 10)), lambda: _reverse(demo, merchant, sale))


def _reverse(demo: DemoCommunity, merchant: dict[str, Any], sale: dict[str, Any]) -> None:
    demo.post(f"/v1/redemptions/{sale['id']}/reverse", merchant["token"])
    for asset in ("welfare", "bean"):
        demo.held[sale["customer_id"]][asset] += sale["funded"][asset]
    demo.counts["reversals"] += 1


def _settle(demo: DemoCommunity, calendar: Calendar, day: date, period: str) -> None:
    """Early each month the closed month is settled: proposed, approved by another, paid."""
    proposed = demo.post("/v1/settlements", demo.token("worker"),
                         {"community_id": demo.community["id"], "period": period}, expect=(201, 409))
    if "id" not in proposed:  # nothing was sold that month
        return

    def approve() -> None:
        demo.post(f"/v1/settlements/{proposed['id']}/approve", demo.token("director"))

    def pay() -> None:
        paid = demo.post(f"/v1/settlements/{proposed['id']}/pay", demo.token("secretary"),
                         {"bank_reference": f"金豆基金-转账-{period}"})
        demo.settlements.append(paid)

    calendar.add(_local(day, time(11, 30)), approve)
    calendar.add(_local(day + timedelta(days=1), time(15, 0)), pay)


# --- running it -------------------------------------------------------------------------------


def reset_database(settings: Settings) -> None:
    """Start over: remove the SQLite file, or every table of the PostgreSQL schema."""
    env = persistence_env(settings.database_url)
    if env["PERSISTENCE_MODULE"] == "eventsourcing.sqlite":
        for suffix in ("", "-wal", "-shm", "-journal"):
            Path(env["SQLITE_DBNAME"] + suffix).unlink(missing_ok=True)
    elif env["PERSISTENCE_MODULE"] == "eventsourcing.postgres":
        import psycopg

        with psycopg.connect(dbname=env["POSTGRES_DBNAME"], host=env["POSTGRES_HOST"], port=env["POSTGRES_PORT"],
                             user=env["POSTGRES_USER"], password=env["POSTGRES_PASSWORD"], autocommit=True) as connection:
            schema = env["POSTGRES_SCHEMA"] or str(connection.execute("SELECT current_schema()").fetchone()[0])
            tables = connection.execute("SELECT tablename FROM pg_tables WHERE schemaname = %s", (schema,)).fetchall()
            for (table,) in tables:
                connection.execute(f'DROP TABLE IF EXISTS "{schema}"."{table}" CASCADE')


def run_demo(settings: Settings, host: str, port: int, *, serve_after: bool = True, reset: bool = False,
             size: DemoSize = FULL, out: TextIO = sys.stdout) -> int:
    admin_token = settings.admin_token or secrets.token_urlsafe(18)
    if reset:
        reset_database(settings)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # the demo's own requests are not news
    services = build_services(replace(settings, admin_token=None))  # populate records the admin in its past
    if services.projector.head() > 0:
        services.app.bootstrap_admin(admin_token)
        print("这个数据库已有记录，原样提供服务（jindou demo --reset 可重新生成）。/ This database already has a "
              "history; serving it as it is (jindou demo --reset starts over).", file=out, flush=True)
    else:
        print("正在生成金沙社区三个月的演示数据… / recording three months of 金沙社区…", file=out, flush=True)
        with _progress_bar() as progress:
            demo = populate(services, admin_token, size=size, origin=_origin(host, port), progress=progress)
        print(welcome(demo, _origin(host, port)), file=out, flush=True)
    if not serve_after:
        services.close()
        return 0
    import uvicorn

    print(f"Jindou: {_origin(host, port)}/", file=out, flush=True)
    uvicorn.run(create_app(services), host=host, port=port, log_level="warning", access_log=False)
    services.close()
    return 0


@contextmanager
def _progress_bar() -> Iterator[Callable[[float], None] | None]:
    """A bar on a terminal (the full demo takes minutes); nothing where stderr is a file or a pipe."""
    if not sys.stderr.isatty():
        yield None
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        Progress,
        TaskProgressColumn,
        TextColumn,
        TimeRemainingColumn,
    )

    with Progress(TextColumn("demo"), BarColumn(), TaskProgressColumn(), TimeRemainingColumn(),
                  console=Console(file=sys.stderr), transient=True) as bar:
        task = bar.add_task("demo", total=1.0)
        yield lambda done: bar.update(task, completed=done)


def _origin(host: str, port: int) -> str:
    return os.environ.get("JINDOU_PUBLIC_URL", "").rstrip("/") or f"http://{host}:{port}"


def _sign_in_url(demo: DemoCommunity, path: str) -> str | None:
    """A sign-in link where the deployment offers sign-in codes (v1.1); None where it does not."""
    response = demo.api.post(path, json={}, headers={"Authorization": f"Bearer {demo.admin_token}"})
    return str(response.json().get("url")) if response.status_code == 201 else None


def welcome(demo: DemoCommunity, origin: str) -> str:
    """Who to sign in as and where to click: a short table."""
    volunteer, elder, merchant = demo.volunteers[0], demo.elders[0], demo.merchants[0]
    reports = f"{origin}/v1/public/communities/{demo.community['id']}/fund-reports.html"
    rows = [
        ("管理员 admin (全部社区)", "/docs", demo.admin_token, None),
        (f"社区主任 {demo.staff['director']['display_name']}", "/staff", demo.token("director"),
         demo.sign_in_urls.get(demo.staff["director"]["id"])),
        (f"工作人员 {demo.staff['worker']['display_name']}", "/staff", demo.token("worker"),
         demo.sign_in_urls.get(demo.staff["worker"]["id"])),
        (f"审计 {demo.staff['auditor']['display_name']}", "/staff", demo.token("auditor"),
         demo.sign_in_urls.get(demo.staff["auditor"]["id"])),
        (f"志愿者 {volunteer['display_name']}", "/wallet", volunteer["token"], demo.sign_in_urls.get(volunteer["id"])),
        (f"老人 {elder['display_name']}", "/wallet", elder["token"], demo.sign_in_urls.get(elder["id"])),
        (f"商户 {merchant['display_name']}", "/merchant", merchant["token"], demo.sign_in_urls.get(merchant["id"])),
    ]
    counts = demo.counts
    lines = [
        "",
        f"金沙社区 演示数据已生成 / demo ready: {len(demo.volunteers)} 名志愿者 volunteers, {len(demo.elders)} 位老人 "
        f"elders ({len(demo.cards)} 张卡 cards), {len(demo.merchants)} 家商户 merchants; {counts['reports']} 条上报 "
        f"reports, {counts['sales']} 笔消费 sales ({counts['reversals']} 笔撤销 reversed), {counts['gifts']} 次捐豆 "
        f"gifts, {len(demo.settlements)} 次结算已付 settlements paid.",
        "",
        f"  {_padded('身份 who', WHO_COLUMN_WIDTH)} {_padded('页面 page', len(origin) + 10)} 令牌 token (Bearer …)",
    ]
    for who, page, token, url in rows:
        lines.append(f"  {_padded(who, WHO_COLUMN_WIDTH)} {_padded(origin + page, len(origin) + 10)} {token}")
        if url:
            lines.append(f"  {'':<{WHO_COLUMN_WIDTH}} 扫码/点击登录 sign-in link: {url}")
    lines += [
        "",
        f"  首页 home:               {origin}/",
        f"  基金公示 fund reports:    {reports}",
        f"  微心愿墙 wish wall:       {origin}/v1/public/communities/{demo.community['id']}/wishes.html",
        f"  接口文档 API docs:        {origin}/docs · {origin}/redoc",
        "",
    ]
    return "\n".join(lines)


WHO_COLUMN_WIDTH = 40  # terminal columns


def _padded(text: str, width: int) -> str:
    """`text` padded to `width` terminal columns (a Chinese character takes two)."""
    columns = sum(2 if unicodedata.east_asian_width(character) in "WF" else 1 for character in text)
    return text + " " * max(0, width - columns)

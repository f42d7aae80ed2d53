"""`jindou demo`: a believable month of 金沙社区, recorded through the public API, then served.

Everything goes through the same HTTP contract a real client uses (in-process, no network), so
the demo also proves the contract end to end. People and places follow the 2019 昆明日报 report
on 金沙社区's 金豆 model; the rest is invented but ordinary.
"""

from __future__ import annotations

import random
import secrets
import sys
import warnings
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import uuid4
from zoneinfo import ZoneInfo

with warnings.catch_warnings():  # starlette's note about httpx2 is not for the people running a demo
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

from api.app import create_app
from infra.settings import Settings
from infra.wiring import Services, build_services

SEED = 2019_08_03  # the day 丰国兆 reported the fire at 金夏苑
VOLUNTEERS = 40
SALES = 160

FAMILY_NAMES = "王李张刘陈杨赵黄周吴徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘"
GIVEN_NAMES = ["建华", "秀英", "国庆", "丽萍", "志强", "桂兰", "海燕", "文斌", "春梅", "德明", "晓东", "玉兰",
               "红梅", "永刚", "淑珍", "立新", "云飞", "小燕", "家福", "金凤"]
ELDERS = ["李奶奶（金夏苑）", "王爷爷（金沙小区8幢）", "张奶奶（金沙小区3幢）", "刘爷爷（独居）", "陈奶奶（金夏苑）",
          "杨爷爷（金沙路）", "赵奶奶（失独）", "周爷爷（金沙小区11幢）", "吴奶奶", "孙爷爷（残疾）"]
MERCHANTS = [
    ("金沙菜市场·老周蔬菜", ["vegetable"]), ("金沙菜市场·鲜果园", ["fruit"]), ("便民超市（金沙店）", ["grocery"]),
    ("金豆小吃店", ["meal"]), ("老昆明米线馆", ["meal"]), ("金夏苑早点铺", ["meal", "grocery"]),
    ("惠民粮油店", ["grocery"]), ("金沙水果批发", ["fruit", "vegetable"]), ("阳光理发店", ["barber"]),
    ("金沙五金店", ["hardware"]), ("社区药店", ["pharmacy"]), ("金沙洗衣房", ["laundry"]),
]
REPORTS = {
    "fire": ["金夏苑14幢二单元301号阳台着火", "金沙小区垃圾桶冒烟，已用灭火器扑灭", "楼道电动车充电起火隐患"],
    "security": ["金沙路口有人撬电动车锁", "小区后门监控被人为遮挡", "夜间有陌生人在单元门口徘徊"],
    "dispute": ["8幢两户因漏水发生争执", "菜市场摊位占道纠纷", "停车位纠纷，双方情绪激动"],
    "sanitation": ["3幢楼下垃圾堆积三天未清运", "金沙路井盖缺失", "绿化带内有建筑垃圾"],
    "resident_need": ["独居老人家中水管爆裂需维修", "残疾居民需要代购药品", "老人走失，家属求助寻找"],
}


@dataclass
class DemoCommunity:
    api: TestClient
    admin_token: str
    community: dict[str, Any] = field(default_factory=dict)
    people: dict[str, dict[str, Any]] = field(default_factory=dict)
    volunteers: list[dict[str, Any]] = field(default_factory=list)
    elders: list[dict[str, Any]] = field(default_factory=list)
    merchants: list[dict[str, Any]] = field(default_factory=list)
    cards: dict[str, str] = field(default_factory=dict)

    def post(self, path: str, token: str, body: dict[str, Any] | None = None, *, keyed: bool = True,
             expect: tuple[int, ...] = (200, 201)) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {token}"}
        if keyed:
            headers["Idempotency-Key"] = f"demo-{uuid4()}"
        response = self.api.post(path, json=body or {}, headers=headers)
        if response.status_code not in expect:
            raise RuntimeError(f"demo step {path} failed: {response.status_code} {response.text}")
        return response.json()

    def staff(self, name: str, role: str, **extra: Any) -> dict[str, Any]:
        body = {"community_id": self.community["id"], "display_name": name, "role": role, **extra}
        person = self.post("/v1/staff", self.admin_token, body)
        self.people[name] = person
        return person

    def account(self, kind: str, name: str, **extra: Any) -> dict[str, Any]:
        body = {"community_id": self.community["id"], "kind": kind, "display_name": name, **extra}
        account = self.post("/v1/accounts", self.admin_token, body)
        self.people[name] = account
        return account


def _volunteer_names(rng: random.Random) -> list[str]:
    names = ["丰国兆", "赵鸿阳"]
    while len(names) < VOLUNTEERS:
        name = rng.choice(FAMILY_NAMES) + rng.choice(GIVEN_NAMES)
        if name not in names:
            names.append(name)
    return names


def populate(services: Services, admin_token: str) -> DemoCommunity:
    rng = random.Random(SEED)
    with TestClient(create_app(services)) as client:
        demo = DemoCommunity(client, admin_token)
        demo.community = demo.post("/v1/communities", admin_token, {"name": "金沙社区"})
        secretary = demo.staff("郑红莺（社区党委书记）", "admin")
        director = demo.staff("王丽（社区主任）", "admin")
        worker = demo.staff("李明（社区工作人员）", "staff")
        demo.staff("昆明市青少年发展基金会 审计", "auditor")
        demo.volunteers = [demo.account("volunteer", name) for name in _volunteer_names(rng)]
        # 赵鸿阳 is a community worker and the keenest volunteer: staff linked to his own account,
        # so maker-checker stops him verifying his own reports.
        demo.staff("赵鸿阳（社区工作人员）", "staff", account_id=demo.volunteers[1]["id"])
        demo.elders = [demo.account("beneficiary", name) for name in ELDERS]
        demo.merchants = [demo.account("merchant", name, merchant_categories=cats) for name, cats in MERCHANTS]

        _reports(demo, rng, worker["token"])
        _donations(demo, rng)
        cid = demo.community["id"]
        period = _today(demo)[:7]
        demo.post("/v1/welfare/allowances", worker["token"],
                  {"community_id": cid, "period": period, "amount_per_beneficiary": 150})
        for donor, amount_fen, reference in (
            ("昆明市青少年发展基金会（金豆基金专户）", 3_000_000, "KMQJ-2019-0801"),
            ("金沙物业服务有限公司", 500_000, "BANK-7731"), ("辖区商户联合捐赠", 128_800, "CASH-0815"),
        ):
            demo.post("/v1/fund/donations", worker["token"], {
                "community_id": cid, "donor": donor, "amount_fen": amount_fen,
                "received_on": _today(demo), "reference": reference,
            })
        for elder in demo.elders[:4]:
            demo.cards[elder["id"]] = demo.post(f"/v1/accounts/{elder['id']}/cards", worker["token"], {"daily_limit": 60})["card_code"]
        _wishes(demo, rng, worker["token"])
        sales = _sales(demo, rng)
        for sale in rng.sample(sales, 2):
            demo.post(f"/v1/redemptions/{sale['id']}/reverse", _merchant_token(demo, sale["merchant_id"]))
        settlement = demo.post("/v1/settlements", worker["token"], {"community_id": cid, "period": period})
        demo.post(f"/v1/settlements/{settlement['id']}/approve", director["token"])
        demo.post(f"/v1/settlements/{settlement['id']}/pay", secretary["token"], {"bank_reference": "金豆基金-转账-0001"})
        _sales(demo, rng, count=SALES // 4)  # the month goes on after the settlement
    return demo


def _today(demo: DemoCommunity) -> str:
    """Today in the community's time zone, YYYY-MM-DD (its first 7 characters are the period)."""
    return datetime.now(ZoneInfo(demo.community["timezone"])).date().isoformat()


def _reports(demo: DemoCommunity, rng: random.Random, staff_token: str) -> None:
    for _ in range(120):
        reporter = rng.choice(demo.volunteers[:25])
        category = rng.choice(list(REPORTS))
        report = demo.post("/v1/reports", reporter["token"],
                           {"category": category, "description": rng.choice(REPORTS[category])})
        roll = rng.random()
        if roll < 0.08:
            demo.post(f"/v1/reports/{report['id']}/reject", staff_token, {"reason": "经核实信息不属实"})
            continue
        demo.post(f"/v1/reports/{report['id']}/verify", staff_token)
        if category in ("fire", "security") and roll < 0.5:
            handlers = rng.sample([v for v in demo.volunteers if v["id"] != reporter["id"]], 2)
            demo.post(f"/v1/reports/{report['id']}/dispatch", staff_token, {"handler_ids": [h["id"] for h in handlers]})
            demo.post(f"/v1/reports/{report['id']}/close", staff_token,
                      {"handler_awards": {h["id"]: rng.choice((3, 5, 8)) for h in handlers}})


def _donations(demo: DemoCommunity, rng: random.Random) -> None:
    for volunteer in rng.sample(demo.volunteers[:25], 12):
        elder = rng.choice(demo.elders)
        demo.post("/v1/donations", volunteer["token"], {"to_account_id": elder["id"], "amount": rng.choice((2, 3, 5))},
                  expect=(201, 409))


# The wish wall (微心愿), as 金色社区 keeps one: staff write down what residents cannot manage
# alone; volunteers pledge beans; a local shop delivers. Titles stay free of residents' names.
WISHES = [  # (title, story, target beans, supplying merchant, share of the target pledged)
    ("为一位独居老人装卫生间扶手", "刘爷爷独居，卫生间起身困难，想装一个扶手。", 60, "金沙五金店", 1.0),
    ("给行动不便的老人买一副新拐杖", "孙爷爷的拐杖断了，想换一副结实的。", 45, "社区药店", 1.0),
    ("为失独老人订一个月的午餐", "赵奶奶做饭不便，想每天有一顿热乎的午饭。", 240, "金豆小吃店", 0.4),
]


def _wishes(demo: DemoCommunity, rng: random.Random, staff_token: str) -> None:
    merchants = {m["display_name"]: m for m in demo.merchants}
    for title, story, target, merchant, share in WISHES:
        wish = demo.post("/v1/wishes", staff_token, {"community_id": demo.community["id"], "title": title,
                                                     "story": story, "target": target,
                                                     "merchant_id": merchants[merchant]["id"]})
        wanted = round(target * share)
        for volunteer in rng.sample(demo.volunteers[:25], 25):
            if wanted == 0:
                break
            amount = min(wanted, rng.choice((5, 10, 15)))
            pledged = demo.post(f"/v1/wishes/{wish['id']}/pledges", volunteer["token"], {"amount": amount},
                                expect=(201, 409))
            wanted -= amount if "status" in pledged else 0
        if share == 1.0:
            demo.post(f"/v1/wishes/{wish['id']}/fulfil", staff_token)


def _merchant_token(demo: DemoCommunity, merchant_id: str) -> str:
    return next(m["token"] for m in demo.merchants if m["id"] == merchant_id)


def _sales(demo: DemoCommunity, rng: random.Random, count: int = SALES) -> list[dict[str, Any]]:
    food = [m for m in demo.merchants if set(m["merchant_categories"]) & {"grocery", "vegetable", "fruit", "meal"}]
    done: list[dict[str, Any]] = []
    for _ in range(count):
        if rng.random() < 0.45:
            customer, merchant = rng.choice(demo.elders), rng.choice(food)
        else:
            customer, merchant = rng.choice(demo.volunteers[:25]), rng.choice(demo.merchants)
        code = demo.cards.get(customer["id"]) or demo.post(
            f"/v1/accounts/{customer['id']}/payment-codes", customer["token"], keyed=False)["code"]
        sale = demo.post("/v1/redemptions", merchant["token"], {"payment_code": code, "amount": rng.choice((3, 5, 8, 12, 15))},
                         expect=(201, 409))
        if "id" in sale:
            done.append(sale)
    return done


def run_demo(settings: Settings, host: str, port: int, *, serve_after: bool = True) -> int:
    admin_token = settings.admin_token or secrets.token_urlsafe(18)
    settings = Settings(database_url=settings.database_url, admin_token=admin_token,
                        server_threads=settings.server_threads)
    services = build_services(settings)
    if services.projector.head() > 2:  # more than the bootstrap admin: not a fresh database
        print("This database already has a history; serving it as it is (jindou demo fills only a fresh one).")
    else:
        demo = populate(services, admin_token)
        _print_welcome(demo, host, port)
    if not serve_after:
        services.close()
        return 0
    import uvicorn

    uvicorn.run(create_app(services), host=host, port=port, log_level="info", access_log=False)
    services.close()
    return 0


def _print_welcome(demo: DemoCommunity, host: str, port: int) -> None:
    base = f"http://{host}:{port}"
    volunteer, elder, merchant = demo.volunteers[0], demo.elders[0], demo.merchants[0]
    lines = [
        "金沙社区 演示数据已生成 / demo community ready",
        f"  管理员 admin token:   {demo.admin_token}",
        f"  商户 {merchant['display_name']}: {base}/merchant  账户 {merchant['id']}  令牌 {merchant['token']}",
        f"  金豆哥 {volunteer['display_name']}: {base}/wallet  账户 {volunteer['id']}  令牌 {volunteer['token']}",
        f"  老人 {elder['display_name']}: {base}/wallet  账户 {elder['id']}  令牌 {elder['token']}",
        f"  公开基金报告 public fund report: {base}/v1/public/communities/{demo.community['id']}/fund-reports/"
        f"{_today(demo)[:7]}.html",
        f"  微心愿墙 wish wall: {base}/v1/public/communities/{demo.community['id']}/wishes.html",
        f"  API docs: {base}/docs",
    ]
    print("\n".join(lines), file=sys.stdout, flush=True)


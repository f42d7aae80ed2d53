"""Every handler refuses, by itself, whoever its route refuses: a route's `roles=` guards only
HTTP, and a command reaches the bus other ways too (`app.execute` from the CLI, the demo, the
bench, a test). The refusal is the route's error class, `forbidden` (403), never a 404."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from uuid import UUID

import pytest

from api.errors import STATUS_BY_CODE
from domain.bus import Actor, Command
from domain.credentialing import STRANGER
from domain.donating import Donate
from domain.earning import SubmitReport
from domain.errors import Forbidden
from domain.month import (
    ApproveSettlement,
    PaySettlement,
    ProposeSettlement,
    RecordFundDonation,
    RejectSettlement,
)
from domain.paying import IssueAllowances, IssueCard, IssuePaymentCode, Redeem
from domain.people import (
    CONSOLE,
    OpenAccount,
    RegisterCommunity,
    RegisterStaff,
    SetFrozen,
)
from domain.wishing import CancelWish, CreateWish, FulfilWish, PledgeToWish
from infra.wiring import Services
from tests.support import new_app_community, new_key
from tests.test_month_app import donate, propose, redeem, this_period
from tests.test_wishes_app import new_wish, pledge


class World:
    """A community with one of each kind of person, and whatever a command needs made first."""

    def __init__(self, services: Services) -> None:
        self.community = community = new_app_community(services)
        self.volunteer, self.beneficiary = community.open("volunteer"), community.open("beneficiary")
        self.merchant = community.open("merchant", merchant_categories=["meal"])
        community.earn(self.volunteer, 50)
        own = community.open("volunteer", "既是志愿者又是网格员")
        community.earn(own, 50)
        self.people = {
            "volunteer": self.volunteer,
            "auditor": community.register_staff("auditor"),  # no volunteer account of its own
            "staff": community.register_staff("staff"),  # not the one who proposes settlements here
            "staff with its own volunteer account": community.register_staff("staff", account_id=own.account_id),
            "admin": community.admin,
            "stranger": STRANGER,
            "console": CONSOLE,
        }

    def sale(self) -> UUID:
        return UUID(redeem(self.community, self.volunteer, self.merchant, 5)["id"])

    def settlement(self, *, approved: bool) -> UUID:
        self.sale()
        settlement_id = UUID(propose(self.community, self.community.staff)["id"])
        if approved:
            donate(self.community, 1_000)
            self.community.app.execute(ApproveSettlement(settlement_id=settlement_id), self.community.admin)
        return settlement_id

    def wish(self, *, funded: bool) -> UUID:
        wish_id = new_wish(self.community, 10, merchant_id=self.merchant.account_id)
        pledge(self.community, self.volunteer, wish_id, 10 if funded else 1)
        return wish_id


@dataclass(frozen=True)
class Case:
    outsiders: tuple[str, ...]  # people the route refuses
    command: Callable[[World, Actor], Command]


WRONG_FOR_STAFF_WORK = ("volunteer", "auditor")
WRONG_FOR_ADMIN_WORK = ("staff", "auditor")
WRONG_FOR_HOLDERS = ("staff with its own volunteer account", "auditor")

CASES = {
    "OpenAccount": Case(WRONG_FOR_STAFF_WORK, lambda w, _: OpenAccount(
        community_id=w.community.id, kind="volunteer", display_name="越权开户")),
    "SetFrozen": Case(WRONG_FOR_STAFF_WORK, lambda w, _: SetFrozen(account_id=w.beneficiary.account_id, frozen=True)),
    "IssueAllowances": Case(WRONG_FOR_STAFF_WORK, lambda w, _: IssueAllowances(
        community_id=w.community.id, period=this_period(), amount_per_beneficiary=100,
        beneficiary_ids=(w.beneficiary.account_id,))),
    "IssueCard": Case(WRONG_FOR_STAFF_WORK, lambda w, _: IssueCard(account_id=w.beneficiary.account_id, daily_limit=50)),
    "CreateWish": Case(WRONG_FOR_STAFF_WORK, lambda w, _: CreateWish(
        community_id=w.community.id, title="越权心愿", story="不该有的心愿", target=10)),
    "FulfilWish": Case(WRONG_FOR_STAFF_WORK, lambda w, _: FulfilWish(wish_id=w.wish(funded=True))),
    "CancelWish": Case(WRONG_FOR_STAFF_WORK, lambda w, _: CancelWish(wish_id=w.wish(funded=False))),
    "RecordFundDonation": Case(WRONG_FOR_STAFF_WORK, lambda w, _: RecordFundDonation(
        community_id=w.community.id, donor="越权", amount_fen=100, received_on=w.community.app.now().date().isoformat())),
    "ProposeSettlement": Case(WRONG_FOR_STAFF_WORK, lambda w, _: ProposeSettlement(
        community_id=w.community.id, period=this_period(), candidate_ids=(w.sale(),))),
    "PaySettlement": Case(WRONG_FOR_STAFF_WORK, lambda w, _: PaySettlement(
        settlement_id=w.settlement(approved=True), bank_reference="越权转账")),
    "RegisterStaff": Case(WRONG_FOR_ADMIN_WORK, lambda w, _: RegisterStaff(
        community_id=w.community.id, display_name="越权管理员", role="admin")),
    "ApproveSettlement": Case(WRONG_FOR_ADMIN_WORK, lambda w, _: ApproveSettlement(
        settlement_id=w.settlement(approved=False))),
    "RejectSettlement": Case(WRONG_FOR_ADMIN_WORK, lambda w, _: RejectSettlement(
        settlement_id=w.settlement(approved=False), reason="越权撤回")),
    "RegisterCommunity": Case(("stranger", "console"), lambda w, _: RegisterCommunity(name="越权社区")),
    "SubmitReport": Case(WRONG_FOR_HOLDERS, lambda w, _: SubmitReport(category="fire", description="越权上报")),
    "Donate": Case(WRONG_FOR_HOLDERS, lambda w, _: Donate(to_account_id=w.beneficiary.account_id, amount=1)),
    "PledgeToWish": Case(WRONG_FOR_HOLDERS, lambda w, _: PledgeToWish(wish_id=w.wish(funded=False), amount=1)),
    "IssuePaymentCode": Case(("staff with its own volunteer account",),
                             lambda w, outsider: IssuePaymentCode(account_id=outsider.account_id)),  # its own account
    "Redeem": Case(("auditor", "admin"), lambda w, _: Redeem(
        payment_code=w.community.app.execute(IssuePaymentCode(account_id=w.volunteer.account_id), w.volunteer)
        .result["code"], amount=1, sale_key=new_key())),
}


@pytest.mark.backends("memory")
@pytest.mark.parametrize(("name", "outsider"), [(name, outsider) for name, case in CASES.items() for outsider in case.outsiders])
def test_a_handler_refuses_whoever_its_route_refuses(services: Services, name: str, outsider: str) -> None:
    world = World(services)
    actor = world.people[outsider]
    command = CASES[name].command(world, actor)
    head = services.projector.head()
    with pytest.raises(Forbidden) as refused:
        world.community.app.execute(command, actor)
    assert STATUS_BY_CODE[refused.value.code] == 403
    assert services.projector.head() == head, "a refused command records nothing"

"""Commands of the wish wall: staff post a resident's wish, volunteers pledge beans to it, staff
fulfil it through a merchant (a sale the month's settlement repays) or cancel it (refunds).
Each command is a frozen dataclass; its handler `f(command, actor, uow)` decides."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID, uuid4

from domain.accounts import Account, AccountKind, own_account, post_transaction
from domain.bus import (
    Actor,
    Command,
    Handlers,
    Result,
    UnitOfWork,
    check_role,
    check_scope,
)
from domain.community import ACTING_STAFF, Community, check_text
from domain.errors import ValidationFailed
from domain.money import Asset, check_positive_amount, encode_postings, transfer
from domain.redemptions import WISH_METHOD, Redemption
from domain.wishes import STORY_LENGTH_MAX, TARGET_BEANS_MAX, TITLE_LENGTH_MAX, Wish


@dataclass(frozen=True)
class CreateWish(Command):
    """Post a wish; the beneficiary and the supplying merchant, when named, are of the community."""

    community_id: UUID | None
    title: str
    story: str
    target: int
    beneficiary_id: UUID | None = None
    merchant_id: UUID | None = None


def create_wish(command: CreateWish, actor: Actor, uow: UnitOfWork) -> Result:
    check_role(actor, ACTING_STAFF, "only staff and admins post wishes")
    community = uow.get(Community, command.community_id, "community")
    check_scope(actor, community.id)
    wish = Wish(
        community_id=community.id, title=check_text(command.title, "title", TITLE_LENGTH_MAX),
        story=check_text(command.story, "story", STORY_LENGTH_MAX, multiline=True),
        beneficiary_id=None if command.beneficiary_id is None else _member(
            uow, community.id, command.beneficiary_id, AccountKind.BENEFICIARY, "beneficiary_id"),
        merchant_id=None if command.merchant_id is None else _member(
            uow, community.id, command.merchant_id, AccountKind.MERCHANT, "merchant_id"),
        target=check_positive_amount(command.target, maximum=TARGET_BEANS_MAX, field="target"),
        created_by=actor.label,
    )
    uow.add(wish)
    return wish_view(wish)


@dataclass(frozen=True)
class PledgeToWish(Command):
    """Beans leave the volunteer into the wish's escrow at once. The wish's version guards its
    total and the volunteer's guards the balance, both in one save."""

    wish_id: UUID | None
    amount: int


def pledge_to_wish(command: PledgeToWish, actor: Actor, uow: UnitOfWork) -> Result:
    volunteer = own_account(uow, actor, AccountKind.VOLUNTEER, "only volunteers pledge beans to wishes")
    amount = check_positive_amount(command.amount)
    wish = wish_in_scope(uow, actor, command.wish_id)
    wish.check_pledgeable(amount)
    volunteer.check_can_spend({Asset.BEAN: amount})
    transaction_id = str(uuid4())
    postings = wish.pledge(volunteer.id, amount, transaction_id)
    post_transaction(transaction_id, postings, [volunteer])
    return {
        "wish_id": str(wish.id), "volunteer_id": str(volunteer.id), "amount": amount,
        "pledged": wish.pledged, "target": wish.target, "status": wish.status,
        "transaction_id": transaction_id,
    }


@dataclass(frozen=True)
class FulfilWish(Command):
    """The merchant that supplied the wish (`merchant_id`, else the one chosen at creation) is
    paid from its escrow by a sale of method `wish`: the month's settlement repays it with the
    rebate, exactly as any other sale."""

    wish_id: UUID | None
    merchant_id: UUID | None = None


def fulfil_wish(command: FulfilWish, actor: Actor, uow: UnitOfWork) -> Result:
    check_role(actor, ACTING_STAFF, "only staff and admins fulfil wishes")
    wish = wish_in_scope(uow, actor, command.wish_id)
    wish.check_fulfillable()
    supplier = command.merchant_id or wish.merchant_id
    if supplier is None:
        raise ValidationFailed("name the merchant that supplied this wish", field="merchant_id")
    merchant = _member(uow, wish.community_id, supplier, AccountKind.MERCHANT, "merchant_id")
    transaction_id = str(uuid4())
    postings = transfer(Asset.BEAN, wish.escrow, str(merchant), wish.pledged)
    sale = Redemption(
        id=Redemption.id_for_wish(wish.id), community_id=wish.community_id, merchant_id=merchant,
        customer_id=wish.id, amount=wish.pledged, funded={Asset.WELFARE.value: 0, Asset.BEAN.value: wish.pledged},
        method=WISH_METHOD, transaction_id=transaction_id, postings=encode_postings(postings),
    )
    wish.fulfil(merchant_id=merchant, redemption_id=sale.id, fulfilled_by=actor.label)
    uow.add(sale)
    return wish_view(wish)


@dataclass(frozen=True)
class CancelWish(Command):
    """Every pledge goes back to its pledger, in one transaction."""

    wish_id: UUID | None


def cancel_wish(command: CancelWish, actor: Actor, uow: UnitOfWork) -> Result:
    check_role(actor, ACTING_STAFF, "only staff and admins cancel wishes")
    wish = wish_in_scope(uow, actor, command.wish_id)
    wish.check_cancellable()
    pledgers = [uow.get(Account, UUID(volunteer_id), "account") for volunteer_id in sorted(wish.pledges)]
    transaction_id = str(uuid4())
    postings = wish.cancel(cancelled_by=actor.label, transaction_id=transaction_id)
    if postings:
        post_transaction(transaction_id, postings, pledgers)
    return wish_view(wish)


def wish_in_scope(uow: UnitOfWork, actor: Actor, wish_id: UUID | None) -> Wish:
    """The wish, if `actor` acts in its community."""
    wish = uow.get(Wish, wish_id, "wish")
    check_scope(actor, wish.community_id)
    return wish


def wish_view(wish: Wish) -> dict[str, Any]:
    return {
        "id": str(wish.id), "community_id": str(wish.community_id), "title": wish.title, "story": wish.story,
        "beneficiary_id": str(wish.beneficiary_id) if wish.beneficiary_id else None,
        "merchant_id": str(wish.merchant_id) if wish.merchant_id else None,
        "target": wish.target, "pledged": wish.pledged, "pledgers": len(wish.pledges), "status": wish.status,
        "redemption_id": str(wish.redemption_id) if wish.redemption_id else None,
    }


def _member(uow: UnitOfWork, community_id: UUID, account_id: UUID, kind: AccountKind, field: str) -> UUID:
    account = uow.find(Account, account_id)
    if account is None or account.community_id != community_id or account.kind != kind.value:
        raise ValidationFailed(f"{field} must be a {kind.value} of this community", field=field)
    return account.id


HANDLERS: Handlers = {
    CreateWish: create_wish,
    PledgeToWish: pledge_to_wish,
    FulfilWish: fulfil_wish,
    CancelWish: cancel_wish,
}

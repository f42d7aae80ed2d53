"""Beans given by volunteers to elderly and special-care residents."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID, uuid4

from domain.accounts import Account, AccountKind, own_account, post_transaction
from domain.bus import Actor, Command, Handlers, Result, UnitOfWork
from domain.donations import Donation
from domain.errors import ValidationFailed
from domain.money import Asset, check_positive_amount, encode_postings, transfer


@dataclass(frozen=True)
class Donate(Command):
    """A volunteer gives `amount` beans to a beneficiary of their community."""

    to_account_id: UUID | None
    amount: int


def donate(command: Donate, actor: Actor, uow: UnitOfWork) -> Result:
    donor = own_account(uow, actor, AccountKind.VOLUNTEER, "only volunteers donate beans")
    amount = check_positive_amount(command.amount)
    recipient = uow.get(Account, command.to_account_id, "account")
    if recipient.kind != AccountKind.BENEFICIARY.value or recipient.community_id != donor.community_id:
        raise ValidationFailed("beans can be donated only to a beneficiary of your community", field="to_account_id")
    donor.check_can_spend({Asset.BEAN: amount})
    transaction_id = str(uuid4())
    postings = transfer(Asset.BEAN, str(donor.id), str(recipient.id), amount)
    donation = Donation(
        community_id=donor.community_id, from_account_id=donor.id, to_account_id=recipient.id, amount=amount,
        transaction_id=transaction_id, postings=encode_postings(postings),
    )
    post_transaction(transaction_id, postings, [donor, recipient])
    uow.add(donation)
    return {
        "id": str(donation.id), "from_account_id": str(donor.id), "to_account_id": str(recipient.id),
        "amount": amount, "transaction_id": transaction_id,
    }


HANDLERS: Handlers = {Donate: donate}

"""Beans given by volunteers to elderly and special-care residents."""

from __future__ import annotations

from uuid import UUID, uuid4

from domain.accounts import Account, AccountKind
from domain.base import Actor, Decision, IdempotencyKey, JindouBase, Outcome
from domain.donations import Donation
from domain.errors import Forbidden, ValidationFailed
from domain.money import Asset, check_positive_amount, encode_postings, transfer


class DonationCommands(JindouBase):
    def donate(
        self, actor: Actor, *, to_account_id: UUID | None, amount: int, idempotency: IdempotencyKey | None = None
    ) -> Outcome:
        def decide() -> Decision:
            check_positive_amount(amount)
            donor = self._get(Account, actor.account_id, "account")
            if donor.kind != AccountKind.VOLUNTEER.value:
                raise Forbidden("only volunteers donate beans")
            recipient = self._get(Account, to_account_id, "account")
            if recipient.kind != AccountKind.BENEFICIARY.value or recipient.community_id != donor.community_id:
                raise ValidationFailed("beans can be donated only to a beneficiary of your community", field="to_account_id")
            donor.check_can_spend({Asset.BEAN: amount})
            transaction_id = str(uuid4())
            postings = transfer(Asset.BEAN, str(donor.id), str(recipient.id), amount)
            donation = Donation(
                community_id=donor.community_id, from_account_id=donor.id, to_account_id=recipient.id, amount=amount,
                transaction_id=transaction_id, postings=encode_postings(postings),
            )
            self._post(transaction_id, postings, [donor, recipient])
            result = {
                "id": str(donation.id), "from_account_id": str(donor.id), "to_account_id": str(recipient.id),
                "amount": amount, "transaction_id": transaction_id,
            }
            return result, [donation, donor, recipient]

        return self._execute(decide, idempotency)

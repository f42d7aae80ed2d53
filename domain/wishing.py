"""Commands of the wish wall: staff post a resident's wish, volunteers pledge beans to it, staff
fulfil it through a merchant (a sale the month's settlement repays) or cancel it (refunds)."""

from __future__ import annotations

from typing import Any
from uuid import UUID, uuid4

from domain.accounts import Account, AccountKind
from domain.base import Actor, Decision, IdempotencyKey, JindouBase, Outcome
from domain.community import check_text
from domain.errors import Forbidden, ValidationFailed
from domain.money import Asset, check_positive_amount, encode_postings, transfer
from domain.month import community_for
from domain.redemptions import WISH_METHOD, Redemption
from domain.wishes import STORY_LENGTH_MAX, TARGET_BEANS_MAX, TITLE_LENGTH_MAX, Wish


class WishCommands(JindouBase):
    def create_wish(
        self, actor: Actor, *, community_id: UUID | None, title: str, story: str, target: int,
        beneficiary_id: UUID | None = None, merchant_id: UUID | None = None,
        idempotency: IdempotencyKey | None = None,
    ) -> Outcome:
        def decide() -> Decision:
            community = community_for(self._uow(), actor, community_id).id
            wish = Wish(
                community_id=community, title=check_text(title, "title", TITLE_LENGTH_MAX),
                story=check_text(story, "story", STORY_LENGTH_MAX, multiline=True),
                beneficiary_id=None if beneficiary_id is None else self._member(community, beneficiary_id,
                                                                                 AccountKind.BENEFICIARY, "beneficiary_id"),
                merchant_id=None if merchant_id is None else self._member(community, merchant_id,
                                                                          AccountKind.MERCHANT, "merchant_id"),
                target=check_positive_amount(target, maximum=TARGET_BEANS_MAX, field="target"),
                created_by=actor.label,
            )
            return self.wish_view(wish), [wish]

        return self._execute(decide, idempotency)

    def pledge_to_wish(
        self, actor: Actor, wish_id: UUID | None, *, amount: int, idempotency: IdempotencyKey | None = None
    ) -> Outcome:
        """Beans leave the volunteer into the wish's escrow at once. The wish's version guards
        its total and the volunteer's guards the balance, both in one save."""

        def decide() -> Decision:
            check_positive_amount(amount)
            volunteer = self.get_account(actor.account_id)
            if volunteer.kind != AccountKind.VOLUNTEER.value:
                raise Forbidden("only volunteers pledge beans to wishes")
            wish = self._wish_in_scope(actor, wish_id)
            wish.check_pledgeable(amount)
            volunteer.check_can_spend({Asset.BEAN: amount})
            transaction_id = str(uuid4())
            postings = wish.pledge(volunteer.id, amount, transaction_id)
            self._post(transaction_id, postings, [volunteer])
            result = {
                "wish_id": str(wish.id), "volunteer_id": str(volunteer.id), "amount": amount,
                "pledged": wish.pledged, "target": wish.target, "status": wish.status,
                "transaction_id": transaction_id,
            }
            return result, [wish, volunteer]

        return self._execute(decide, idempotency)

    def fulfil_wish(
        self, actor: Actor, wish_id: UUID | None, *, merchant_id: UUID | None = None,
        idempotency: IdempotencyKey | None = None,
    ) -> Outcome:
        """The merchant that supplied the wish is paid from its escrow by a sale of method `wish`:
        the month's settlement repays it with the rebate, exactly as any other sale."""

        def decide() -> Decision:
            wish = self._wish_in_scope(actor, wish_id)
            wish.check_fulfillable()
            supplier = merchant_id or wish.merchant_id
            if supplier is None:
                raise ValidationFailed("name the merchant that supplied this wish", field="merchant_id")
            merchant = self._member(wish.community_id, supplier, AccountKind.MERCHANT, "merchant_id")
            transaction_id = str(uuid4())
            postings = transfer(Asset.BEAN, wish.escrow, str(merchant), wish.pledged)
            sale = Redemption(
                id=Redemption.id_for_wish(wish.id), community_id=wish.community_id, merchant_id=merchant,
                customer_id=wish.id, amount=wish.pledged, funded={Asset.WELFARE.value: 0, Asset.BEAN.value: wish.pledged},
                method=WISH_METHOD, transaction_id=transaction_id, postings=encode_postings(postings),
            )
            wish.fulfil(merchant_id=merchant, redemption_id=sale.id, fulfilled_by=actor.label)
            return self.wish_view(wish), [wish, sale]

        return self._execute(decide, idempotency)

    def cancel_wish(self, actor: Actor, wish_id: UUID | None, *, idempotency: IdempotencyKey | None = None) -> Outcome:
        """Every pledge goes back to its pledger, in one transaction."""

        def decide() -> Decision:
            wish = self._wish_in_scope(actor, wish_id)
            wish.check_cancellable()
            pledgers = [self.get_account(UUID(volunteer_id)) for volunteer_id in sorted(wish.pledges)]
            transaction_id = str(uuid4())
            postings = wish.cancel(cancelled_by=actor.label, transaction_id=transaction_id)
            if postings:
                self._post(transaction_id, postings, pledgers)
            return self.wish_view(wish), [wish, *pledgers]

        return self._execute(decide, idempotency)

    def get_wish(self, actor: Actor, wish_id: UUID | None) -> Wish:
        return self._wish_in_scope(actor, wish_id)

    @staticmethod
    def wish_view(wish: Wish) -> dict[str, Any]:
        return {
            "id": str(wish.id), "community_id": str(wish.community_id), "title": wish.title, "story": wish.story,
            "beneficiary_id": str(wish.beneficiary_id) if wish.beneficiary_id else None,
            "merchant_id": str(wish.merchant_id) if wish.merchant_id else None,
            "target": wish.target, "pledged": wish.pledged, "pledgers": len(wish.pledges), "status": wish.status,
            "redemption_id": str(wish.redemption_id) if wish.redemption_id else None,
        }

    # --- helpers ------------------------------------------------------------------------------

    def _wish_in_scope(self, actor: Actor, wish_id: UUID | None) -> Wish:
        wish = self._get(Wish, wish_id, "wish")
        self._check_scope(actor, wish.community_id)
        return wish

    def _member(self, community_id: UUID, account_id: UUID, kind: AccountKind, field: str) -> UUID:
        account = self._find(Account, account_id)
        if account is None or account.community_id != community_id or account.kind != kind.value:
            raise ValidationFailed(f"{field} must be a {kind.value} of this community", field=field)
        return account.id

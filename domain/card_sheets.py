"""Printable card sheets: each listed beneficiary's card (issued when it has no live one) and a
fresh sign-in code, for staff to print and hand over."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate

from domain.accounts import Account, AccountKind
from domain.base import Actor, Decision, Outcome
from domain.credentialing import ISSUERS, CredentialCommands
from domain.errors import Forbidden, ValidationFailed
from domain.ids import parse_id
from domain.paying import new_card, printable_card

CARDS_PER_SHEET_MAX = 100  # one print job; a bigger community prints several


class CardSheetCommands(CredentialCommands):
    def prepare_card_sheet(self, actor: Actor, community_id: UUID | None, account_ids: Sequence[str]) -> Outcome:
        """Every listed beneficiary's card digits and a new sign-in code; accounts without a live
        card (none yet, replaced by nothing, killed by a freeze) get one with the community's
        `card_daily_limit`, counted in `cards_issued`."""

        def decide() -> Decision:
            community = self.get_community(community_id)
            if actor.role not in ISSUERS:
                raise Forbidden("only staff and admins print cards")
            self._check_scope(actor, community.id)
            wanted = list(dict.fromkeys(account_ids))
            if not wanted or len(wanted) > CARDS_PER_SHEET_MAX:
                raise ValidationFailed(f"account_ids must list 1 to {CARDS_PER_SHEET_MAX} beneficiaries",
                                       field="account_ids")
            accounts = {raw: self._find(Account, parse_id(raw)) for raw in wanted}
            strangers = [
                raw for raw, account in accounts.items()
                if account is None or account.community_id != community.id
                or account.kind != AccountKind.BENEFICIARY.value
            ]
            if strangers:
                raise ValidationFailed("these accounts are not beneficiaries of this community",
                                       field="account_ids", account_ids=strangers)
            cards: list[dict[str, Any]] = []
            aggregates: list[Aggregate] = []
            for account in accounts.values():
                assert account is not None
                printable = printable_card(self._uow(), account)
                if printable is None:
                    card_code = new_card(self._uow(), actor, account, community.card_daily_limit)
                    daily_limit = community.card_daily_limit
                else:
                    card_code, card = printable
                    daily_limit = card.daily_limit
                sign_in, sign_in_code = self._new_sign_in_code(actor, account.id, account.kind, community.id)
                aggregates.append(sign_in_code)
                cards.append({
                    "account_id": str(account.id), "display_name": account.display_name, "card_code": card_code,
                    "daily_limit": daily_limit, "issued": printable is None,
                    "sign_in": self._sign_in_code_view(sign_in, sign_in_code),
                })
            result = {"community_id": str(community.id), "cards": cards,
                      "cards_issued": sum(1 for card in cards if card["issued"])}
            return result, aggregates

        return self._execute(decide)

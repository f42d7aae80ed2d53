"""Printable card sheets: each listed beneficiary's card (issued when it has no live one) and a
fresh sign-in code, for staff to print and hand over."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID

from domain.accounts import Account, AccountKind
from domain.bus import (
    Actor,
    Command,
    Handlers,
    Result,
    UnitOfWork,
    check_role,
    check_scope,
)
from domain.community import ACTING_STAFF, Community
from domain.credentialing import new_sign_in_code, sign_in_code_view
from domain.errors import ValidationFailed
from domain.ids import parse_id
from domain.paying import new_card, printable_card

CARDS_PER_SHEET_MAX = 100  # one print job; a bigger community prints several


@dataclass(frozen=True)
class PrepareCardSheet(Command):
    """Every listed beneficiary's card digits and a new sign-in code; accounts without a live
    card (none yet, replaced by nothing, killed by a freeze) get one with the community's
    `card_daily_limit`, counted in `cards_issued`. `account_ids` are the ids as sent."""

    community_id: UUID
    account_ids: tuple[str, ...]


def prepare_card_sheet(command: PrepareCardSheet, actor: Actor, uow: UnitOfWork) -> Result:
    community = uow.get(Community, command.community_id, "community")
    check_role(actor, ACTING_STAFF, "only staff and admins print cards")
    check_scope(actor, community.id)
    wanted = list(dict.fromkeys(command.account_ids))
    if not wanted or len(wanted) > CARDS_PER_SHEET_MAX:
        raise ValidationFailed(f"account_ids must list 1 to {CARDS_PER_SHEET_MAX} beneficiaries", field="account_ids")
    accounts = {raw: uow.find(Account, parse_id(raw)) for raw in wanted}
    beneficiaries = {
        raw: account for raw, account in accounts.items()
        if account is not None and account.community_id == community.id
        and account.kind == AccountKind.BENEFICIARY.value
    }
    strangers = [raw for raw in accounts if raw not in beneficiaries]
    if strangers:
        raise ValidationFailed("these accounts are not beneficiaries of this community",
                               field="account_ids", account_ids=strangers)
    cards: list[dict[str, Any]] = []
    for account in beneficiaries.values():
        printable = printable_card(uow, account)
        if printable is None:
            card_code = new_card(uow, actor, account, community.card_daily_limit)
            daily_limit = community.card_daily_limit
        else:
            card_code, card = printable
            daily_limit = card.daily_limit
        sign_in, sign_in_code = new_sign_in_code(uow, actor, account.id, account.kind, community.id)
        cards.append({
            "account_id": str(account.id), "display_name": account.display_name, "card_code": card_code,
            "daily_limit": daily_limit, "issued": printable is None,
            "sign_in": sign_in_code_view(uow, sign_in, sign_in_code),
        })
    return {"community_id": str(community.id), "cards": cards,
            "cards_issued": sum(1 for card in cards if card["issued"])}


HANDLERS: Handlers = {PrepareCardSheet: prepare_card_sheet}

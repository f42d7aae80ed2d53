"""Every projection of the read model, applied in this order to each event."""

from __future__ import annotations

from projections.chain import ChainProjection
from projections.fund import FundProjection
from projections.ledger import LedgerProjection
from projections.projector import Projection
from projections.redemptions import RedemptionsProjection
from projections.wishes import WishesProjection


def all_projections() -> list[Projection]:
    return [ChainProjection(), LedgerProjection(), RedemptionsProjection(), FundProjection(),  # the chain first: others may read its head
            WishesProjection()]

"""Every projection of the read model, applied in this order to each event."""

from __future__ import annotations

from projections.chain import ChainProjection
from projections.dashboard import DashboardProjection
from projections.directory import DirectoryProjection
from projections.fund import FundProjection
from projections.ledger import LedgerProjection
from projections.projector import Projection
from projections.redemptions import RedemptionsProjection
from projections.transparency import TransparencyProjection
from projections.wishes import WishesProjection


def all_projections() -> list[Projection]:
    return [ChainProjection(), LedgerProjection(), RedemptionsProjection(), FundProjection(),
            DirectoryProjection(), DashboardProjection(), TransparencyProjection(),
            WishesProjection()]  # the chain first: others may read its head

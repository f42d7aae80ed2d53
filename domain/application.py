"""The Jindou application: every feature's commands, composed over one unit of work
(`domain/base.py`). Each mixin lives in its own module."""

from __future__ import annotations

from domain.card_sheets import CardSheetCommands
from domain.donating import DonationCommands
from domain.earning import EarningCommands
from domain.month import MonthCommands
from domain.paying import PaymentCommands, WelfareCommands
from domain.people import PeopleCommands
from domain.wishing import WishCommands


class Jindou(CardSheetCommands, MonthCommands, PaymentCommands, WelfareCommands, DonationCommands, EarningCommands,
             PeopleCommands, WishCommands):
    """The whole application; each feature's commands live in their own mixin."""

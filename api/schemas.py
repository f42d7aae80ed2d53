"""Response models: what the main operations answer, for /openapi.json (the routes keep
returning the application's views). Fields the contract always gives are required; more may come
(clients ignore what they do not know). Secrets (`token`, `card_code`) are null in an idempotent
replay: they are shown once."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class Community(Open):
    id: str
    name: str
    timezone: str
    rebate_rate_bps: int
    award_schedule: dict[str, int]


class StaffCreated(Open):
    id: str
    role: str
    token: str | None
    community_id: str


class Balances(Open):
    bean: int
    welfare: int


class AccountCreated(Open):
    id: str
    kind: str
    community_id: str
    display_name: str
    status: str
    merchant_categories: list[str]
    token: str | None


class Account(Open):
    id: str
    kind: str
    community_id: str
    display_name: str
    status: str
    balances: Balances


class AccountStatus(Open):
    id: str
    status: str


class Entry(Open):
    entry_id: str
    transaction_id: str
    type: str
    asset: str
    amount: int
    balance_after: int
    counterparty_id: str | None
    occurred_at: str


class EntriesPage(Open):
    items: list[Entry]
    next_cursor: str | None


class Report(Open):
    id: str
    status: str
    reporter_id: str
    category: str


class ReportStatus(Open):
    id: str
    status: str


class Funded(Open):
    welfare: int
    bean: int


class Redemption(Open):
    id: str
    merchant_id: str
    customer_id: str
    amount: int
    funded: Funded
    status: str
    occurred_at: str


class RedemptionsPage(Open):
    items: list[Redemption]
    next_cursor: str | None


class PaymentCode(Open):
    code: str
    expires_at: str


class Card(Open):
    card_code: str | None
    daily_limit: int


class Allowance(Open):
    account_id: str
    amount: int


class Allowances(Open):
    period: str
    issued: list[Allowance]
    total: int


class Donation(Open):
    id: str
    from_account_id: str
    to_account_id: str
    amount: int


class SettlementLine(Open):
    merchant_id: str
    redeemed: int
    reimbursement_fen: int
    rebate_fen: int
    total_fen: int


class Settlement(Open):
    id: str
    period: str
    status: str
    lines: list[SettlementLine]
    total_fen: int


class Chain(Open):
    events_count: int
    head: str


class AuditEvent(Open):
    position: int
    type: str
    aggregate_id: str
    version: int
    hash: str | None


class AuditEventsPage(Open):
    items: list[AuditEvent]
    next_cursor: int | None


class Health(Open):
    status: str
    database: str


class FundReport(Open):
    period: str
    opening_balance_fen: int
    donations_fen: int
    reimbursements_fen: int
    rebates_fen: int
    closing_balance_fen: int
    chain_head: str
    events_count: int


# A read's path → the model of its 200 answer. The reads return the application's views as dicts,
# which a `response_model=` would validate and serialize again on every request: these models only
# document them (api/openapi.py). A write declares its model where its route is declared
# (`command_route(..., response_model=...)`, or FastAPI's `response_model=`).
READ_MODELS: dict[str, type[BaseModel]] = {
    "/v1/communities/{community_id}": Community,
    "/v1/accounts/{account_id}": Account,
    "/v1/accounts/{account_id}/entries": EntriesPage,
    "/v1/reports/{report_id}": Report,
    "/v1/redemptions/{redemption_id}": Redemption,
    "/v1/merchants/{merchant_id}/redemptions": RedemptionsPage,
    "/v1/settlements/{settlement_id}": Settlement,
    "/v1/audit/chain": Chain,
    "/v1/audit/events": AuditEventsPage,
    "/healthz": Health,
    "/v1/public/communities/{community_id}/fund-reports/{period}": FundReport,
}

"""Named domain errors. Each carries the contract's error code; `api/errors.py` maps codes to HTTP."""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    code = "domain_error"

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class NotFound(DomainError):
    code = "not_found"


class Forbidden(DomainError):
    code = "forbidden"


class ValidationFailed(DomainError):
    code = "validation_error"


class InsufficientFunds(DomainError):
    code = "insufficient_funds"


class AccountFrozen(DomainError):
    code = "account_frozen"


class IdempotencyConflict(DomainError):
    code = "idempotency_conflict"


class InvalidPaymentCode(DomainError):
    code = "invalid_payment_code"


class UnknownPaymentCode(InvalidPaymentCode):
    """No such code was ever issued: to the client it is just not valid, but a till that keeps
    sending these is guessing (a used or replaced code is an honest re-scan)."""


class PaymentCodeExpired(DomainError):
    code = "payment_code_expired"


class DailyLimitExceeded(DomainError):
    code = "daily_limit_exceeded"


class WelfareNotAccepted(DomainError):
    code = "welfare_not_accepted"


class AlreadySettled(DomainError):
    code = "already_settled"


class AlreadyReversed(DomainError):
    code = "already_reversed"


class OverPledged(DomainError):
    """A pledge larger than what the wish still needs."""

    code = "over_pledged"


class InvalidState(DomainError):
    code = "invalid_state"


class SamePerson(DomainError):
    code = "same_person"


class RateLimited(DomainError):
    code = "rate_limited"


class ConcurrencyConflict(DomainError):
    """Optimistic concurrency lost every bounded retry; the client may try again."""

    code = "concurrency_conflict"

"""Named domain errors. Each carries the contract's error code; `api/errors.py` maps codes to HTTP."""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    code = "domain_error"

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class Declined(DomainError):
    """A command that was decided and refused (the contract's 409s): its outcome is kept under
    the request's Idempotency-Key like a success, so a retry can never turn it into a success."""


class ReplayedDecline(DomainError):
    """A declined outcome read back from an idempotency record: the same code, message and details."""

    replayed = True

    def __init__(self, code: str, message: str, details: dict[str, Any]) -> None:
        super().__init__(message)
        self.code = code
        self.details = dict(details)


class OutcomeUnknown(DomainError):
    """The database failed while a command was being committed: it may or may not have been
    recorded. Retrying with the same Idempotency-Key is safe and tells which."""

    code = "outcome_unknown"


class Unavailable(DomainError):
    """Too busy to take this now (nothing was recorded); retry shortly."""

    code = "unavailable"


class Unauthenticated(DomainError):
    """The credential a request came with is no longer valid (revoked since it was checked)."""

    code = "unauthorized"


class NotFound(DomainError):
    code = "not_found"


class Forbidden(DomainError):
    code = "forbidden"


class ValidationFailed(DomainError):
    code = "validation_error"


class InsufficientFunds(Declined):
    code = "insufficient_funds"


class AccountFrozen(Declined):
    code = "account_frozen"


class IdempotencyConflict(DomainError):
    code = "idempotency_conflict"


class InvalidPaymentCode(Declined):
    code = "invalid_payment_code"


class UnknownPaymentCode(InvalidPaymentCode):
    """No such code was ever issued: to the client it is just not valid, but a till that keeps
    sending these is guessing (a used or replaced code is an honest re-scan)."""


class InvalidSignInCode(DomainError):
    """A sign-in code that is used, expired or was never issued: all look the same."""

    code = "invalid_sign_in_code"


class PaymentCodeExpired(Declined):
    code = "payment_code_expired"


class DailyLimitExceeded(Declined):
    code = "daily_limit_exceeded"


class WelfareNotAccepted(Declined):
    code = "welfare_not_accepted"


class AlreadySettled(Declined):
    code = "already_settled"


class AlreadyReversed(Declined):
    code = "already_reversed"


class OverPledged(Declined):
    """A pledge larger than what the wish still needs."""

    code = "over_pledged"


class InvalidState(Declined):
    code = "invalid_state"


class SamePerson(Declined):
    code = "same_person"


class RateLimited(DomainError):
    code = "rate_limited"


class ConcurrencyConflict(DomainError):
    """Optimistic concurrency lost every bounded retry; the client may try again."""

    code = "concurrency_conflict"

"""Who holds which tokens, and sign-in codes.

A `Keyring` lists a principal's live credentials, so "every earlier token dies" is one save:
revoke each credential the keyring lists and empty it. Authentication still reads only the
credential named by the token's hash (decision 0008). Issuing adds to the keyring in the same
save, so a token issued concurrently with a revocation either dies with it or is refused and
retried: the keyring's version orders them.

A `SignInCode` is a short digits-only capability (for people who cannot type a token), known
only by its hash like a payment code. Using it records `Used` on the code in the same save as
the new credential, so two sign-ins racing on one code cannot both win.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain.errors import InvalidSignInCode
from domain.ids import derived_id

TOKEN_BYTES = 32


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_token() -> str:
    return "jd_" + secrets.token_urlsafe(TOKEN_BYTES)

LIVE_CREDENTIALS_MAX = 10  # tokens one principal may hold at once (devices); the oldest dies first
SIGN_IN_CODE_DIGITS = 12  # 10^12 codes, with at most 20 wrong guesses per client per 10 minutes
SIGN_IN_CODE_LIFETIME = timedelta(hours=24)  # long enough for a printed card sheet to reach its holder
INVALID_SIGN_IN_CODE_MESSAGE = "this sign-in code is not valid (used, expired or unknown)"  # one message: no oracle


def sign_in_code_hash(code: str) -> str:
    return hashlib.sha256(("jindou-sign-in-code\x1f" + code).encode("ascii")).hexdigest()


def check_sign_in_code_shape(code: object) -> str:
    if isinstance(code, str) and code.isascii() and code.isdigit() and len(code) == SIGN_IN_CODE_DIGITS:
        return code
    raise InvalidSignInCode(INVALID_SIGN_IN_CODE_MESSAGE)


class Keyring(Aggregate):
    """The credentials a principal (an account or a staff member) holds now, oldest first."""

    @staticmethod
    def id_for(principal_id: UUID) -> UUID:
        return derived_id("keyring", principal_id)

    @event("Opened")
    def __init__(self, id: UUID, principal_id: UUID) -> None:  # noqa: A002
        self.principal_id = principal_id
        self.credential_ids: list[UUID] = []
        self.resets = 0  # sign-in codes issued before the latest reset are dead

    @event("Added")
    def add(self, credential_id: UUID) -> None:
        self.credential_ids.append(credential_id)

    @event("Removed")
    def remove(self, credential_ids: list[UUID]) -> None:
        gone = set(credential_ids)
        self.credential_ids = [c for c in self.credential_ids if c not in gone]

    @event("Reset")
    def reset(self) -> None:
        """Every credential listed dies (their own `Revoked` events are in the same save), and
        so does every sign-in code not yet used: a lost phone or a departed colleague leaves
        no way back in."""
        self.credential_ids = []
        self.resets += 1


class SignInCode(Aggregate):
    """A one-time code that signs its principal in on a new device; valid for at most 24 hours."""

    @staticmethod
    def id_for(code: str) -> UUID:
        return derived_id("sign-in-code", sign_in_code_hash(code))

    @event("Issued")
    def __init__(  # noqa: PLR0913
        self, id: UUID, principal_id: UUID, role: str, community_id: UUID | None,  # noqa: A002
        expires_at: datetime, issued_by: str, keyring_resets: int,
    ) -> None:
        self.principal_id = principal_id
        self.keyring_resets = keyring_resets  # the principal's keyring resets when issued
        self.role = role  # the holder's kind, or "staff" for any staff member (its role is read at sign-in)
        self.community_id = community_id
        self.expires_at = expires_at
        self.issued_by = issued_by
        self.credential_id: UUID | None = None

    @property
    def is_used(self) -> bool:
        return self.credential_id is not None

    def is_live(self, now: datetime, keyring_resets: int) -> bool:
        return not self.is_used and now < self.expires_at and keyring_resets == self.keyring_resets

    def check_live(self, now: datetime, keyring_resets: int) -> None:
        if not self.is_live(now, keyring_resets):
            raise InvalidSignInCode(INVALID_SIGN_IN_CODE_MESSAGE)

    @event("Used")
    def use(self, credential_id: UUID) -> None:
        assert self.credential_id is None, "a sign-in code is used once"
        self.credential_id = credential_id

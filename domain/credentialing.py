"""Credentials: new tokens, revocation, rotation, sign-in codes and signing in. Each command is a
frozen dataclass; its handler `f(command, actor, uow)` decides. The keyring helpers here are what
every feature that hands out a token (opening an account, registering staff) uses."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID

from domain.accounts import Account
from domain.bus import (
    Actor,
    Command,
    Handlers,
    Result,
    UnitOfWork,
    check_role,
    check_scope,
)
from domain.clock import local_time
from domain.community import (
    ACTING_STAFF,
    ADMINS,
    DEFAULT_TIMEZONE,
    Community,
    Credential,
    Staff,
)
from domain.credentials import (
    INVALID_SIGN_IN_CODE_MESSAGE,
    LIVE_CREDENTIALS_MAX,
    SIGN_IN_CODE_DIGITS,
    SIGN_IN_CODE_LIFETIME,
    Keyring,
    SignInCode,
    check_sign_in_code_shape,
    hash_token,
    new_token,
)
from domain.errors import Forbidden, InvalidSignInCode, NotFound
from domain.ids import derived_id
from domain.payments import new_code

STAFF_KIND = "staff"  # a sign-in code's `role` for any staff member; the person's role is read at sign-in
STRANGER = Actor(role="stranger", principal_id=derived_id("stranger"), community_id=None, account_id=None)
"""Whoever sends a sign-in code: no one yet (the code, not the sender, names who signs in)."""


# --- keyrings -----------------------------------------------------------------------------------


def issue_credential(
    uow: UnitOfWork, role: str, principal_id: UUID, community_id: UUID | None, *, replacing: str | None = None,
    retiring: UUID | None = None,
) -> tuple[str, Credential]:
    """A new token for the principal, added to its keyring. `replacing` (a reason) revokes
    every earlier token of the principal; `retiring` revokes that one credential. Beyond
    `LIVE_CREDENTIALS_MAX` live tokens the oldest die. Returns the token and its credential."""
    token = new_token()
    credential = Credential(
        id=Credential.id_for(hash_token(token)), role=role, principal_id=principal_id, community_id=community_id
    )
    keyring = keyring_of(uow, principal_id)
    if replacing is not None:
        reset_keyring(uow, keyring, replacing)
    else:
        doomed = keyring.credential_ids[: max(0, len(keyring.credential_ids) + 1 - LIVE_CREDENTIALS_MAX)]
        doomed += [retiring] if retiring is not None and retiring not in doomed else []
        revoke_credentials(uow, doomed, "replaced by a newer token")
        if doomed:
            keyring.remove(doomed)
    keyring.add(credential.id)
    uow.add(credential)
    return token, credential


def keyring_of(uow: UnitOfWork, principal_id: UUID) -> Keyring:
    """The principal's keyring; a new, empty one (saved with the command) if it has none yet."""
    keyring = uow.find(Keyring, Keyring.id_for(principal_id))
    if keyring is None:
        keyring = Keyring(id=Keyring.id_for(principal_id), principal_id=principal_id)
        uow.add(keyring)
    return keyring


def reset_keyring(uow: UnitOfWork, keyring: Keyring, reason: str) -> int:
    """Revoke every credential the keyring lists and kill its unused sign-in codes; how many
    credentials died."""
    revoked = revoke_credentials(uow, keyring.credential_ids, reason)
    keyring.reset()
    return revoked


def keyring_resets(uow: UnitOfWork, principal_id: UUID) -> int:
    keyring = uow.find(Keyring, Keyring.id_for(principal_id))
    return keyring.resets if keyring is not None else 0


def revoke_credentials(uow: UnitOfWork, credential_ids: list[UUID], reason: str) -> int:
    """Revoke the live ones among these credentials; how many that was."""
    revoked = 0
    for credential_id in credential_ids:
        credential = uow.find(Credential, credential_id)
        if credential is not None and not credential.revoked:
            credential.revoke(reason)
            revoked += 1
    return revoked


# --- tokens -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class IssueAccountToken(Command):
    """A new token for a holder (a lost phone, a lost card): every earlier one dies."""

    account_id: UUID


def issue_account_token(command: IssueAccountToken, actor: Actor, uow: UnitOfWork) -> Result:
    account = _account_for_issuer(uow, actor, command.account_id)
    token, _ = issue_credential(
        uow, account.kind, account.id, account.community_id, replacing=f"new token issued by {actor.label}"
    )
    return {"token": token, "account_id": str(account.id)}


@dataclass(frozen=True)
class IssueStaffToken(Command):
    """A new token for a staff member (by an admin, or the person itself): every earlier one dies."""

    staff_id: UUID


def issue_staff_token(command: IssueStaffToken, actor: Actor, uow: UnitOfWork) -> Result:
    staff = _staff_for(uow, actor, command.staff_id, itself_allowed=True)
    token, _ = issue_credential(
        uow, staff.role, staff.id, staff.community_id, replacing=f"new token issued by {actor.label}"
    )
    return {"token": token, "staff_id": str(staff.id)}


@dataclass(frozen=True)
class RevokeStaff(Command):
    """Every token the staff member holds dies (an admin's decision: someone left)."""

    staff_id: UUID


def revoke_staff(command: RevokeStaff, actor: Actor, uow: UnitOfWork) -> Result:
    staff = _staff_for(uow, actor, command.staff_id, itself_allowed=False)
    revoked = reset_keyring(uow, keyring_of(uow, staff.id), f"revoked by {actor.label}")
    return {"id": str(staff.id), "revoked": revoked}


@dataclass(frozen=True)
class RotateToken(Command):
    """Replace the caller's own token (how the bootstrap admin token is retired)."""


def rotate_token(command: RotateToken, actor: Actor, uow: UnitOfWork) -> Result:
    credential = uow.get(Credential, actor.credential_id, "credential")
    if credential.revoked:
        raise Forbidden("this token was revoked")
    token, _ = issue_credential(
        uow, credential.role, credential.principal_id, credential.community_id, retiring=credential.id
    )
    return {"token": token}


# --- sign-in codes ------------------------------------------------------------------------------


@dataclass(frozen=True)
class IssueAccountSignInCode(Command):
    account_id: UUID


def issue_account_sign_in_code(command: IssueAccountSignInCode, actor: Actor, uow: UnitOfWork) -> Result:
    account = _account_for_issuer(uow, actor, command.account_id)
    code, sign_in_code = new_sign_in_code(uow, actor, account.id, account.kind, account.community_id)
    return sign_in_code_view(uow, code, sign_in_code) | {"account_id": str(account.id)}


@dataclass(frozen=True)
class IssueStaffSignInCode(Command):
    staff_id: UUID


def issue_staff_sign_in_code(command: IssueStaffSignInCode, actor: Actor, uow: UnitOfWork) -> Result:
    staff = _staff_for(uow, actor, command.staff_id, itself_allowed=True)
    code, sign_in_code = new_sign_in_code(uow, actor, staff.id, STAFF_KIND, staff.community_id)
    return sign_in_code_view(uow, code, sign_in_code) | {"staff_id": str(staff.id)}


def new_sign_in_code(
    uow: UnitOfWork, actor: Actor, principal_id: UUID, role: str, community_id: UUID | None
) -> tuple[str, SignInCode]:
    """A fresh sign-in code for the principal, saved with the command; the code and its aggregate."""
    code = new_code(SIGN_IN_CODE_DIGITS)  # a collision with a live code fails the save and is retried
    sign_in_code = SignInCode(
        id=SignInCode.id_for(code), principal_id=principal_id, role=role, community_id=community_id,
        expires_at=uow.now() + SIGN_IN_CODE_LIFETIME, issued_by=actor.label,
        keyring_resets=keyring_resets(uow, principal_id),
    )
    uow.add(sign_in_code)
    return code, sign_in_code


def sign_in_code_view(uow: UnitOfWork, code: str, sign_in_code: SignInCode) -> dict[str, Any]:
    community = uow.find(Community, sign_in_code.community_id)
    timezone = community.timezone if community is not None else DEFAULT_TIMEZONE
    return {"code": code, "expires_at": local_time(sign_in_code.expires_at, timezone), "kind": sign_in_code.role}


def displayable_sign_in_code(uow: UnitOfWork, actor: Actor, principal_id: UUID, code: str) -> SignInCode:
    """A live sign-in code of this principal that `actor` may show as a QR code: staff and
    admins of its community for a holder's code, an admin or the person itself for a staff
    member's. Anything else (used, expired, another's) is simply not found."""
    try:
        check_sign_in_code_shape(code)
    except InvalidSignInCode:
        raise NotFound("no live sign-in code here") from None
    sign_in_code = uow.find(SignInCode, SignInCode.id_for(code))
    if (
        sign_in_code is None or sign_in_code.principal_id != principal_id
        or not sign_in_code.is_live(uow.now(), keyring_resets(uow, sign_in_code.principal_id))
    ):
        raise NotFound("no live sign-in code here")
    if sign_in_code.role == STAFF_KIND:
        _staff_for(uow, actor, principal_id, itself_allowed=True)
    else:
        _account_for_issuer(uow, actor, principal_id)
    return sign_in_code


@dataclass(frozen=True)
class SignIn(Command):
    """Spend a sign-in code for a new token of its principal (earlier tokens stay valid:
    signing in on a phone does not sign the laptop out). `code` is whatever the client sent."""

    code: object


def sign_in(command: SignIn, actor: Actor, uow: UnitOfWork) -> Result:
    sign_in_code = uow.find(SignInCode, SignInCode.id_for(check_sign_in_code_shape(command.code)))
    if sign_in_code is None:
        raise InvalidSignInCode(INVALID_SIGN_IN_CODE_MESSAGE)
    sign_in_code.check_live(uow.now(), keyring_resets(uow, sign_in_code.principal_id))
    result: Result
    if sign_in_code.role == STAFF_KIND:
        staff = uow.get(Staff, sign_in_code.principal_id, "staff member")
        token, credential = issue_credential(uow, staff.role, staff.id, staff.community_id)
        result = {
            "token": token, "staff_id": str(staff.id), "role": staff.role,
            "community_id": str(staff.community_id) if staff.community_id else None, "kind": STAFF_KIND,
        }
    else:
        account = uow.get(Account, sign_in_code.principal_id, "account")
        token, credential = issue_credential(uow, account.kind, account.id, account.community_id)
        result = {"token": token, "account_id": str(account.id), "kind": account.kind}
    sign_in_code.use(credential_id=credential.id)
    return result


# --- who may act on whom ------------------------------------------------------------------------


def _account_for_issuer(uow: UnitOfWork, actor: Actor, account_id: UUID) -> Account:
    account = uow.get(Account, account_id, "account")
    check_role(actor, ACTING_STAFF, "only staff and admins manage a holder's credentials")
    check_scope(actor, account.community_id)
    return account


def _staff_for(uow: UnitOfWork, actor: Actor, staff_id: UUID, *, itself_allowed: bool) -> Staff:
    staff = uow.get(Staff, staff_id, "staff member")
    if itself_allowed and actor.principal_id == staff.id:
        return staff
    check_role(actor, ADMINS, "only an admin manages another staff member's credentials")
    if actor.community_id is not None and actor.community_id != staff.community_id:
        raise Forbidden("this staff member belongs to another community")
    return staff


HANDLERS: Handlers = {
    IssueAccountToken: issue_account_token,
    IssueStaffToken: issue_staff_token,
    RevokeStaff: revoke_staff,
    RotateToken: rotate_token,
    IssueAccountSignInCode: issue_account_sign_in_code,
    IssueStaffSignInCode: issue_staff_sign_in_code,
    SignIn: sign_in,
}

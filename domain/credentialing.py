"""Commands for credentials: new tokens, revocation, rotation, sign-in codes and signing in."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate

from domain.accounts import Account
from domain.base import Actor, Decision, JindouBase, Outcome, local_time
from domain.community import DEFAULT_TIMEZONE, Community, Credential, Staff, StaffRole
from domain.credentials import (
    INVALID_SIGN_IN_CODE_MESSAGE,
    SIGN_IN_CODE_DIGITS,
    SIGN_IN_CODE_LIFETIME,
    Keyring,
    SignInCode,
    check_sign_in_code_shape,
)
from domain.errors import Forbidden, InvalidSignInCode, NotFound
from domain.payments import new_code

STAFF_KIND = "staff"  # a sign-in code's `role` for any staff member; the person's role is read at sign-in
ISSUERS = (StaffRole.ADMIN.value, StaffRole.STAFF.value)


class CredentialCommands(JindouBase):
    # --- tokens ---------------------------------------------------------------------------

    def issue_account_token(self, actor: Actor, account_id: UUID | None) -> Outcome:
        """A new token for a holder (a lost phone, a lost card): every earlier one dies."""

        def decide() -> Decision:
            account = self._account_for_issuer(actor, account_id)
            token, aggregates = self._issue_credential(
                account.kind, account.id, account.community_id, replacing=f"new token issued by {actor.label}"
            )
            return {"token": token, "account_id": str(account.id)}, aggregates

        return self._execute(decide)

    def issue_staff_token(self, actor: Actor, staff_id: UUID | None) -> Outcome:
        """A new token for a staff member (by an admin, or the person itself): every earlier one dies."""

        def decide() -> Decision:
            staff = self._staff_for(actor, staff_id, itself_allowed=True)
            token, aggregates = self._issue_credential(
                staff.role, staff.id, staff.community_id, replacing=f"new token issued by {actor.label}"
            )
            return {"token": token, "staff_id": str(staff.id)}, aggregates

        return self._execute(decide)

    def revoke_staff(self, actor: Actor, staff_id: UUID | None) -> Outcome:
        """Every token the staff member holds dies (an admin's decision: someone left)."""

        def decide() -> Decision:
            staff = self._staff_for(actor, staff_id, itself_allowed=False)
            keyring = self._find(Keyring, Keyring.id_for(staff.id))
            if keyring is None or not keyring.credential_ids:
                return {"id": str(staff.id), "revoked": 0}, []
            doomed = list(keyring.credential_ids)
            revoked = self._revoke_credentials(doomed, f"revoked by {actor.label}")
            keyring.remove(doomed)
            return {"id": str(staff.id), "revoked": len(revoked)}, [keyring, *revoked]

        return self._execute(decide)

    def rotate_token(self, actor: Actor) -> Outcome:
        """Replace the caller's own token (how the bootstrap admin token is retired)."""

        def decide() -> Decision:
            credential = self._get(Credential, actor.credential_id, "credential")
            if credential.revoked:
                raise Forbidden("this token was revoked")
            token, aggregates = self._issue_credential(
                credential.role, credential.principal_id, credential.community_id, retiring=credential.id
            )
            return {"token": token}, aggregates

        return self._execute(decide)

    # --- sign-in codes ----------------------------------------------------------------------

    def issue_account_sign_in_code(self, actor: Actor, account_id: UUID | None) -> Outcome:
        def decide() -> Decision:
            account = self._account_for_issuer(actor, account_id)
            code, sign_in_code = self._new_sign_in_code(actor, account.id, account.kind, account.community_id)
            result = self._sign_in_code_view(code, sign_in_code) | {"account_id": str(account.id)}
            return result, [sign_in_code]

        return self._execute(decide)

    def issue_staff_sign_in_code(self, actor: Actor, staff_id: UUID | None) -> Outcome:
        def decide() -> Decision:
            staff = self._staff_for(actor, staff_id, itself_allowed=True)
            code, sign_in_code = self._new_sign_in_code(actor, staff.id, STAFF_KIND, staff.community_id)
            return self._sign_in_code_view(code, sign_in_code) | {"staff_id": str(staff.id)}, [sign_in_code]

        return self._execute(decide)

    def _new_sign_in_code(
        self, actor: Actor, principal_id: UUID, role: str, community_id: UUID | None
    ) -> tuple[str, SignInCode]:
        code = new_code(SIGN_IN_CODE_DIGITS)  # a collision with a live code fails the save and is retried
        sign_in_code = SignInCode(
            id=SignInCode.id_for(code), principal_id=principal_id, role=role, community_id=community_id,
            expires_at=self.now() + SIGN_IN_CODE_LIFETIME, issued_by=actor.label,
        )
        return code, sign_in_code

    def _sign_in_code_view(self, code: str, sign_in_code: SignInCode) -> dict[str, Any]:
        return {
            "code": code, "expires_at": local_time(sign_in_code.expires_at, self._timezone_of(sign_in_code.community_id)),
            "kind": sign_in_code.role,
        }

    def _timezone_of(self, community_id: UUID | None) -> str:
        community = self._find(Community, community_id)
        return community.timezone if community is not None else DEFAULT_TIMEZONE

    def displayable_sign_in_code(self, actor: Actor, principal_id: UUID | None, code: str) -> SignInCode:
        """A live sign-in code of this principal that `actor` may show as a QR code: staff and
        admins of its community for a holder's code, an admin or the person itself for a staff
        member's. Anything else (used, expired, another's) is simply not found."""
        try:
            check_sign_in_code_shape(code)
        except InvalidSignInCode:
            raise NotFound("no live sign-in code here") from None
        sign_in_code = self._find(SignInCode, SignInCode.id_for(code))
        if sign_in_code is None or sign_in_code.principal_id != principal_id or not sign_in_code.is_live(self.now()):
            raise NotFound("no live sign-in code here")
        if sign_in_code.role == STAFF_KIND:
            self._staff_for(actor, principal_id, itself_allowed=True)
        else:
            self._account_for_issuer(actor, principal_id)
        return sign_in_code

    def sign_in(self, code: object) -> Outcome:
        """Spend a sign-in code for a new token of its principal (earlier tokens stay valid:
        signing in on a phone does not sign the laptop out)."""
        checked = check_sign_in_code_shape(code)

        def decide() -> Decision:
            sign_in_code = self._find(SignInCode, SignInCode.id_for(checked))
            if sign_in_code is None:
                raise InvalidSignInCode(INVALID_SIGN_IN_CODE_MESSAGE)
            sign_in_code.check_live(self.now())
            result: dict[str, Any]
            aggregates: list[Aggregate]
            if sign_in_code.role == STAFF_KIND:
                staff = self._get(Staff, sign_in_code.principal_id, "staff member")
                token, aggregates = self._issue_credential(staff.role, staff.id, staff.community_id)
                result = {
                    "token": token, "staff_id": str(staff.id), "role": staff.role,
                    "community_id": str(staff.community_id) if staff.community_id else None, "kind": STAFF_KIND,
                }
            else:
                account = self._get(Account, sign_in_code.principal_id, "account")
                token, aggregates = self._issue_credential(account.kind, account.id, account.community_id)
                result = {"token": token, "account_id": str(account.id), "kind": account.kind}
            sign_in_code.use(credential_id=aggregates[0].id)
            return result, [sign_in_code, *aggregates]

        return self._execute(decide)

    # --- who may act on whom ----------------------------------------------------------------

    def _account_for_issuer(self, actor: Actor, account_id: UUID | None) -> Account:
        account = self._get(Account, account_id, "account")
        if actor.role not in ISSUERS:
            raise Forbidden("only staff and admins manage a holder's credentials")
        self._check_scope(actor, account.community_id)
        return account

    def _staff_for(self, actor: Actor, staff_id: UUID | None, *, itself_allowed: bool) -> Staff:
        staff = self._get(Staff, staff_id, "staff member")
        if itself_allowed and actor.principal_id == staff.id:
            return staff
        if actor.role != StaffRole.ADMIN.value:
            raise Forbidden("only an admin manages another staff member's credentials")
        if actor.community_id is not None and actor.community_id != staff.community_id:
            raise Forbidden("this staff member belongs to another community")
        return staff
